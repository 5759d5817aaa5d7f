/* ignis/status.h: the status codes every fallible ignis call returns, and the
 * last-error string that carries the details (file, field, shape, library
 * message). Misuse by the programmer is not a status: it is an assertion
 * (IG_CHECK) that never compiles out. The library never calls exit(). */
#ifndef IGNIS_STATUS_H
#define IGNIS_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* One table generates the enum and its names. Codes only grow at the end. */
#define IG_STATUS_LIST(X)                                  \
    X(IG_OK, "ok")                                         \
    X(IG_ERR_NOMEM, "out of memory")                       \
    X(IG_ERR_INVALID, "invalid argument")                  \
    X(IG_ERR_UNSUPPORTED, "not supported")                 \
    X(IG_ERR_IO, "input/output error")                     \
    X(IG_ERR_FORMAT, "malformed input")                    \
    X(IG_ERR_CUDA, "CUDA error")                           \
    X(IG_ERR_CUBLAS, "cuBLAS error")                       \
    X(IG_ERR_NO_DEVICE, "no such device")                  \
    X(IG_ERR_STATE, "operation not valid in this state")          \
    X(IG_ERR_TIMEOUT, "timed out")                                \
    X(IG_ERR_COMM, "communication failure")

typedef enum ig_status {
#define IG__STATUS_ENUM(name, text) name,
    IG_STATUS_LIST(IG__STATUS_ENUM)
#undef IG__STATUS_ENUM
    IG_STATUS_COUNT
} ig_status;

/* "IG_ERR_NOMEM" and the like. */
const char *ig_status_name(ig_status s);
/* A one-line description of what the code means. */
const char *ig_status_text(ig_status s);
/* The details of the most recent failure on this thread ("" when none). */
const char *ig_last_error(void);
/* The status of the most recent failure on this thread (IG_OK when none). */
ig_status ig_last_status(void);
/* Forgets the last failure of this thread. */
void ig_clear_error(void);
/* Records a failure (status and printf-style details) as this thread's last
 * error and returns the status: for subsystems and programs built on ignis. */
ig_status ig_set_error(ig_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif

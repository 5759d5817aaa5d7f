/* worker/supervisor.h: the part of `ignis worker` that starts rank processes
 * and watches them, on a libuv loop the caller owns. Internal to worker/.
 *
 * A rank is one child process, started with the worker's environment plus its
 * identity (RANK, WORLD_SIZE, ... see sup_rank_spec), in a process group of
 * its own, with stdin on /dev/null and stdout and stderr both on one pipe that
 * the loop reads into the rank's log file (appended; one pipe, so the two
 * streams keep their relative order, as with 2>&1).
 *
 * What a caller can count on:
 *  - each exit is reported at once, through on_exit, when the loop sees it;
 *    the log keeps draining after that, independently: output the rank wrote
 *    just before exiting still reaches the file and on_output, possibly after
 *    on_exit has fired;
 *  - when a rank exits, whatever is left of its process group (children it
 *    forked) is SIGKILLed: a dead rank leaves nothing running;
 *  - sup_abort_job SIGTERMs each rank's group, and SIGKILLs it grace_ms later
 *    if the rank is still alive; on_exit fires for every aborted rank;
 *  - libuv reaps every rank: no zombies;
 *  - a rank's handles close once it has exited and its pipe reached end of
 *    file (or SUP_DRAIN_MS after the exit, when a descendant that left the
 *    group still holds the pipe); its memory is freed in the close callbacks.
 *    So the loop stops having work from the supervisor when all ranks are
 *    gone, and sup_free may then be called.
 *
 * Threading: everything runs on the loop's thread; callbacks run from the
 * loop and may call sup_start_rank / sup_abort_job. */
#ifndef IGNIS_WORKER_SUPERVISOR_H
#define IGNIS_WORKER_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "ignis/status.h"

/* How long a rank's log may keep draining after its exit, in ms, before the
 * pipe is closed (only a descendant that escaped the group can hold it). */
#define SUP_DRAIN_MS 2000

typedef struct sup sup;

/* Which rank: a job, one attempt of it (a restart is a new attempt), a rank
 * (the ids of docs/protocol.md). */
typedef struct sup_rank_id {
    int64_t job;
    int64_t attempt;
    int rank;
} sup_rank_id;

/* What starts a rank. Nothing is kept after sup_start_rank returns. The child
 * sees the worker's environment, overridden by `env`, overridden by RANK,
 * WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
 * IGNIS_JOB, IGNIS_ATTEMPT, IGNIS_COORDINATOR (the last three unset when the
 * field is NULL/0) and NCCL_NVLS_ENABLE=0 (always: NVLink multicast stays
 * off on the machines we run on). */
typedef struct sup_rank_spec {
    sup_rank_id id;
    int local_rank, world, local_world;
    const char *master_addr; /* NULL: MASTER_ADDR/MASTER_PORT not set */
    int master_port;
    const char *coordinator; /* NULL: IGNIS_COORDINATOR not set */
    char *const *argv;       /* NULL-terminated; argv[0] is searched in PATH */
    char *const *env;        /* extra "KEY=VALUE", NULL-terminated; may be NULL */
    const char *cwd;         /* NULL: the worker's */
    const char *log_path;    /* created if missing, appended to */
} sup_rank_spec;

/* An exit: by a code (term_signal 0) or by a signal (exit_code 0). */
typedef struct sup_exit {
    sup_rank_id id;
    int pid;
    int exit_code;
    int term_signal;
    double time; /* when the loop saw it: seconds since the Unix epoch (RANK_EXIT's) */
} sup_exit;

typedef void (*sup_exit_cb)(sup *s, const sup_exit *e, void *data);
/* A chunk of a rank's output (stdout and stderr merged), already appended to
 * its log file; for forwarding or tailing. A last call with len 0 (buf "")
 * says that the log is complete: the pipe reached end of file, or its drain
 * deadline passed (exactly once per started rank, after its on_exit or
 * before it). */
typedef void (*sup_output_cb)(sup *s, const sup_rank_id *id, const char *buf, size_t len,
                              void *data);

/* A supervisor on `loop`; on_exit is required, on_output may be NULL; `data`
 * is passed to both. IG_ERR_NOMEM when out of memory. */
ig_status sup_new(uv_loop_t *loop, sup_exit_cb on_exit, sup_output_cb on_output, void *data,
                  sup **out);
/* Frees the supervisor. Only once no rank remains (sup_count == 0: every one
 * exited and its handles closed: run the loop until then); asserts it. */
void sup_free(sup *s);

/* Starts a rank; returns at once (the exit comes through on_exit). When the
 * log file cannot be opened, or the program or the directory is missing,
 * returns IG_ERR_IO with a message naming the rank and the file, program or
 * directory (IG_ERR_NOMEM when out of memory), and on_exit never fires for
 * that rank. Starting a rank whose id is running already is a programmer
 * error (assertion). */
ig_status sup_start_rank(sup *s, const sup_rank_spec *spec);

/* Aborts every running rank of `job` (of that attempt; attempt < 0: of every
 * attempt): SIGTERM to each rank's process group now, SIGKILL grace_ms later
 * to those still alive (grace_ms <= 0: SIGKILL now). Returns how many ranks
 * were signalled. A second abort never pushes a pending SIGKILL later. */
int sup_abort_job(sup *s, int64_t job, int64_t attempt, int grace_ms);
/* The same for every running rank (a worker shutting down). */
int sup_abort_all(sup *s, int grace_ms);

/* Ranks not yet freed: running, or exited with handles still closing. */
int sup_count(const sup *s);
/* Ranks running (not yet exited). */
int sup_running(const sup *s);

#endif

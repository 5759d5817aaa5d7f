/* coordinator/auth.h: the coordinator's CurveZMQ side (auth.c): its ROUTER
 * made a CurveZMQ server, and the ZAP handler that lets in only the client
 * keys of an authorized-keys file. Internal to coordinator/. */
#ifndef IGNIS_COORDINATOR_AUTH_H
#define IGNIS_COORDINATOR_AUTH_H

#include "ignis/status.h"

typedef struct ig__auth ig__auth;
typedef void (*ig__auth_log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Loads the coordinator's key pair (key_file), makes router a CurveZMQ
 * server with it, binds the ZAP handler (inproc://zeromq.zap.01 of zctx) and
 * reads authorized_keys. Call before router binds: a CurveZMQ socket of a
 * context without ZAP handler would let any key in. Errors name the file. */
ig_status ig__auth_open(void *zctx, void *router, const char *key_file, const char *authorized_keys,
                        ig__auth_log log, ig__auth **out);
/* The ZAP socket's ZMQ_FD (edge-triggered: serve after every wake-up and
 * tick). */
int ig__auth_fd(const ig__auth *a);
/* "N authorized keys from FILE" for the daemon's start line. */
const char *ig__auth_summary(const ig__auth *a);
/* Answers every pending ZAP request (200 for a listed key, 400 and one log
 * line otherwise), re-reading the file first when it changed. Never blocks. */
void ig__auth_serve(ig__auth *a);
void ig__auth_close(ig__auth *a);

#endif

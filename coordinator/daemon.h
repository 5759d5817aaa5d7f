/* coordinator/daemon.h: the coordinator daemon (`ignis coordinator`): one
 * libuv loop serving the wire protocol (docs/protocol.md) on a ZeroMQ ROUTER
 * socket over the job store and scheduler of coord.h. Internal to
 * coordinator/ and the launcher. */
#ifndef IGNIS_COORDINATOR_DAEMON_H
#define IGNIS_COORDINATOR_DAEMON_H

#include <stdbool.h>

#include "ignis/status.h"

typedef struct ig__coordd_opts {
    const char *listen;       /* a ZeroMQ endpoint: on loopback (tcp://127.0.0.1:PORT, ipc://...) unless key_file */
    const char *state_dir;    /* the journal's directory (created when missing) */
    double heartbeat_timeout; /* seconds a node may stay silent before it is failed (> 0) */
    const char *key_file;        /* the coordinator's key pair: CurveZMQ (auth.h); NULL: plaintext */
    const char *authorized_keys; /* the client keys let in; set iff key_file is */
} ig__coordd_opts;

/* Whether endpoint only listens on this host (loopback tcp, ipc): the only
 * places plaintext is allowed. */
bool ig__coordd_local_endpoint(const char *endpoint);

/* Serves until SIGINT or SIGTERM: IG_OK then (every handle closed, memory
 * freed); an error when it cannot start (endpoint refused or in use, journal
 * unreadable), with the message in ig_last_error(). */
ig_status ig__coordd_run(const ig__coordd_opts *opts);

#endif

/* worker/daemon.h: the node daemon of `ignis worker`: registers this node's
 * slots with the coordinator, starts the rank processes it is told to start
 * (through the supervisor, worker/supervisor.h), reports each exit at once,
 * aborts ranks on request, and survives the coordinator going away.
 *
 * Protocol (docs/protocol.md): a DEALER connected to the coordinator's
 * ROUTER. HELLO is sent (again every second) until a HELLO_ACK comes; then a
 * HEARTBEAT every heartbeat_ms (HELLO_ACK's, default 1000) listing the
 * running ranks. START_RANKS writes WORK_DIR/job-J/attempt-A/job.json and
 * starts one rank per entry, logging to rank-R.log next to it (their
 * rendezvous address: START_RANKS', or the worker's own --coordinator when
 * the coordinator bound a wildcard like tcp://0.0.0.0:P), with
 * IGNIS_SLOT and OMP_NUM_THREADS = cores / slots (unless the worker's own
 * environment sets OMP_NUM_THREADS); ABORT aborts
 * the ranks of that job attempt (SIGTERM, SIGKILL after the grace); every
 * exit is a RANK_EXIT. A rank that cannot be started is reported as exiting
 * with code 127 (the reason is in the worker's log). Each rank's log is
 * copied to the coordinator as it grows (LOG_DATA, worker/log_forward.h),
 * again from what the coordinator acknowledged after each registration.
 *
 * The coordinator going away: the worker keeps its ranks running. When the
 * connection drops (ZeroMQ reports a disconnect, or its ZMTP heartbeat times
 * out), or the coordinator answers with ERROR (it does not know this
 * worker), the worker registers again: HELLO every second, with its previous
 * worker id and the ranks still running, until a (new) coordinator answers.
 * Exits seen meanwhile are kept and sent right after the next HELLO_ACK; and
 * every HELLO lists the last WD_RECENT_EXITS exits (`exited`), since an exit
 * handed to a connection that was dying is lost and a restarted coordinator
 * must not take that rank for one that vanished. So a
 * coordinator that restarts on the same address, with its journal, finds its
 * ranks where it left them. Messages are only queued on a live connection
 * (ZMQ_IMMEDIATE): nothing stale is replayed to a new coordinator.
 *
 * Malformed or unexpected messages from the coordinator are logged (one line
 * on stderr) and ignored. SIGINT/SIGTERM: every rank is aborted with the
 * grace (a second signal: SIGKILL now), their exits are reported, and
 * wd_run returns once they are all gone. With stop_on_eof, the end of stdin
 * (or an error reading it) does the same: whoever started the worker through
 * a pipe (ssh, `ignis run`) stops it by closing the pipe, also by dying. */
#ifndef IGNIS_WORKER_DAEMON_H
#define IGNIS_WORKER_DAEMON_H

#include <stdbool.h>

#include "ignis/status.h"

#define WD_HELLO_RETRY_MS 1000
#define WD_HEARTBEAT_MS 1000 /* when HELLO_ACK names none */
#define WD_GRACE_MS 5000
#define WD_MAX_GPUS 256
#define WD_RECENT_EXITS 1024 /* exits repeated in each HELLO */

typedef struct wd_opts {
    const char *coordinator; /* the ZeroMQ address, e.g. tcp://head:5555 */
    const char *node;        /* NULL: the host name */
    int cpus;                /* < 0: the number of online CPUs */
    int n_gpus;
    const int *gpus;         /* device indices */
    const char *work_dir;    /* NULL: "." */
    char *const *rank_argv;  /* the rank command, NULL-terminated; job.json is appended */
    int grace_ms;            /* SIGTERM -> SIGKILL on abort and shutdown; <= 0: WD_GRACE_MS */
    bool stop_on_eof;        /* stop at the end of stdin, as on SIGTERM */
} wd_opts;

/* Runs the daemon until SIGINT or SIGTERM, then returns IG_OK once every rank
 * is gone. IG_ERR_COMM when the coordinator address is unusable, IG_ERR_NOMEM /
 * IG_ERR_IO when the daemon cannot set up (ig_last_error says why). */
ig_status wd_run(const wd_opts *opts);

#endif

/* worker/log_forward.h: the worker's half of log collection: each rank's
 * log file (WORK_DIR/job-J/attempt-A/rank-R.log, written by the supervisor)
 * is copied to the coordinator as LOG_DATA chunks (docs/protocol.md). Internal
 * to worker/.
 *
 * The local file is the source of truth. Per rank the forwarder keeps the
 * size the coordinator acknowledged (LOG_ACK) and sends what lies past it:
 * every LF_TICK_MS, right after each ack, and when the rank's log completes;
 * at most IG_PROTO_MAX_LOG_DATA bytes a chunk, one chunk in flight for the
 * whole worker (so an ERROR answers the chunk in flight). A rank's last chunk
 * carries `final` once its log is complete (the pipe drained; possibly an
 * empty chunk); when that is acknowledged the rank is forgotten. Since the
 * coordinator stores only what extends its copy and acknowledges its size,
 * resending is always safe: after a new registration (a reconnect, a
 * coordinator restart), or LF_RESEND_MS without an answer, the forwarder sends
 * again from the acknowledged size; an ack of a smaller size (the coordinator
 * lost bytes) moves it back. A refused chunk (ERROR: unknown job, rank, store
 * failure) ends forwarding of that rank, with one line on stderr.
 *
 * Runs on the worker's loop; its timer does not keep the loop alive. */
#ifndef IGNIS_WORKER_LOG_FORWARD_H
#define IGNIS_WORKER_LOG_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "ignis/status.h"
#include "worker/supervisor.h"

#define LF_TICK_MS 250
#define LF_RESEND_MS 5000

typedef struct lf lf;

/* Sends a LOG_DATA body now; false when it could not be sent (not
 * connected). */
typedef bool (*lf_send_fn)(void *data, const json_t *body);

ig_status lf_new(uv_loop_t *loop, lf_send_fn send, void *data, lf **out);
/* Closes the timer; lf_free once the loop ran the close. */
void lf_close(lf *f);
void lf_free(lf *f);

/* A rank to forward, whose output goes to `path` (a rank already tracked is
 * kept as it is). */
void lf_add(lf *f, sup_rank_id id, const char *path);
/* Its log is complete: nothing more will be written to it. */
void lf_complete(lf *f, sup_rank_id id);
/* Registered as worker `worker`: send (again) from the acknowledged sizes. */
void lf_online(lf *f, int64_t worker);
/* Not registered: nothing is sent until lf_online. */
void lf_offline(lf *f);
/* A LOG_ACK body from the coordinator. */
void lf_acked(lf *f, const json_t *ack);
/* An ERROR that answers a LOG_DATA (its `request` is LOG_DATA); message: its text. */
void lf_refused(lf *f, const char *message);

#endif

/* coordinator/logs.h: the coordinator's copy of every rank's output (internal
 * to coordinator/; docs/architecture.md, "Rank logs", has the whole flow).
 *
 * Store (logstore.c): files under STATE/logs/job-J/attempt-A/:
 *   rank-R.log   the rank's output, byte for byte as its worker's rank-R.log;
 *   rank-R.final present once the rank's last byte is stored (it exited and
 *                its pipe was drained);
 *   all.log      the merged view: each line of each rank prefixed "[rank R] ",
 *                in the order the lines were stored; a rank's partial line is
 *                held until its newline (or its final chunk, or until the rank
 *                has written LOG_LINE_MAX - 1 bytes without one: a longer line
 *                is cut where the chunks end);
 *   world        the attempt's world size (text).
 * A chunk is stored only where it extends rank-R.log: bytes the file has are
 * skipped, a chunk starting past its end is refused (a gap). What the merged
 * view has already shown is derived from rank-R.log itself, so the store
 * keeps no state in memory and a restart loses nothing; a crash between the
 * two writes of one chunk leaves that chunk's lines out of all.log only. Files
 * are opened per call; every call reads and writes a bounded amount.
 *
 * Requests (logs.c): LOG_DATA and LOGS checked against the job store (job,
 * attempt, rank) and answered (docs/protocol.md). */
#ifndef IGNIS_COORDINATOR_LOGS_H
#define IGNIS_COORDINATOR_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "coordinator/coord.h"
#include "ignis/status.h"

#define IG_LOG_LINE_MAX 4096 /* see all.log above */

typedef struct ig__logstore ig__logstore;

/* STATE/logs, created when missing. */
ig_status ig__logstore_open(const char *state_dir, ig__logstore **out);
void ig__logstore_close(ig__logstore *s);

/* An attempt starts with `world` ranks: its directory and its world file. */
ig_status ig__logstore_begin(ig__logstore *s, int64_t job, int64_t attempt, int world);
/* The world size begin recorded; 0 when none was. */
int ig__logstore_world(ig__logstore *s, int64_t job, int64_t attempt);

/* What append did. */
typedef struct ig__log_stored {
    int64_t size; /* rank-R.log's size now: the sender goes on from there */
    bool final;   /* the rank's last byte is stored */
    bool gap;     /* refused: the chunk starts past the end of the file */
} ig__log_stored;

/* Stores a chunk of rank `rank` that starts at byte `offset` of its log;
 * `final`: the chunk ends the log. IG_ERR_IO when a file cannot be written. */
ig_status ig__logstore_append(ig__logstore *s, int64_t job, int64_t attempt, int rank, int64_t offset,
                              const void *data, size_t n, bool final, ig__log_stored *out);
/* Up to cap bytes of rank-R.log (rank -1: all.log) from offset into buf; *n
 * bytes read (0 at the end, or when nothing was stored yet). */
ig_status ig__logstore_read(ig__logstore *s, int64_t job, int64_t attempt, int rank, int64_t offset,
                            void *buf, size_t cap, size_t *n);
/* Whether the rank's final chunk is stored. */
bool ig__logstore_final(ig__logstore *s, int64_t job, int64_t attempt, int rank);

/* LOG_DATA (a validated body): stored, *ack is the LOG_ACK body. A chunk
 * that does not fit (unknown job, attempt or rank) is IG_ERR_INVALID, a
 * store that cannot be written IG_ERR_IO; the message starts "LOG_DATA: ". A
 * gap is no error: the ack carries the size to resend from (*gap is set). */
ig_status ig__logs_data(ig__logstore *s, ig__coord *c, const json_t *body, json_t **ack, bool *gap);
/* LOGS (a validated body): *reply is the LOGS_REPLY body. `settle_s`: how
 * long after an attempt ended the coordinator stops waiting for final chunks
 * (a rank whose worker was lost never sends one). Unknown job, attempt or
 * rank: IG_ERR_INVALID, "LOGS: ...". */
ig_status ig__logs_request(ig__logstore *s, ig__coord *c, const json_t *body, double settle_s,
                           json_t **reply);

#endif

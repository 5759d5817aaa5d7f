/* coordinator/logs.c: the coordinator's answers to LOG_DATA (a worker
 * forwarding rank output) and LOGS (a client reading it), over the log store
 * (logs.h) and the job store (coord.h). docs/protocol.md has the messages.
 *
 * Which attempt and rank a message may name: attempts 1 .. the job's
 * current one; ranks below the attempt's world size (its log store world
 * file; the job's for its current attempt before that exists). A LOGS without
 * `attempt` reads the latest attempt that started (the one before, while the
 * job waits to restart). `eof` is set on the reply that reaches the end of a
 * log that cannot grow any more: the attempt is over (the job moved to a later
 * attempt or ended) and every rank read has its final chunk stored, or the
 * attempt ended `settle_s` ago (ranks of a lost worker never send theirs). */
#include <stdio.h>
#include <stdlib.h>

#include "coordinator/logs.h"
#include "ignis/proto.h"

enum { DEFAULT_MAX_BYTES = 65536 };

#define INTF(body, name) json_integer_value(json_object_get(body, name))

/* The world size of attempt a of j (0: it never started). */
static int world_of(ig__logstore *s, const ig__coord_job *j, int64_t a) {
    int w = ig__logstore_world(s, j->id, a);
    if (!w && a == j->attempt && j->state != IG_JOB_QUEUED && j->state != IG_JOB_RESTARTING) w = j->ranks;
    return w;
}

ig_status ig__logs_data(ig__logstore *s, ig__coord *c, const json_t *body, json_t **ack, bool *gap) {
    *ack = NULL;
    *gap = false;
    int64_t job = INTF(body, "job"), attempt = INTF(body, "attempt"), offset = INTF(body, "offset");
    int rank = (int)INTF(body, "rank");
    const ig__coord_job *j = ig__coord_job_get(c, job);
    int world = j && attempt >= 1 && attempt <= j->attempt ? world_of(s, j, attempt) : 0;
    if (!j) return ig_set_error(IG_ERR_INVALID, "LOG_DATA: job %lld: no such job", (long long)job);
    if (!world)
        return ig_set_error(IG_ERR_INVALID, "LOG_DATA: job %lld attempt %lld: never started", (long long)job,
                            (long long)attempt);
    if (rank >= world)
        return ig_set_error(IG_ERR_INVALID, "LOG_DATA: job %lld attempt %lld has %d ranks, got rank %d",
                            (long long)job, (long long)attempt, world, rank);
    const json_t *text = json_object_get(body, "data");
    static unsigned char data[IG_PROTO_MAX_LOG_DATA];
    size_t n = 0;
    ig_status st =
        ig_proto_b64_decode(json_string_value(text), json_string_length(text), data, sizeof data, &n);
    ig__log_stored out;
    if (!st)
        st = ig__logstore_append(s, job, attempt, rank, offset, data, n,
                                 json_is_true(json_object_get(body, "final")), &out);
    if (st)
        return ig_set_error(st, "LOG_DATA: job %lld attempt %lld rank %d: %s", (long long)job,
                            (long long)attempt, rank, ig_last_error());
    *gap = out.gap;
    *ack = json_pack("{s:I, s:I, s:i, s:I, s:b}", "job", (json_int_t)job, "attempt", (json_int_t)attempt,
                     "rank", rank, "size", (json_int_t)out.size, "final", out.final);
    return *ack ? IG_OK : ig_set_error(IG_ERR_NOMEM, "LOG_DATA: out of memory");
}

/* Whether attempt a of j (of `world` ranks) can get no more output on `rank`
 * (-1: on any rank). */
static bool finished(ig__logstore *s, const ig__coord_job *j, int64_t a, int world, int rank,
                     double settle_s) {
    bool final = j->state >= IG_JOB_SUCCEEDED;
    if (!final && a == j->attempt) return false;
    if (!world) return true; /* it never started */
    bool all = true;
    for (int r = rank < 0 ? 0 : rank; all && r < (rank < 0 ? world : rank + 1); r++)
        all = ig__logstore_final(s, j->id, a, r);
    if (all) return true;
    double now = ig__coord_now();
    if (final) return now - j->ended >= settle_s;
    if (a + 1 < j->attempt) return true; /* two attempts ago */
    return j->state == IG_JOB_RUNNING && j->started > 0 && now - j->started >= settle_s;
}

ig_status ig__logs_request(ig__logstore *s, ig__coord *c, const json_t *body, double settle_s,
                           json_t **reply) {
    *reply = NULL;
    int64_t job = INTF(body, "job");
    int rank = (int)INTF(body, "rank");
    const ig__coord_job *j = ig__coord_job_get(c, job);
    if (!j) return ig_set_error(IG_ERR_INVALID, "job %lld: no such job", (long long)job);
    const json_t *given = json_object_get(body, "attempt");
    int64_t a = given ? json_integer_value(given) : j->attempt - (j->state == IG_JOB_RESTARTING);
    if (given && (a < 1 || a > j->attempt)) {
        if (j->attempt == 0)
            return ig_set_error(IG_ERR_INVALID, "job %lld has no attempt %lld: it has not started yet",
                                (long long)job, (long long)a);
        return ig_set_error(IG_ERR_INVALID, "job %lld has no attempt %lld (its attempts: 1 to %d)",
                            (long long)job, (long long)a, j->attempt);
    }
    int world = a >= 1 ? world_of(s, j, a) : 0;
    int limit = world ? world : j->max_ranks;
    if (rank >= limit)
        return ig_set_error(IG_ERR_INVALID, "job %lld attempt %lld has %d ranks, got rank %d", (long long)job,
                            (long long)a, limit, rank);
    json_t *max = json_object_get(body, "max_bytes"), *off = json_object_get(body, "offset");
    size_t cap = max ? (size_t)json_integer_value(max) : DEFAULT_MAX_BYTES, n = 0;
    int64_t offset = off ? json_integer_value(off) : 0;
    bool eof = finished(s, j, a, world, rank, settle_s); /* before the read: nothing arrives in between */
    char *buf = malloc(cap);
    if (!buf) return ig_set_error(IG_ERR_NOMEM, "LOGS: out of memory");
    ig_status st = a >= 1 ? ig__logstore_read(s, job, a, rank, offset, buf, cap, &n) : IG_OK;
    char *text = st ? NULL : ig_proto_b64_encode(buf, n);
    free(buf);
    if (st)
        return ig_set_error(st, "LOGS: job %lld attempt %lld: %s", (long long)job, (long long)a,
                            ig_last_error());
    if (!text) return ig_set_error(IG_ERR_NOMEM, "LOGS: out of memory");
    *reply = json_pack("{s:I, s:i, s:I, s:s, s:b, s:i}", "job", (json_int_t)job, "rank", rank, "offset",
                       (json_int_t)offset, "data", text, "eof", eof && n < cap, "attempts", j->attempt);
    free(text);
    if (*reply && a >= 1) json_object_set_new(*reply, "attempt", json_integer(a));
    return *reply ? IG_OK : ig_set_error(IG_ERR_NOMEM, "LOGS: out of memory");
}

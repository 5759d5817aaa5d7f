/* worker/log_forward.c: forwards rank log files to the coordinator
 * (log_forward.h has the protocol and its guarantees).
 *
 * Invariants: `in_flight` is the index of the rank whose chunk awaits an
 * answer, -1 when none; nothing is sent while offline; a rank leaves the
 * table once its final chunk is acknowledged or refused. */
#define _GNU_SOURCE
#include "worker/log_forward.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ignis/proto.h"

typedef struct fwd {
    sup_rank_id id;
    char *path;
    int64_t acked; /* bytes the coordinator has */
    bool complete; /* the file will not grow */
} fwd;

struct lf {
    uv_timer_t timer;
    lf_send_fn send;
    void *data;
    fwd *ranks;
    int n, cap;
    int next;         /* round robin: the rank looked at first */
    int in_flight;    /* see the file comment */
    uint64_t sent_at; /* uv_now of that send */
    bool online;
    int64_t worker;
    unsigned char chunk[IG_PROTO_MAX_LOG_DATA];
};

static void send_next(lf *f);

static void on_tick(uv_timer_t *t) {
    lf *f = t->data;
    if (f->in_flight >= 0 && uv_now(t->loop) - f->sent_at >= LF_RESEND_MS) f->in_flight = -1;
    send_next(f);
}

ig_status lf_new(uv_loop_t *loop, lf_send_fn send, void *data, lf **out) {
    lf *f = calloc(1, sizeof *f);
    if (!f) return ig_set_error(IG_ERR_NOMEM, "worker: log forwarding: out of memory");
    f->send = send;
    f->data = data;
    f->in_flight = -1;
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, on_tick, LF_TICK_MS, LF_TICK_MS);
    uv_unref((uv_handle_t *)&f->timer);
    *out = f;
    return IG_OK;
}

void lf_close(lf *f) { uv_close((uv_handle_t *)&f->timer, NULL); }

void lf_free(lf *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->ranks[i].path);
    free(f->ranks);
    free(f);
}

static int find(const lf *f, sup_rank_id id) {
    for (int i = 0; i < f->n; i++)
        if (f->ranks[i].id.job == id.job && f->ranks[i].id.attempt == id.attempt &&
            f->ranks[i].id.rank == id.rank)
            return i;
    return -1;
}

static void forget(lf *f, int i) {
    free(f->ranks[i].path);
    f->ranks[i] = f->ranks[--f->n];
    if (f->in_flight == f->n) f->in_flight = i; /* it moved */
}

void lf_add(lf *f, sup_rank_id id, const char *path) {
    if (find(f, id) >= 0) return;
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 8;
        fwd *r = realloc(f->ranks, (size_t)cap * sizeof *r);
        if (!r) {
            fprintf(stderr, "ignis worker: out of memory: the log of rank %d is not forwarded\n", id.rank);
            return;
        }
        f->ranks = r, f->cap = cap;
    }
    f->ranks[f->n++] = (fwd){.id = id, .path = strdup(path)};
}

void lf_complete(lf *f, sup_rank_id id) {
    int i = find(f, id);
    if (i < 0) return;
    f->ranks[i].complete = true;
    send_next(f);
}

void lf_online(lf *f, int64_t worker) {
    f->online = true;
    f->worker = worker;
    f->in_flight = -1;
    send_next(f);
}

void lf_offline(lf *f) {
    f->online = false;
    f->in_flight = -1;
}

/* The next chunk of rank i: true when one was sent. A file that cannot be
 * read counts as empty (an unstarted rank's may not exist). */
static bool send_chunk(lf *f, int i) {
    fwd *r = &f->ranks[i];
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    int64_t size = fd >= 0 && !fstat(fd, &sb) ? (int64_t)sb.st_size : 0;
    ssize_t n = 0;
    if (fd >= 0 && size > r->acked) {
        size_t want =
            size - r->acked < (int64_t)sizeof f->chunk ? (size_t)(size - r->acked) : sizeof f->chunk;
        do n = pread(fd, f->chunk, want, (off_t)r->acked);
        while (n < 0 && errno == EINTR);
        if (n < 0) n = 0;
    }
    if (fd >= 0) close(fd);
    bool final = r->complete && r->acked + n >= size;
    if (!n && !final) return false;
    char *text = ig_proto_b64_encode(f->chunk, (size_t)n);
    json_t *body = text
                       ? json_pack("{s:I, s:I, s:I, s:i, s:I, s:s, s:b}", "worker", (json_int_t)f->worker,
                                   "job", (json_int_t)r->id.job, "attempt", (json_int_t)r->id.attempt, "rank",
                                   r->id.rank, "offset", (json_int_t)r->acked, "data", text, "final", final)
                       : NULL;
    bool sent = body && f->send(f->data, body);
    json_decref(body);
    free(text);
    if (sent) {
        f->in_flight = i;
        f->sent_at = uv_now(f->timer.loop);
    }
    return sent;
}

static void send_next(lf *f) {
    if (!f->online || f->in_flight >= 0) return;
    for (int k = 0; k < f->n; k++) {
        int i = (f->next + k) % f->n;
        if (send_chunk(f, i)) {
            f->next = (i + 1) % f->n;
            return;
        }
    }
}

void lf_acked(lf *f, const json_t *ack) {
    sup_rank_id id = {json_integer_value(json_object_get(ack, "job")),
                      json_integer_value(json_object_get(ack, "attempt")),
                      (int)json_integer_value(json_object_get(ack, "rank"))};
    int i = f->in_flight;
    if (i < 0 || find(f, id) != i) return; /* an answer to a chunk given up on */
    f->in_flight = -1;
    f->ranks[i].acked = json_integer_value(json_object_get(ack, "size"));
    if (json_is_true(json_object_get(ack, "final"))) forget(f, i);
    send_next(f);
}

void lf_refused(lf *f, const char *message) {
    int i = f->in_flight;
    if (i < 0) return;
    fprintf(stderr,
            "ignis worker: job %" PRId64 " attempt %" PRId64
            " rank %d: the coordinator refused its log (%s); "
            "it stays in %s only\n",
            f->ranks[i].id.job, f->ranks[i].id.attempt, f->ranks[i].id.rank, message, f->ranks[i].path);
    f->in_flight = -1;
    forget(f, i);
    send_next(f);
}

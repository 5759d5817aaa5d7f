/* coordinator/daemon.c: the coordinator daemon. One libuv loop, one thread:
 * the ROUTER socket's ZMQ_FD under uv_poll (drained until ZMQ_EVENTS has no
 * POLLIN, after every readable event and after every timer tick, since a send
 * may swallow the fd's edge), a 200 ms timer (heartbeat deadlines, then the
 * scheduler and START_RANKS for what it placed; the scheduler also runs at
 * once after a SUBMIT and after a rank failure, so that placement and restart
 * wait for no tick) and SIGINT/SIGTERM for a clean stop. One coordinator
 * per state directory (an flock on DIR/lock). With a key (--key), auth.c
 * makes the ROUTER a CurveZMQ server and answers ZeroMQ's ZAP requests on a
 * socket watched like the ROUTER's; without one, loopback only.
 *
 * Invariants: the journal (coord.h) is the state; the daemon only adds what
 * need not survive it, per node (its ROUTER identity, last heartbeat, GPU
 * indices) and per job attempt (progress, rendezvous addresses, ranks that
 * exited 0 or were re-adopted), reset whenever the job's attempt changes.
 * Every received message is validated (ig_proto_recv); a bad one gets an
 * ERROR and one log line, never more. No send blocks the loop (timeout 0); a
 * failed send is logged, and the heartbeat deadline deals with a peer that
 * is gone. ABORT goes out after the journal recorded the failure that caused
 * it. After a restart, nodes holding ranks get the heartbeat timeout to come
 * back (counted from the start) before they are failed.
 *
 * Replies: HELLO -> HELLO_ACK (heartbeat period: a third of the timeout);
 * SUBMIT -> SUBMIT_ACK; STATUS -> STATUS_REPLY; LOG_DATA -> LOG_ACK and LOGS ->
 * LOGS_REPLY (rank output, coordinator/logs.h); CANCEL, RANK_EXIT -> OK
 * (before any ABORT it causes); RENDEZVOUS -> RENDEZVOUS_REPLY to every rank
 * once all have joined; HEARTBEAT, OK, ERROR -> nothing; anything refused ->
 * ERROR. A node's slots are its GPUs when its HELLO lists any, else its
 * CPUs; START_RANKS gives GPU slots as GPU indices. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "coordinator/daemon.h"

bool ig__coordd_local_endpoint(const char *e) {
    if (!strncmp(e, "ipc://", 6)) return true;
    const char *colon = strrchr(e, ':');
    if (strncmp(e, "tcp://", 6) || colon < e + 6 || colon - e - 6 >= 64 || strchr(e, ';'))
        return false; /* a port is needed; no "src;dst" */
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(colon - e - 6), e + 6);
    struct in_addr a;
    return !strcmp(host, "localhost") || !strcmp(host, "[::1]") ||
           (inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127);
}

#if defined(IG_HAVE_ZMQ) && defined(IG_HAVE_UV) && defined(IG_HAVE_SQLITE)
#include <uv.h>
#include <zmq.h>

#include "coordinator/auth.h"
#include "coordinator/coord.h"
#include "coordinator/logs.h"
#include "ignis/job.h"
#include "ignis/proto.h"

enum { TICK_MS = 200 };

typedef struct peer {
    unsigned char id[IG_PROTO_MAX_PEER];
    size_t size;
} peer;

typedef struct node_rt {
    peer who;           /* the ROUTER identity of its last HELLO */
    bool hello;         /* registered since this daemon started */
    double last_seen;   /* monotonic seconds */
    int ngpus, *gpus;   /* slot s is GPU gpus[s] when ngpus > 0 */
} node_rt;

typedef struct job_rt {
    int attempt;        /* of the job these fields belong to; 0 = none yet */
    int64_t steps;      /* the spec's train.steps: no rank reports a later step */
    bool has_step, has_loss, has_tps, has_ms;
    int64_t step;
    double loss, tps, ms;
    int world, joined;  /* rendezvous */
    char **addr;        /* [world] base64, NULL = not joined */
    peer *who;          /* [world] */
    int exited;         /* ranks that exited 0 */
    int adopted;        /* ranks a HELLO reported alive (awaiting jobs) */
    unsigned char *flags; /* [ranks]: EXITED | ADOPTED */
} job_rt;
enum { EXITED = 1, ADOPTED = 2 };

typedef struct coordd {
    const ig__coordd_opts *o;
    char endpoint[256]; /* the bound address: the rendezvous address */
    ig__coord *c;
    ig__logstore *logs; /* STATE/logs: the ranks' output (logs.h) */
    void *zctx, *sock;
    ig__auth *auth;     /* NULL: plaintext */
    uv_loop_t loop;
    uv_poll_t poll, auth_poll;
    uv_timer_t timer;
    uv_signal_t sigint, sigterm;
    double started;
    node_rt *nodes; /* [node id - 1] */
    int64_t nnodes;
    job_rt *jobs;   /* [job id - 1] */
    int64_t njobs;
} coordd;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    char text[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03ldZ coordinator: %s\n", when, ts.tv_nsec / 1000000, text);
}

static double mono(void) { return (double)uv_hrtime() * 1e-9; }

/* "worker-1" as is when printable, else hex. */
static const char *peer_name(const unsigned char *id, size_t n, char out[2 * IG_PROTO_MAX_PEER + 3]) {
    bool text = n > 0;
    for (size_t i = 0; i < n; i++) text = text && id[i] >= 33 && id[i] < 127;
    char *o = out;
    if (!text) o += sprintf(o, "0x");
    for (size_t i = 0; i < n; i++) o += sprintf(o, text ? "%c" : "%02x", id[i]);
    *o = 0;
    return out;
}

/* ---- per node and per job runtime ---- */

static node_rt *node_rt_get(coordd *d, int64_t id) {
    if (id > d->nnodes) {
        d->nodes = realloc(d->nodes, (size_t)id * sizeof *d->nodes);
        for (int64_t k = d->nnodes; k < id; k++) d->nodes[k] = (node_rt){.last_seen = d->started};
        d->nnodes = id;
    }
    return &d->nodes[id - 1];
}

static void job_rt_reset(job_rt *r) {
    for (int i = 0; r->addr && i < r->world; i++) free(r->addr[i]);
    free(r->addr);
    free(r->who);
    free(r->flags);
    *r = (job_rt){0};
}

/* The runtime of j's current attempt (reset when the attempt changed). */
static job_rt *job_rt_get(coordd *d, const ig__coord_job *j) {
    if (j->id > d->njobs) {
        d->jobs = realloc(d->jobs, (size_t)j->id * sizeof *d->jobs);
        for (int64_t k = d->njobs; k < j->id; k++) d->jobs[k] = (job_rt){0};
        d->njobs = j->id;
    }
    job_rt *r = &d->jobs[j->id - 1];
    if (r->attempt != j->attempt) {
        job_rt_reset(r);
        r->attempt = j->attempt;
        json_t *spec = json_loads(j->spec, 0, NULL);
        json_t *steps = json_object_get(json_object_get(spec, "train"), "steps");
        r->steps = json_is_integer(steps) ? json_integer_value(steps) : IG_COORD_SPEC_STEPS_DEFAULT;
        json_decref(spec);
    }
    if (!r->flags && j->ranks > 0) r->flags = calloc((size_t)j->ranks, 1);
    return r;
}

/* ---- sending ---- */

static void send_to(coordd *d, const peer *p, ig_msg_type type, json_t *body) {
    char name[2 * IG_PROTO_MAX_PEER + 3];
    if (ig_proto_send(d->sock, p->id, p->size, type, body, 0))
        logf_("could not send %s to %s: %s", ig_msg_name(type), peer_name(p->id, p->size, name),
              ig_last_error());
    json_decref(body);
}

static void reply_error(coordd *d, const ig_proto_msg *m, ig_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_error(coordd *d, const ig_proto_msg *m, ig_status code, const char *fmt, ...) {
    char text[1024], name[2 * IG_PROTO_MAX_PEER + 3];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    logf_("%s from %s refused: %s", ig_msg_name(m->type), peer_name(m->peer, m->peer_size, name), text);
    if (ig_proto_reply_error(d->sock, m, code, text, 0)) logf_("could not send ERROR: %s", ig_last_error());
}

/* The distinct nodes of j's ranks, in rank order (*out malloc'd): O(ranks + nodes). */
static int job_nodes(coordd *d, const ig__coord_job *j, int64_t **out) {
    int n = 0;
    bool *seen = calloc((size_t)d->c->nnodes + 1, sizeof *seen);
    *out = malloc((size_t)(j->ranks > 0 ? j->ranks : 1) * sizeof **out);
    for (int r = 0; j->assign && r < j->ranks; r++)
        if (!seen[j->assign[r].node]) seen[j->assign[r].node] = true, (*out)[n++] = j->assign[r].node;
    free(seen);
    return n;
}

/* ABORT of job/attempt to the workers of these nodes but skip. */
static void abort_on(coordd *d, int64_t job, int attempt, const int64_t *nodes, int n, int64_t skip,
                     const char *reason) {
    for (int k = 0; k < n; k++) {
        node_rt *r = nodes[k] <= d->nnodes ? &d->nodes[nodes[k] - 1] : NULL;
        if (nodes[k] == skip || !r || !r->hello) continue;
        send_to(d, &r->who, IG_MSG_ABORT,
                json_pack("{s:I, s:I, s:s}", "job", (json_int_t)job, "attempt", (json_int_t)attempt, "reason",
                          reason));
    }
}

/* After a transition of j: one log line; a final job keeps only its progress. */
static void transitioned(coordd *d, const ig__coord_job *j) {
    logf_("job %lld %s (attempt %d): %s", (long long)j->id, ig__job_state_name(j->state), j->attempt,
          j->reason);
    if (j->state < IG_JOB_SUCCEEDED || j->id > d->njobs) return;
    job_rt *r = &d->jobs[j->id - 1], keep = *r;
    keep.addr = NULL, keep.who = NULL, keep.flags = NULL, keep.world = keep.joined = 0;
    job_rt_reset(r);
    *r = keep;
}

/* A rank of running job j failed: the restart policy, then ABORT to all its
 * workers (the reporter too: its other ranks of the attempt must go). */
static void job_failed(coordd *d, ig__coord_job *j, const char *reason) {
    int64_t *nodes;
    int n = job_nodes(d, j, &nodes), attempt = j->attempt;
    if (ig__coord_job_failed(d->c, j->id, reason))
        logf_("job %lld: could not record the failure (%s): %s", (long long)j->id, reason, ig_last_error());
    else {
        transitioned(d, j);
        abort_on(d, j->id, attempt, nodes, n, 0, reason);
    }
    free(nodes);
}

/* Node n is lost: fenced, its jobs through the restart policy, ABORT to the
 * other workers of those jobs. */
static void node_failed(coordd *d, ig__coord_node *n, const char *reason) {
    typedef struct victim {
        int64_t job;
        int attempt, n;
        int64_t *nodes;
    } victim;
    victim *v = malloc((size_t)n->slots * sizeof *v);
    int nv = 0;
    for (int s = 0; s < n->slots; s++) {
        int k = 0;
        while (k < nv && v[k].job != n->owner[s]) k++;
        if (!n->owner[s] || k < nv) continue;
        ig__coord_job *j = ig__coord_job_get(d->c, n->owner[s]);
        v[nv] = (victim){j->id, j->attempt, 0, NULL};
        v[nv].n = job_nodes(d, j, &v[nv].nodes);
        nv++;
    }
    char why[IG_COORD_REASON_MAX];
    snprintf(why, sizeof why, "node %s failed: %s", n->name, reason);
    if (ig__coord_node_failed(d->c, n->id, why))
        logf_("node %s: could not record its failure: %s", n->name, ig_last_error());
    else
        logf_("node %s (worker %lld) fenced: %s", n->name, (long long)n->id, reason);
    for (int k = 0; k < nv; k++) {
        ig__coord_job *j = ig__coord_job_get(d->c, v[k].job);
        if (j->attempt != v[k].attempt || j->state != IG_JOB_RUNNING) {
            transitioned(d, j);
            abort_on(d, v[k].job, v[k].attempt, v[k].nodes, v[k].n, n->id, why);
        }
        free(v[k].nodes);
    }
    free(v);
}

/* START_RANKS of running job j to each of its workers: O(ranks + nodes). */
static void start_job(coordd *d, const ig__coord_job *j) {
    if (ig__logstore_begin(d->logs, j->id, j->attempt, j->ranks))
        logf_("job %lld: %s", (long long)j->id, ig_last_error());
    json_t *spec = json_loads(j->spec, 0, NULL), **lists = calloc((size_t)d->c->nnodes + 1, sizeof *lists);
    for (int i = 0; i < j->ranks; i++) {
        const ig__coord_rank *a = &j->assign[i];
        node_rt *r = node_rt_get(d, a->node);
        if (!lists[a->node]) lists[a->node] = json_array();
        json_array_append_new(lists[a->node], json_pack("{s:i, s:i, s:i}", "rank", i, "local_rank", a->local_rank,
                                                        "slot", a->slot < r->ngpus ? r->gpus[a->slot] : a->slot));
    }
    for (int64_t id = 1; id <= d->c->nnodes; id++)
        if (lists[id])
            send_to(d, &node_rt_get(d, id)->who, IG_MSG_START_RANKS,
                    json_pack("{s:I, s:I, s:O, s:i, s:o, s:s}", "job", (json_int_t)j->id, "attempt",
                              (json_int_t)j->attempt, "spec", spec, "world", j->ranks, "ranks", lists[id],
                              "rendezvous", d->endpoint));
    free(lists);
    json_decref(spec);
}

/* The scheduler, then START_RANKS for every job it placed. */
static void schedule(coordd *d) {
    ig__coord *c = d->c;
    bool *waiting = malloc((size_t)(c->njobs + 1) * sizeof *waiting);
    for (int64_t k = 0; k < c->njobs; k++)
        waiting[k] = c->jobs[k].state == IG_JOB_QUEUED || c->jobs[k].state == IG_JOB_RESTARTING;
    int placed = 0;
    if (ig__coord_schedule(c, &placed)) logf_("scheduler: %s", ig_last_error());
    for (int64_t k = 0; k < c->njobs && placed; k++)
        if (waiting[k] && c->jobs[k].state == IG_JOB_RUNNING) {
            transitioned(d, &c->jobs[k]);
            start_job(d, &c->jobs[k]);
        }
    free(waiting);
}

static void check_heartbeats(coordd *d) {
    double now = mono(), limit = d->o->heartbeat_timeout;
    for (int64_t k = 0; k < d->c->nnodes; k++) {
        ig__coord_node *n = &d->c->nodes[k];
        node_rt *r = node_rt_get(d, n->id);
        /* fenced before a restart while its jobs' transitions were not journaled */
        bool stale_fence = n->fenced && n->used > 0 && now - d->started > limit;
        if (!stale_fence && (!(n->used > 0 || (n->online && !n->fenced)) || now - r->last_seen <= limit))
            continue;
        char why[128];
        if (stale_fence)
            snprintf(why, sizeof why, "fenced before the coordinator restarted");
        else if (r->hello)
            snprintf(why, sizeof why, "no heartbeat for %.1f s", now - r->last_seen);
        else
            snprintf(why, sizeof why, "did not register again within %g s of a coordinator restart", limit);
        node_failed(d, n, why);
    }
}

/* ---- message handlers (bodies already validated) ---- */

#define FIELD(m, name) json_object_get((m)->body, name)
#define INTF(m, name) json_integer_value(FIELD(m, name))

static ig__coord_job *want_job(coordd *d, const ig_proto_msg *m) {
    long long id = INTF(m, "job");
    ig__coord_job *j = ig__coord_job_get(d->c, id);
    if (!j) reply_error(d, m, IG_ERR_INVALID, "job %lld: no such job", id);
    return j;
}

static peer sender(const ig_proto_msg *m) {
    peer p = {.size = m->peer_size};
    memcpy(p.id, m->peer, m->peer_size);
    return p;
}

static bool is_final(const ig__coord_job *j) { return j->state >= IG_JOB_SUCCEEDED; }

/* Whether a HELLO's `running` lists this rank. */
static bool listed(const json_t *running, int64_t job, int attempt, int rank) {
    size_t i;
    json_t *it;
    json_array_foreach(running, i, it) {
        if (json_integer_value(json_object_get(it, "job")) == job &&
            json_integer_value(json_object_get(it, "attempt")) == attempt &&
            json_integer_value(json_object_get(it, "rank")) == rank)
            return true;
    }
    return false;
}

static void rank_exited(coordd *d, ig__coord_job *j, int rank, const json_t *code, const json_t *signal);

static void on_hello(coordd *d, const ig_proto_msg *m) {
    const char *name = json_string_value(FIELD(m, "node"));
    json_t *slots = FIELD(m, "slots"), *gpus = json_object_get(slots, "gpus"), *running = FIELD(m, "running");
    int ngpus = (int)json_array_size(gpus);
    int nslots = ngpus ? ngpus : (int)json_integer_value(json_object_get(slots, "cpus"));
    int64_t id;
    ig_status st = ig__coord_node_register(d->c, name, nslots, &id);
    if (st) {
        reply_error(d, m, st, "HELLO: %s", ig_last_error());
        return;
    }
    ig__coord_node *n = ig__coord_node_get(d->c, id);
    node_rt *r = node_rt_get(d, id);
    r->who = sender(m);
    r->hello = true;
    r->last_seen = mono();
    free(r->gpus);
    r->ngpus = ngpus;
    r->gpus = malloc((size_t)(ngpus ? ngpus : 1) * sizeof *r->gpus);
    for (int g = 0; g < ngpus; g++) r->gpus[g] = (int)json_integer_value(json_array_get(gpus, g));
    char who[2 * IG_PROTO_MAX_PEER + 3];
    logf_("node %s registered as worker %lld from %s: %d %s slots%s", name, (long long)id,
          peer_name(m->peer, m->peer_size, who), nslots, ngpus ? "GPU" : "CPU",
          n->fenced ? " (fenced: it gets no ranks)" : "");
    long long hb = (long long)(d->o->heartbeat_timeout * 1000 / 3);
    hb = hb < 10 ? 10 : hb > 3600000 ? 3600000 : hb;
    send_to(d, &r->who, IG_MSG_HELLO_ACK, json_pack("{s:I, s:I}", "worker", (json_int_t)id, "heartbeat_ms",
                                                    (json_int_t)hb));

    /* Ranks it runs that are not (or no longer) placed there: ABORT. */
    size_t i;
    json_t *it;
    json_array_foreach(running, i, it) {
        int64_t job = json_integer_value(json_object_get(it, "job"));
        long long attempt = json_integer_value(json_object_get(it, "attempt"));
        int rank = (int)json_integer_value(json_object_get(it, "rank"));
        ig__coord_job *j = ig__coord_job_get(d->c, job);
        if (j && j->state == IG_JOB_RUNNING && j->attempt == attempt && rank < j->ranks &&
            j->assign[rank].node == id)
            continue;
        char why[160];
        snprintf(why, sizeof why, "job %lld attempt %lld rank %d is not placed on node %s", (long long)job,
                 attempt, rank, name);
        logf_("%s: ABORT", why);
        abort_on(d, job, attempt, &id, 1, 0, why);
    }
    /* Exits it saw lately (some maybe while no coordinator heard them): those
     * of running attempts' ranks placed there count now, once. */
    json_array_foreach(FIELD(m, "exited"), i, it) {
        ig__coord_job *j = ig__coord_job_get(d->c, json_integer_value(json_object_get(it, "job")));
        int rank = (int)json_integer_value(json_object_get(it, "rank"));
        if (j && j->state == IG_JOB_RUNNING && j->attempt == json_integer_value(json_object_get(it, "attempt")) &&
            rank < j->ranks && j->assign[rank].node == id)
            rank_exited(d, j, rank, json_object_get(it, "exit_code"), json_object_get(it, "signal"));
    }
    /* Ranks placed there: all listed or exited 0 (re-adopted), or the job lost them. */
    for (int64_t k = 0; k < d->c->njobs; k++) {
        ig__coord_job *j = &d->c->jobs[k];
        if (j->state != IG_JOB_RUNNING) continue;
        int lost = -1, here = 0;
        const job_rt *done = job_rt_get(d, j);
        for (int q = 0; q < j->ranks && lost < 0; q++)
            if (j->assign[q].node == id) {
                here++;
                if (!listed(running, j->id, j->attempt, q) && !(done->flags[q] & EXITED)) lost = q;
            }
        if (lost >= 0) {
            char why[IG_COORD_REASON_MAX];
            snprintf(why, sizeof why, "rank %d lost: node %s registered again without it", lost, name);
            job_failed(d, j, why);
        } else if (here && j->awaiting) {
            job_rt *jr = job_rt_get(d, j);
            for (int q = 0; q < j->ranks; q++)
                if (j->assign[q].node == id && !(jr->flags[q] & ADOPTED)) {
                    jr->flags[q] |= ADOPTED;
                    jr->adopted++;
                }
            if (jr->adopted == j->ranks) {
                if (ig__coord_job_adopt(d->c, j->id))
                    logf_("job %lld: %s", (long long)j->id, ig_last_error());
                else
                    logf_("job %lld: all %d ranks of attempt %d re-adopted", (long long)j->id, j->ranks,
                          j->attempt);
            }
        }
    }
}

static void on_heartbeat(coordd *d, const ig_proto_msg *m) {
    long long w = INTF(m, "worker");
    node_rt *r = w >= 1 && w <= d->nnodes ? &d->nodes[w - 1] : NULL;
    if (!r || !r->hello) {
        reply_error(d, m, IG_ERR_STATE, "HEARTBEAT: worker %lld is not registered: send HELLO first", w);
        return;
    }
    r->last_seen = mono();
    size_t i;
    json_t *it;
    char bad[512] = "";
    json_array_foreach(FIELD(m, "ranks"), i, it) {
        ig__coord_job *j = ig__coord_job_get(d->c, json_integer_value(json_object_get(it, "job")));
        if (!j || j->state != IG_JOB_RUNNING || json_integer_value(json_object_get(it, "attempt")) != j->attempt)
            continue;
        job_rt *jr = job_rt_get(d, j);
        json_t *step = json_object_get(it, "step"), *loss = json_object_get(it, "loss"),
               *tps = json_object_get(it, "tokens_per_s"), *ms = json_object_get(it, "step_ms"),
               *ckpt = json_object_get(it, "ckpt_step");
        if (!step) continue;
        long long s = json_integer_value(step);
        /* Steps only grow within an attempt and never pass train.steps: anything else is refused. */
        if (s > jr->steps || (jr->has_step && s < jr->step)) {
            if (!*bad)
                snprintf(bad, sizeof bad,
                         "HEARTBEAT: job %lld attempt %d rank %lld reports step %lld, expected %lld to %lld: ignored",
                         (long long)j->id, j->attempt, json_integer_value(json_object_get(it, "rank")), s,
                         jr->has_step ? (long long)jr->step : 0LL, (long long)jr->steps);
            continue;
        }
        jr->has_step = true, jr->step = s;
        if (loss) jr->has_loss = true, jr->loss = json_number_value(loss);
        if (tps) jr->has_tps = true, jr->tps = json_number_value(tps);
        if (ms) jr->has_ms = true, jr->ms = json_number_value(ms);
        /* a newer committed checkpoint: journaled (the restart reason names it) */
        if (ckpt && json_integer_value(ckpt) > j->ckpt_step && json_integer_value(ckpt) <= s &&
            ig__coord_job_checkpoint(d->c, j->id, json_integer_value(ckpt)))
            logf_("job %lld: %s", (long long)j->id, ig_last_error());
    }
    if (*bad) reply_error(d, m, IG_ERR_INVALID, "%s", bad); /* logged there */
}

static int opt_int(const ig_proto_msg *m, const char *name, int dflt) {
    json_t *v = FIELD(m, name);
    return v ? (int)json_integer_value(v) : dflt;
}

static void on_submit(coordd *d, const ig_proto_msg *m) {
    char *text = json_dumps(FIELD(m, "spec"), JSON_COMPACT);
    ig_job_spec *spec = malloc(sizeof *spec);
    ig_status st = text && spec ? ig_job_spec_parse(text, strlen(text), "spec", false, spec) : IG_ERR_NOMEM;
    char name[sizeof spec->name] = "", strategy[sizeof spec->run_strategy] = "ddp";
    int r = 0, min = 0, max = 0, restarts = 3; /* the message's, else the spec's run.* */
    if (!st) {
        snprintf(name, sizeof name, "%s", spec->name);
        snprintf(strategy, sizeof strategy, "%s", json_string_value(FIELD(m, "strategy")) ?: spec->run_strategy);
        r = opt_int(m, "ranks", spec->run_ranks);
        min = opt_int(m, "min_ranks", spec->run_min_ranks);
        max = opt_int(m, "max_ranks", spec->run_max_ranks);
        restarts = opt_int(m, "max_restarts", spec->run_max_restarts >= 0 ? spec->run_max_restarts : 3);
    }
    free(spec);
    if (!max) max = r ? r : min ? min : 1;
    if (!min) min = r ? r : max;
    int64_t id = 0;
    if (st)
        reply_error(d, m, st, "SUBMIT: %s", ig_last_error());
    else if (strcmp(strategy, "ddp"))
        reply_error(d, m, IG_ERR_UNSUPPORTED, "SUBMIT: strategy '%s': only ddp is supported", strategy);
    else if (r && (r < min || r > max))
        reply_error(d, m, IG_ERR_INVALID, "SUBMIT: need min_ranks <= ranks <= max_ranks, got %d <= %d <= %d",
                    min, r, max);
    else if ((st = ig__coord_submit(d->c, text, min, max, restarts, &id)))
        reply_error(d, m, st, "%s", ig_last_error()); /* "submit: ..." */
    else {
        ig__coord_job *j = ig__coord_job_get(d->c, id);
        logf_("job %lld submitted (%s): %d..%d ranks, batch %d, max_restarts %d", (long long)id,
              *name ? name : "unnamed", min, max, j->batch, j->max_restarts);
        peer p = sender(m);
        send_to(d, &p, IG_MSG_SUBMIT_ACK, json_pack("{s:I}", "job", (json_int_t)id));
        schedule(d); /* at once, not at the next tick */
    }
    free(text);
}

/* j's STATUS_REPLY entry; head and free_slots (the queue's head and the free
 * slots, looked up once per STATUS) say why a waiting job waits. */
static json_t *job_json(coordd *d, const ig__coord_job *j, const ig__coord_job *head, int64_t free_slots) {
    char reason[IG_COORD_REASON_MAX + 96];
    snprintf(reason, sizeof reason, "%s", j->reason);
    if (j->state == IG_JOB_QUEUED || j->state == IG_JOB_RESTARTING) { /* why it waits, as it stands now */
        size_t n = strlen(reason);
        if (head && head != j)
            snprintf(reason + n, sizeof reason - n, "; in the queue behind job %lld", (long long)head->id);
        else
            snprintf(reason + n, sizeof reason - n, "; waiting for %d free slots (%lld now)",
                     ig__coord_min_world(j), (long long)free_slots);
    }
    json_t *o = json_pack("{s:I, s:s, s:s, s:I}", "job", (json_int_t)j->id, "state", ig__job_state_name(j->state),
                          "reason", reason, "attempt", (json_int_t)j->attempt);
    json_t *spec = json_loads(j->spec, 0, NULL);
    const char *name = json_string_value(json_object_get(spec, "name"));
    if (name && strlen(name) <= 255) json_object_set_new(o, "name", json_string(name));
    json_decref(spec);
    if (j->ranks > 0) json_object_set_new(o, "ranks", json_integer(j->ranks));
    if (j->awaiting) json_object_set_new(o, "awaiting_workers", json_true()); /* an extra field */
    const job_rt *r = j->id <= d->njobs ? &d->jobs[j->id - 1] : NULL;
    if (r && r->attempt == j->attempt) {
        if (r->has_step) json_object_set_new(o, "step", json_integer(r->step));
        if (r->has_loss) json_object_set_new(o, "loss", json_real(r->loss));
        if (r->has_tps) json_object_set_new(o, "tokens_per_s", json_real(r->tps));
        if (r->has_ms) json_object_set_new(o, "step_ms", json_real(r->ms));
    }
    if (j->ckpt_step >= 0) json_object_set_new(o, "ckpt_step", json_integer(j->ckpt_step));
    return o;
}

static void on_status(coordd *d, const ig_proto_msg *m) {
    json_t *jobs = json_array();
    const ig__coord_job *head = ig__coord_queue_head(d->c);
    int64_t free_slots = ig__coord_free_slots(d->c);
    if (FIELD(m, "job")) {
        ig__coord_job *j = want_job(d, m);
        if (!j) {
            json_decref(jobs);
            return;
        }
        json_array_append_new(jobs, job_json(d, j, head, free_slots));
    } else {
        for (int64_t k = 0; k < d->c->njobs; k++)
            json_array_append_new(jobs, job_json(d, &d->c->jobs[k], head, free_slots));
    }
    json_t *body = json_pack("{s:o}", "jobs", jobs);
    if (ig_proto_send(d->sock, m->peer, m->peer_size, IG_MSG_STATUS_REPLY, body, 0))
        reply_error(d, m, IG_ERR_UNSUPPORTED, "STATUS: %s (ask for one job)", ig_last_error());
    json_decref(body);
}

static void on_cancel(coordd *d, const ig_proto_msg *m) {
    ig__coord_job *j = want_job(d, m);
    if (!j) return;
    if (is_final(j)) {
        reply_error(d, m, IG_ERR_STATE, "CANCEL: job %lld already %s", (long long)j->id,
                    ig__job_state_name(j->state));
        return;
    }
    int64_t *nodes;
    int n = job_nodes(d, j, &nodes), attempt = j->attempt;
    ig_status st = ig__coord_job_end(d->c, j->id, IG_JOB_CANCELLED, "cancelled by user");
    if (st)
        reply_error(d, m, st, "CANCEL: %s", ig_last_error());
    else {
        transitioned(d, j);
        abort_on(d, j->id, attempt, nodes, n, 0, "cancelled by user");
        peer p = sender(m);
        send_to(d, &p, IG_MSG_OK, NULL);
    }
    free(nodes);
}

/* A rank of j's running attempt exited (code, or signal when code is NULL):
 * exit 0 is counted (all ranks: the job succeeded); anything else fails the
 * attempt (the restart policy). Exits already counted change nothing. */
static void rank_exited(coordd *d, ig__coord_job *j, int rank, const json_t *code, const json_t *signal) {
    job_rt *jr = job_rt_get(d, j);
    if (code && json_integer_value(code) == 0) {
        if (jr->flags[rank] & EXITED) return;
        jr->flags[rank] |= EXITED, jr->exited++;
        logf_("job %lld: rank %d exited 0 (%d of %d)", (long long)j->id, rank, jr->exited, j->ranks);
        if (jr->exited == j->ranks) {
            char why[64];
            snprintf(why, sizeof why, "all %d ranks exited 0", j->ranks);
            if (ig__coord_job_end(d->c, j->id, IG_JOB_SUCCEEDED, why))
                logf_("job %lld: could not record its success: %s", (long long)j->id, ig_last_error());
            else
                transitioned(d, j);
        }
    } else {
        char why[IG_COORD_REASON_MAX], at[48] = "";
        if (jr->has_step) snprintf(at, sizeof at, " (last reported step %lld)", (long long)jr->step);
        snprintf(why, sizeof why, "rank %d exited with %s %lld%s", rank, code ? "code" : "signal",
                 (long long)json_integer_value(code ? code : signal), at);
        job_failed(d, j, why);
        schedule(d); /* the restart at once (after the ABORTs), not at the next tick */
    }
}

static void on_rank_exit(coordd *d, const ig_proto_msg *m) {
    ig__coord_job *j = want_job(d, m);
    if (!j) return;
    long long attempt = INTF(m, "attempt");
    int rank = (int)INTF(m, "rank");
    peer p = sender(m);
    if (j->state != IG_JOB_RUNNING || attempt != j->attempt) { /* e.g. a rank of an aborted attempt */
        logf_("job %lld: exit of rank %d of attempt %lld ignored (the job is %s at attempt %d)", (long long)j->id,
              rank, attempt, ig__job_state_name(j->state), j->attempt);
        send_to(d, &p, IG_MSG_OK, NULL);
        return;
    }
    if (rank >= j->ranks) {
        reply_error(d, m, IG_ERR_INVALID, "RANK_EXIT: job %lld attempt %lld has %d ranks, got rank %d",
                    (long long)j->id, attempt, j->ranks, rank);
        return;
    }
    send_to(d, &p, IG_MSG_OK, NULL); /* the ack first: ABORT may follow */
    rank_exited(d, j, rank, FIELD(m, "exit_code"), FIELD(m, "signal"));
}

static void on_rendezvous(coordd *d, const ig_proto_msg *m) {
    ig__coord_job *j = want_job(d, m);
    if (!j) return;
    long long attempt = INTF(m, "attempt");
    int world = (int)INTF(m, "world"), rank = (int)INTF(m, "rank");
    if (j->state != IG_JOB_RUNNING || attempt != j->attempt) {
        reply_error(d, m, IG_ERR_STATE,
                    "RENDEZVOUS: job %lld attempt %lld is not running (the job is %s at attempt %d)",
                    (long long)j->id, attempt, ig__job_state_name(j->state), j->attempt);
        return;
    }
    if (world != j->ranks) {
        reply_error(d, m, IG_ERR_INVALID, "RENDEZVOUS: job %lld attempt %lld has world %d, got world %d",
                    (long long)j->id, attempt, j->ranks, world);
        return;
    }
    job_rt *jr = job_rt_get(d, j);
    if (!jr->addr) {
        jr->world = world;
        jr->addr = calloc((size_t)world, sizeof *jr->addr);
        jr->who = calloc((size_t)world, sizeof *jr->who);
    }
    bool was_complete = jr->joined == world;
    if (!jr->addr[rank]) jr->joined++;
    free(jr->addr[rank]);
    jr->addr[rank] = strdup(json_string_value(FIELD(m, "address")));
    jr->who[rank] = sender(m);
    if (jr->joined < world) return;
    if (!was_complete)
        logf_("job %lld attempt %lld: rendezvous of %d ranks complete", (long long)j->id, attempt, world);
    json_t *addrs = json_array();
    for (int q = 0; q < world; q++) json_array_append_new(addrs, json_string(jr->addr[q]));
    for (int q = was_complete ? rank : 0; q < (was_complete ? rank + 1 : world); q++)
        send_to(d, &jr->who[q], IG_MSG_RENDEZVOUS_REPLY,
                json_pack("{s:I, s:I, s:i, s:i, s:O}", "job", (json_int_t)j->id, "attempt", (json_int_t)attempt,
                          "world", world, "rank", q, "addresses", addrs));
    json_decref(addrs);
}

/* Rank output (coordinator/logs.c): LOG_DATA -> LOG_ACK, LOGS -> LOGS_REPLY. */
static void on_log_data(coordd *d, const ig_proto_msg *m) {
    json_t *ack;
    bool gap;
    if (ig__logs_data(d->logs, d->c, m->body, &ack, &gap)) {
        reply_error(d, m, ig_last_status(), "%s", ig_last_error());
        return;
    }
    if (gap)
        logf_("LOG_DATA: job %lld attempt %lld rank %lld: a chunk at byte %lld, past the %lld stored: "
              "refused",
              (long long)INTF(m, "job"), (long long)INTF(m, "attempt"), (long long)INTF(m, "rank"),
              (long long)INTF(m, "offset"), (long long)json_integer_value(json_object_get(ack, "size")));
    peer p = sender(m);
    send_to(d, &p, IG_MSG_LOG_ACK, ack);
}

static void on_logs(coordd *d, const ig_proto_msg *m) {
    json_t *reply;
    if (ig__logs_request(d->logs, d->c, m->body, d->o->heartbeat_timeout, &reply)) {
        reply_error(d, m, ig_last_status(), "%s", ig_last_error());
        return;
    }
    peer p = sender(m);
    send_to(d, &p, IG_MSG_LOGS_REPLY, reply);
}

static void handle(coordd *d, const ig_proto_msg *m) {
    char who[2 * IG_PROTO_MAX_PEER + 3];
    switch (m->type) {
    case IG_MSG_HELLO: on_hello(d, m); break;
    case IG_MSG_HEARTBEAT: on_heartbeat(d, m); break;
    case IG_MSG_SUBMIT: on_submit(d, m); break;
    case IG_MSG_STATUS: on_status(d, m); break;
    case IG_MSG_CANCEL: on_cancel(d, m); break;
    case IG_MSG_RANK_EXIT: on_rank_exit(d, m); break;
    case IG_MSG_RENDEZVOUS: on_rendezvous(d, m); break;
    case IG_MSG_LOG_DATA: on_log_data(d, m); break;
    case IG_MSG_LOGS: on_logs(d, m); break;
    case IG_MSG_OK: break;
    case IG_MSG_ERROR:
        logf_("ERROR from %s: %s", peer_name(m->peer, m->peer_size, who),
              json_string_value(FIELD(m, "message")));
        break;
    default: reply_error(d, m, IG_ERR_FORMAT, "%s: not a request to the coordinator", ig_msg_name(m->type));
    }
}

/* ---- the loop ---- */

/* Every message that is there, until ZMQ_EVENTS (zmq_poll) has no POLLIN. */
static void drain(coordd *d) {
    for (;;) {
        ig_proto_msg m = {0};
        ig_status st = ig_proto_recv(d->sock, true, 0, &m);
        if (st == IG_ERR_TIMEOUT) break;
        if (st == IG_ERR_FORMAT) {
            char text[1024], who[2 * IG_PROTO_MAX_PEER + 3];
            snprintf(text, sizeof text, "%s", ig_last_error());
            logf_("malformed message from %s: %s", peer_name(m.peer, m.peer_size, who), text);
            if (m.type != IG_MSG_ERROR && ig_proto_reply_error(d->sock, &m, IG_ERR_FORMAT, text, 0))
                logf_("could not send ERROR to %s: %s", who, ig_last_error());
        } else if (st) {
            logf_("receive: %s", ig_last_error());
            break;
        } else {
            handle(d, &m);
        }
        ig_proto_msg_clear(&m);
    }
}

static void on_poll(uv_poll_t *h, int status, int events) { drain(h->data); }
static void on_auth_poll(uv_poll_t *h, int status, int events) { ig__auth_serve(h->data); }

static void on_tick(uv_timer_t *h) {
    coordd *d = h->data;
    check_heartbeats(d);
    schedule(d);
    drain(d);
    if (d->auth) ig__auth_serve(d->auth);
}

static void on_signal(uv_signal_t *h, int signum) {
    coordd *d = h->data;
    logf_("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_handle_t *hs[] = {(uv_handle_t *)&d->poll, (uv_handle_t *)&d->timer, (uv_handle_t *)&d->sigint,
                         (uv_handle_t *)&d->sigterm};
    for (size_t i = 0; i < sizeof hs / sizeof *hs; i++)
        if (!uv_is_closing(hs[i])) uv_close(hs[i], NULL);
    if (d->auth && !uv_is_closing((uv_handle_t *)&d->auth_poll)) uv_close((uv_handle_t *)&d->auth_poll, NULL);
}

static ig_status open_socket(coordd *d) {
    const ig__coordd_opts *o = d->o;
    int one = 1, zero = 0;
    int64_t maxmsg = (int64_t)IG_PROTO_MAX_BODY + IG_PROTO_HEADER_SIZE;
    d->zctx = zmq_ctx_new();
    d->sock = d->zctx ? zmq_socket(d->zctx, ZMQ_ROUTER) : NULL;
    if (!d->sock || zmq_setsockopt(d->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) ||
        zmq_setsockopt(d->sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one) ||
        zmq_setsockopt(d->sock, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(d->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg))
        return ig_set_error(IG_ERR_COMM, "coordinator: ZeroMQ socket: %s", zmq_strerror(errno));
    /* before bind: CurveZMQ without a ZAP handler lets every key in */
    ig_status st = IG_OK;
    if (o->key_file) st = ig__auth_open(d->zctx, d->sock, o->key_file, o->authorized_keys, logf_, &d->auth);
    if (st) return st;
    if (zmq_bind(d->sock, o->listen))
        return ig_set_error(IG_ERR_COMM, "coordinator: --listen %s: %s", o->listen, zmq_strerror(errno));
    size_t n = sizeof d->endpoint;
    if (zmq_getsockopt(d->sock, ZMQ_LAST_ENDPOINT, d->endpoint, &n))
        snprintf(d->endpoint, sizeof d->endpoint, "%s", o->listen);
    return IG_OK;
}

/* One coordinator per state directory: an exclusive flock on DIR/lock, held
 * while the daemon runs (the kernel drops it when the process dies). */
static ig_status lock_state(const char *dir, int *fd) {
    char path[1100];
    snprintf(path, sizeof path, "%s/lock", dir);
    if (mkdir(dir, 0755) && errno != EEXIST)
        return ig_set_error(IG_ERR_IO, "coordinator: --state %s: %s", dir, strerror(errno));
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) return ig_set_error(IG_ERR_IO, "coordinator: %s: %s", path, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB))
        return ig_set_error(errno == EWOULDBLOCK ? IG_ERR_STATE : IG_ERR_IO,
                            "coordinator: --state %s: %s", dir,
                            errno == EWOULDBLOCK ? "in use by another coordinator" : strerror(errno));
    return IG_OK;
}

ig_status ig__coordd_run(const ig__coordd_opts *o) {
    if (!o->key_file && !ig__coordd_local_endpoint(o->listen))
        return ig_set_error(IG_ERR_UNSUPPORTED,
                            "coordinator: --listen %s: not a loopback address; without --key (CurveZMQ) the "
                            "coordinator only listens on 127.0.0.1, localhost, [::1] or ipc://", o->listen);
    if (!(o->heartbeat_timeout > 0))
        return ig_set_error(IG_ERR_INVALID, "coordinator: heartbeat timeout %g s: must be > 0",
                            o->heartbeat_timeout);
    coordd *d = calloc(1, sizeof *d);
    d->o = o;
    d->started = mono();
    int lock = -1;
    ig_status st = lock_state(o->state_dir, &lock);
    if (!st) st = ig__coord_open(o->state_dir, &d->c);
    if (!st) st = ig__logstore_open(o->state_dir, &d->logs);
    if (!st) st = open_socket(d);
    if (!st) {
        int fd;
        size_t n = sizeof fd;
        uv_loop_init(&d->loop);
        zmq_getsockopt(d->sock, ZMQ_FD, &fd, &n);
        uv_poll_init(&d->loop, &d->poll, fd);
        uv_timer_init(&d->loop, &d->timer);
        uv_signal_init(&d->loop, &d->sigint);
        uv_signal_init(&d->loop, &d->sigterm);
        d->poll.data = d->timer.data = d->sigint.data = d->sigterm.data = d;
        uv_poll_start(&d->poll, UV_READABLE, on_poll);
        uv_timer_start(&d->timer, on_tick, TICK_MS, TICK_MS);
        if (d->auth) {
            uv_poll_init(&d->loop, &d->auth_poll, ig__auth_fd(d->auth));
            d->auth_poll.data = d->auth;
            uv_poll_start(&d->auth_poll, UV_READABLE, on_auth_poll);
        }
        uv_signal_start(&d->sigint, on_signal, SIGINT);
        uv_signal_start(&d->sigterm, on_signal, SIGTERM);
        int awaiting = 0;
        for (int64_t k = 0; k < d->c->njobs; k++) awaiting += d->c->jobs[k].awaiting;
        logf_("listening on %s (%s; journal %s: %lld jobs, %lld nodes, %d running jobs awaiting their "
              "workers)", d->endpoint, d->auth ? ig__auth_summary(d->auth) : "plaintext", d->c->path,
              (long long)d->c->njobs, (long long)d->c->nnodes, awaiting);
        drain(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
        uv_loop_close(&d->loop);
        logf_("stopped");
    }
    if (d->sock) zmq_close(d->sock);
    ig__auth_close(d->auth);
    if (d->zctx) zmq_ctx_term(d->zctx);
    if (d->c) ig__coord_close(d->c);
    ig__logstore_close(d->logs);
    if (lock >= 0) close(lock); /* releases the lock */
    for (int64_t k = 0; k < d->nnodes; k++) free(d->nodes[k].gpus);
    for (int64_t k = 0; k < d->njobs; k++) job_rt_reset(&d->jobs[k]);
    free(d->nodes);
    free(d->jobs);
    free(d);
    return st;
}
#else
ig_status ig__coordd_run(const ig__coordd_opts *o) {
    return ig_set_error(IG_ERR_UNSUPPORTED,
                        "coordinator: this build of ignis lacks ZeroMQ, libuv or SQLite");
}
#endif

/* worker/daemon.c: the node daemon of `ignis worker` (daemon.h has the
 * protocol it speaks and what happens when the coordinator goes away).
 *
 * One libuv loop carries everything: the DEALER socket and its monitor (a
 * PAIR receiving ZeroMQ's connect/disconnect events) are watched through
 * their ZMQ_FDs with uv_poll, the supervisor's rank processes and pipes, the
 * HELLO and HEARTBEAT timers, SIGINT/SIGTERM, and with stop_on_eof stdin
 * (read and discarded until its end).
 *
 * ZMQ_FD is edge-triggered: it only says that something changed. So after
 * each wake-up, and after anything that sent (a send can consume the
 * notification of a message that arrived meanwhile), pump() receives while
 * ZMQ_EVENTS says POLLIN. Sends never wait (timeout 0): with ZMQ_IMMEDIATE,
 * a send without a live connection fails at once, and the message is either
 * dropped (HELLO, HEARTBEAT: resent anyway) or kept (RANK_EXIT).
 *
 * Invariants: `running` lists exactly the ranks started and not yet exited;
 * `pending` holds the RANK_EXIT bodies not yet handed to ZeroMQ; the
 * heartbeat timer runs iff registered, the HELLO timer iff not (and not
 * stopping).
 *
 * Security: the DEALER and its monitor come from ig_proto_client_open
 * (IGNIS_KEY, IGNIS_COORDINATOR_KEY, which `ignis worker --key` sets and the
 * ranks inherit). A failed handshake (a refused key...) is logged once until
 * one succeeds; ZeroMQ does not retry a refused one, so the worker connects
 * again every REFUSED_RETRY_MS: the key may be authorized meanwhile. */
#define _GNU_SOURCE
#include "worker/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ignis/proto.h"

#if !defined(IG_HAVE_ZMQ) || !defined(IG_HAVE_UV)
ig_status wd_run(const wd_opts *opts) {
    (void)opts;
    return ig_set_error(IG_ERR_UNSUPPORTED, "this build of ignis lacks ZeroMQ or libuv, which ignis worker needs");
}
#else
#include <uv.h>
#include <zmq.h>

#include "worker/log_forward.h"
#include "worker/supervisor.h"

enum { REFUSED_RETRY_MS = 5000 };

typedef struct wd {
    wd_opts o;
    ig_proto_client client; /* sock and mon are its socket and monitor */
    char refused[512];      /* the handshake failure logged last; "" after a success */
    uint64_t retry_at;      /* uv_now when to connect again after a refusal; 0: none */
    char node[256];
    uv_loop_t loop;
    void *ctx, *sock, *mon;
    uv_poll_t sock_poll, mon_poll;
    uv_timer_t hello_timer, hb_timer;
    uv_signal_t sigint, sigterm;
    uv_pipe_t stdin_pipe; /* watched iff o.stop_on_eof */
    sup *sup;
    lf *logs; /* the ranks' logs on their way to the coordinator */
    bool registered, have_id, stopping, pumping;
    int64_t worker_id;
    int heartbeat_ms;
    sup_rank_id *running;
    int n_running, cap_running;
    json_t *pending; /* RANK_EXIT bodies */
    json_t *recent;  /* the last WD_RECENT_EXITS RANK_EXIT bodies, for HELLO's `exited` */
} wd;

static void wlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void wlog(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ignis worker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void pump(wd *w);

/* Sends at once or not at all. */
static bool send_now(wd *w, ig_msg_type type, const json_t *body) {
    ig_status st = ig_proto_send(w->sock, NULL, 0, type, body, 0);
    if (st && st != IG_ERR_TIMEOUT) wlog("%s", ig_last_error());
    return st == IG_OK;
}

static json_t *rank_list(const wd *w) {
    json_t *a = json_array();
    for (int i = 0; i < w->n_running; i++)
        json_array_append_new(a, json_pack("{s:I, s:I, s:i}", "job", (json_int_t)w->running[i].job,
                                           "attempt", (json_int_t)w->running[i].attempt, "rank",
                                           w->running[i].rank));
    return a;
}

/* ---- registering ---- */

static void send_hello(wd *w) {
    json_t *gpus = json_array();
    for (int i = 0; i < w->o.n_gpus; i++) json_array_append_new(gpus, json_integer(w->o.gpus[i]));
    json_t *b = json_pack("{s:s, s:{s:i, s:o}, s:i, s:o}", "node", w->node, "slots", "cpus",
                          w->o.cpus, "gpus", gpus, "protocol", IG_PROTO_VERSION, "running",
                          rank_list(w));
    if (w->have_id) json_object_set_new(b, "worker", json_integer(w->worker_id));
    json_object_set(b, "exited", w->recent);
    send_now(w, IG_MSG_HELLO, b);
    json_decref(b);
}

static void on_hello_timer(uv_timer_t *t) {
    wd *w = t->data;
    if (w->retry_at && uv_now(&w->loop) >= w->retry_at) {
        w->retry_at = 0;
        zmq_disconnect(w->sock, w->o.coordinator);
        zmq_connect(w->sock, w->o.coordinator);
    }
    send_hello(w);
    pump(w);
}

/* Rank 0's progress.json (worker/train_progress.c) in its attempt directory
 * into its heartbeat item: step, loss, tokens_per_s, step_ms, ckpt_step, where valid. */
static void add_progress(const wd *w, json_t *item, sup_rank_id id) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/job-%" PRId64 "/attempt-%" PRId64 "/progress.json", w->o.work_dir,
             id.job, id.attempt);
    json_t *p = json_load_file(path, 0, NULL);
    json_t *step = json_object_get(p, "step"), *loss = json_object_get(p, "loss"),
           *tps = json_object_get(p, "tokens_per_s"), *ms = json_object_get(p, "ms"),
           *ckpt = json_object_get(p, "ckpt_step");
    if (json_is_integer(step) && json_integer_value(step) >= 0 && json_is_number(loss) &&
        isfinite(json_number_value(loss))) {
        json_object_set(item, "step", step);
        json_object_set(item, "loss", loss);
        if (json_is_number(tps) && json_number_value(tps) >= 0) json_object_set(item, "tokens_per_s", tps);
        if (json_is_number(ms) && json_number_value(ms) >= 0) json_object_set(item, "step_ms", ms);
        if (json_is_integer(ckpt) && json_integer_value(ckpt) >= 0) json_object_set(item, "ckpt_step", ckpt);
    }
    json_decref(p);
}

static void on_hb_timer(uv_timer_t *t) {
    wd *w = t->data;
    json_t *ranks = rank_list(w);
    for (int i = 0; i < w->n_running; i++)
        if (w->running[i].rank == 0) add_progress(w, json_array_get(ranks, (size_t)i), w->running[i]);
    json_t *b = json_pack("{s:I, s:o}", "worker", (json_int_t)w->worker_id, "ranks", ranks);
    send_now(w, IG_MSG_HEARTBEAT, b);
    json_decref(b);
    pump(w);
}

/* Back to registering (the connection dropped, or the coordinator does not
 * know us): the ranks keep running. */
static void unregister(wd *w, const char *why) {
    if (w->stopping) return;
    if (w->registered)
        wlog("%s; %d rank(s) keep running; registering again", why, w->n_running);
    w->registered = false;
    lf_offline(w->logs);
    uv_timer_stop(&w->hb_timer);
    if (!uv_is_active((uv_handle_t *)&w->hello_timer))
        uv_timer_start(&w->hello_timer, on_hello_timer, 0, WD_HELLO_RETRY_MS);
}

static void flush_pending(wd *w) {
    while (json_array_size(w->pending) && send_now(w, IG_MSG_RANK_EXIT, json_array_get(w->pending, 0)))
        json_array_remove(w->pending, 0);
}

static void on_hello_ack(wd *w, const json_t *b) {
    w->worker_id = json_integer_value(json_object_get(b, "worker"));
    w->have_id = true;
    const json_t *hb = json_object_get(b, "heartbeat_ms");
    int ms = hb ? (int)json_integer_value(hb) : WD_HEARTBEAT_MS;
    if (w->stopping) return;
    if (!w->registered || ms != w->heartbeat_ms)
        uv_timer_start(&w->hb_timer, on_hb_timer, (uint64_t)ms, (uint64_t)ms);
    if (!w->registered) wlog("registered as worker %" PRId64 " (heartbeat every %d ms)", w->worker_id, ms);
    w->heartbeat_ms = ms;
    w->registered = true;
    uv_timer_stop(&w->hello_timer);
    flush_pending(w);
    lf_online(w->logs, w->worker_id);
}

/* ---- ranks ---- */

static int find_running(const wd *w, sup_rank_id id) {
    for (int i = 0; i < w->n_running; i++)
        if (w->running[i].job == id.job && w->running[i].attempt == id.attempt &&
            w->running[i].rank == id.rank)
            return i;
    return -1;
}

static void report_exit(wd *w, sup_rank_id id, int code, int sig, double time) {
    wlog("job %" PRId64 " attempt %" PRId64 " rank %d: %s %d", id.job, id.attempt, id.rank,
         sig ? "killed by signal" : "exited with code", sig ? sig : code);
    json_t *b = json_pack("{s:I, s:I, s:i, s:i, s:f}", "job", (json_int_t)id.job, "attempt",
                          (json_int_t)id.attempt, "rank", id.rank, sig ? "signal" : "exit_code",
                          sig ? sig : code, "time", time);
    json_array_append(w->pending, b);
    /* Also in every HELLO for a while: an exit handed to a connection that was
     * dying is lost, and a restarted coordinator must not take it for a rank
     * that vanished. */
    if (json_array_size(w->recent) == WD_RECENT_EXITS) json_array_remove(w->recent, 0);
    json_array_append_new(w->recent, b);
    if (w->registered) flush_pending(w);
}

static void on_rank_exit(sup *s, const sup_exit *e, void *data) {
    (void)s;
    wd *w = data;
    int i = find_running(w, e->id);
    if (i >= 0) w->running[i] = w->running[--w->n_running];
    report_exit(w, e->id, e->exit_code, e->term_signal, e->time);
    pump(w);
}

static void on_rank_output(sup *s, const sup_rank_id *id, const char *buf, size_t len, void *data) {
    (void)s, (void)buf;
    wd *w = data;
    if (len == 0) lf_complete(w->logs, *id);
}

static bool send_log_data(void *data, const json_t *body) { return send_now(data, IG_MSG_LOG_DATA, body); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* mkdir -p */
static bool make_dirs(char *path) {
    for (char *p = path + 1;; p++) {
        if (*p && *p != '/') continue;
        char c = *p;
        *p = 0;
        bool ok = mkdir(path, 0755) == 0 || errno == EEXIST;
        *p = c;
        if (!ok) return false;
        if (!c) return true;
    }
}

/* Where the ranks meet: START_RANKS' rendezvous address, unless the
 * coordinator bound a wildcard (tcp://0.0.0.0:P): then the worker's own. */
static const char *rendezvous_address(const wd *w, const char *rdv) {
    bool wildcard = strstr(rdv, "://0.0.0.0:") || strstr(rdv, "://*:") || strstr(rdv, "://[::]:");
    return wildcard ? w->o.coordinator : rdv;
}

static void start_ranks(wd *w, const json_t *b) {
    int64_t job = json_integer_value(json_object_get(b, "job"));
    int64_t attempt = json_integer_value(json_object_get(b, "attempt"));
    int world = (int)json_integer_value(json_object_get(b, "world"));
    const json_t *ranks = json_object_get(b, "ranks");
    const char *rdv = rendezvous_address(w, json_string_value(json_object_get(b, "rendezvous")));
    int n = (int)json_array_size(ranks);
    char dir[PATH_MAX], spec_path[PATH_MAX + 16], log_path[PATH_MAX + 32], slot_env[32], omp_env[48];
    snprintf(dir, sizeof dir, "%s/job-%" PRId64 "/attempt-%" PRId64, w->o.work_dir, job, attempt);
    snprintf(spec_path, sizeof spec_path, "%s/job.json", dir);
    const char *failed = !make_dirs(dir) ? dir
                         : json_dump_file(json_object_get(b, "spec"), spec_path, JSON_INDENT(2)) ? spec_path
                                                                                               : NULL;
    if (failed)
        wlog("job %" PRId64 " attempt %" PRId64 ": cannot write %s: %s", job, attempt, failed, strerror(errno));

    int argc = 0;
    while (w->o.rank_argv[argc]) argc++;
    char **argv = calloc((size_t)argc + 2, sizeof *argv);
    memcpy(argv, w->o.rank_argv, (size_t)argc * sizeof *argv);
    argv[argc] = spec_path;
    /* Each rank's fair share of this machine's cores, as torchrun does (it
     * gives 1): the cores divided by this worker's slots, unless the worker
     * itself was given OMP_NUM_THREADS. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int slots = w->o.n_gpus > 0 ? w->o.n_gpus : w->o.cpus;
    snprintf(omp_env, sizeof omp_env, "OMP_NUM_THREADS=%ld", cores > slots && slots > 0 ? cores / slots : 1);
    char *env[] = {slot_env, getenv("OMP_NUM_THREADS") ? NULL : omp_env, NULL};
    if (w->n_running + n > w->cap_running) {
        w->cap_running = 2 * (w->n_running + n);
        w->running = realloc(w->running, (size_t)w->cap_running * sizeof *w->running);
    }
    for (int i = 0; i < n; i++) {
        const json_t *r = json_array_get(ranks, (size_t)i);
        sup_rank_id id = {job, attempt, (int)json_integer_value(json_object_get(r, "rank"))};
        if (find_running(w, id) >= 0) {
            wlog("job %" PRId64 " attempt %" PRId64 " rank %d: running already; not started again", job,
                 attempt, id.rank);
            continue;
        }
        snprintf(log_path, sizeof log_path, "%s/rank-%d.log", dir, id.rank);
        snprintf(slot_env, sizeof slot_env, "IGNIS_SLOT=%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(r, "slot")));
        sup_rank_spec sp = {.id = id, .local_rank = (int)json_integer_value(json_object_get(r, "local_rank")),
                            .world = world, .local_world = n, .coordinator = rdv, .argv = argv,
                            .env = env, .log_path = log_path};
        lf_add(w->logs, id, log_path);
        if (!failed && sup_start_rank(w->sup, &sp) == IG_OK) {
            w->running[w->n_running++] = id;
            continue;
        }
        if (!failed) wlog("%s", ig_last_error());
        lf_complete(w->logs, id);
        report_exit(w, id, 127, 0, now_s());
    }
    free(argv);
    if (!failed) wlog("job %" PRId64 " attempt %" PRId64 ": %d rank(s) in %s", job, attempt, n, dir);
}

/* ---- messages ---- */

static void handle(wd *w, const ig_proto_msg *m) {
    switch (m->type) {
    case IG_MSG_HELLO_ACK: on_hello_ack(w, m->body); break;
    case IG_MSG_START_RANKS: start_ranks(w, m->body); break;
    case IG_MSG_ABORT: {
        int64_t job = json_integer_value(json_object_get(m->body, "job"));
        int64_t attempt = json_integer_value(json_object_get(m->body, "attempt"));
        int k = sup_abort_job(w->sup, job, attempt, w->o.grace_ms);
        wlog("job %" PRId64 " attempt %" PRId64 ": abort (%s): %d rank(s) signalled", job, attempt,
             json_string_value(json_object_get(m->body, "reason")), k);
        break;
    }
    case IG_MSG_LOG_ACK: lf_acked(w->logs, m->body); break;
    case IG_MSG_ERROR:
    {
        const char *code = json_string_value(json_object_get(m->body, "code")),
                   *text = json_string_value(json_object_get(m->body, "message")),
                   *request = json_string_value(json_object_get(m->body, "request"));
        if (request && !strcmp(request, "LOG_DATA")) {
            lf_refused(w->logs, text);
            break;
        }
        wlog("the coordinator answered ERROR %s: %s", code, text);
        /* IG_ERR_STATE: it does not know this worker (a new coordinator); other
         * errors refuse one message (e.g. an impossible step) and are only logged. */
        if (!strcmp(code, ig_status_name(IG_ERR_STATE))) unregister(w, "the coordinator does not know this worker");
        break;
    }
    case IG_MSG_OK: break;
    default: wlog("ignoring an unexpected %s from the coordinator", ig_msg_name(m->type));
    }
}

/* Receives while the socket has input (see the file comment). */
static void pump(wd *w) {
    if (w->pumping || w->stopping) return;
    w->pumping = true;
    for (;;) {
        int ev = 0;
        size_t len = sizeof ev;
        if (zmq_getsockopt(w->sock, ZMQ_EVENTS, &ev, &len) || !(ev & ZMQ_POLLIN)) break;
        ig_proto_msg m;
        ig_status st = ig_proto_recv(w->sock, false, 0, &m);
        if (st == IG_OK) handle(w, &m);
        else if (st == IG_ERR_FORMAT)
            wlog("ignoring a malformed message from the coordinator: %s", ig_last_error());
        else wlog("%s", ig_last_error());
        ig_proto_msg_clear(&m);
    }
    w->pumping = false;
}

static void on_sock(uv_poll_t *p, int status, int events) {
    (void)status, (void)events;
    pump(p->data);
}

/* A failed handshake (its message in ig_last_error): logged once; when
 * ZeroMQ gave up (fatal), connecting again later. */
static void handshake_failed(wd *w, bool fatal) {
    if (strcmp(w->refused, ig_last_error())) {
        snprintf(w->refused, sizeof w->refused, "%s", ig_last_error());
        wlog("%s%s", w->refused, fatal ? " (trying again every 5 s)" : "");
    }
    if (fatal) w->retry_at = uv_now(&w->loop) + REFUSED_RETRY_MS;
}

static void on_mon(uv_poll_t *p, int status, int events) {
    (void)status, (void)events;
    wd *w = p->data;
    int event, value;
    bool fatal;
    while (ig_proto_client_event(&w->client, &event, &value)) {
        if (event == ZMQ_EVENT_DISCONNECTED) unregister(w, "lost the coordinator");
        else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            w->refused[0] = 0;
            if (!w->registered && !w->stopping) send_hello(w);
        } else if (ig_proto_client_failure(&w->client, event, value, &fatal))
            handshake_failed(w, fatal);
    }
    pump(w);
}

/* ---- shutting down ---- */

/* A signal or stdin's end: abort every rank with the grace, then exit; again:
 * kill them now. */
static void stop(wd *w, const char *why) {
    if (w->stopping) {
        wlog("%s again: killing every rank now", why);
        sup_abort_all(w->sup, 0);
        return;
    }
    wlog("%s: aborting %d rank(s), then exiting", why, sup_running(w->sup));
    w->stopping = true;
    sup_abort_all(w->sup, w->o.grace_ms);
    /* The loop now runs until the supervisor's last rank is gone. */
    uv_close((uv_handle_t *)&w->sock_poll, NULL);
    uv_close((uv_handle_t *)&w->mon_poll, NULL);
    uv_close((uv_handle_t *)&w->hello_timer, NULL);
    uv_close((uv_handle_t *)&w->hb_timer, NULL);
    if (w->o.stop_on_eof) uv_close((uv_handle_t *)&w->stdin_pipe, NULL);
    uv_unref((uv_handle_t *)&w->sigint);
    uv_unref((uv_handle_t *)&w->sigterm);
}

static void on_signal(uv_signal_t *s, int signum) {
    char why[32];
    snprintf(why, sizeof why, "signal %d", signum);
    stop(s->data, why);
}

static void on_stdin_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
    static char discard[4096];
    (void)h, (void)size;
    *buf = uv_buf_init(discard, sizeof discard);
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    (void)buf;
    wd *w = s->data;
    if (n < 0 && !w->stopping) stop(w, n == UV_EOF ? "end of stdin" : "stdin unreadable");
}

static int zfd(void *sock) {
    int fd = -1;
    size_t len = sizeof fd;
    zmq_getsockopt(sock, ZMQ_FD, &fd, &len);
    return fd;
}

ig_status wd_run(const wd_opts *opts) {
    wd *w = calloc(1, sizeof *w);
    if (!w) return ig_set_error(IG_ERR_NOMEM, "worker: out of memory");
    w->o = *opts;
    if (!w->o.work_dir) w->o.work_dir = ".";
    if (w->o.cpus < 0) w->o.cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (w->o.grace_ms <= 0) w->o.grace_ms = WD_GRACE_MS;
    if (opts->node) snprintf(w->node, sizeof w->node, "%s", opts->node);
    else if (gethostname(w->node, sizeof w->node - 1) || !w->node[0]) strcpy(w->node, "localhost");
    w->pending = json_array();
    w->recent = json_array();
    ig_status st = IG_OK;
    uv_loop_init(&w->loop);
    if (sup_new(&w->loop, on_rank_exit, on_rank_output, w, &w->sup) != IG_OK ||
        lf_new(&w->loop, send_log_data, w, &w->logs) != IG_OK) {
        st = IG_ERR_NOMEM;
        goto out_loop;
    }

    w->ctx = zmq_ctx_new();
    if ((st = ig_proto_client_open(w->ctx, w->o.coordinator, &w->client))) {
        char why[1024];
        snprintf(why, sizeof why, "%s", ig_last_error());
        st = ig_set_error(st, "worker: %s", why);
        goto out_zmq;
    }
    w->sock = w->client.sock;
    w->mon = w->client.monitor;
    wlog("node %s (%d CPUs, %d GPUs): connecting to %s (%s)", w->node, w->o.cpus, w->o.n_gpus,
         w->o.coordinator, w->client.key_file[0] ? "CurveZMQ" : "plaintext");

    uv_poll_init(&w->loop, &w->sock_poll, zfd(w->sock));
    uv_poll_init(&w->loop, &w->mon_poll, zfd(w->mon));
    uv_timer_init(&w->loop, &w->hello_timer);
    uv_timer_init(&w->loop, &w->hb_timer);
    uv_signal_init(&w->loop, &w->sigint);
    uv_signal_init(&w->loop, &w->sigterm);
    w->sock_poll.data = w->mon_poll.data = w->hello_timer.data = w->hb_timer.data = w;
    w->sigint.data = w->sigterm.data = w;
    uv_poll_start(&w->sock_poll, UV_READABLE, on_sock);
    uv_poll_start(&w->mon_poll, UV_READABLE, on_mon);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_timer_start(&w->hello_timer, on_hello_timer, 0, WD_HELLO_RETRY_MS);
    /* A ZMQ_FD signals only changes after a first look: look now. */
    on_mon(&w->mon_poll, 0, UV_READABLE);
    if (w->o.stop_on_eof) {
        uv_pipe_init(&w->loop, &w->stdin_pipe, 0);
        w->stdin_pipe.data = w;
        int e = uv_pipe_open(&w->stdin_pipe, 0);
        if (!e) e = uv_read_start((uv_stream_t *)&w->stdin_pipe, on_stdin_alloc, on_stdin);
        if (e) {
            wlog("--stop-on-eof: cannot watch stdin (%s)", uv_strerror(e));
            stop(w, "stdin unwatchable");
        }
    }

    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w->sigint, NULL);
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    lf_close(w->logs);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (json_array_size(w->pending))
        wlog("%zu exit(s) could not be reported: the coordinator is away", json_array_size(w->pending));
    wlog("stopped");
    int linger = 1000; /* the last RANK_EXITs get a second to leave */
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
out_zmq:
    ig_proto_client_close(&w->client);
    zmq_ctx_term(w->ctx);
    sup_free(w->sup);
out_loop:
    lf_free(w->logs);
    uv_loop_close(&w->loop);
    json_decref(w->pending);
    json_decref(w->recent);
    free(w->running);
    free(w);
    return st;
}
#endif

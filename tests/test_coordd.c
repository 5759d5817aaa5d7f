/* tests/test_coordd.c: the coordinator daemon (coordinator/daemon.c) as a
 * real process: `ignis coordinator --listen tcp://127.0.0.1:PORT --state DIR
 * --heartbeat-timeout 1` (the binary is argv[1], passed by meson; skipped
 * without it or without ZeroMQ). Fake workers, ranks and clients are DEALER
 * sockets speaking ig_proto_*. Every wait is bounded (WAIT_MS), the daemon is
 * stopped with SIGTERM (and must exit 0) or killed at the end of each test.
 *
 * Checked: registration and node-major gang placement (START_RANKS), the
 * rendezvous, progress in STATUS, success when every rank exits 0; a rank
 * killed by a signal aborts the attempt and restarts the job (attempt 2); a
 * silent worker is fenced and the job shrinks onto the remaining slots;
 * kill -9 and a restart on the same journal keep the job, and workers that
 * come back re-adopt it; malformed and invalid requests each get an ERROR
 * naming the problem and the daemon keeps serving; CANCEL aborts the ranks;
 * a fenced node stays fenced; GPU slots are placed by GPU index; --listen is loopback only (exit 2); a busy
 * port or a state directory in use by another coordinator is an error (exit
 * 1). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/daemon.h"
#include "ignis/proto.h"
#include "tests/testutil.h"

#ifdef IG_HAVE_ZMQ
#include <zmq.h>

enum { WAIT_MS = 5000, MAX_SOCKS = 32, MAX_LIVE = 4 };

static const char *ignis_path;
static void *ctx;
static struct {
    pid_t pid;
    char endpoint[64], dir[64];
    void *socks[MAX_SOCKS];
    int nsocks;
    struct { void *sock; int64_t worker; } live[MAX_LIVE]; /* heartbeating while tests wait */
    int nlive;
} T;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void start_coordinator(void) {
    char log[128];
    snprintf(log, sizeof log, "%s/coordinator.log", T.dir);
    T.pid = fork();
    assert_true(T.pid >= 0);
    if (T.pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 2);
        execl(ignis_path, "ignis", "coordinator", "--listen", T.endpoint, "--state", T.dir,
              "--heartbeat-timeout", "1", (char *)NULL);
        _exit(127);
    }
}

/* Waits for the daemon's exit (bounded; SIGKILL past the bound): its status. */
static int reap(void) {
    int status = 0;
    for (double end = now_ms() + WAIT_MS; waitpid(T.pid, &status, WNOHANG) == 0;) {
        if (now_ms() > end) {
            kill(T.pid, SIGKILL);
            waitpid(T.pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    T.pid = 0;
    return status;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) { return remove(path); }

static int setup(void **state) {
    memset(&T, 0, sizeof T);
    snprintf(T.dir, sizeof T.dir, "/tmp/ig_coordd_XXXXXX");
    assert_non_null(mkdtemp(T.dir));
    snprintf(T.endpoint, sizeof T.endpoint, "tcp://127.0.0.1:%d", free_port());
    start_coordinator();
    return 0;
}

static int teardown(void **state) {
    if (T.pid) {
        kill(T.pid, SIGTERM);
        int status = reap();
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* a clean stop */
    }
    for (int i = 0; i < T.nsocks; i++)
        if (T.socks[i]) zmq_close(T.socks[i]);
    if (getenv("COORDD_LOG")) { /* debugging: the daemon's log */
        char cmd[128];
        snprintf(cmd, sizeof cmd, "cat %s/coordinator.log", T.dir);
        (void)!system(cmd);
    }
    nftw(T.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void *dealer(const char *id) {
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id)), 0);
    assert_int_equal(zmq_connect(s, T.endpoint), 0);
    assert_true(T.nsocks < MAX_SOCKS);
    return T.socks[T.nsocks++] = s;
}

static void close_sock(void *s) {
    for (int i = 0; i < T.nsocks; i++)
        if (T.socks[i] == s) T.socks[i] = NULL;
    zmq_close(s);
}

static void send_msg(void *s, ig_msg_type type, json_t *body) {
    ig_status st = ig_proto_send(s, NULL, 0, type, body, WAIT_MS);
    if (st) fail_msg("send %s: %s", ig_msg_name(type), ig_last_error());
    json_decref(body);
}

static void heartbeat(void *s, int64_t worker) {
    send_msg(s, IG_MSG_HEARTBEAT, json_pack("{s:I}", "worker", (json_int_t)worker));
}

/* The next message on s other than OK, which must be of this type (its body,
 * owned by the caller), within WAIT_MS; the live workers heartbeat meanwhile. */
static json_t *expect(void *s, ig_msg_type type) {
    double end = now_ms() + WAIT_MS, beat = 0;
    for (;;) {
        if (now_ms() >= beat) {
            for (int i = 0; i < T.nlive; i++) heartbeat(T.live[i].sock, T.live[i].worker);
            beat = now_ms() + 200;
        }
        ig_proto_msg m = {0};
        ig_status st = ig_proto_recv(s, false, 50, &m);
        if (st == IG_ERR_TIMEOUT) {
            if (now_ms() > end) fail_msg("no %s within %d ms", ig_msg_name(type), WAIT_MS);
            continue;
        }
        if (st) fail_msg("waiting for %s: %s", ig_msg_name(type), ig_last_error());
        if (m.type == IG_MSG_OK && type != IG_MSG_OK) {
            ig_proto_msg_clear(&m);
            continue;
        }
        if (m.type != type) {
            char *text = json_dumps(m.body, JSON_COMPACT);
            fail_msg("expected %s, got %s %s", ig_msg_name(type), ig_msg_name(m.type), text);
        }
        return m.body;
    }
}

/* Nothing but OK (and heartbeat traffic) arrives on s for ms. */
static void expect_quiet(void *s, int ms) {
    double end = now_ms() + ms, beat = 0;
    while (now_ms() < end) {
        if (now_ms() >= beat) {
            for (int i = 0; i < T.nlive; i++) heartbeat(T.live[i].sock, T.live[i].worker);
            beat = now_ms() + 200;
        }
        ig_proto_msg m = {0};
        if (ig_proto_recv(s, false, 50, &m) == IG_OK && m.type != IG_MSG_OK)
            fail_msg("expected nothing, got %s", ig_msg_name(m.type));
        ig_proto_msg_clear(&m);
    }
}

static json_t *request(void *s, ig_msg_type type, json_t *body, ig_msg_type reply) {
    send_msg(s, type, body);
    return expect(s, reply);
}

/* An ERROR reply to this request whose message contains frag. */
static void expect_error(void *s, ig_msg_type type, json_t *body, const char *code, const char *frag) {
    json_t *e = request(s, type, body, IG_MSG_ERROR);
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (strcmp(c, code) || !strstr(msg, frag)) fail_msg("ERROR %s \"%s\": wanted %s naming \"%s\"", c, msg, code, frag);
    json_decref(e);
}

static json_int_t geti(const json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) fail_msg("field '%s' missing", k);
    return json_integer_value(v);
}

static json_t *rank_exit(int64_t job, int attempt, int rank, const char *how, int value);

/* A worker registered with `cpus` slots, heartbeating from now on. `exits`
 * (may be NULL): its HELLO's `exited`, RANK_EXIT bodies of the exits it saw
 * lately (maybe while no coordinator heard them). */
static void *worker_after(const char *node, int cpus, json_t *running, json_t *exits, int64_t expect_id) {
    void *s = dealer(node);
    json_t *hello = json_pack("{s:s, s:{s:i}, s:i}", "node", node, "slots", "cpus", cpus, "protocol", 1);
    if (running) json_object_set_new(hello, "running", running);
    if (exits) json_object_set_new(hello, "exited", exits);
    json_t *ack = request(s, IG_MSG_HELLO, hello, IG_MSG_HELLO_ACK);
    assert_int_equal(geti(ack, "worker"), expect_id);
    assert_true(geti(ack, "heartbeat_ms") <= 1000);
    json_decref(ack);
    T.live[T.nlive].sock = s, T.live[T.nlive++].worker = expect_id;
    return s;
}

static void *worker(const char *node, int cpus, json_t *running, int64_t expect_id) {
    return worker_after(node, cpus, running, NULL, expect_id);
}

static int64_t submit(void *client, int ranks, int min_ranks, int max_restarts) {
    json_t *b = json_pack("{s:{s:s, s:{s:s}, s:{s:i}}, s:i, s:i, s:i}", "spec", "name", "t", "data", "train",
                          "x.txt", "train", "batch_size", 4, "max_ranks", ranks, "min_ranks", min_ranks,
                          "max_restarts", max_restarts);
    json_t *ack = request(client, IG_MSG_SUBMIT, b, IG_MSG_SUBMIT_ACK);
    int64_t id = geti(ack, "job");
    json_decref(ack);
    return id;
}

/* START_RANKS on s: job, attempt, world, and ranks first..first+n-1 on slots 0..n-1. */
static void expect_start(void *s, int64_t job, int attempt, int world, int first, int n) {
    json_t *b = expect(s, IG_MSG_START_RANKS);
    assert_int_equal(geti(b, "job"), job);
    assert_int_equal(geti(b, "attempt"), attempt);
    assert_int_equal(geti(b, "world"), world);
    assert_string_equal(json_string_value(json_object_get(b, "rendezvous")), T.endpoint);
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "spec"), "name")), "t"); /* the spec */
    json_t *ranks = json_object_get(b, "ranks");
    assert_int_equal(json_array_size(ranks), n);
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(ranks, i);
        assert_int_equal(geti(r, "rank"), first + i);
        assert_int_equal(geti(r, "local_rank"), i);
        assert_int_equal(geti(r, "slot"), i);
    }
    json_decref(b);
}

static void expect_abort(void *s, int64_t job, int attempt, const char *frag) {
    json_t *b = expect(s, IG_MSG_ABORT);
    assert_int_equal(geti(b, "job"), job);
    assert_int_equal(geti(b, "attempt"), attempt);
    const char *why = json_string_value(json_object_get(b, "reason"));
    if (!strstr(why, frag)) fail_msg("ABORT reason \"%s\" does not name \"%s\"", why, frag);
    json_decref(b);
}

/* STATUS of one job (the reply's only item, owned by the caller). */
static json_t *status_of(void *client, int64_t job) {
    json_t *r = request(client, IG_MSG_STATUS, json_pack("{s:I}", "job", (json_int_t)job), IG_MSG_STATUS_REPLY);
    json_t *jobs = json_object_get(r, "jobs");
    assert_int_equal(json_array_size(jobs), 1);
    json_t *j = json_incref(json_array_get(jobs, 0));
    json_decref(r);
    assert_int_equal(geti(j, "job"), job);
    return j;
}

static void expect_state(void *client, int64_t job, const char *state, int attempt, int ranks) {
    json_t *j = status_of(client, job);
    const char *st = json_string_value(json_object_get(j, "state"));
    json_t *nr = json_object_get(j, "ranks");
    if (strcmp(st, state) || geti(j, "attempt") != attempt || (nr ? json_integer_value(nr) : 0) != ranks)
        fail_msg("job %lld: %s attempt %lld, %lld ranks (%s); wanted %s attempt %d, %d ranks", (long long)job, st,
                 (long long)geti(j, "attempt"), (long long)json_integer_value(nr),
                 json_string_value(json_object_get(j, "reason")), state, attempt, ranks);
    json_decref(j);
}

static json_t *rank_exit(int64_t job, int attempt, int rank, const char *how, int value) {
    return json_pack("{s:I, s:i, s:i, s:i, s:f}", "job", (json_int_t)job, "attempt", attempt, "rank", rank, how,
                     value, "time", 1.7e9);
}

/* Two workers of 2 CPU slots and a 4-rank job placed on them node-major. */
static int64_t two_workers_job(void **w1, void **w2, void **client, int min_ranks, int max_restarts) {
    *w1 = worker("n1", 2, NULL, 1);
    *w2 = worker("n2", 2, NULL, 2);
    *client = dealer("client");
    int64_t job = submit(*client, 4, min_ranks, max_restarts);
    assert_int_equal(job, 1);
    expect_start(*w1, job, 1, 4, 0, 2);
    expect_start(*w2, job, 1, 4, 2, 2);
    return job;
}

static void placement_rendezvous_and_success(void **state) {
    void *w1, *w2, *client;
    int64_t job = two_workers_job(&w1, &w2, &client, 4, 3);
    expect_state(client, job, "running", 1, 4);

    void *ranks[4];
    char *addr[4];
    for (int r = 0; r < 4; r++) {
        char id[8], text[32];
        snprintf(id, sizeof id, "r%d", r);
        snprintf(text, sizeof text, "ucx-address-of-rank-%d", r);
        ranks[r] = dealer(id);
        addr[r] = ig_proto_b64_encode(text, strlen(text));
        send_msg(ranks[r], IG_MSG_RENDEZVOUS, json_pack("{s:I, s:i, s:i, s:i, s:s}", "job", (json_int_t)job,
                                                        "attempt", 1, "world", 4, "rank", r, "address", addr[r]));
    }
    for (int r = 0; r < 4; r++) {
        json_t *b = expect(ranks[r], IG_MSG_RENDEZVOUS_REPLY);
        assert_int_equal(geti(b, "rank"), r);
        json_t *a = json_object_get(b, "addresses");
        for (int q = 0; q < 4; q++) assert_string_equal(json_string_value(json_array_get(a, q)), addr[q]);
        json_decref(b);
    }
    for (int r = 0; r < 4; r++) free(addr[r]);

    /* progress: STATUS on the worker's own socket comes after its HEARTBEAT */
    send_msg(w1, IG_MSG_HEARTBEAT,
             json_pack("{s:i, s:[{s:I, s:i, s:i, s:i, s:f, s:f, s:f, s:i}]}", "worker", 1, "ranks", "job",
                       (json_int_t)job, "attempt", 1, "rank", 0, "step", 10, "loss", 2.5, "tokens_per_s", 1234.5,
                       "step_ms", 12.25, "ckpt_step", 5));
    json_t *j = status_of(w1, job);
    assert_int_equal(geti(j, "step"), 10);
    assert_true(json_real_value(json_object_get(j, "loss")) == 2.5);
    assert_true(json_real_value(json_object_get(j, "tokens_per_s")) == 1234.5);
    assert_true(json_real_value(json_object_get(j, "step_ms")) == 12.25);
    assert_int_equal(geti(j, "ckpt_step"), 5); /* a committed checkpoint: journaled */
    json_decref(j);
    /* impossible steps (backwards, or past train.steps: 1000 by default) are refused; progress stays */
    for (int bad = 0; bad < 2; bad++)
        expect_error(w1, IG_MSG_HEARTBEAT,
                     json_pack("{s:i, s:[{s:I, s:i, s:i, s:i, s:f}]}", "worker", 1, "ranks", "job", (json_int_t)job,
                               "attempt", 1, "rank", 0, "step", bad ? 5000 : 5, "loss", 9.0),
                     "IG_ERR_INVALID", bad ? "reports step 5000, expected 10 to 1000" : "reports step 5, expected 10");
    j = status_of(w1, job);
    assert_int_equal(geti(j, "step"), 10);
    assert_true(json_real_value(json_object_get(j, "loss")) == 2.5);
    json_decref(j);

    for (int r = 0; r < 4; r++) {
        void *w = r < 2 ? w1 : w2;
        json_decref(request(w, IG_MSG_RANK_EXIT, rank_exit(job, 1, r, "exit_code", 0), IG_MSG_OK));
        if (r < 3) expect_state(client, job, "running", 1, 4);
    }
    json_t *s = status_of(client, job);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "succeeded");
    assert_string_equal(json_string_value(json_object_get(s, "reason")), "all 4 ranks exited 0");
    json_decref(s);
}

static void signal_aborts_and_restarts(void **state) {
    void *w1, *w2, *client;
    int64_t job = two_workers_job(&w1, &w2, &client, 4, 3);
    json_decref(request(w1, IG_MSG_RANK_EXIT, rank_exit(job, 1, 1, "signal", 9), IG_MSG_OK));
    expect_abort(w2, job, 1, "rank 1 exited with signal 9");
    expect_abort(w1, job, 1, "rank 1 exited with signal 9"); /* its rank 0 must go too */
    expect_start(w1, job, 2, 4, 0, 2);
    expect_start(w2, job, 2, 4, 2, 2);
    expect_state(client, job, "running", 2, 4);
    /* a rank of the old attempt cannot join; its late exit changes nothing */
    void *old = dealer("old-rank");
    expect_error(old, IG_MSG_RENDEZVOUS, json_pack("{s:I, s:i, s:i, s:i, s:s}", "job", (json_int_t)job, "attempt", 1,
                                                   "world", 4, "rank", 0, "address", "AAAA"),
                 "IG_ERR_STATE", "attempt 1 is not running");
    json_decref(request(w1, IG_MSG_RANK_EXIT, rank_exit(job, 1, 0, "signal", 15), IG_MSG_OK));
    expect_state(client, job, "running", 2, 4);
    /* CANCEL: ABORT to its workers, final */
    json_decref(request(client, IG_MSG_CANCEL, json_pack("{s:I}", "job", (json_int_t)job), IG_MSG_OK));
    expect_abort(w1, job, 2, "cancelled by user");
    expect_abort(w2, job, 2, "cancelled by user");
    expect_state(client, job, "cancelled", 2, 4);
    expect_error(client, IG_MSG_CANCEL, json_pack("{s:I}", "job", (json_int_t)job), "IG_ERR_STATE",
                 "already cancelled");
}

static void silent_worker_is_fenced_and_job_shrinks(void **state) {
    void *w1, *w2, *client;
    int64_t job = two_workers_job(&w1, &w2, &client, 2, 3);
    T.nlive = 1; /* w2 stops heartbeating */
    double t0 = now_ms();
    expect_abort(w1, job, 1, "node n2 failed: no heartbeat");
    assert_true(now_ms() - t0 > 700); /* not before the 1 s timeout */
    expect_start(w1, job, 2, 2, 0, 2);
    expect_state(client, job, "running", 2, 2);
    expect_quiet(w2, 300); /* nothing for the fenced node */
    /* it comes back with its old rank: that rank is aborted, and the node,
     * fenced for good, gets no new job */
    close_sock(w2);
    w2 = worker("n2", 2, json_pack("[{s:I, s:i, s:i}]", "job", (json_int_t)job, "attempt", 1, "rank", 2), 2);
    expect_abort(w2, job, 1, "job 1 attempt 1 rank 2 is not placed on node n2");
    int64_t job2 = submit(client, 2, 2, 0);
    expect_quiet(w2, 500);
    expect_state(client, job2, "queued", 1, 0);
    expect_state(client, job, "running", 2, 2);
}

static void kill9_restart_keeps_and_readopts(void **state) {
    void *w1, *w2, *client;
    int64_t job = two_workers_job(&w1, &w2, &client, 2, 3);
    T.nlive = 0;
    kill(T.pid, SIGKILL);
    assert_true(WIFSIGNALED(reap()));
    start_coordinator();
    void *c2 = dealer("client-2");
    expect_state(c2, job, "running", 1, 4); /* not lost: awaiting its workers */
    json_t *j = status_of(c2, job);
    assert_true(json_is_true(json_object_get(j, "awaiting_workers")));
    json_decref(j);
    /* both workers come back (new connections) with their ranks alive, but
     * rank 3, which exited 0 meanwhile: its exit is in the HELLO's `exited` */
    close_sock(w1), close_sock(w2);
    json_t *run1 = json_pack("[{s:I, s:i, s:i}, {s:I, s:i, s:i}]", "job", (json_int_t)job, "attempt", 1, "rank", 0,
                             "job", (json_int_t)job, "attempt", 1, "rank", 1);
    json_t *run2 = json_pack("[{s:I, s:i, s:i}]", "job", (json_int_t)job, "attempt", 1, "rank", 2);
    w1 = worker("n1", 2, run1, 1);
    w2 = worker_after("n2", 2, run2, json_pack("[o]", rank_exit(job, 1, 3, "exit_code", 0)), 2);
    expect_quiet(w1, 1500); /* past the grace period: no ABORT, no restart */
    expect_state(c2, job, "running", 1, 4);
    j = status_of(c2, job);
    assert_null(json_object_get(j, "awaiting_workers")); /* re-adopted */
    json_decref(j);
    /* one more kill -9; now only n1 comes back: n2 is failed after the grace */
    T.nlive = 0;
    kill(T.pid, SIGKILL);
    reap();
    start_coordinator();
    close_sock(w1), close_sock(w2);
    run1 = json_pack("[{s:I, s:i, s:i}, {s:I, s:i, s:i}]", "job", (json_int_t)job, "attempt", 1, "rank", 0, "job",
                     (json_int_t)job, "attempt", 1, "rank", 1);
    w1 = worker("n1", 2, run1, 1);
    expect_abort(w1, job, 1, "node n2 failed: did not register again");
    expect_start(w1, job, 2, 2, 0, 2);
    expect_state(c2, job, "running", 2, 2);
}

/* The spec's run section gives ranks and max_restarts when SUBMIT does not. */
static void spec_run_section_sets_ranks_and_restarts(void **state) {
    void *w = worker("n1", 4, NULL, 1), *client = dealer("client");
    json_t *body = json_pack("{s:{s:s, s:{s:s}, s:{s:i}, s:{s:i, s:i}}}", "spec", "name", "t", "data", "train",
                             "x.txt", "train", "batch_size", 4, "run", "ranks", 2, "max_restarts", 0);
    json_t *ack = request(client, IG_MSG_SUBMIT, body, IG_MSG_SUBMIT_ACK);
    int64_t job = geti(ack, "job");
    json_decref(ack);
    expect_start(w, job, 1, 2, 0, 2);
    expect_state(client, job, "running", 1, 2);
    /* max_restarts 0 from the spec: a failed rank fails the job */
    json_decref(request(w, IG_MSG_RANK_EXIT, rank_exit(job, 1, 0, "exit_code", 1), IG_MSG_OK));
    expect_state(client, job, "failed", 1, 2);
    /* SUBMIT's own fields win over the spec's */
    body = json_pack("{s:{s:s, s:{s:s}, s:{s:i}, s:{s:i}}, s:i}", "spec", "name", "t", "data", "train", "x.txt",
                     "train", "batch_size", 4, "run", "ranks", 2, "ranks", 4);
    ack = request(client, IG_MSG_SUBMIT, body, IG_MSG_SUBMIT_ACK);
    int64_t job2 = geti(ack, "job");
    json_decref(ack);
    json_decref(expect(w, IG_MSG_ABORT)); /* of the failed job's attempt */
    expect_start(w, job2, 1, 4, 0, 4);
}

/* A waiting job's STATUS says what it waits for: slots, or the job ahead of it. */
static void waiting_jobs_say_why(void **state) {
    void *w = worker("n1", 2, NULL, 1), *client = dealer("client");
    int64_t big = submit(client, 4, 4, 0), small = submit(client, 1, 1, 0);
    json_t *j = status_of(client, big);
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "submitted; waiting for 4 free slots (2 now)");
    json_decref(j);
    j = status_of(client, small);
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "submitted; in the queue behind job 1");
    json_decref(j);
    expect_quiet(w, 300); /* strict FIFO: the small job waits too */
}

static void malformed_messages_get_errors(void **state) {
    void *s = dealer("fuzzer");
    assert_int_equal(zmq_send(s, "garbage!", 8, 0), 8); /* one frame, no header */
    json_t *e = expect(s, IG_MSG_ERROR);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "IG_ERR_FORMAT");
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "header: magic"));
    json_decref(e);

    unsigned char h[8] = {'I', 'G', 'N', 'S', 0, 7, 0, IG_MSG_STATUS};
    zmq_send(s, h, 8, ZMQ_SNDMORE);
    zmq_send(s, "{}", 2, 0);
    e = expect(s, IG_MSG_ERROR);
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "protocol version 7"));
    json_decref(e);

    h[5] = IG_PROTO_VERSION;
    zmq_send(s, h, 8, ZMQ_SNDMORE);
    zmq_send(s, "{\"job\": -3}", 11, 0);
    e = expect(s, IG_MSG_ERROR);
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "STATUS: field 'job'"));
    json_decref(e);

    expect_error(s, IG_MSG_STATUS, json_pack("{s:i}", "job", 42), "IG_ERR_INVALID", "job 42: no such job");
    expect_error(s, IG_MSG_CANCEL, json_pack("{s:i}", "job", 42), "IG_ERR_INVALID", "job 42: no such job");
    expect_error(s, IG_MSG_RANK_EXIT, rank_exit(42, 1, 0, "exit_code", 0), "IG_ERR_INVALID", "job 42: no such job");
    expect_error(s, IG_MSG_SUBMIT,
                 json_pack("{s:{s:{s:s}, s:{s:i}}}", "spec", "data", "train", "x", "train", "batch_size", -3),
                 "IG_ERR_FORMAT", "train.batch_size");
    expect_error(s, IG_MSG_SUBMIT, json_pack("{s:{s:{s:s}}, s:i}", "spec", "data", "train", "x", "ranks", 3),
                 "IG_ERR_INVALID", "not divisible"); /* batch 16 by 3 ranks */
    expect_error(s, IG_MSG_HEARTBEAT, json_pack("{s:i}", "worker", 9), "IG_ERR_STATE", "worker 9 is not registered");
    expect_error(s, IG_MSG_SUBMIT_ACK, json_pack("{s:i}", "job", 1), "IG_ERR_FORMAT", "not a request");

    json_t *r = request(s, IG_MSG_STATUS, NULL, IG_MSG_STATUS_REPLY); /* still serving */
    assert_int_equal(json_array_size(json_object_get(r, "jobs")), 0);
    json_decref(r);
}

static void gpu_slots_are_gpu_indices(void **state) {
    void *w = dealer("g1"), *client = dealer("client");
    json_t *ack = request(w, IG_MSG_HELLO,
                          json_pack("{s:s, s:{s:i, s:[i, i]}, s:i}", "node", "g1", "slots", "cpus", 64, "gpus", 2, 5,
                                    "protocol", 1),
                          IG_MSG_HELLO_ACK);
    T.live[T.nlive].sock = w, T.live[T.nlive++].worker = geti(ack, "worker");
    json_decref(ack);
    int64_t job = submit(client, 4, 1, 0); /* 2 GPUs: the largest world dividing the batch is 2 */
    json_t *b = expect(w, IG_MSG_START_RANKS);
    assert_int_equal(geti(b, "world"), 2);
    json_t *ranks = json_object_get(b, "ranks");
    assert_int_equal(json_array_size(ranks), 2);
    assert_int_equal(geti(json_array_get(ranks, 0), "slot"), 2);
    assert_int_equal(geti(json_array_get(ranks, 1), "slot"), 5);
    assert_int_equal(geti(json_array_get(ranks, 1), "local_rank"), 1);
    json_decref(b);
    expect_state(client, job, "running", 1, 2);
}

/* Runs `ignis coordinator ARGS` to its exit (bounded): the exit status;
 * its stderr in T.dir/cli.err. */
static int run_cli(const char *listen, const char *dir) {
    char err[128];
    snprintf(err, sizeof err, "%s/cli.err", T.dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execl(ignis_path, "ignis", "coordinator", "--listen", listen, "--state", dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    for (double end = now_ms() + WAIT_MS; waitpid(pid, &status, WNOHANG) == 0; usleep(10000))
        if (now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("ignis coordinator --listen %s did not exit", listen);
        }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_cli_stderr(const char *frag) {
    char path[128], text[1024] = "";
    snprintf(path, sizeof path, "%s/cli.err", T.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    text[fread(text, 1, sizeof text - 1, f)] = 0;
    fclose(f);
    if (!strstr(text, frag)) fail_msg("stderr \"%s\" does not name \"%s\"", text, frag);
}

static void listen_is_loopback_only_and_exclusive(void **state) {
    const char *local[] = {"tcp://127.0.0.1:5555", "tcp://127.3.4.5:1", "tcp://localhost:5555",
                           "tcp://[::1]:5555", "ipc:///tmp/ignis.sock"};
    const char *remote[] = {"tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.0.0.1:5555", "tcp://127.evil.com:5555",
                            "tcp://eth0:5555", "tcp://127.0.0.1;10.0.0.1:5555", "tcp://127.0.0.1", "udp://127.0.0.1:5"};
    for (size_t i = 0; i < sizeof local / sizeof *local; i++) assert_true(ig__coordd_local_endpoint(local[i]));
    for (size_t i = 0; i < sizeof remote / sizeof *remote; i++)
        if (ig__coordd_local_endpoint(remote[i])) fail_msg("%s accepted as loopback", remote[i]);
    char other[96], endpoint[64];
    snprintf(other, sizeof other, "%s/other", T.dir);
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", free_port());
    assert_int_equal(run_cli("tcp://0.0.0.0:5555", other), 2);
    expect_cli_stderr("loopback only");
    void *c = dealer("client"); /* the daemon of setup() is up and holds its port and state */
    json_decref(request(c, IG_MSG_STATUS, NULL, IG_MSG_STATUS_REPLY));
    assert_int_equal(run_cli(T.endpoint, other), 1);
    expect_cli_stderr("Address already in use");
    assert_int_equal(run_cli(endpoint, T.dir), 1);
    expect_cli_stderr("in use by another coordinator");
    json_decref(request(c, IG_MSG_STATUS, NULL, IG_MSG_STATUS_REPLY)); /* unharmed */
}

int main(int argc, char **argv) {
    ignis_path = argc > 1 ? argv[1] : NULL;
    if (!ignis_path || access(ignis_path, X_OK)) {
        printf("test_coordd: no ignis binary given: skipped\n");
        return 77;
    }
    ctx = zmq_ctx_new();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(placement_rendezvous_and_success, setup, teardown),
        cmocka_unit_test_setup_teardown(signal_aborts_and_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(silent_worker_is_fenced_and_job_shrinks, setup, teardown),
        cmocka_unit_test_setup_teardown(kill9_restart_keeps_and_readopts, setup, teardown),
        cmocka_unit_test_setup_teardown(gpu_slots_are_gpu_indices, setup, teardown),
        cmocka_unit_test_setup_teardown(spec_run_section_sets_ranks_and_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(waiting_jobs_say_why, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_messages_get_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(listen_is_loopback_only_and_exclusive, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zmq_ctx_term(ctx);
    return rc;
}
#else
int main(void) {
    printf("test_coordd: no ZeroMQ in this build: skipped\n");
    return 77;
}
#endif

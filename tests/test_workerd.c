/* tests/test_workerd.c: the worker daemon, `ignis worker` (worker/daemon.c),
 * as a real process (the binary whose path is argv[1]; meson passes it)
 * against a fake coordinator played by the test: a ROUTER on
 * tcp://127.0.0.1:<free port> driven with ig_proto_*. Its ranks are
 * `/bin/sh rank.sh job.json`: the script records its environment and the
 * spec in its log, then exits with RANK + 3 (job 1) or sleeps (other jobs;
 * in job 2, rank 1 ignores SIGTERM, so only SIGKILL ends it).
 *
 * Every wait is bounded; after each test the worker is stopped (SIGTERM,
 * then SIGKILL) and any rank still alive is SIGKILLed by its process group
 * (the pid files the script writes), so nothing outlives the test. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "ignis/proto.h"
#include "tests/testutil.h"

#define GRACE_MS 1000 /* the worker's --grace */
#define WORKER_ID 7

static const char *ignis_path;
static char tmp[64], addr[64];
static void *ctx, *router;
static pid_t worker = -1;
static unsigned char peer[IG_PROTO_MAX_PEER];
static size_t peer_size;

static const char SCRIPT[] =
    "d=$(dirname \"$1\")\n"
    "echo $$ > \"$d/pid-$RANK\"\n"
    "echo \"rank $RANK of $WORLD_SIZE local $LOCAL_RANK/$LOCAL_WORLD_SIZE slot $IGNIS_SLOT"
    " job $IGNIS_JOB attempt $IGNIS_ATTEMPT coord $IGNIS_COORDINATOR nvls $NCCL_NVLS_ENABLE\"\n"
    "cat \"$1\"; echo\n"
    "case $IGNIS_JOB in\n"
    "1) exit $((RANK + 3)) ;;\n"
    "2) [ \"$RANK\" = 1 ] && trap '' TERM; echo sleeping; sleep 30 ;;\n"
    "*) echo sleeping; exec sleep 30 ;;\n"
    "esac\n";

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

static char *path_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *path_of(const char *fmt, ...) {
    static char path[4][PATH_MAX];
    static int i;
    char *p = path[i++ % 4], rel[PATH_MAX - 80];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(p, PATH_MAX, "%s/%s", tmp, rel);
    return p;
}

static const char *read_text(const char *path) {
    static char text[65536];
    text[0] = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return text;
    ssize_t n, total = 0;
    while ((n = read(fd, text + total, sizeof text - 1 - (size_t)total)) > 0) total += n;
    text[total] = 0;
    close(fd);
    return text;
}

/* Waits (at most timeout_ms) until the file holds `what`. */
static void wait_for_text(const char *path, const char *what, int timeout_ms) {
    double deadline = now_ms() + timeout_ms;
    while (!strstr(read_text(path), what)) {
        if (now_ms() > deadline)
            fail_msg("%s: no '%s' after %d ms; it holds:\n%s", path, what, timeout_ms, read_text(path));
        sleep_ms(10);
    }
}

/* Processes of group pgid that are not zombies (a zombie that init inherited
 * may wait a while to be reaped: it runs nothing). */
static int live_in_group(int pgid) {
    int n = 0;
    glob_t g;
    if (glob("/proc/[0-9]*/stat", 0, NULL, &g)) return 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *st = read_text(g.gl_pathv[i]), *p = strrchr(st, ')'); /* after "pid (comm)" */
        char state;
        int ppid, pgrp;
        if (p && sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid && state != 'Z') n++;
    }
    globfree(&g);
    return n;
}

/* ---- the fake coordinator ---- */

/* Binds the ROUTER: a free port the first time, the same port after. */
static void router_open(void) {
    router = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    if (!addr[0]) {
        assert_int_equal(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
        size_t len = sizeof addr;
        assert_int_equal(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, addr, &len), 0);
        return;
    }
    double deadline = now_ms() + 5000; /* the closed listener goes away asynchronously */
    while (zmq_bind(router, addr)) {
        if (errno != EADDRINUSE || now_ms() > deadline) fail_msg("bind %s: %s", addr, zmq_strerror(errno));
        sleep_ms(20);
    }
}

static void router_close(void) {
    if (router) zmq_close(router);
    router = NULL;
}

/* The next message of `type` within timeout_ms; HEARTBEATs, HELLOs (resent
 * until acknowledged) and LOG_DATAs (left unanswered: the worker resends
 * them later) in between are skipped, anything else fails. */
static ig_proto_msg expect(ig_msg_type type, int timeout_ms) {
    double deadline = now_ms() + timeout_ms;
    for (;;) {
        double left = deadline - now_ms();
        ig_proto_msg m;
        ig_status st = ig_proto_recv(router, true, left > 0 ? (int)left : 0, &m);
        if (st == IG_ERR_TIMEOUT)
            fail_msg("no %s within %d ms; the worker's log:\n%s", ig_msg_name(type), timeout_ms,
                     read_text(path_of("worker.log")));
        if (st) fail_msg("recv: %s", ig_last_error());
        memcpy(peer, m.peer, m.peer_size);
        peer_size = m.peer_size;
        if (m.type == type) return m;
        if (m.type != IG_MSG_HEARTBEAT && m.type != IG_MSG_HELLO && m.type != IG_MSG_LOG_DATA)
            fail_msg("expected %s, got %s", ig_msg_name(type), ig_msg_name(m.type));
        ig_proto_msg_clear(&m);
    }
}

static void send_msg(ig_msg_type type, json_t *body) {
    if (ig_proto_send(router, peer, peer_size, type, body, 1000)) fail_msg("send: %s", ig_last_error());
    json_decref(body);
}

static void send_raw(const void *a, size_t na, const void *b, size_t nb) {
    assert_true(zmq_send(router, peer, peer_size, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(router, a, na, b ? ZMQ_SNDMORE : 0) >= 0);
    if (b) assert_true(zmq_send(router, b, nb, 0) >= 0);
}

static int64_t field(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fail_msg("field '%s' missing", key);
    return json_integer_value(v);
}

/* HELLO -> HELLO_ACK {worker 7, heartbeat_ms 100}. */
static void register_worker(void) {
    ig_proto_msg m = expect(IG_MSG_HELLO, 5000);
    ig_proto_msg_clear(&m);
    send_msg(IG_MSG_HELLO_ACK, json_pack("{s:i, s:i}", "worker", WORKER_ID, "heartbeat_ms", 100));
}

static void start_ranks(int job, int world) {
    json_t *ranks = json_array();
    for (int r = 0; r < world; r++)
        json_array_append_new(ranks, json_pack("{s:i, s:i, s:i}", "rank", r, "local_rank", r, "slot", r));
    send_msg(IG_MSG_START_RANKS,
             json_pack("{s:i, s:i, s:{s:s, s:i}, s:i, s:o, s:s}", "job", job, "attempt", 0, "spec",
                       "marker", "spec-marker-123", "steps", 5, "world", world, "ranks", ranks,
                       "rendezvous", "tcp://127.0.0.1:9999"));
}

/* n RANK_EXITs within timeout_ms, by rank; at[r]: ms after t0. */
static void expect_exits(int n, int timeout_ms, double t0, json_t **exits, double *at) {
    for (int i = 0; i < n; i++) {
        ig_proto_msg m = expect(IG_MSG_RANK_EXIT, timeout_ms);
        int r = (int)field(m.body, "rank");
        assert_true(r >= 0 && r < n && !exits[r]);
        exits[r] = json_incref(m.body);
        if (at) at[r] = now_ms() - t0;
        double t = json_number_value(json_object_get(m.body, "time"));
        assert_true(fabs(t - wall_s()) < 60);
        ig_proto_msg_clear(&m);
    }
}

/* ---- the worker process ---- */

static void start_worker(void) {
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "/bin/sh %s", path_of("rank.sh"));
    worker = fork();
    assert_true(worker >= 0);
    if (worker == 0) {
        int fd = open(path_of("worker.log"), O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1), dup2(fd, 2);
        execl(ignis_path, "ignis", "worker", "--coordinator", addr, "--cpus", "3", "--name", "node-a",
              "--gpus", "0,2", "--work-dir", tmp, "--rank-command", cmd, "--grace", "1", (char *)NULL);
        _exit(127);
    }
}

/* Sends sig and waits (at most timeout_ms) for the worker to exit; returns
 * its wait status, or -1 when it did not exit in time (then it is SIGKILLed). */
static int stop_worker(int sig, int timeout_ms) {
    int status = -1;
    if (worker < 0) return status;
    kill(worker, sig);
    double deadline = now_ms() + timeout_ms;
    while (waitpid(worker, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(worker, SIGKILL);
            waitpid(worker, NULL, 0);
            status = -1;
            break;
        }
        sleep_ms(5);
    }
    worker = -1;
    return status;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    (void)state;
    if (!ignis_path) return 0;
    strcpy(tmp, "/tmp/ignis-workerd-XXXXXX");
    if (!mkdtemp(tmp)) return -1;
    FILE *f = fopen(path_of("rank.sh"), "w");
    fputs(SCRIPT, f);
    fclose(f);
    addr[0] = 0;
    router_open();
    start_worker();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (!ignis_path) return 0;
    stop_worker(SIGKILL, 5000);
    glob_t g;
    if (!glob(path_of("job-*/attempt-*/pid-*"), 0, NULL, &g)) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            int pid = atoi(read_text(g.gl_pathv[i]));
            if (pid > 0) kill(-pid, SIGKILL);
        }
        globfree(&g);
    }
    router_close();
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- the tests ---- */

static void hello_carries_slots_is_resent_until_acked_then_heartbeats_follow(void **state) {
    (void)state;
    if (!ignis_path) skip();
    ig_proto_msg m = expect(IG_MSG_HELLO, 5000);
    assert_string_equal(json_string_value(json_object_get(m.body, "node")), "node-a");
    const json_t *slots = json_object_get(m.body, "slots");
    assert_int_equal(field(slots, "cpus"), 3);
    const json_t *gpus = json_object_get(slots, "gpus");
    assert_int_equal(json_array_size(gpus), 2);
    assert_int_equal(json_integer_value(json_array_get(gpus, 0)), 0);
    assert_int_equal(json_integer_value(json_array_get(gpus, 1)), 2);
    assert_int_equal(field(m.body, "protocol"), IG_PROTO_VERSION);
    assert_null(json_object_get(m.body, "worker")); /* first contact */
    assert_int_equal(json_array_size(json_object_get(m.body, "running")), 0);
    ig_proto_msg_clear(&m);

    /* not acknowledged: it comes again, every second (the first two may be
     * closer: one goes out as soon as the connection is up) */
    m = expect(IG_MSG_HELLO, 2500);
    ig_proto_msg_clear(&m);
    double t0 = now_ms();
    m = expect(IG_MSG_HELLO, 2500);
    ig_proto_msg_clear(&m);
    double dt = now_ms() - t0;
    assert_true(dt > 700 && dt < 2500);
    send_msg(IG_MSG_HELLO_ACK, json_pack("{s:i, s:i}", "worker", WORKER_ID, "heartbeat_ms", 100));

    t0 = now_ms();
    for (int i = 0; i < 5; i++) {
        m = expect(IG_MSG_HEARTBEAT, 1000);
        assert_int_equal(field(m.body, "worker"), WORKER_ID);
        assert_int_equal(json_array_size(json_object_get(m.body, "ranks")), 0);
        ig_proto_msg_clear(&m);
    }
    dt = now_ms() - t0;
    assert_true(dt > 350 && dt < 3000); /* every 100 ms, as HELLO_ACK said */
    assert_true(WIFEXITED(stop_worker(SIGTERM, 3000)));
}

static void start_ranks_runs_each_rank_with_its_identity_and_reports_its_exit_code(void **state) {
    (void)state;
    if (!ignis_path) skip();
    register_worker();
    start_ranks(1, 2);
    json_t *exits[2] = {0};
    expect_exits(2, 5000, now_ms(), exits, NULL);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(field(exits[r], "job"), 1);
        assert_int_equal(field(exits[r], "attempt"), 0);
        assert_int_equal(field(exits[r], "exit_code"), r + 3);
        assert_null(json_object_get(exits[r], "signal"));
        json_decref(exits[r]);
        char line[256];
        snprintf(line, sizeof line,
                 "rank %d of 2 local %d/2 slot %d job 1 attempt 0 coord tcp://127.0.0.1:9999 nvls 0", r, r, r);
        wait_for_text(path_of("job-1/attempt-0/rank-%d.log", r), line, 3000);
        wait_for_text(path_of("job-1/attempt-0/rank-%d.log", r), "spec-marker-123", 3000);
    }
    json_t *spec = json_load_file(path_of("job-1/attempt-0/job.json"), 0, NULL);
    assert_non_null(spec);
    assert_string_equal(json_string_value(json_object_get(spec, "marker")), "spec-marker-123");
    json_decref(spec);
    int status = stop_worker(SIGTERM, 3000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void abort_terminates_then_kills_after_the_grace(void **state) {
    (void)state;
    if (!ignis_path) skip();
    register_worker();
    start_ranks(2, 2);
    for (int r = 0; r < 2; r++) wait_for_text(path_of("job-2/attempt-0/rank-%d.log", r), "sleeping", 5000);
    /* a heartbeat lists both running ranks */
    ig_proto_msg m = expect(IG_MSG_HEARTBEAT, 1000);
    assert_int_equal(json_array_size(json_object_get(m.body, "ranks")), 2);
    ig_proto_msg_clear(&m);

    send_msg(IG_MSG_ABORT, json_pack("{s:i, s:i, s:s}", "job", 2, "attempt", 0, "reason", "test"));
    double t0 = now_ms(), at[2];
    json_t *exits[2] = {0};
    expect_exits(2, GRACE_MS + 3000, t0, exits, at);
    assert_int_equal(field(exits[0], "signal"), SIGTERM);
    assert_int_equal(field(exits[1], "signal"), SIGKILL); /* it ignored SIGTERM */
    assert_true(at[0] < GRACE_MS - 200);
    assert_true(at[1] > GRACE_MS - 200 && at[1] < GRACE_MS + 2000);
    for (int r = 0; r < 2; r++) json_decref(exits[r]);
    int status = stop_worker(SIGTERM, 3000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void a_restarted_coordinator_gets_hello_again_with_the_running_rank(void **state) {
    (void)state;
    if (!ignis_path) skip();
    register_worker();
    start_ranks(3, 1);
    wait_for_text(path_of("job-3/attempt-0/rank-0.log"), "sleeping", 5000);

    router_close(); /* the coordinator goes away ... */
    sleep_ms(300);
    router_open(); /* ... and comes back on the same address */
    ig_proto_msg m = expect(IG_MSG_HELLO, 5000);
    assert_int_equal(field(m.body, "worker"), WORKER_ID);
    const json_t *running = json_object_get(m.body, "running");
    assert_int_equal(json_array_size(running), 1);
    assert_int_equal(field(json_array_get(running, 0), "job"), 3);
    assert_int_equal(field(json_array_get(running, 0), "attempt"), 0);
    assert_int_equal(field(json_array_get(running, 0), "rank"), 0);
    ig_proto_msg_clear(&m);
    send_msg(IG_MSG_HELLO_ACK, json_pack("{s:i, s:i}", "worker", WORKER_ID, "heartbeat_ms", 100));

    /* the new coordinator is served: heartbeats, abort, exit */
    m = expect(IG_MSG_HEARTBEAT, 1000);
    assert_int_equal(json_array_size(json_object_get(m.body, "ranks")), 1);
    ig_proto_msg_clear(&m);
    send_msg(IG_MSG_ABORT, json_pack("{s:i, s:i, s:s}", "job", 3, "attempt", 0, "reason", "test"));
    json_t *exits[1] = {0};
    expect_exits(1, 3000, now_ms(), exits, NULL);
    assert_int_equal(field(exits[0], "signal"), SIGTERM);
    json_decref(exits[0]);
    int status = stop_worker(SIGTERM, 3000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void an_exit_while_the_coordinator_is_away_is_reported_after_it_returns(void **state) {
    (void)state;
    if (!ignis_path) skip();
    register_worker();
    start_ranks(3, 1);
    wait_for_text(path_of("job-3/attempt-0/rank-0.log"), "sleeping", 5000);
    router_close();
    sleep_ms(300);
    kill(-atoi(read_text(path_of("job-3/attempt-0/pid-0"))), SIGKILL); /* dies meanwhile */
    sleep_ms(300);
    router_open();
    ig_proto_msg m = expect(IG_MSG_HELLO, 5000);
    assert_int_equal(json_array_size(json_object_get(m.body, "running")), 0);
    ig_proto_msg_clear(&m);
    send_msg(IG_MSG_HELLO_ACK, json_pack("{s:i}", "worker", WORKER_ID));
    json_t *exits[1] = {0};
    expect_exits(1, 3000, now_ms(), exits, NULL);
    assert_int_equal(field(exits[0], "job"), 3);
    assert_int_equal(field(exits[0], "signal"), SIGKILL);
    json_decref(exits[0]);
    int status = stop_worker(SIGTERM, 3000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void ranks_that_cannot_start_are_reported_as_exiting_with_127(void **state) {
    (void)state;
    if (!ignis_path) skip();
    FILE *f = fopen(path_of("job-9"), "w"); /* a file where the job's directory should go */
    fclose(f);
    register_worker();
    start_ranks(9, 2);
    json_t *exits[2] = {0};
    expect_exits(2, 3000, now_ms(), exits, NULL);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(field(exits[r], "job"), 9);
        assert_int_equal(field(exits[r], "exit_code"), 127);
        json_decref(exits[r]);
    }
    assert_non_null(strstr(read_text(path_of("worker.log")), "job 9 attempt 0: cannot write"));
    ig_proto_msg m = expect(IG_MSG_HEARTBEAT, 1000); /* and it goes on */
    assert_int_equal(json_array_size(json_object_get(m.body, "ranks")), 0);
    ig_proto_msg_clear(&m);
    int status = stop_worker(SIGTERM, 3000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void malformed_messages_are_logged_and_the_worker_keeps_serving(void **state) {
    (void)state;
    if (!ignis_path) skip();
    register_worker();
    unsigned char hdr[8] = {'I', 'G', 'N', 'S', 0, IG_PROTO_VERSION, 0, IG_MSG_START_RANKS};
    send_raw("garbage", 7, NULL, 0);                 /* one frame, no magic */
    send_raw(hdr, sizeof hdr, "{not json", 9);        /* bad JSON */
    send_raw(hdr, sizeof hdr, "{\"job\": -1}", 11);   /* bad fields */
    send_msg(IG_MSG_SUBMIT_ACK, json_pack("{s:i}", "job", 1)); /* not for a worker */

    ig_proto_msg m = expect(IG_MSG_HEARTBEAT, 1000);
    ig_proto_msg_clear(&m);
    start_ranks(1, 2); /* still served */
    json_t *exits[2] = {0};
    expect_exits(2, 5000, now_ms(), exits, NULL);
    assert_int_equal(field(exits[1], "exit_code"), 4);
    json_decref(exits[0]), json_decref(exits[1]);
    const char *log = read_text(path_of("worker.log"));
    assert_non_null(strstr(log, "malformed message from the coordinator: header"));
    assert_non_null(strstr(log, "START_RANKS: body: not JSON"));
    assert_non_null(strstr(log, "START_RANKS: field 'job'"));
    assert_non_null(strstr(log, "unexpected SUBMIT_ACK"));
    int status = stop_worker(SIGTERM, 3000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void sigterm_aborts_the_ranks_reports_them_and_exits_zero_within_the_grace(void **state) {
    (void)state;
    if (!ignis_path) skip();
    register_worker();
    start_ranks(2, 2);
    for (int r = 0; r < 2; r++) wait_for_text(path_of("job-2/attempt-0/rank-%d.log", r), "sleeping", 5000);
    int pids[2];
    for (int r = 0; r < 2; r++) {
        pids[r] = atoi(read_text(path_of("job-2/attempt-0/pid-%d", r)));
        assert_true(live_in_group(pids[r]) > 0);
    }

    double t0 = now_ms();
    kill(worker, SIGTERM);
    json_t *exits[2] = {0};
    expect_exits(2, GRACE_MS + 3000, t0, exits, NULL);
    assert_int_equal(field(exits[0], "signal"), SIGTERM);
    assert_int_equal(field(exits[1], "signal"), SIGKILL);
    json_decref(exits[0]), json_decref(exits[1]);
    int status = stop_worker(0, GRACE_MS + 3000); /* signal 0: only wait */
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(now_ms() - t0 < GRACE_MS + 3000);
    for (int r = 0; r < 2; r++) assert_int_equal(live_in_group(pids[r]), 0); /* nothing left */
}

/* The next LOG_DATA within timeout_ms (HEARTBEATs, HELLOs and RANK_EXITs
 * skipped; *exits counts the RANK_EXITs) and its data, decoded into text. */
static ig_proto_msg expect_log_data(int timeout_ms, int *exits, char *text, size_t cap) {
    double deadline = now_ms() + timeout_ms;
    for (;;) {
        double left = deadline - now_ms();
        ig_proto_msg m;
        ig_status st = ig_proto_recv(router, true, left > 0 ? (int)left : 0, &m);
        if (st) fail_msg("no LOG_DATA within %d ms: %s", timeout_ms, ig_last_error());
        if (m.type == IG_MSG_LOG_DATA) {
            const json_t *d = json_object_get(m.body, "data");
            size_t n;
            ig_status st =
                ig_proto_b64_decode(json_string_value(d), json_string_length(d), text, cap - 1, &n);
            assert_int_equal(st, IG_OK);
            text[n] = 0;
            return m;
        }
        if (m.type == IG_MSG_RANK_EXIT) ++*exits;
        else if (m.type != IG_MSG_HEARTBEAT && m.type != IG_MSG_HELLO)
            fail_msg("expected LOG_DATA, got %s", ig_msg_name(m.type));
        ig_proto_msg_clear(&m);
    }
}

static void ack_log(int job, int64_t size, bool final) {
    send_msg(IG_MSG_LOG_ACK, json_pack("{s:i, s:i, s:i, s:I, s:b}", "job", job, "attempt", 0, "rank", 0,
                                       "size", (json_int_t)size, "final", final));
}

/* A rank's log goes to the coordinator as LOG_DATA from the size it
 * acknowledged (also a smaller one, and again after a re-registration),
 * ending with a final chunk once the rank is gone; a refused chunk (ERROR
 * "LOG_DATA: ...") ends forwarding of that rank and nothing else. */
static void rank_logs_are_forwarded_from_the_acknowledged_size(void **state) {
    (void)state;
    if (!ignis_path) skip();
    register_worker();
    start_ranks(4, 1);
    const char *path = path_of("job-4/attempt-0/rank-0.log");
    wait_for_text(path, "sleeping", 5000);
    char file[4096], text[4096];
    snprintf(file, sizeof file, "%s", read_text(path));
    int64_t size = (int64_t)strlen(file);
    int exits = 0;
    ig_proto_msg m = expect_log_data(3000, &exits, text, sizeof text);
    assert_int_equal(field(m.body, "worker"), WORKER_ID);
    assert_int_equal(field(m.body, "job"), 4);
    assert_int_equal(field(m.body, "rank"), 0);
    assert_int_equal(field(m.body, "offset"), 0);
    assert_false(json_is_true(json_object_get(m.body, "final")));
    assert_string_equal(text, file);
    ig_proto_msg_clear(&m);

    ack_log(4, 5, false); /* the coordinator has 5 bytes only: the rest again, at once */
    m = expect_log_data(1000, &exits, text, sizeof text);
    assert_int_equal(field(m.body, "offset"), 5);
    assert_string_equal(text, file + 5);
    ig_proto_msg_clear(&m);

    router_close(); /* unanswered; the coordinator goes away and comes back */
    sleep_ms(300);
    router_open();
    register_worker();
    m = expect_log_data(3000, &exits, text, sizeof text);
    assert_int_equal(field(m.body, "offset"), 5); /* from the acknowledged size */
    assert_string_equal(text, file + 5);
    ig_proto_msg_clear(&m);
    ack_log(4, size, false);

    send_msg(IG_MSG_ABORT, json_pack("{s:i, s:i, s:s}", "job", 4, "attempt", 0, "reason", "test"));
    m = expect_log_data(3000, &exits, text, sizeof text);
    assert_int_equal(field(m.body, "offset"), size);
    assert_true(json_is_true(json_object_get(m.body, "final")));
    assert_string_equal(text, "");
    ig_proto_msg_clear(&m);
    ack_log(4, size, true);

    start_ranks(5, 1); /* refused: forwarding of that rank ends, the worker stays registered */
    m = expect_log_data(3000, &exits, text, sizeof text);
    assert_int_equal(field(m.body, "job"), 5);
    ig_proto_msg_clear(&m);
    send_msg(IG_MSG_ERROR,
             json_pack("{s:s, s:s, s:s}", "code", "IG_ERR_INVALID", "message", "LOG_DATA: job 5: no such job",
                       "request", "LOG_DATA"));
    wait_for_text(path_of("worker.log"), "refused its log (LOG_DATA: job 5: no such job)", 3000);
    for (double end = now_ms() + 1500; now_ms() < end;) { /* neither LOG_DATA (job 4: done) nor HELLO */
        if (ig_proto_recv(router, true, 100, &m)) continue;
        if (m.type == IG_MSG_LOG_DATA || m.type == IG_MSG_HELLO)
            fail_msg("a %s after the end", ig_msg_name(m.type));
        exits += m.type == IG_MSG_RANK_EXIT;
        ig_proto_msg_clear(&m);
    }
    assert_int_equal(exits, 1); /* job 4's */
    int status = stop_worker(SIGTERM, 3000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(int argc, char **argv) {
    ignis_path = argc > 1 ? argv[1] : NULL;
    signal(SIGPIPE, SIG_IGN);
    ctx = zmq_ctx_new();
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(hello_carries_slots_is_resent_until_acked_then_heartbeats_follow),
        T(start_ranks_runs_each_rank_with_its_identity_and_reports_its_exit_code),
        T(abort_terminates_then_kills_after_the_grace),
        T(a_restarted_coordinator_gets_hello_again_with_the_running_rank),
        T(an_exit_while_the_coordinator_is_away_is_reported_after_it_returns),
        T(ranks_that_cannot_start_are_reported_as_exiting_with_127),
        T(malformed_messages_are_logged_and_the_worker_keeps_serving),
        T(sigterm_aborts_the_ranks_reports_them_and_exits_zero_within_the_grace),
        T(rank_logs_are_forwarded_from_the_acknowledged_size),
    };
    int rc = TU_RUN(tests);
    zmq_ctx_term(ctx);
    return rc;
}

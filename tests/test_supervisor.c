/* tests/test_supervisor.c: the worker's rank supervisor (worker/supervisor.c)
 * with real processes (sh, sleep) on a real libuv loop. Every run of the loop
 * is bounded by a guard timer (unref'd, so it never keeps the loop alive):
 * when it fires, the test fails and every rank is SIGKILLed, so a test never
 * hangs. After each test the loop has no handle left and the test process has
 * no child left to reap (no zombies). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/testutil.h"
#include "worker/supervisor.h"

#define GUARD_MS 15000

static char tmp[64]; /* a scratch directory for this run */

typedef struct harness {
    uv_loop_t loop;
    sup *s;
    uv_timer_t guard;
    bool timed_out;
    int n_exits;
    sup_exit exits[8];
    uint64_t exit_ns[8]; /* uv_hrtime() when each exit was reported */
    char out[262144];    /* every rank's output, as on_output saw it */
    size_t out_len;
    int n_ends; /* on_output's "the log is complete" calls */
    /* abort `abort_job` once the output holds `abort_after` lines */
    int abort_after, abort_grace, aborted;
    int64_t abort_job;
    uint64_t abort_ns;
    /* once `then_after` exits: count the running ranks, abort job `then_job`
     * (every attempt), then all, with no grace; count what each signalled */
    int then_after, then_running, then_job_aborted, then_all_aborted;
    int64_t then_job;
    /* how many exits had been reported when "late" first came out (-1: never) */
    int exits_before_late;
} harness;

static harness H;

static void on_exit_cb(sup *s, const sup_exit *e, void *data) {
    harness *h = data;
    if (h->n_exits < 8) {
        h->exit_ns[h->n_exits] = uv_hrtime();
        h->exits[h->n_exits++] = *e;
    }
    if (h->then_after && h->n_exits == h->then_after) {
        h->then_running = sup_running(s);
        h->then_job_aborted = sup_abort_job(s, h->then_job, -1, 0);
        h->then_all_aborted = sup_abort_all(s, 0);
    }
}

static void on_output_cb(sup *s, const sup_rank_id *id, const char *buf, size_t len, void *data) {
    harness *h = data;
    h->n_ends += len == 0;
    size_t n = len < sizeof h->out - 1 - h->out_len ? len : sizeof h->out - 1 - h->out_len;
    memcpy(h->out + h->out_len, buf, n);
    h->out_len += n;
    h->out[h->out_len] = 0;
    if (h->exits_before_late < 0 && strstr(h->out, "late")) h->exits_before_late = h->n_exits;
    int lines = 0;
    for (const char *p = h->out; (p = strchr(p, '\n')); p++) lines++;
    if (h->abort_after && !h->aborted && lines >= h->abort_after) {
        h->abort_ns = uv_hrtime();
        h->aborted = sup_abort_job(s, h->abort_job, 0, h->abort_grace);
        sup_abort_job(s, h->abort_job, 0, 60000); /* must not push the SIGKILL later */
    }
}

static void on_guard(uv_timer_t *t) {
    harness *h = t->data;
    h->timed_out = true;
    sup_abort_all(h->s, 0);
}

static harness *h_init(void) {
    harness *h = &H;
    memset(h, 0, sizeof *h);
    h->exits_before_late = -1;
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(sup_new(&h->loop, on_exit_cb, on_output_cb, h, &h->s), IG_OK);
    uv_timer_init(&h->loop, &h->guard);
    uv_unref((uv_handle_t *)&h->guard);
    h->guard.data = h;
    return h;
}

/* Runs the loop until every rank has exited and its log drained. */
static void h_run(harness *h) {
    uv_timer_start(&h->guard, on_guard, GUARD_MS, 0);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&h->guard);
    if (h->timed_out) fail_msg("the ranks were still running after %d ms", GUARD_MS);
    assert_int_equal(sup_count(h->s), 0);
}

/* Closes everything, and checks that no child is left to reap. */
static void h_fini(harness *h) {
    uv_close((uv_handle_t *)&h->guard, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    sup_free(h->s);
    int st;
    errno = 0;
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static char *tmp_path(const char *name) {
    static char path[4][PATH_MAX];
    static int i;
    char *p = path[i++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", tmp, name);
    return p;
}

static sup_rank_spec spec(int64_t job, int rank, char **argv, const char *log) {
    return (sup_rank_spec){.id = {.job = job, .attempt = 0, .rank = rank}, .local_rank = rank,
                           .world = 4, .local_world = 4, .argv = argv, .log_path = log};
}

static void start(harness *h, sup_rank_spec sp) {
    if (sup_start_rank(h->s, &sp) != IG_OK) fail_msg("sup_start_rank: %s", ig_last_error());
}

static const sup_exit *exit_of(harness *h, int64_t job, int rank) {
    for (int i = 0; i < h->n_exits; i++)
        if (h->exits[i].id.job == job && h->exits[i].id.rank == rank) return &h->exits[i];
    fail_msg("no exit reported for job %lld rank %d", (long long)job, rank);
    return NULL;
}

static char *read_file(const char *path, size_t *len) {
    static char text[262144];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n, total = 0;
    while ((n = read(fd, text + total, sizeof text - 1 - (size_t)total)) > 0) total += n;
    close(fd);
    text[total] = 0;
    *len = (size_t)total;
    return text;
}

/* A process is gone when /proc has no entry for it, or only a zombie that
 * init has yet to reap. */
static bool process_gone(int pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

static void exit_codes_and_times_are_reported(void **state) {
    harness *h = h_init();
    char *ok[] = {"sh", "-c", "exit 0", NULL}, *three[] = {"sh", "-c", "exit 3", NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    start(h, spec(1, 0, ok, tmp_path("codes0.log")));
    start(h, spec(1, 1, three, tmp_path("codes1.log")));
    assert_int_equal(sup_running(h->s), 2);
    h_run(h);
    clock_gettime(CLOCK_REALTIME, &t1);
    assert_int_equal(h->n_exits, 2);
    const sup_exit *e0 = exit_of(h, 1, 0), *e3 = exit_of(h, 1, 1);
    assert_int_equal(e0->exit_code, 0);
    assert_int_equal(e0->term_signal, 0);
    assert_int_equal(e3->exit_code, 3);
    assert_int_equal(e3->term_signal, 0);
    assert_true(e0->pid > 0 && e3->pid > 0 && e0->pid != e3->pid);
    double lo = (double)t0.tv_sec + t0.tv_nsec * 1e-9, hi = (double)t1.tv_sec + t1.tv_nsec * 1e-9;
    assert_true(e3->time >= lo && e3->time <= hi);
    h_fini(h);
}

static void a_death_by_signal_is_reported_with_the_signal(void **state) {
    harness *h = h_init();
    char *argv[] = {"sh", "-c", "kill -USR1 $$; sleep 5", NULL};
    start(h, spec(2, 0, argv, tmp_path("signal.log")));
    h_run(h);
    assert_int_equal(h->n_exits, 1);
    assert_int_equal(h->exits[0].term_signal, SIGUSR1);
    assert_int_equal(h->exits[0].exit_code, 0);
    h_fini(h);
}

/* stdout and stderr, in order, appended after what the log held, including
 * 60000 bytes written in the instant before the exit (less than a pipe
 * holds, so the child never waits for the reader: they are read after the
 * exit). on_output sees the same bytes. */
static void stdout_and_stderr_reach_the_log_up_to_the_exit(void **state) {
    harness *h = h_init();
    const char *log = tmp_path("output.log");
    FILE *f = fopen(log, "w");
    assert_non_null(f);
    fputs("before\n", f);
    fclose(f);
    char *argv[] = {"sh", "-c",
                    "echo to-stdout; echo to-stderr >&2; echo again-stdout;"
                    "head -c 60000 /dev/zero | tr '\\000' x; printf 'last words'; exit 4",
                    NULL};
    start(h, spec(3, 0, argv, log));
    h_run(h);
    assert_int_equal(h->n_exits, 1);
    assert_int_equal(h->exits[0].exit_code, 4);
    size_t len;
    const char *text = read_file(log, &len);
    const char *head = "before\nto-stdout\nto-stderr\nagain-stdout\n";
    assert_int_equal(len, strlen(head) + 60000 + strlen("last words"));
    assert_memory_equal(text, head, strlen(head));
    for (size_t i = strlen(head); i < strlen(head) + 60000; i++)
        if (text[i] != 'x') fail_msg("log byte %zu is 0x%02x, not 'x'", i, (unsigned char)text[i]);
    assert_string_equal(text + len - strlen("last words"), "last words");
    assert_int_equal(h->out_len, len - strlen("before\n"));
    assert_memory_equal(h->out, text + strlen("before\n"), h->out_len);
    assert_int_equal(h->n_ends, 1); /* the end, once, after the last byte */
    h_fini(h);
}

/* The exit is reported at once and the log keeps draining after it: here a
 * process that left the rank's group (setsid) writes after the rank exited,
 * and holds the pipe open; SUP_DRAIN_MS after the exit the pipe is closed. */
static void the_log_drains_after_the_exit_until_the_deadline(void **state) {
    harness *h = h_init();
    char *argv[] = {"sh", "-c",
                    "setsid sh -c 'echo $$; sleep 0.5; echo late; exec sleep 30' & sleep 0.1; exit 0",
                    NULL};
    start(h, spec(4, 0, argv, tmp_path("drain.log")));
    h_run(h);
    uint64_t end_ns = uv_hrtime();
    int escaped = atoi(h->out);
    assert_true(escaped > 0);
    kill(escaped, SIGKILL); /* not our child: init reaps it */
    assert_int_equal(h->n_exits, 1);
    assert_int_equal(h->exits[0].exit_code, 0);
    assert_int_equal(h->exits_before_late, 1);
    size_t len;
    assert_non_null(strstr(read_file(tmp_path("drain.log"), &len), "\nlate\n"));
    assert_int_equal(h->n_ends, 1); /* the deadline completes the log */
    double drain_ms = (double)(end_ns - h->exit_ns[0]) / 1e6;
    if (drain_ms < SUP_DRAIN_MS - 50 || drain_ms > SUP_DRAIN_MS + 3000)
        fail_msg("the log closed %.0f ms after the exit (deadline %d ms)", drain_ms, SUP_DRAIN_MS);
    h_fini(h);
}

/* The identity overrides the spec's extras, which override the worker's own
 * environment; NCCL_NVLS_ENABLE is 0 whatever the worker has; the rank runs
 * in its directory. */
static void the_environment_and_directory_reach_the_rank(void **state) {
    harness *h = h_init();
    setenv("IG_SUP_TEST_INHERITED", "inherited", 1);
    setenv("IG_SUP_TEST_EXTRA", "from-worker", 1);
    setenv("NCCL_NVLS_ENABLE", "1", 1);
    char *argv[] = {"sh", "-c",
                    "echo \"$RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $NCCL_NVLS_ENABLE "
                    "$MASTER_ADDR $MASTER_PORT $IGNIS_JOB $IGNIS_ATTEMPT $IGNIS_COORDINATOR "
                    "$IG_SUP_TEST_EXTRA $IG_SUP_TEST_INHERITED\"; pwd; env | grep -c '^RANK='",
                    NULL};
    char *extra[] = {"RANK=99", "IG_SUP_TEST_EXTRA=from-spec", NULL};
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/rankdir", tmp);
    assert_int_equal(mkdir(dir, 0755), 0);
    sup_rank_spec sp = spec(42, 2, argv, tmp_path("env.log"));
    sp.id.attempt = 1;
    sp.local_rank = 1;
    sp.world = 8;
    sp.local_world = 2;
    sp.master_addr = "127.0.0.1";
    sp.master_port = 29500;
    sp.coordinator = "tcp://127.0.0.1:7070";
    sp.env = extra;
    sp.cwd = dir;
    start(h, sp);
    h_run(h);
    unsetenv("IG_SUP_TEST_INHERITED");
    unsetenv("IG_SUP_TEST_EXTRA");
    unsetenv("NCCL_NVLS_ENABLE");
    char real[PATH_MAX], want[2 * PATH_MAX];
    assert_non_null(realpath(dir, real));
    snprintf(want, sizeof want,
             "2 8 1 2 0 127.0.0.1 29500 42 1 tcp://127.0.0.1:7070 from-spec inherited\n%s\n1\n",
             real);
    assert_string_equal(h->out, want);
    assert_int_equal(h->exits[0].exit_code, 0);
    h_fini(h);
}

/* Three ranks of job 7 attempt 0; one ignores SIGTERM. The two others die
 * of SIGTERM; the third is SIGKILLed once the grace is over. A rank of
 * attempt 1 of job 7 and one of job 8 are untouched; then aborting job 7 (any
 * attempt) reaches the first, and sup_abort_all both. */
static void abort_terms_then_kills_after_the_grace(void **state) {
    harness *h = h_init();
    const int grace = 500;
    char *sleep30[] = {"sleep", "30", NULL};
    char *stubborn[] = {"sh", "-c", "trap '' TERM; echo ready; sleep 30", NULL};
    start(h, spec(7, 0, sleep30, tmp_path("abort0.log")));
    start(h, spec(7, 1, stubborn, tmp_path("abort1.log")));
    start(h, spec(7, 2, sleep30, tmp_path("abort2.log")));
    sup_rank_spec next = spec(7, 0, sleep30, tmp_path("attempt1.log"));
    next.id.attempt = 1;
    start(h, next);
    start(h, spec(8, 0, sleep30, tmp_path("other.log")));
    h->abort_after = 1; /* "ready": the trap is set */
    h->abort_job = 7;
    h->abort_grace = grace;
    h->then_after = 3;
    h->then_job = 7;
    h_run(h);
    assert_int_equal(h->aborted, 3);
    assert_int_equal(h->n_exits, 5);
    assert_int_equal(h->then_running, 2);
    assert_int_equal(h->then_job_aborted, 1);
    assert_int_equal(h->then_all_aborted, 2);
    for (int i = 0; i < 3; i++) {
        const sup_exit *e = &h->exits[i];
        double after_ms = (double)(h->exit_ns[i] - h->abort_ns) / 1e6;
        assert_int_equal(e->id.job, 7);
        assert_int_equal(e->id.attempt, 0);
        if (e->id.rank == 1) {
            assert_int_equal(e->term_signal, SIGKILL);
            if (after_ms < grace - 50 || after_ms > grace + 3000)
                fail_msg("the SIGTERM-proof rank died %.0f ms after the abort (grace %d)", after_ms,
                         grace);
        } else {
            assert_int_equal(e->term_signal, SIGTERM); /* so, before the grace was over */
        }
    }
    assert_int_equal(h->exits[3].term_signal, SIGKILL);
    assert_int_equal(h->exits[4].term_signal, SIGKILL);
    assert_int_equal(exit_of(h, 8, 0)->term_signal, SIGKILL);
    h_fini(h);
}

/* Each line of `out` is the pid of a child of a rank: all are gone. */
static void expect_gone(const char *out, int count) {
    int seen = 0;
    for (const char *p = out; *p; p = strchr(p, '\n') + 1) {
        int pid = atoi(p);
        seen++;
        if (!process_gone(pid)) {
            usleep(200000); /* a SIGKILL is delivered at once, but let the scheduler run */
            if (!process_gone(pid)) fail_msg("the rank's child %d outlived the rank", pid);
        }
    }
    assert_int_equal(seen, count);
}

/* An aborted rank's children die with it: one that SIGTERM kills, and one
 * that ignores SIGTERM (killed when its parent, the rank, has exited). Each
 * prints its pid; the second once its trap is set. */
static void abort_kills_the_ranks_children_too(void **state) {
    harness *h = h_init();
    char *argv[] = {"sh", "-c",
                    "sleep 30 & echo $!; sh -c 'trap \"\" TERM; echo $$; exec sleep 30' & wait", NULL};
    start(h, spec(9, 0, argv, tmp_path("children.log")));
    h->abort_after = 2;
    h->abort_job = 9;
    h->abort_grace = 5000;
    h_run(h);
    assert_int_equal(h->aborted, 1);
    assert_int_equal(h->exits[0].term_signal, SIGTERM);
    expect_gone(h->out, 2);
    h_fini(h);
}

/* A rank that exits by itself leaves nothing running either. */
static void a_ranks_exit_kills_its_leftover_children(void **state) {
    harness *h = h_init();
    char *argv[] = {"sh", "-c", "sleep 30 & echo $!; exit 0", NULL};
    start(h, spec(10, 0, argv, tmp_path("leftover.log")));
    h_run(h);
    assert_int_equal(h->exits[0].exit_code, 0);
    expect_gone(h->out, 1);
    h_fini(h);
}

static void expect_start_error(harness *h, sup_rank_spec sp, const char *frag1, const char *frag2) {
    ig_status st = sup_start_rank(h->s, &sp);
    const char *msg = ig_last_error();
    if (st != IG_ERR_IO || !strstr(msg, frag1) || !strstr(msg, frag2) || !strstr(msg, "rank 3"))
        fail_msg("gave %s \"%s\", wanted IG_ERR_IO naming rank 3, \"%s\" and \"%s\"",
                 ig_status_name(st), msg, frag1, frag2);
}

/* A missing program, directory or log directory is an error that names it;
 * no exit is reported for such a rank and nothing is left open. */
static void a_rank_that_cannot_start_is_a_clear_error(void **state) {
    harness *h = h_init();
    char *missing[] = {"ignis-no-such-program", NULL}, *ok[] = {"true", NULL};
    expect_start_error(h, spec(11, 3, missing, tmp_path("missing.log")), "'ignis-no-such-program'",
                       "no such file");
    sup_rank_spec sp = spec(11, 3, ok, tmp_path("missing.log"));
    sp.cwd = "/nonexistent-ignis-dir";
    expect_start_error(h, sp, "/nonexistent-ignis-dir", "no such file");
    expect_start_error(h, spec(11, 3, ok, "/nonexistent-ignis-dir/rank.log"),
                       "/nonexistent-ignis-dir/rank.log", "No such file");
    h_run(h);
    assert_int_equal(h->n_exits, 0);
    h_fini(h);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

static int setup(void **state) {
    strcpy(tmp, "/tmp/ig-sup-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state) { return nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exit_codes_and_times_are_reported),
        cmocka_unit_test(a_death_by_signal_is_reported_with_the_signal),
        cmocka_unit_test(stdout_and_stderr_reach_the_log_up_to_the_exit),
        cmocka_unit_test(the_log_drains_after_the_exit_until_the_deadline),
        cmocka_unit_test(the_environment_and_directory_reach_the_rank),
        cmocka_unit_test(abort_terms_then_kills_after_the_grace),
        cmocka_unit_test(abort_kills_the_ranks_children_too),
        cmocka_unit_test(a_ranks_exit_kills_its_leftover_children),
        cmocka_unit_test(a_rank_that_cannot_start_is_a_clear_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* tests/test_ucx.c: UCX process groups between real processes, no mpirun.
 * Each test forks N ranks (N = 1 to 4) that bootstrap through files in a
 * fresh temp directory (rank r writes addr.<r> and waits, bounded, for every
 * rank's), then check every collective against values each rank computes
 * itself (rank r holds r + 1 + i % 50). A rank that fails prints why and
 * exits 1; the parent waits for its ranks with a deadline, kills them past
 * it, and fails unless every rank exited 0. The all_reduce bandwidth at
 * 16 MiB is printed for each N. UCX picks shared memory between processes of
 * one host; one test forces TCP (as between hosts). */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ignis/comm.h"
#include "tests/testutil.h"

static int me = -1;       /* this child's rank */
static bool tcp_only;     /* children restrict UCX to TCP on loopback */

/* In a child: on failure, say why and exit 1 (cmocka must not run there). */
#define CK(cond, ...)                                                               \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "rank %d: %s:%d: ", me, __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, " [last error: %s]\n", ig_last_error());                \
            fflush(stderr);                                                         \
            _exit(1);                                                               \
        }                                                                           \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool exists(const char *dir, const char *name, int r) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%d", dir, name, r);
    return access(path, F_OK) == 0;
}

static void touch(const char *dir, const char *name, int r) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%d", dir, name, r);
    FILE *f = fopen(path, "w");
    CK(f && fclose(f) == 0, "cannot create %s", path);
}

/* Waits (30 s at most) until dir/name.<r> exists. */
static void await_file(const char *dir, const char *name, int r) {
    for (double until = now() + 30; !exists(dir, name, r); usleep(2000))
        CK(now() < until, "%s.%d did not appear in 30 s", name, r);
}

/* ---- bootstrap through files ---- */

static ig_pg *bootstrap(const char *dir, int n, double timeout_s) {
    if (tcp_only) setenv("UCX_TLS", "tcp,self", 1);
    void *blob;
    size_t len;
    CK(ig_pg_ucx_address(&blob, &len) == IG_OK, "ig_pg_ucx_address");
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/addr.%d", dir, me);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    CK(f && fwrite(blob, 1, len, f) == len && fclose(f) == 0, "writing %s", tmp);
    CK(rename(tmp, path) == 0, "renaming %s", tmp); /* readers never see half an address */
    free(blob);
    void *addrs[4];
    size_t lens[4];
    for (int r = 0; r < n; r++) {
        await_file(dir, "addr", r);
        snprintf(path, sizeof path, "%s/addr.%d", dir, r);
        f = fopen(path, "rb");
        CK(f, "opening %s", path);
        addrs[r] = malloc(4096);
        lens[r] = fread(addrs[r], 1, 4096, f);
        fclose(f);
        CK(lens[r] > 0 && lens[r] < 4096, "address of rank %d: %zu bytes", r, lens[r]);
    }
    ig_pg_opts o = IG_PG_OPTS_INIT;
    o.timeout_s = timeout_s;
    ig_pg *pg;
    ig_status st = ig_pg_init_ucx(me, n, (const void *const *)addrs, lens, &o, &pg);
    CK(st == IG_OK, "ig_pg_init_ucx gave %d", (int)st);
    CK(ig_pg_rank(pg) == me && ig_pg_size(pg) == n && ig_pg_backend(pg) == IG_BACKEND_UCX,
       "group identity");
    for (int r = 0; r < n; r++) free(addrs[r]);
    return pg;
}

/* ---- the parent: fork, wait with a deadline, kill past it ---- */

typedef void (*rank_fn)(const char *dir, int n);

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Runs fn as ranks 0..n-1 of n child processes; fails unless each exits 0
 * within limit_s. */
static void run_ranks(int n, double limit_s, rank_fn fn) {
    char dir[] = "/tmp/ig_ucx_XXXXXX";
    assert_non_null(mkdtemp(dir));
    fflush(stdout);
    fflush(stderr);
    pid_t pid[4];
    for (int r = 0; r < n; r++) {
        pid[r] = fork();
        assert_true(pid[r] >= 0);
        if (pid[r] == 0) {
            me = r;
            alarm((unsigned)limit_s + 5); /* orphaned by a dead parent: still ends */
            fn(dir, n);
            fflush(stdout);
            _exit(0);
        }
    }
    int status[4], left = n;
    bool done[4] = {false};
    for (double until = now() + limit_s; left && now() < until; usleep(5000))
        for (int r = 0; r < n; r++)
            if (!done[r] && waitpid(pid[r], &status[r], WNOHANG) == pid[r]) done[r] = true, left--;
    for (int r = 0; r < n; r++)
        if (!done[r]) {
            kill(pid[r], SIGKILL);
            waitpid(pid[r], &status[r], 0);
        }
    remove_dir(dir);
    for (int r = 0; r < n; r++) {
        if (!done[r]) fail_msg("N=%d: rank %d did not finish in %.0f s (killed)", n, r, limit_s);
        if (!WIFEXITED(status[r]) || WEXITSTATUS(status[r]) != 0)
            fail_msg("N=%d: rank %d failed (status 0x%x)", n, r, status[r]);
    }
}

/* ---- values ---- */

typedef double (*val_fn)(int r, int64_t i, int n);

static double base(int r, int64_t i, int n) { (void)n; return r + 1 + (double)(i % 50); }
static double sum_base(int r, int64_t i, int n) { (void)r; return n * (n + 1) / 2.0 + n * (double)(i % 50); }
static double avg_base(int r, int64_t i, int n) { return sum_base(r, i, n) / n; }
static double max_base(int r, int64_t i, int n) { (void)r; return n + (double)(i % 50); }

static ig_tensor *filled(ig_dtype dt, int64_t len, int r, int n, val_fn f) {
    double *v = malloc((size_t)(len ? len : 1) * sizeof *v);
    for (int64_t i = 0; i < len; i++) v[i] = f(r, i, n);
    ig_tensor *x = ig_from_data(v, 1, (const int64_t[]){len}, IG_F64, IG_CPU);
    free(v);
    return ig_to(x, dt, IG_CPU);
}

/* Checks t[i] == f(r, i, n) (integers: truncated; bf16: within 1/128). */
static void expect(ig_tensor *t, int r, int n, val_fn f, const char *what) {
    ig_tensor *h = ig_to(t, IG_F64, IG_CPU);
    const double *d = ig_tensor_data(h);
    ig_dtype dt = ig_tensor_dtype(t);
    double rtol = dt == IG_BF16 ? 1.0 / 128 : 1e-6;
    for (int64_t i = 0; i < ig_tensor_numel(t); i++) {
        double want = f(r, i, n);
        if (!ig_dtype_is_float(dt)) want = trunc(want);
        CK(fabs(d[i] - want) <= rtol * fmax(1.0, fabs(want)), "%s (%s, %ld elements): element %ld is %g, expected %g",
           what, ig_dtype_name(dt), (long)ig_tensor_numel(t), (long)i, d[i], want);
    }
}

static const ig_dtype dtypes[] = {IG_F32, IG_F64, IG_I32, IG_I64, IG_U8, IG_BF16};
#define N_DTYPES (int)(sizeof dtypes / sizeof dtypes[0])
static const struct {
    ig_reduce_op op;
    val_fn want;
    const char *name;
} reds[] = {{IG_REDUCE_SUM, sum_base, "sum"}, {IG_REDUCE_AVG, avg_base, "avg"}, {IG_REDUCE_MAX, max_base, "max"}};

/* reduce_scatter: block r of the reduction; all_gather: block j of rank j */
static int64_t blk;
static double rs_sum(int r, int64_t i, int n) { return sum_base(r, r * blk + i, n); }
static double rs_avg(int r, int64_t i, int n) { return avg_base(r, r * blk + i, n); }
static double rs_max(int r, int64_t i, int n) { return max_base(r, r * blk + i, n); }
static double gathered(int r, int64_t j, int n) { (void)r; return base((int)(j / blk), j % blk, n); }

static int root_of_bcast;
static double from_root(int r, int64_t i, int n) { (void)r; return base(root_of_bcast, i, n); }

/* ---- rank bodies ---- */

static void collectives(const char *dir, int n) {
    ig_pg *pg = bootstrap(dir, n, 30);
    int r = me;
    static const int64_t sizes[] = {0, 1, 13, 100003}; /* 13 and 100003: not divisible by N */
    for (int d = 0; d < N_DTYPES; d++)
        for (int s = 0; s < 4; s++)
            for (int k = 0; k < 3; k++) {
                ig_scope *sc = ig_scope_begin();
                ig_tensor *t = filled(dtypes[d], sizes[s], r, n, base);
                CK(ig_pg_all_reduce(pg, t, reds[k].op, NULL) == IG_OK, "all_reduce");
                expect(t, r, n, reds[k].want, reds[k].name);
                ig_scope_end(sc);
            }
    static const int64_t blocks[] = {0, 1, 7};
    val_fn rs_want[] = {rs_sum, rs_avg, rs_max};
    for (int d = 0; d < N_DTYPES; d++)
        for (int b = 0; b < 3; b++) {
            blk = blocks[b];
            ig_scope *sc = ig_scope_begin();
            ig_tensor *in = filled(dtypes[d], n * blk, r, n, base);
            ig_tensor *out = ig_zeros(IG_SHAPE(blk), dtypes[d], IG_CPU);
            for (int k = 0; k < 3; k++) {
                CK(ig_pg_reduce_scatter(pg, out, in, reds[k].op, NULL) == IG_OK, "reduce_scatter");
                expect(out, r, n, rs_want[k], "reduce_scatter");
                expect(in, r, n, base, "reduce_scatter's input (unchanged)");
            }
            ig_tensor *g = ig_zeros(IG_SHAPE(n * blk), dtypes[d], IG_CPU);
            ig_tensor *mine = filled(dtypes[d], blk, r, n, base);
            CK(ig_pg_all_gather(pg, g, mine, NULL) == IG_OK, "all_gather");
            expect(g, r, n, gathered, "all_gather");
            ig_scope_end(sc);
        }
    static const int64_t bsizes[] = {0, 1, 1000};
    for (int d = 0; d < N_DTYPES; d++)
        for (int s = 0; s < 3; s++)
            for (root_of_bcast = 0; root_of_bcast < n; root_of_bcast++) {
                ig_scope *sc = ig_scope_begin();
                ig_tensor *t = filled(dtypes[d], bsizes[s], r, n, base);
                CK(ig_pg_broadcast(pg, t, root_of_bcast, NULL) == IG_OK, "broadcast");
                expect(t, r, n, from_root, "broadcast");
                ig_scope_end(sc);
            }
    ig_pg_free(pg);
}

/* 16 MiB f32: broadcast (many pipeline segments) and all_reduce, checked,
 * then the all_reduce timed. */
static void large(const char *dir, int n) {
    ig_pg *pg = bootstrap(dir, n, 60);
    int64_t len = (16 << 20) / 4;
    ig_scope *sc = ig_scope_begin();
    root_of_bcast = n - 1;
    ig_tensor *t = filled(IG_F32, len, me, n, base);
    CK(ig_pg_broadcast(pg, t, root_of_bcast, NULL) == IG_OK, "broadcast 16 MiB");
    expect(t, me, n, from_root, "broadcast 16 MiB");
    t = filled(IG_F32, len, me, n, base);
    CK(ig_pg_all_reduce(pg, t, IG_REDUCE_SUM, NULL) == IG_OK, "all_reduce 16 MiB");
    expect(t, me, n, sum_base, "all_reduce 16 MiB");
    const int iters = 10;
    CK(ig_pg_barrier(pg) == IG_OK, "barrier");
    double t0 = now();
    for (int i = 0; i < iters; i++) CK(ig_pg_all_reduce(pg, t, IG_REDUCE_MAX, NULL) == IG_OK, "all_reduce");
    double dt = (now() - t0) / iters, bytes = (double)len * 4;
    if (me == 0)
        printf("ucx all_reduce of 16 MiB f32, N=%d%s: %.2f ms, algbw %.2f GB/s, busbw %.2f GB/s\n", n,
               tcp_only ? " (tcp)" : "",
               dt * 1e3, bytes / dt / 1e9, 2.0 * (n - 1) / n * bytes / dt / 1e9);
    ig_scope_end(sc);
    ig_pg_free(pg);
}

/* Works issued back to back, waited for in reverse order. */
static void async_work(const char *dir, int n) {
    ig_pg *pg = bootstrap(dir, n, 30);
    int r = me;
    ig_scope *sc = ig_scope_begin();
    enum { W = 6 };
    ig_tensor *t[W];
    ig_work *w[W];
    blk = 5;
    root_of_bcast = 0;
    for (int i = 0; i < 4; i++) t[i] = filled(IG_F32, 1001 + i, r, n, base);
    ig_tensor *g = ig_zeros(IG_SHAPE(n * blk), IG_F64, IG_CPU), *mine = filled(IG_F64, blk, r, n, base);
    CK(ig_pg_all_reduce(pg, t[0], IG_REDUCE_SUM, &w[0]) == IG_OK, "issue");
    CK(ig_pg_all_reduce(pg, t[1], IG_REDUCE_MAX, &w[1]) == IG_OK, "issue");
    CK(ig_pg_broadcast(pg, t[2], 0, &w[2]) == IG_OK, "issue");
    CK(ig_pg_all_gather(pg, g, mine, &w[3]) == IG_OK, "issue");
    CK(ig_pg_all_reduce(pg, t[3], IG_REDUCE_AVG, &w[4]) == IG_OK, "issue");
    t[4] = filled(IG_I64, 77, r, n, base);
    CK(ig_pg_all_reduce(pg, t[4], IG_REDUCE_SUM, &w[5]) == IG_OK, "issue");
    for (int i = W - 1; i >= 0; i--) CK(ig_work_wait(w[i]) == IG_OK, "work %d", i);
    expect(t[0], r, n, sum_base, "async all_reduce sum");
    expect(t[1], r, n, max_base, "async all_reduce max");
    expect(t[2], r, n, from_root, "async broadcast");
    expect(g, r, n, gathered, "async all_gather");
    expect(t[3], r, n, avg_base, "async all_reduce avg");
    expect(t[4], r, n, sum_base, "async all_reduce i64");
    ig_scope_end(sc);
    ig_pg_free(pg);
}

static double tagged5(int r, int64_t i, int n) { (void)n; return 100.0 * r + (double)(i % 97); }
static double tagged6(int r, int64_t i, int n) { (void)n; return -100.0 * r - (double)(i % 89); }
static double from_left5(int r, int64_t i, int n) { return tagged5((r + n - 1) % n, i, n); }
static double from_left6(int r, int64_t i, int n) { return tagged6((r + n - 1) % n, i, n); }

/* Every rank sends to its right (tags 5 then 6; 6 is 1 Mi elements, over
 * UCX's eager limit) before receiving from its left (tag 6 first). */
static void ring(const char *dir, int n) {
    ig_pg *pg = bootstrap(dir, n, 30);
    int r = me, right = (r + 1) % n, left = (r + n - 1) % n;
    ig_scope *sc = ig_scope_begin();
    ig_tensor *a = filled(IG_F32, 33, r, n, tagged5), *b = filled(IG_F64, 1 << 20, r, n, tagged6);
    CK(ig_pg_send(pg, a, right, 5) == IG_OK, "send tag 5");
    CK(ig_pg_send(pg, b, right, 6) == IG_OK, "send tag 6");
    ig_tensor *ra = ig_zeros(IG_SHAPE(33), IG_F32, IG_CPU), *rb = ig_zeros(IG_SHAPE(1 << 20), IG_F64, IG_CPU);
    CK(ig_pg_recv(pg, rb, left, 6) == IG_OK, "recv tag 6");
    CK(ig_pg_recv(pg, ra, left, 5) == IG_OK, "recv tag 5");
    expect(ra, r, n, from_left5, "recv tag 5");
    expect(rb, r, n, from_left6, "recv tag 6");
    /* a message of another length fails the recv, naming both */
    CK(ig_pg_send(pg, a, right, 7) == IG_OK, "send tag 7");
    ig_tensor *wrong = ig_zeros(IG_SHAPE(34), IG_F32, IG_CPU);
    CK(ig_pg_recv(pg, wrong, left, 7) == IG_ERR_COMM, "recv of a shorter message");
    CK(strstr(ig_last_error(), "132 bytes, expected 136"), "message: %s", ig_last_error());
    ig_scope_end(sc);
    CK(ig_pg_barrier(pg) == IG_OK, "barrier");
    ig_pg_free(pg);
}

/* Rank r arrives 50 r ms late; after the barrier every rank's mark is there. */
static void barrier_body(const char *dir, int n) {
    ig_pg *pg = bootstrap(dir, n, 30);
    usleep((useconds_t)(50000 * me));
    touch(dir, "arrived", me);
    CK(ig_pg_barrier(pg) == IG_OK, "barrier");
    for (int r = 0; r < n; r++) CK(exists(dir, "arrived", r), "rank %d not arrived after the barrier", r);
    ig_pg_free(pg);
}

/* Rank 2 never joins the all_reduces of ranks 0 and 1 (timeout 2 s): they
 * fail with IG_ERR_TIMEOUT in about 2 s, later work fails at once, and every
 * rank frees its group. */
#define SHORT_TIMEOUT 2.0
static void one_rank_missing(const char *dir, int n) {
    ig_pg *pg = bootstrap(dir, n, SHORT_TIMEOUT);
    if (me == 2) {
        for (int r = 0; r < 2; r++) await_file(dir, "done", r);
        ig_pg_free(pg);
        return;
    }
    ig_scope *sc = ig_scope_begin();
    ig_tensor *t = filled(IG_F32, 1000, me, n, base), *u = filled(IG_F32, 10, me, n, base);
    double t0 = now();
    ig_work *w1, *w2;
    CK(ig_pg_all_reduce(pg, t, IG_REDUCE_SUM, &w1) == IG_OK, "issue");
    CK(ig_pg_all_reduce(pg, u, IG_REDUCE_SUM, &w2) == IG_OK, "issue");
    ig_status st = ig_work_wait(w2);
    double waited = now() - t0;
    CK(st == IG_ERR_TIMEOUT, "queued work gave %d, not IG_ERR_TIMEOUT", (int)st);
    CK(waited > SHORT_TIMEOUT * 0.9 && waited < SHORT_TIMEOUT + 2, "timed out after %.2f s", waited);
    t0 = now();
    st = ig_work_wait(w1);
    CK(st == IG_ERR_TIMEOUT, "running work gave %d, not IG_ERR_TIMEOUT", (int)st);
    CK(ig_pg_all_reduce(pg, t, IG_REDUCE_SUM, NULL) == IG_ERR_TIMEOUT, "later work");
    CK(strstr(ig_last_error(), "aborted"), "message: %s", ig_last_error());
    CK(ig_pg_barrier(pg) == IG_ERR_TIMEOUT, "later barrier");
    CK(now() - t0 < 1.5, "after the abort, work took %.2f s to fail", now() - t0);
    ig_scope_end(sc);
    t0 = now();
    ig_pg_free(pg);
    CK(now() - t0 < 3, "freeing the aborted group took %.2f s", now() - t0);
    touch(dir, "done", me);
}

/* A process that says it is rank 1 but whose address is rank 0's. */
static void mixed_up_ranks(const char *dir, int n) {
    (void)dir, (void)n;
    void *blob;
    size_t len;
    CK(ig_pg_ucx_address(&blob, &len) == IG_OK, "ig_pg_ucx_address");
    const void *addrs[2] = {blob, "not this one"};
    size_t lens[2] = {len, 12};
    ig_pg *pg = NULL;
    CK(ig_pg_init_ucx(1, 2, addrs, lens, NULL, &pg) == IG_ERR_STATE && !pg, "init as another rank");
    CK(strstr(ig_last_error(), "mixed up"), "message: %s", ig_last_error());
    free(blob);
}

/* ---- tests ---- */

static void ucx_collectives_match_reference_values_for_2_3_and_4_ranks(void **state) {
    (void)state;
    for (int n = 1; n <= 4; n++) run_ranks(n, 120, collectives);
}

static void ucx_16_mib_broadcast_and_all_reduce_are_exact_and_timed(void **state) {
    (void)state;
    for (int n = 2; n <= 4; n++) run_ranks(n, 120, large);
}

static void ucx_async_work_back_to_back_completes_in_any_wait_order(void **state) {
    (void)state;
    for (int n = 2; n <= 4; n++) run_ranks(n, 60, async_work);
}

static void ucx_send_then_recv_around_a_ring_matches_by_tag(void **state) {
    (void)state;
    for (int n = 2; n <= 4; n++) run_ranks(n, 60, ring);
}

static void ucx_barrier_waits_for_the_slowest_rank(void **state) {
    (void)state;
    for (int n = 2; n <= 4; n++) run_ranks(n, 60, barrier_body);
}

static void ucx_collectives_over_tcp_only_match_reference_values(void **state) {
    (void)state;
    tcp_only = true;
    run_ranks(3, 120, collectives);
    run_ranks(3, 120, large);
    run_ranks(2, 60, ring);
    tcp_only = false;
}

static void ucx_all_reduce_missing_a_rank_times_out_without_hanging(void **state) {
    (void)state;
    run_ranks(3, 30, one_rank_missing);
}

static void ucx_init_refuses_another_ranks_address_and_no_worker(void **state) {
    (void)state;
    run_ranks(1, 30, mixed_up_ranks);
    ig_pg *pg = NULL;
    const void *addrs[1] = {"x"};
    size_t lens[1] = {1};
    /* in the parent, no ig_pg_ucx_address was called */
    assert_int_equal(ig_pg_init_ucx(0, 1, addrs, lens, NULL, &pg), IG_ERR_STATE);
    assert_non_null(strstr(ig_last_error(), "ig_pg_ucx_address"));
    assert_null(pg);
    ig_pg_opts o = IG_PG_OPTS_INIT;
    o.backend = IG_BACKEND_UCX;
    assert_int_equal(ig_pg_init_world(&o, &pg), IG_ERR_UNSUPPORTED);
}

int main(void) {
#ifndef IG_HAVE_UCX
    return 77;
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ucx_init_refuses_another_ranks_address_and_no_worker),
        cmocka_unit_test(ucx_collectives_match_reference_values_for_2_3_and_4_ranks),
        cmocka_unit_test(ucx_16_mib_broadcast_and_all_reduce_are_exact_and_timed),
        cmocka_unit_test(ucx_async_work_back_to_back_completes_in_any_wait_order),
        cmocka_unit_test(ucx_send_then_recv_around_a_ring_matches_by_tag),
        cmocka_unit_test(ucx_barrier_waits_for_the_slowest_rank),
        cmocka_unit_test(ucx_collectives_over_tcp_only_match_reference_values),
        cmocka_unit_test(ucx_all_reduce_missing_a_rank_times_out_without_hanging),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

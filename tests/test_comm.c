/* tests/test_comm.c: process groups under mpirun (suite dist, np 1, 2 and 4).
 * Every collective is checked against values each rank computes itself (rank
 * r holds r + 1 + i, and so on), on CPU tensors through MPI and, in builds
 * with NCCL on a node with a GPU per rank, on CUDA f32 and bf16 tensors
 * through NCCL, bootstrapped through MPI and from a unique id passed by hand
 * (ig_pg_init_nccl_id: no MPI underneath, CPU tensors through the device).
 * With np 1 the collectives degenerate to copies; the ring and
 * the timeout need np >= 2. The timeout test runs last: it leaves one group
 * aborted (freed only once the other ranks have unstuck its collective). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ignis/comm.h"
#include "ignis/cuda.h"
#include "tests/testutil.h"

static ig_pg *world;      /* MPI */
static ig_pg *nccl_world; /* NCCL; NULL without NCCL or a GPU per rank */
static ig_pg *id_world;   /* NCCL from a unique id (ig_pg_init_nccl_id); NULL as nccl_world */

#define K 7 /* block length of all_gather / reduce_scatter */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Element i on rank r of a group of n; k varies a case. All values are small
 * integers or halves, exact in bf16. */
typedef double (*val_fn)(int r, int64_t i, int n, int k);

static double base(int r, int64_t i, int n, int k) { return r + 1 + (double)(i % 50) + k; }
static double sum_base(int r, int64_t i, int n, int k) {
    return n * (n + 1) / 2.0 + n * ((double)(i % 50) + k);
}
static double avg_base(int r, int64_t i, int n, int k) { return sum_base(r, i, n, k) / n; }
static double max_base(int r, int64_t i, int n, int k) { return n + (double)(i % 50) + k; }
static double by_rank(int r, int64_t i, int n, int k) { return 10.0 * r + (double)(i % 50); }
static double from_last(int r, int64_t i, int n, int k) { return by_rank(n - 1, i, n, k); }
static double from_prev(int r, int64_t i, int n, int k) { return by_rank((r + n - 1) % n, i, n, k); }
static double gathered(int r, int64_t j, int n, int k) { return base((int)(j / K), j % K, n, k); }
/* reduce_scatter: rank r's block r of the sum of every rank's `base` */
static double scattered_sum(int r, int64_t i, int n, int k) { return sum_base(r, r * K + i, n, k); }
static double scattered_avg(int r, int64_t i, int n, int k) { return avg_base(r, r * K + i, n, k); }

static ig_tensor *filled(ig_dtype dt, ig_device dev, int64_t len, int r, int n, int k, val_fn f) {
    double *v = malloc((size_t)len * sizeof *v);
    for (int64_t i = 0; i < len; i++) v[i] = f(r, i, n, k);
    ig_tensor *x = ig_from_data(v, 1, (const int64_t[]){len}, IG_F64, IG_CPU);
    free(v);
    return ig_to(x, dt, dev);
}

/* Asserts t[i] == f(r, i, n, k) within rtol (integers: the truncated value). */
static void expect(ig_tensor *t, int r, int n, int k, val_fn f, double rtol, const char *what) {
    ig_tensor *h = ig_to(t, IG_F64, IG_CPU);
    assert_non_null(h);
    const double *d = ig_tensor_data(h);
    bool integer = !ig_dtype_is_float(ig_tensor_dtype(t));
    for (int64_t i = 0; i < ig_tensor_numel(t); i++) {
        double want = f(r, i, n, k);
        if (integer) want = trunc(want);
        if (fabs(d[i] - want) > rtol * fmax(1.0, fabs(want)))
            fail_msg("%s (%s %s): rank %d element %ld is %g, expected %g", what,
                     ig_dtype_name(ig_tensor_dtype(t)), ig_device_name(ig_tensor_device(t)), r,
                     (long)i, d[i], want);
    }
}

static double tol(ig_dtype dt) { return dt == IG_BF16 ? 1.0 / 128 : 1e-6; }

/* ---- the collectives, on any group, device and dtype ---- */

static void check_all_reduce(ig_pg *pg, ig_device dev, ig_dtype dt) {
    int r = ig_pg_rank(pg), n = ig_pg_size(pg);
    static const struct {
        ig_reduce_op op;
        val_fn want;
        const char *name;
    } cases[] = {{IG_REDUCE_SUM, sum_base, "all_reduce sum"},
                 {IG_REDUCE_AVG, avg_base, "all_reduce avg"},
                 {IG_REDUCE_MAX, max_base, "all_reduce max"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *t = filled(dt, dev, 300, r, n, 0, base);
        assert_int_equal(ig_pg_all_reduce(pg, t, cases[c].op, NULL), IG_OK);
        expect(t, r, n, 0, cases[c].want, tol(dt), cases[c].name);
        ig_scope_end(s);
    }
}

static void check_broadcast(ig_pg *pg, ig_device dev, ig_dtype dt) {
    int r = ig_pg_rank(pg), n = ig_pg_size(pg);
    ig_scope *s = ig_scope_begin();
    ig_tensor *t = filled(dt, dev, 100, r, n, 0, by_rank);
    assert_int_equal(ig_pg_broadcast(pg, t, n - 1, NULL), IG_OK);
    expect(t, r, n, 0, from_last, tol(dt), "broadcast from the last rank");
    ig_scope_end(s);
}

static void check_all_gather(ig_pg *pg, ig_device dev, ig_dtype dt) {
    int r = ig_pg_rank(pg), n = ig_pg_size(pg);
    ig_scope *s = ig_scope_begin();
    ig_tensor *in = filled(dt, dev, K, r, n, 0, base);
    ig_tensor *out = ig_zeros(IG_SHAPE(n, K), dt, dev);
    assert_int_equal(ig_pg_all_gather(pg, out, in, NULL), IG_OK);
    expect(out, r, n, 0, gathered, tol(dt), "all_gather");
    ig_scope_end(s);
}

static void check_reduce_scatter(ig_pg *pg, ig_device dev, ig_dtype dt) {
    int r = ig_pg_rank(pg), n = ig_pg_size(pg);
    ig_scope *s = ig_scope_begin();
    ig_tensor *in = filled(dt, dev, (int64_t)n * K, r, n, 0, base);
    ig_tensor *out = ig_zeros(IG_SHAPE(K), dt, dev);
    assert_int_equal(ig_pg_reduce_scatter(pg, out, in, IG_REDUCE_SUM, NULL), IG_OK);
    expect(out, r, n, 0, scattered_sum, tol(dt), "reduce_scatter sum");
    assert_int_equal(ig_pg_reduce_scatter(pg, out, in, IG_REDUCE_AVG, NULL), IG_OK);
    expect(out, r, n, 0, scattered_avg, tol(dt), "reduce_scatter avg");
    ig_scope_end(s);
}

/* Every rank sends to the next, then receives from the previous: 1 MiB, past
 * MPI's eager limit, so this deadlocks unless send returns once posted. */
static void check_ring(ig_pg *pg, ig_device dev, ig_dtype dt) {
    int r = ig_pg_rank(pg), n = ig_pg_size(pg);
    if (n < 2) return;
    ig_scope *s = ig_scope_begin();
    int64_t len = (1 << 20) / (int64_t)ig_dtype_size(dt);
    ig_tensor *mine = filled(dt, dev, len, r, n, 0, by_rank);
    ig_tensor *got = ig_zeros(IG_SHAPE(len), dt, dev);
    assert_int_equal(ig_pg_send(pg, mine, (r + 1) % n, 7), IG_OK);
    assert_int_equal(ig_pg_recv(pg, got, (r + n - 1) % n, 7), IG_OK);
    expect(got, r, n, 0, from_prev, tol(dt), "recv from the previous rank");
    ig_scope_end(s);
}

/* Several all_reduces in flight, waited in order, out of order, and polled. */
static void check_async(ig_pg *pg, ig_device dev, ig_dtype dt) {
    int r = ig_pg_rank(pg), n = ig_pg_size(pg);
    ig_scope *s = ig_scope_begin();
    enum { M = 4 };
    static const int orders[2][M] = {{0, 1, 2, 3}, {3, 1, 0, 2}};
    for (int o = 0; o < 2; o++) {
        ig_tensor *t[M];
        ig_work *w[M];
        for (int k = 0; k < M; k++) {
            t[k] = filled(dt, dev, 1000, r, n, k, base);
            assert_int_equal(ig_pg_all_reduce(pg, t[k], IG_REDUCE_SUM, &w[k]), IG_OK);
            assert_non_null(w[k]);
        }
        for (int j = 0; j < M; j++) {
            int k = orders[o][j];
            assert_int_equal(ig_work_wait(w[k]), IG_OK);
            expect(t[k], r, n, k, sum_base, tol(dt), o ? "async, waited out of order" : "async");
        }
    }
    ig_tensor *t = filled(dt, dev, 1000, r, n, 0, base);
    ig_work *w;
    assert_int_equal(ig_pg_all_reduce(pg, t, IG_REDUCE_MAX, &w), IG_OK);
    double t0 = now();
    while (!ig_work_test(w) && now() - t0 < 30) usleep(1000);
    assert_true(ig_work_test(w));
    assert_int_equal(ig_work_wait(w), IG_OK);
    expect(t, r, n, 0, max_base, tol(dt), "all_reduce max, polled with work_test");
    ig_scope_end(s);
}

/* The even ranks make a group of their own and reduce within it. */
static void check_even_subgroup(ig_pg *pg, ig_device dev) {
    int r = ig_pg_rank(pg), n = ig_pg_size(pg), m = (n + 1) / 2;
    int evens[8];
    for (int j = 0; j < m; j++) evens[j] = 2 * j;
    ig_pg *sub = NULL;
    assert_int_equal(ig_pg_new_subgroup(pg, m, evens, &sub), IG_OK);
    if (r % 2) {
        assert_null(sub);
        return;
    }
    assert_non_null(sub);
    assert_int_equal(ig_pg_size(sub), m);
    assert_int_equal(ig_pg_rank(sub), r / 2);
    ig_scope *s = ig_scope_begin();
    ig_tensor *t = ig_full(IG_SHAPE(5), r + 1, IG_F32, dev);
    assert_int_equal(ig_pg_all_reduce(sub, t, IG_REDUCE_SUM, NULL), IG_OK);
    ig_tensor *h = ig_to(t, IG_F32, IG_CPU);
    for (int i = 0; i < 5; i++) assert_float_equal(((float *)ig_tensor_data(h))[i], m * m, 0);
    ig_scope_end(s);
    ig_pg_free(sub);
}

/* ---- tests: MPI on CPU tensors ---- */

static const ig_dtype cpu_dtypes[] = {IG_F32, IG_F64, IG_I64, IG_BF16};

static void mpi_all_reduce_sums_averages_and_maxes_f32_f64_i64_bf16(void **state) {
    (void)state;
    for (size_t d = 0; d < 4; d++) check_all_reduce(world, IG_CPU, cpu_dtypes[d]);
}

static void mpi_broadcast_from_a_nonzero_root_reaches_every_rank(void **state) {
    (void)state;
    for (size_t d = 0; d < 4; d++) check_broadcast(world, IG_CPU, cpu_dtypes[d]);
}

static void mpi_all_gather_places_rank_r_at_block_r(void **state) {
    (void)state;
    for (size_t d = 0; d < 4; d++) check_all_gather(world, IG_CPU, cpu_dtypes[d]);
}

static void mpi_reduce_scatter_gives_rank_r_block_r_of_the_sum(void **state) {
    (void)state;
    for (size_t d = 0; d < 4; d++) check_reduce_scatter(world, IG_CPU, cpu_dtypes[d]);
}

static void mpi_send_then_recv_around_a_ring_does_not_deadlock(void **state) {
    (void)state;
    if (ig_pg_size(world) < 2) skip();
    check_ring(world, IG_CPU, IG_F32);
    check_ring(world, IG_CPU, IG_BF16);
}

static void mpi_async_work_completes_in_any_wait_order(void **state) {
    (void)state;
    check_async(world, IG_CPU, IG_F32);
}

static void barrier_waits_for_the_slowest_rank(void **state) {
    (void)state;
    double t0 = now();
    if (ig_pg_rank(world) == 0) usleep(300 * 1000);
    assert_int_equal(ig_pg_barrier(world), IG_OK);
    if (ig_pg_size(world) > 1) assert_true(now() - t0 > 0.25);
}

static void subgroup_of_even_ranks_reduces_among_its_members_only(void **state) {
    (void)state;
    check_even_subgroup(world, IG_CPU);
}

static void env_detect_reports_the_mpirun_rank_and_size(void **state) {
    (void)state;
    ig_dist_env e;
    assert_true(ig_dist_env_detect(&e));
    assert_string_equal(e.source, "openmpi");
    assert_int_equal(e.rank, ig_pg_rank(world));
    assert_int_equal(e.world, ig_pg_size(world));
    assert_in_range(e.local_rank, 0, e.world - 1);
}

/* Sets name to value (NULL: unsets) and returns its old value (strdup'd). */
static char *swap_env(const char *name, const char *value) {
    const char *old = getenv(name);
    char *saved = old ? strdup(old) : NULL;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
    return saved;
}

static void env_detect_reads_torchrun_and_names_a_malformed_variable(void **state) {
    (void)state;
    static const char *names[] = {"OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "RANK", "WORLD_SIZE",
                                  "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"};
    enum { NV = sizeof names / sizeof names[0] };
    const char *torchrun[NV] = {NULL, NULL, "3", "8", "1", "10.0.0.1", "29500"};
    char *saved[NV];
    for (int v = 0; v < NV; v++) saved[v] = swap_env(names[v], torchrun[v]);

    ig_dist_env e;
    assert_true(ig_dist_env_detect(&e));
    assert_string_equal(e.source, "torchrun");
    assert_int_equal(e.rank, 3);
    assert_int_equal(e.world, 8);
    assert_int_equal(e.local_rank, 1);
    assert_string_equal(e.master_addr, "10.0.0.1");
    assert_int_equal(e.master_port, 29500);

    setenv("RANK", "8", 1); /* outside [0, WORLD_SIZE) */
    ig_clear_error();
    assert_false(ig_dist_env_detect(&e));
    assert_int_equal(ig_last_status(), IG_ERR_FORMAT);
    assert_non_null(strstr(ig_last_error(), "RANK"));
    assert_int_equal(e.world, 1);
    setenv("RANK", "2", 1);
    setenv("MASTER_PORT", "29500x", 1);
    assert_false(ig_dist_env_detect(&e));
    assert_non_null(strstr(ig_last_error(), "MASTER_PORT"));

    unsetenv("RANK"); /* no launcher at all */
    ig_clear_error();
    assert_false(ig_dist_env_detect(&e));
    assert_int_equal(ig_last_status(), IG_OK);
    assert_string_equal(e.source, "none");
    assert_int_equal(e.rank, 0);
    assert_int_equal(e.world, 1);

    for (int v = 0; v < NV; v++) {
        free(swap_env(names[v], saved[v]));
        free(saved[v]);
    }
}

/* ---- tests: NCCL on CUDA tensors, against the same CPU-computed values ---- */

static void nccl_collectives_on_cuda_f32_and_bf16_match_the_reference(void **state) {
    (void)state;
    if (!nccl_world) skip();
    ig_device dev = IG_CUDA(ig_pg_device(nccl_world));
    static const ig_dtype dts[] = {IG_F32, IG_BF16};
    for (int d = 0; d < 2; d++) {
        check_all_reduce(nccl_world, dev, dts[d]);
        check_broadcast(nccl_world, dev, dts[d]);
        check_all_gather(nccl_world, dev, dts[d]);
        check_reduce_scatter(nccl_world, dev, dts[d]);
        check_ring(nccl_world, dev, dts[d]);
        check_async(nccl_world, dev, dts[d]);
    }
    check_even_subgroup(nccl_world, dev);
    /* CPU tensors of an NCCL group go through MPI */
    check_all_reduce(nccl_world, IG_CPU, IG_F32);
    assert_int_equal(ig_pg_barrier(nccl_world), IG_OK);
}

static void nccl_id_group_runs_cuda_and_cpu_collectives_without_mpi(void **state) {
    (void)state;
    if (!id_world) skip();
    assert_int_equal(ig_pg_backend(id_world), IG_BACKEND_NCCL);
    assert_int_equal(ig_pg_rank(id_world), ig_pg_rank(world));
    ig_device dev = IG_CUDA(ig_pg_device(id_world));
    static const ig_dtype dts[] = {IG_F32, IG_BF16};
    for (int d = 0; d < 2; d++) {
        check_all_reduce(id_world, dev, dts[d]);
        check_broadcast(id_world, dev, dts[d]);
        check_all_gather(id_world, dev, dts[d]);
        check_reduce_scatter(id_world, dev, dts[d]);
        check_ring(id_world, dev, dts[d]);
        check_async(id_world, dev, dts[d]);
    }
    /* CPU tensors: collectives through a device copy, no MPI */
    static const ig_dtype cpu[] = {IG_F32, IG_F64, IG_BF16};
    for (int d = 0; d < 3; d++) {
        check_all_reduce(id_world, IG_CPU, cpu[d]);
        check_broadcast(id_world, IG_CPU, cpu[d]);
        check_all_gather(id_world, IG_CPU, cpu[d]);
        check_reduce_scatter(id_world, IG_CPU, cpu[d]);
    }
    assert_int_equal(ig_pg_barrier(id_world), IG_OK);
    /* ... but no sends of CPU tensors, and no subgroups */
    ig_scope *s = ig_scope_begin();
    if (ig_pg_size(id_world) > 1) {
        ig_tensor *t = ig_ones(IG_SHAPE(4), IG_F32, IG_CPU);
        assert_int_equal(ig_pg_send(id_world, t, (ig_pg_rank(id_world) + 1) % ig_pg_size(id_world), 0),
                         IG_ERR_UNSUPPORTED);
        assert_non_null(strstr(ig_last_error(), "CPU tensor"));
    }
    ig_pg *sub = NULL;
    assert_int_equal(ig_pg_new_subgroup(id_world, 1, (const int[]){0}, &sub), IG_ERR_UNSUPPORTED);
    assert_null(sub);
    ig_scope_end(s);
}

/* Rank 0 alone creates a group of 2 from a fresh id: its peer never comes,
 * and the creation fails with IG_ERR_TIMEOUT after the group's 1 s timeout
 * instead of hanging (the communicator is nonblocking and aborted). */
static void nccl_id_group_whose_peer_never_comes_times_out(void **state) {
    (void)state;
    if (!id_world || ig_pg_rank(world) != 0) skip();
    unsigned char id[256];
    size_t len = 0;
    assert_int_equal(ig_pg_nccl_unique_id(id, sizeof id, &len), IG_OK);
    ig_pg_opts o = IG_PG_OPTS_INIT;
    o.timeout_s = 1;
    ig_pg *g = NULL;
    double t0 = now();
    assert_int_equal(ig_pg_init_nccl_id(0, 2, id, len, ig_pg_device(id_world), &o, &g), IG_ERR_TIMEOUT);
    double waited = now() - t0;
    assert_null(g);
    assert_non_null(strstr(ig_last_error(), "ncclCommInitRankConfig"));
    assert_true(waited > 0.9 && waited < 30);
}

static void nccl_id_of_the_wrong_length_is_refused(void **state) {
    (void)state;
    char id[16] = {0};
    size_t len = 99;
    ig_pg *g = NULL;
    ig_status st = ig_pg_init_nccl_id(0, 1, id, sizeof id, 0, NULL, &g);
    assert_null(g);
#ifdef IG_HAVE_NCCL
    assert_int_equal(st, IG_ERR_FORMAT);
    assert_non_null(strstr(ig_last_error(), "16 bytes"));
    assert_non_null(strstr(ig_last_error(), "expected 128"));
    assert_int_equal(ig_pg_nccl_unique_id(id, sizeof id, &len), IG_ERR_INVALID);
#else
    assert_int_equal(st, IG_ERR_UNSUPPORTED);
    assert_int_equal(ig_pg_nccl_unique_id(id, sizeof id, &len), IG_ERR_UNSUPPORTED);
#endif
    assert_int_equal(len, 0);
}

#ifdef IG_HAVE_NCCL
/* The group of ig_pg_init_nccl_id: rank 0's id broadcast over the MPI group
 * (as the coordinator relays it to ranks started by workers). */
static ig_pg *nccl_id_world(void) {
    unsigned char id[256];
    size_t len = 0;
    int64_t n = 0;
    if (ig_pg_rank(world) == 0 && ig_pg_nccl_unique_id(id, sizeof id, &len) == IG_OK) n = (int64_t)len;
    ig_tensor *tn = ig_from_data(&n, IG_SHAPE(1), IG_I64, IG_CPU);
    ig_tensor *tid = ig_from_data(id, IG_SHAPE(256), IG_U8, IG_CPU);
    ig_pg *g = NULL;
    if (ig_pg_broadcast(world, tn, 0, NULL) == IG_OK && ig_pg_broadcast(world, tid, 0, NULL) == IG_OK &&
        ig_tensor_item(tn) > 0) {
        ig_pg_opts o = IG_PG_OPTS_INIT;
        o.timeout_s = 60;
        if (ig_pg_init_nccl_id(ig_pg_rank(world), ig_pg_size(world), ig_tensor_data(tid),
                               (size_t)ig_tensor_item(tn), ig_pg_device(nccl_world), &o, &g) != IG_OK)
            fprintf(stderr, "test_comm: NCCL group from an id: %s\n", ig_last_error());
    }
    ig_tensor_free(tn);
    ig_tensor_free(tid);
    return g;
}
#endif

static void mpi_group_refuses_cuda_tensors(void **state) {
    (void)state;
    if (ig_cuda_device_count() == 0) skip();
    ig_scope *s = ig_scope_begin();
    int dev = nccl_world ? ig_pg_device(nccl_world) : 0;
    ig_tensor *t = ig_ones(IG_SHAPE(4), IG_F32, IG_CUDA(dev));
    assert_int_equal(ig_pg_all_reduce(world, t, IG_REDUCE_SUM, NULL), IG_ERR_UNSUPPORTED);
    assert_non_null(strstr(ig_last_error(), "all_reduce"));
    ig_scope_end(s);
}

/* ---- last: the deadline ---- */

/* Only rank 0 enters a collective, with a 0.5 s deadline: it must fail with
 * IG_ERR_TIMEOUT in about that time, and every later call at once. (The
 * no_abort_on_timeout option keeps the job alive; by default it would end.)
 * The other ranks enter it 1.5 s later, which unsticks rank 0's thread so the
 * group can be freed. */
static void collective_past_its_deadline_times_out_and_aborts_the_group(void **state) {
    (void)state;
    int r = ig_pg_rank(world);
    if (ig_pg_size(world) < 2) skip();
    ig_pg_opts o = IG_PG_OPTS_INIT;
    o.timeout_s = r == 0 ? 0.5 : 60;
    o.no_abort_on_timeout = true;
    ig_pg *g;
    assert_int_equal(ig_pg_init_world(&o, &g), IG_OK);
    ig_tensor *t = ig_ones(IG_SHAPE(4), IG_F32, IG_CPU); /* outlives g's stuck collective */
    assert_int_equal(ig_pg_barrier(world), IG_OK);
    if (r == 0) {
        double t0 = now();
        assert_int_equal(ig_pg_all_reduce(g, t, IG_REDUCE_SUM, NULL), IG_ERR_TIMEOUT);
        double waited = now() - t0;
        assert_true(waited > 0.45 && waited < 1.5);
        t0 = now();
        assert_int_equal(ig_pg_all_reduce(g, t, IG_REDUCE_SUM, NULL), IG_ERR_TIMEOUT);
        assert_int_equal(ig_pg_barrier(g), IG_ERR_TIMEOUT);
        assert_true(now() - t0 < 0.1);
        assert_non_null(strstr(ig_last_error(), "aborted"));
    } else {
        usleep(1500 * 1000);
        assert_int_equal(ig_pg_all_reduce(g, t, IG_REDUCE_SUM, NULL), IG_OK);
    }
    assert_int_equal(ig_pg_barrier(world), IG_OK);
    ig_pg_free(g);
    ig_tensor_free(t);
}

int main(void) {
    ig_pg_opts o = IG_PG_OPTS_INIT;
    o.timeout_s = 60; /* a test that diverges ends the job instead of hanging it */
    if (ig_pg_init_world(&o, &world) != IG_OK) {
        fprintf(stderr, "test_comm: %s\n", ig_last_error());
        return 1;
    }
#ifdef IG_HAVE_NCCL
    if (ig_cuda_device_count() >= ig_pg_size(world)) {
        o.backend = IG_BACKEND_NCCL;
        if (ig_pg_init_world(&o, &nccl_world) != IG_OK) {
            fprintf(stderr, "test_comm: NCCL group: %s\n", ig_last_error());
            return 1;
        }
        if (!(id_world = nccl_id_world())) return 1;
    }
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mpi_all_reduce_sums_averages_and_maxes_f32_f64_i64_bf16),
        cmocka_unit_test(mpi_broadcast_from_a_nonzero_root_reaches_every_rank),
        cmocka_unit_test(mpi_all_gather_places_rank_r_at_block_r),
        cmocka_unit_test(mpi_reduce_scatter_gives_rank_r_block_r_of_the_sum),
        cmocka_unit_test(mpi_send_then_recv_around_a_ring_does_not_deadlock),
        cmocka_unit_test(mpi_async_work_completes_in_any_wait_order),
        cmocka_unit_test(barrier_waits_for_the_slowest_rank),
        cmocka_unit_test(subgroup_of_even_ranks_reduces_among_its_members_only),
        cmocka_unit_test(env_detect_reports_the_mpirun_rank_and_size),
        cmocka_unit_test(env_detect_reads_torchrun_and_names_a_malformed_variable),
        cmocka_unit_test(nccl_collectives_on_cuda_f32_and_bf16_match_the_reference),
        cmocka_unit_test(nccl_id_group_runs_cuda_and_cpu_collectives_without_mpi),
        cmocka_unit_test(nccl_id_of_the_wrong_length_is_refused),
        cmocka_unit_test(nccl_id_group_whose_peer_never_comes_times_out),
        cmocka_unit_test(mpi_group_refuses_cuda_tensors),
        cmocka_unit_test(collective_past_its_deadline_times_out_and_aborts_the_group),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    ig_pg_free(id_world);
    ig_pg_free(nccl_world);
    ig_pg_free(world);
    return failed ? 1 : 0;
}

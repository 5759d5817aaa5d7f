/* tests/test_ddp.c: distributed data parallel, run under mpirun at 1, 2 and 4
 * ranks (tests/run_mpi.sh). Every rank runs every test in the same order.
 * DDP training equals one process training on the global batch; creation
 * broadcasts rank 0's parameters and fails on every rank (no hang) when the
 * parameter lists differ; the bucket layout (reverse order, one dtype a
 * bucket, gradients as views); averaging, unused parameters and re-attached
 * gradients; the trace shows all-reduce starting during backward; no_sync
 * accumulation. The reference runs in every process without DDP. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ignis/ddp.h"
#include "ignis/optim.h"
#include "tests/testutil.h"

static ig_pg *pg;
static int rank, world;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- data: a global batch of fixed rows, each rank takes its own ---- */

enum { T = 8, V = 32, IN = 8, CLASSES = 4 };

/* Tokens (rows, T) of batch `step`, random, and targets that a function of
 * the token (learnable, so that training visibly moves the parameters). */
static void gpt_batch(int step, int rows, int64_t *idx, int64_t *tgt) {
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(step + 1);
    for (int i = 0; i < rows * T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        idx[i] = (int64_t)((s >> 33) % V);
        tgt[i] = (idx[i] * 3 + 1) % V;
    }
}

/* Rows [r0, r0 + n) of a (rows, T) i64 array. */
static ig_tensor *rows_i64(const int64_t *a, int r0, int n, int width) {
    return ig_from_data(a + (int64_t)r0 * width, IG_SHAPE(n, width), IG_I64, IG_CPU);
}

static ig_tensor *gpt_loss(ig_model *m, const int64_t *idx, const int64_t *tgt, int r0, int n) {
    return ig_gpt_loss(m, rows_i64(idx, r0, n, T), rows_i64(tgt, r0, n, T));
}

/* MLP inputs (rows, IN) f32 and labels of batch `step`, rows [r0, r0 + n). */
static ig_tensor *mlp_loss(ig_model *m, int step, int r0, int n) {
    ig_generator g = {100 + (uint64_t)step, 0};
    ig_tensor *x = ig_randn(IG_SHAPE(r0 + n, IN), IG_F32, IG_CPU, &g);
    int64_t *y = malloc(sizeof(int64_t) * (size_t)(r0 + n));
    for (int i = 0; i < r0 + n; i++) y[i] = (i * 7 + step) % CLASSES;
    ig_tensor *labels = rows_i64(y, r0, n, 1);
    free(y);
    labels = ig_view(labels, IG_SHAPE(n));
    return ig_cross_entropy(ig_mlp_forward(m, ig_narrow(x, 0, r0, n)), labels,
                            IG_IGNORE_INDEX_NONE, 0.0);
}

static ig_model *tiny_gpt(int n_layer, int n_embd, uint64_t seed) {
    ig_gpt_config cfg = {n_layer, 2, n_embd, T, V, 0.0};
    ig_generator g = {seed, 0};
    return ig_gpt_new(&cfg, IG_CPU, &g);
}

static ig_model *small_mlp(uint64_t seed) {
    ig_mlp_config cfg = {IN, 16, 2, CLASSES, 0.0};
    ig_generator g = {seed, 0};
    return ig_mlp_new(&cfg, IG_CPU, &g);
}

/* Largest |a - b| / (atol + rtol |b|) over every parameter; asserts the
 * lists are alike. */
static double params_ratio(ig_model *a, ig_model *b, double atol, double rtol) {
    const ig_param_list *la = ig_model_params(a), *lb = ig_model_params(b);
    assert_int_equal(la->n, lb->n);
    double worst = 0;
    ig_scope *s = ig_scope_begin();
    for (int i = 0; i < la->n; i++) {
        double r = tu_close_ratio(la->tensors[i], lb->tensors[i], atol, rtol);
        worst = r > worst ? r : worst;
    }
    ig_scope_end(s);
    return worst;
}

static ig_ddp *make_ddp(ig_model *m, size_t bucket_bytes, bool trace) {
    ig_ddp_opts o = IG_DDP_OPTS_INIT;
    o.bucket_bytes = bucket_bytes;
    o.trace = trace;
    ig_ddp *d = NULL;
    assert_int_equal(ig_ddp_new(ig_model_params(m), pg, &o, &d), IG_OK);
    return d;
}

/* ---- equivalence with one process on the global batch ---- */

enum { B = 2, STEPS = 5 };

static void ddp_sgd_on_a_gpt_matches_one_process_on_the_global_batch(void **state) {
    ig_model *m = tiny_gpt(2, 16, 7), *ref = tiny_gpt(2, 16, 7);
    ig_ddp *d = make_ddp(m, 2048, false);
    assert_true(ig_ddp_bucket_count(d) > 1);
    ig_optim_config oc = IG_OPTIM_CONFIG_INIT;
    oc.kind = IG_OPTIM_SGD;
    oc.lr = 0.5;
    oc.momentum = 0.9;
    oc.weight_decay = 0.01;
    ig_optim *om = ig_optim_new(ig_model_params(m), &oc), *or = ig_optim_new(ig_model_params(ref), &oc);
    int gb = B * world;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)gb * T), *tgt = malloc(sizeof(int64_t) * (size_t)gb * T);
    double loss0 = 0, loss_last = 0;
    for (int step = 0; step < STEPS; step++) {
        gpt_batch(step % 2, gb, idx, tgt);
        ig_scope *s = ig_scope_begin();
        assert_int_equal(ig_backward(gpt_loss(m, idx, tgt, rank * B, B)), IG_OK);
        assert_int_equal(ig_ddp_finish(d), IG_OK);
        assert_int_equal(ig_optim_step(om), IG_OK);
        ig_optim_zero_grad(om, false);
        ig_tensor *lr = gpt_loss(ref, idx, tgt, 0, gb);
        if (step == 0) loss0 = ig_tensor_item(lr);
        loss_last = ig_tensor_item(lr);
        assert_int_equal(ig_backward(lr), IG_OK);
        assert_int_equal(ig_optim_step(or), IG_OK);
        ig_optim_zero_grad(or, false);
        ig_scope_end(s);
    }
    assert_true(loss_last < loss0 - 0.2); /* it trained: the parameters moved */
    double r = params_ratio(m, ref, 1e-7, 1e-5);
    if (rank == 0) printf("gpt+sgd, %d ranks: loss %.3f -> %.3f, worst |ddp - ref| / (1e-7 + 1e-5 |ref|) %.3g\n",
                          world, loss0, loss_last, r);
    assert_true(r <= 1);
    free(idx);
    free(tgt);
    ig_optim_free(om);
    ig_optim_free(or);
    ig_ddp_free(d);
    ig_model_free(m);
    ig_model_free(ref);
}

static void ddp_adamw_on_an_mlp_matches_one_process_on_the_global_batch(void **state) {
    ig_model *m = small_mlp(3), *ref = small_mlp(3);
    ig_ddp *d = make_ddp(m, 256, false);
    ig_optim_config oc = IG_OPTIM_CONFIG_INIT; /* AdamW */
    oc.lr = 1e-2;
    ig_optim *om = ig_optim_new(ig_model_params(m), &oc), *or = ig_optim_new(ig_model_params(ref), &oc);
    for (int step = 0; step < STEPS; step++) {
        ig_scope *s = ig_scope_begin();
        assert_int_equal(ig_backward(mlp_loss(m, step, rank * 3, 3)), IG_OK);
        assert_int_equal(ig_ddp_finish(d), IG_OK);
        assert_int_equal(ig_optim_step(om), IG_OK);
        ig_optim_zero_grad(om, false);
        assert_int_equal(ig_backward(mlp_loss(ref, step, 0, 3 * world)), IG_OK);
        assert_int_equal(ig_optim_step(or), IG_OK);
        ig_optim_zero_grad(or, false);
        ig_scope_end(s);
    }
    double r = params_ratio(m, ref, 1e-7, 1e-5);
    if (rank == 0) printf("mlp+adamw, %d ranks: worst |ddp - ref| / (1e-7 + 1e-5 |ref|) %.3g\n", world, r);
    assert_true(r <= 1);
    ig_optim_free(om);
    ig_optim_free(or);
    ig_ddp_free(d);
    ig_model_free(m);
    ig_model_free(ref);
}

/* ---- creation ---- */

static void ddp_new_gives_every_rank_the_parameters_of_rank_0(void **state) {
    ig_model *m = small_mlp(10 + (uint64_t)rank), *rank0 = small_mlp(10);
    ig_model *own = small_mlp(10 + (uint64_t)rank), *kept = small_mlp(10 + (uint64_t)rank);
    ig_ddp *d = make_ddp(m, 1024, false);
    assert_true(params_ratio(m, rank0, 0, 0) == 0);
    ig_ddp_opts o = IG_DDP_OPTS_INIT;
    o.broadcast_params = false;
    ig_ddp *dk = NULL;
    assert_int_equal(ig_ddp_new(ig_model_params(kept), pg, &o, &dk), IG_OK);
    assert_true(params_ratio(kept, own, 0, 0) == 0);
    ig_ddp_free(d);
    ig_ddp_free(dk);
    ig_model_free(m);
    ig_model_free(rank0);
    ig_model_free(own);
    ig_model_free(kept);
}

/* Parameters a [2, 3], b [3, 4] (or `b_shape`), c [4]; `extra` adds d [2]. */
static void make_list(ig_param_list *l, const char *b_name, int64_t b_cols, bool extra) {
    ig_param_list_init(l);
    ig_param_list_add(l, "a", ig_requires_grad_(ig_keep(ig_zeros(IG_SHAPE(2, 3), IG_F32, IG_CPU)), true));
    ig_param_list_add(l, b_name, ig_requires_grad_(ig_keep(ig_zeros(IG_SHAPE(3, b_cols), IG_F32, IG_CPU)), true));
    ig_param_list_add(l, "c", ig_requires_grad_(ig_keep(ig_zeros(IG_SHAPE(4), IG_F32, IG_CPU)), true));
    if (extra) ig_param_list_add(l, "d", ig_requires_grad_(ig_keep(ig_zeros(IG_SHAPE(2), IG_F32, IG_CPU)), true));
}

/* Every rank gets IG_ERR_INVALID and a message containing `want`. */
static void expect_mismatch(const char *b_name, int64_t b_cols, bool extra, const char *want) {
    ig_param_list l;
    bool odd = rank == world - 1;
    make_list(&l, odd ? b_name : "b", odd ? b_cols : 4, odd && extra);
    ig_ddp *d = (ig_ddp *)&l;
    assert_int_equal(ig_ddp_new(&l, pg, NULL, &d), IG_ERR_INVALID);
    assert_null(d);
    if (!strstr(ig_last_error(), want)) fail_msg("rank %d: '%s' lacks '%s'", rank, ig_last_error(), want);
    ig_param_list_destroy(&l);
}

static void ddp_new_fails_on_every_rank_naming_the_first_differing_parameter(void **state) {
    if (world == 1) skip();
    expect_mismatch("b", 5, false, "'b'");      /* shape */
    expect_mismatch("bb", 4, false, "index 1"); /* name */
    expect_mismatch("b", 4, true, "parameters, rank 0 has 3");
    /* and the group still works: a matching list succeeds */
    ig_param_list l;
    make_list(&l, "b", 4, false);
    ig_ddp *d = NULL;
    assert_int_equal(ig_ddp_new(&l, pg, NULL, &d), IG_OK);
    ig_ddp_free(d);
    ig_param_list_destroy(&l);
}

/* ---- buckets, averaging, unused parameters, re-attached gradients ---- */

/* p0 [4, 4] f32, p1 [3] f64, p2 [5, 2] f32, p3 [7] f64, p4 [2, 2, 2] f32. With
 * 40-byte buckets, walking p4..p0: b0 = {p4, p2} (f32, 72 bytes), b1 = {p3}
 * (f64, 56), b2 = {p1} (f64, left open), b3 = {p0} (f32, 64). */
static const int64_t want_bucket[5] = {3, 2, 0, 1, 0}, want_offset[5] = {0, 0, 8, 0, 0};

static void make_mixed(ig_param_list *l) {
    static const int nd[5] = {2, 1, 2, 1, 3};
    static const int64_t shp[5][3] = {{4, 4}, {3}, {5, 2}, {7}, {2, 2, 2}};
    ig_param_list_init(l);
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "p%d", i);
        ig_dtype dt = i % 2 ? IG_F64 : IG_F32;
        ig_param_list_add(l, name, ig_requires_grad_(ig_keep(ig_ones(nd[i], shp[i], dt, IG_CPU)), true));
    }
}

/* sum_i (i + 1)(rank + 1) sum(p_i), without p1 on rank 0 (unused there). */
static ig_tensor *mixed_loss(ig_param_list *l) {
    ig_tensor *loss = ig_zeros(IG_SHAPE(1), IG_F64, IG_CPU);
    for (int i = 0; i < l->n; i++) {
        if (i == 1 && rank == 0) continue;
        ig_tensor *t = ig_to(ig_sum(l->tensors[i], 0, NULL, false), IG_F64, IG_CPU);
        loss = ig_add(loss, ig_mul_scalar(t, (i + 1.0) * (rank + 1.0)));
    }
    return ig_sum(loss, 0, NULL, false);
}

/* Every gradient is the view of its slice and holds the rank average. */
static void check_mixed_grads(ig_ddp *d, ig_param_list *l) {
    for (int i = 0; i < l->n; i++) {
        ig_tensor *g = ig_tensor_grad(l->tensors[i]), *bk = ig_ddp_bucket(d, (int)want_bucket[i]);
        assert_non_null(g);
        assert_int_equal(ig_tensor_dtype(bk), ig_tensor_dtype(l->tensors[i]));
        size_t es = ig_dtype_size(ig_tensor_dtype(bk));
        assert_ptr_equal(ig_tensor_data(g), (char *)ig_tensor_data(bk) + want_offset[i] * (int64_t)es);
        double users = 0; /* sum over the ranks that use p_i of rank + 1 */
        for (int r = (i == 1 ? 1 : 0); r < world; r++) users += r + 1;
        ig_scope *s = ig_scope_begin();
        ig_tensor *want = ig_full(ig_tensor_ndim(g), ig_tensor_shape(g), (i + 1) * users / world,
                                  IG_F64, IG_CPU);
        tu_assert_close(g, want, 0, 0, l->names[i]);
        ig_scope_end(s);
    }
}

static void buckets_fill_in_reverse_order_one_dtype_each_and_hold_the_averaged_gradients(void **state) {
    ig_memory_stats before, after;
    ig_memory_stats_get(&before);
    ig_param_list l;
    make_mixed(&l);
    ig_ddp_opts o = IG_DDP_OPTS_INIT;
    o.bucket_bytes = 40;
    ig_ddp *d = NULL;
    assert_int_equal(ig_ddp_new(&l, pg, &o, &d), IG_OK);
    assert_int_equal(ig_ddp_bucket_count(d), 4);
    static const int64_t bucket_numel[4] = {18, 7, 3, 16};
    for (int b = 0; b < 4; b++) assert_int_equal(ig_tensor_numel(ig_ddp_bucket(d, b)), bucket_numel[b]);
    for (int step = 0; step < 3; step++) {
        /* step 1 drops the gradients: finish re-attaches them to the buckets */
        for (int i = 0; i < l.n; i++) ig_tensor_zero_grad(l.tensors[i], step == 1);
        ig_scope *s = ig_scope_begin();
        assert_int_equal(ig_backward(mixed_loss(&l)), IG_OK);
        assert_int_equal(ig_ddp_finish(d), IG_OK);
        ig_scope_end(s);
        check_mixed_grads(d, &l);
    }
    ig_ddp_free(d);
    ig_param_list_destroy(&l);
    ig_memory_stats_get(&after); /* buckets, views and gradients all released */
    assert_int_equal(after.live_tensors, before.live_tensors);
    assert_int_equal(after.live_bytes[IG_DEV_CPU], before.live_bytes[IG_DEV_CPU]);
}

/* ---- overlap: the trace ---- */

static void first_bucket_all_reduce_starts_before_backward_ends(void **state) {
    ig_model *m = tiny_gpt(4, 32, 5);
    ig_ddp *d = make_ddp(m, 8192, true);
    int nb = ig_ddp_bucket_count(d);
    assert_true(nb > 4);
    int64_t *idx = malloc(sizeof(int64_t) * B * T * (size_t)world), *tgt = malloc(sizeof(int64_t) * B * T * (size_t)world);
    gpt_batch(0, B * world, idx, tgt);
    for (int step = 0; step < 2; step++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *loss = gpt_loss(m, idx, tgt, rank * B, B);
        double t0 = now();
        assert_int_equal(ig_backward(loss), IG_OK);
        double t1 = now();
        assert_int_equal(ig_ddp_finish(d), IG_OK);
        ig_scope_end(s);
        ig_ddp_trace_info tr;
        ig_ddp_trace(d, &tr);
        assert_int_equal(tr.n, nb);
        assert_true(tr.events[0].ready > t0);
        assert_true(tr.events[0].ready < t1); /* issued while backward ran */
        assert_true(tr.events[0].ready < tr.backward_end);
        assert_true(tr.backward_end >= t1);
        for (int b = 0; b < nb; b++) {
            assert_int_equal(tr.events[b].bucket, b);
            assert_true(tr.events[b].done >= tr.events[b].ready);
            if (b > 0) assert_true(tr.events[b].ready >= tr.events[b - 1].ready);
        }
        if (rank == 0 && step == 1)
            printf("%d buckets: first issued %.3f ms after backward began, backward took %.3f ms\n",
                   nb, 1e3 * (tr.events[0].ready - t0), 1e3 * (t1 - t0));
    }
    free(idx);
    free(tgt);
    ig_ddp_free(d);
    ig_model_free(m);
}

/* ---- gradient accumulation ---- */

static void no_sync_then_sync_equals_one_step_on_the_concatenated_batch(void **state) {
    ig_model *m = small_mlp(21), *ref = small_mlp(21);
    ig_ddp *d = make_ddp(m, 512, true);
    enum { MB = 3 };
    /* micro-batch k of rank r: rows (k world + r) MB of a global batch of 2 world MB */
    ig_scope *s = ig_scope_begin();
    ig_ddp_set_sync(d, false);
    ig_tensor *l0 = ig_mul_scalar(mlp_loss(m, 0, rank * MB, MB), 0.5);
    assert_int_equal(ig_backward(l0), IG_OK);
    assert_int_equal(ig_ddp_finish(d), IG_OK); /* a no-op */
    ig_ddp_trace_info tr;
    ig_ddp_trace(d, &tr);
    assert_int_equal(tr.n, 0); /* nothing synchronized yet */
    ig_ddp_set_sync(d, true);
    ig_tensor *l1 = ig_mul_scalar(mlp_loss(m, 0, (world + rank) * MB, MB), 0.5);
    assert_int_equal(ig_backward(l1), IG_OK);
    assert_int_equal(ig_ddp_finish(d), IG_OK);
    ig_ddp_trace(d, &tr);
    assert_int_equal(tr.n, ig_ddp_bucket_count(d));
    assert_int_equal(ig_backward(mlp_loss(ref, 0, 0, 2 * world * MB)), IG_OK);
    const ig_param_list *lm = ig_model_params(m), *lr = ig_model_params(ref);
    for (int i = 0; i < lm->n; i++)
        tu_assert_close(ig_tensor_grad(lm->tensors[i]), ig_tensor_grad(lr->tensors[i]), 1e-7, 1e-5,
                        lm->names[i]);
    ig_scope_end(s);
    ig_ddp_free(d);
    ig_model_free(m);
    ig_model_free(ref);
}

int main(void) {
    ig_pg_opts po = IG_PG_OPTS_INIT;
    po.timeout_s = 120; /* a failed assertion on one rank ends the job, not the CI */
    ig_status st = ig_pg_init_world(&po, &pg);
    if (st == IG_ERR_UNSUPPORTED) return 77;
    if (st != IG_OK) {
        fprintf(stderr, "ig_pg_init_world: %s\n", ig_last_error());
        return 1;
    }
    rank = ig_pg_rank(pg);
    world = ig_pg_size(pg);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ddp_sgd_on_a_gpt_matches_one_process_on_the_global_batch),
        cmocka_unit_test(ddp_adamw_on_an_mlp_matches_one_process_on_the_global_batch),
        cmocka_unit_test(ddp_new_gives_every_rank_the_parameters_of_rank_0),
        cmocka_unit_test(ddp_new_fails_on_every_rank_naming_the_first_differing_parameter),
        cmocka_unit_test(buckets_fill_in_reverse_order_one_dtype_each_and_hold_the_averaged_gradients),
        cmocka_unit_test(first_bucket_all_reduce_starts_before_backward_ends),
        cmocka_unit_test(no_sync_then_sync_equals_one_step_on_the_concatenated_batch),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    ig_pg_free(pg);
    return failed ? 1 : 0;
}

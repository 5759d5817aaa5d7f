/* tests/test_cuda.c: the CUDA backend against the CPU reference, on random
 * inputs: copies, fills, random numbers, elementwise ops, reductions, matmul
 * and linear, softmax, cross-entropy (forward and backward through
 * ig_backward), streams, the caching allocator's steady state, and a small MLP
 * that must learn on the GPU. f32 results agree within 1e-5 (relative, with
 * an absolute floor where sums cancel), bf16 within 1e-2. Exits 77 (skipped)
 * when there is no GPU. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/testutil.h"

#define GPU IG_CUDA(0)

/* a (from the GPU) close to b (the CPU reference): f32 within atol + 1e-5 |b|;
 * bf16 within 1e-2 (|b| + max |b|), since bf16 keeps 8 bits and an output
 * saved in bf16 for backward carries that error into every gradient element. */
static void assert_close(ig_tensor *a, ig_tensor *b, ig_dtype dt, double atol, const char *what) {
    double rtol = 1e-5;
    if (dt == IG_BF16) {
        ig_tensor *m = ig_max(ig_abs(ig_flatten(ig_to(ig_detach(b), IG_F32, IG_CPU))), 0, false, NULL);
        rtol = 1e-2;
        atol = rtol * ig_tensor_item(m);
    }
    tu_assert_close(a, b, atol, rtol, what);
}

/* A random leaf on the CPU (scaled) and an equal leaf on the GPU. */
static ig_tensor *leaf_pair(int ndim, const int64_t *shape, ig_dtype dt, double scale,
                            ig_tensor **gpu) {
    ig_tensor *c = ig_to(ig_mul_scalar(ig_randn(ndim, shape, IG_F32, IG_CPU, NULL), scale), dt,
                         IG_CPU);
    *gpu = ig_requires_grad_(ig_to(c, dt, GPU), true);
    return ig_requires_grad_(c, true);
}

/* Backpropagates sum(y * w) for a fixed random w (same on both devices). */
static void backward_weighted(ig_tensor *yc, ig_tensor *yg) {
    ig_tensor *w = ig_randn(ig_tensor_ndim(yc), ig_tensor_shape(yc), IG_F32, IG_CPU, NULL);
    ig_tensor *wc = ig_to(w, ig_tensor_dtype(yc), IG_CPU), *wg = ig_to(w, ig_tensor_dtype(yg), GPU);
    assert_int_equal(ig_backward(ig_sum_all(ig_mul(yc, wc))), IG_OK);
    assert_int_equal(ig_backward(ig_sum_all(ig_mul(yg, wg))), IG_OK);
}

static void assert_grads_close(ig_tensor *c, ig_tensor *g, ig_dtype dt, double atol,
                               const char *what) {
    assert_non_null(ig_tensor_grad(c));
    assert_non_null(ig_tensor_grad(g));
    assert_true(ig_device_eq(ig_tensor_device(ig_tensor_grad(g)), GPU));
    assert_close(ig_tensor_grad(g), ig_tensor_grad(c), dt, atol, what);
}

/* ---- data movement ---- */

static void copies_across_dtypes_and_devices_match_the_cpu(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_mul_scalar(ig_randn(IG_SHAPE(37, 53), IG_F32, IG_CPU, NULL), 100);
    ig_tensor *xg = ig_to(x, IG_F32, GPU);
    assert_true(ig_device_eq(ig_tensor_device(xg), GPU));
    tu_assert_close(xg, x, 0, 0, "host -> device -> host");
    tu_assert_close(ig_clone(xg), x, 0, 0, "device -> device");
    const ig_dtype dts[] = {IG_F64, IG_BF16, IG_F16, IG_I32, IG_I64, IG_U8};
    ig_tensor *small = ig_mul_scalar(ig_abs(x), 0.5); /* in range of u8 */
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        ig_tensor *src = dts[i] == IG_U8 ? small : x;
        ig_tensor *srcg = ig_to(src, IG_F32, GPU);
        ig_tensor *c = ig_to(src, dts[i], IG_CPU), *g = ig_to(srcg, dts[i], GPU);
        tu_assert_close(g, c, 0, 0, ig_dtype_name(dts[i]));
        tu_assert_close(ig_to(g, IG_F32, GPU), ig_to(c, IG_F32, IG_CPU), 0, 0, "and back to f32");
        tu_assert_close(ig_to(c, IG_BF16, GPU), ig_to(c, IG_BF16, IG_CPU), 0, 0,
                        "converted while crossing");
    }
    /* strided sources: transposed, sliced with a step */
    tu_assert_close(ig_contiguous(ig_transpose(xg, 0, 1)), ig_contiguous(ig_transpose(x, 0, 1)),
                    0, 0, "transposed");
    tu_assert_close(ig_to(ig_slice(ig_transpose(xg, 0, 1), 0, 1, 50, 3), IG_BF16, GPU),
                    ig_to(ig_slice(ig_transpose(x, 0, 1), 0, 1, 50, 3), IG_BF16, IG_CPU), 0, 0,
                    "sliced and converted");
    /* a broadcast host column into a transposed bf16 device view */
    ig_tensor *col = ig_randn(IG_SHAPE(53, 1), IG_F32, IG_CPU, NULL);
    ig_tensor *dg = ig_zeros(IG_SHAPE(37, 53), IG_BF16, GPU);
    ig_tensor *dc = ig_zeros(IG_SHAPE(37, 53), IG_BF16, IG_CPU);
    assert_int_equal(ig_copy_(ig_transpose(dg, 0, 1), col), IG_OK);
    assert_int_equal(ig_copy_(ig_transpose(dc, 0, 1), col), IG_OK);
    tu_assert_close(dg, dc, 0, 0, "broadcast copy_ into a view");
    ig_scope_end(s);
}

static void fills_match_the_cpu_for_every_dtype_and_view(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    const ig_dtype dts[] = {IG_F32, IG_F64, IG_BF16, IG_F16, IG_I32, IG_I64, IG_U8};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        double v = dts[i] == IG_U8 ? 3.25 : -2.7;
        tu_assert_close(ig_full(IG_SHAPE(5, 129), v, dts[i], GPU),
                        ig_full(IG_SHAPE(5, 129), v, dts[i], IG_CPU), 0, 0, ig_dtype_name(dts[i]));
        tu_assert_close(ig_zeros(IG_SHAPE(1000), dts[i], GPU), ig_zeros(IG_SHAPE(1000), dts[i], IG_CPU),
                        0, 0, "zeros");
    }
    ig_tensor *g = ig_ones(IG_SHAPE(6, 8), IG_F32, GPU), *c = ig_ones(IG_SHAPE(6, 8), IG_F32, IG_CPU);
    assert_int_equal(ig_fill_(ig_slice(ig_transpose(g, 0, 1), 0, 1, 8, 2), 0.0), IG_OK);
    assert_int_equal(ig_fill_(ig_slice(ig_transpose(c, 0, 1), 0, 1, 8, 2), 0.0), IG_OK);
    tu_assert_close(g, c, 0, 0, "fill_ of a strided view");
    ig_scope_end(s);
}

static void random_numbers_equal_the_cpu_for_the_same_generator_state(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_generator a = {1234, 77}, b = {1234, 77};
    tu_assert_close(ig_randn(IG_SHAPE(1000, 33), IG_F32, GPU, &b),
                    ig_randn(IG_SHAPE(1000, 33), IG_F32, IG_CPU, &a), 0, 0, "randn f32");
    tu_assert_close(ig_rand(IG_SHAPE(4097), IG_F64, GPU, &b),
                    ig_rand(IG_SHAPE(4097), IG_F64, IG_CPU, &a), 0, 0, "rand f64");
    ig_tensor *tg = ig_zeros(IG_SHAPE(30, 20), IG_BF16, GPU), *tc = ig_zeros(IG_SHAPE(30, 20), IG_BF16, IG_CPU);
    assert_non_null(ig_normal_(ig_transpose(tg, 0, 1), 0.5, 2.0, &b));
    assert_non_null(ig_normal_(ig_transpose(tc, 0, 1), 0.5, 2.0, &a));
    tu_assert_close(tg, tc, 0, 0, "normal_ into a transposed bf16 view");
    tu_assert_close(ig_uniform_(ig_empty(IG_SHAPE(999), IG_F32, GPU), -3, 5, &b),
                    ig_uniform_(ig_empty(IG_SHAPE(999), IG_F32, IG_CPU), -3, 5, &a), 0, 0,
                    "uniform_");
    assert_true(a.offset == b.offset && a.offset == 77 + 33000 + 4097 + 600 + 999);
    ig_scope_end(s);
}

/* ---- elementwise ---- */

typedef ig_tensor *(*binfn)(ig_tensor *, ig_tensor *);
static ig_tensor *pos_pow(ig_tensor *a, ig_tensor *b) {
    return ig_pow(ig_add_scalar(ig_abs(a), 0.5), b);
}

static void binary_ops_match_the_cpu_with_broadcasting_and_views(void **state) {
    (void)state;
    const struct { const char *name; binfn f; } ops[] = {
        {"add", ig_add}, {"sub", ig_sub}, {"mul", ig_mul}, {"div", ig_div}, {"pow", pos_pow},
    };
    const ig_dtype dts[] = {IG_F32, IG_BF16, IG_F64};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *ag, *bg, *a = leaf_pair(IG_SHAPE(4, 1, 5), dts[d], 1, &ag);
            ig_tensor *b = leaf_pair(IG_SHAPE(3, 1), dts[d], 1, &bg);
            ig_tensor *yc = ops[k].f(a, b), *yg = ops[k].f(ag, bg);
            assert_close(yg, yc, dts[d], 1e-5, ops[k].name);
            backward_weighted(yc, yg);
            assert_grads_close(a, ag, dts[d], 1e-5, "d a (broadcast)");
            assert_grads_close(b, bg, dts[d], 1e-5, "d b (broadcast)");
            /* a transposed view against a row */
            ig_tensor *eg, *fg, *e = leaf_pair(IG_SHAPE(70, 40), dts[d], 1, &eg);
            ig_tensor *f = leaf_pair(IG_SHAPE(70), dts[d], 1, &fg);
            assert_close(ops[k].f(ig_transpose(eg, 0, 1), fg), ops[k].f(ig_transpose(e, 0, 1), f),
                         dts[d], 1e-5, "transposed view");
            ig_scope_end(s);
        }
    }
}

static void comparisons_and_integer_arithmetic_match_the_cpu(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    const ig_dtype dts[] = {IG_I32, IG_I64, IG_U8};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        ig_tensor *x = ig_abs(ig_mul_scalar(ig_randn(IG_SHAPE(8, 9), IG_F32, IG_CPU, NULL), 3));
        ig_tensor *y = ig_abs(ig_mul_scalar(ig_randn(IG_SHAPE(9), IG_F32, IG_CPU, NULL), 3));
        ig_tensor *xc = ig_to(x, dts[d], IG_CPU), *yc = ig_to(y, dts[d], IG_CPU);
        ig_tensor *xg = ig_to(x, dts[d], GPU), *yg = ig_to(y, dts[d], GPU);
        tu_assert_close(ig_eq(xg, yg), ig_eq(xc, yc), 0, 0, "eq");
        tu_assert_close(ig_eq(ig_transpose(xg, 0, 1), ig_contiguous(ig_transpose(xg, 0, 1))),
                        ig_ones(IG_SHAPE(9, 8), IG_U8, IG_CPU), 0, 0, "eq of a view and its copy");
        tu_assert_close(ig_add(xg, yg), ig_add(xc, yc), 0, 0, "integer add");
        tu_assert_close(ig_mul(xg, yg), ig_mul(xc, yc), 0, 0, "integer mul");
    }
    ig_tensor *g, *c = leaf_pair(IG_SHAPE(33, 7), IG_F32, 1, &g);
    tu_assert_close(ig_gt_scalar(g, 0.25), ig_gt_scalar(c, 0.25), 0, 0, "gt");
    tu_assert_close(ig_lt_scalar(ig_to(g, IG_BF16, GPU), 0.25), ig_lt_scalar(ig_to(c, IG_BF16, IG_CPU), 0.25),
                    0, 0, "lt bf16");
    ig_scope_end(s);
}

typedef ig_tensor *(*unfn)(ig_tensor *);
static ig_tensor *add_s(ig_tensor *a) { return ig_add_scalar(a, 1.5); }
static ig_tensor *mul_s(ig_tensor *a) { return ig_mul_scalar(a, -2.5); }
static ig_tensor *rsub_s(ig_tensor *a) { return ig_rsub_scalar(a, 0.5); }
static ig_tensor *div_s(ig_tensor *a) { return ig_div_scalar(a, 4); }
static ig_tensor *pow_s(ig_tensor *a) { return ig_pow_scalar(ig_add_scalar(ig_abs(a), 0.5), 2.5); }
static ig_tensor *log_p(ig_tensor *a) { return ig_log(ig_add_scalar(ig_abs(a), 0.5)); }
static ig_tensor *sqrt_p(ig_tensor *a) { return ig_sqrt(ig_add_scalar(ig_abs(a), 0.5)); }
static ig_tensor *rsqrt_p(ig_tensor *a) { return ig_rsqrt(ig_add_scalar(ig_abs(a), 0.5)); }

static void unary_ops_and_their_gradients_match_the_cpu(void **state) {
    (void)state;
    const struct { const char *name; unfn f; } ops[] = {
        {"neg", ig_neg},   {"exp", ig_exp},       {"log", log_p},         {"sqrt", sqrt_p},
        {"rsqrt", rsqrt_p}, {"abs", ig_abs},      {"tanh", ig_tanh},      {"sigmoid", ig_sigmoid},
        {"relu", ig_relu}, {"gelu", ig_gelu},     {"gelu_tanh", ig_gelu_tanh}, {"silu", ig_silu},
        {"add_scalar", add_s}, {"mul_scalar", mul_s}, {"rsub_scalar", rsub_s},
        {"div_scalar", div_s}, {"pow_scalar", pow_s},
    };
    const ig_dtype dts[] = {IG_F32, IG_BF16};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *g, *c = leaf_pair(IG_SHAPE(64, 33), dts[d], 1.5, &g);
            /* on a transposed, strided view */
            ig_tensor *yc = ops[k].f(ig_slice(ig_transpose(c, 0, 1), 1, 0, 64, 3));
            ig_tensor *yg = ops[k].f(ig_slice(ig_transpose(g, 0, 1), 1, 0, 64, 3));
            assert_close(yg, yc, dts[d], 1e-5, ops[k].name);
            backward_weighted(yc, yg);
            assert_grads_close(c, g, dts[d], 1e-5, ops[k].name);
            ig_scope_end(s);
        }
    }
}

/* ---- reductions ---- */

static void sums_and_means_match_the_cpu(void **state) {
    (void)state;
    const ig_dtype dts[] = {IG_F32, IG_BF16};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *g, *c = leaf_pair(IG_SHAPE(6, 7, 8), dts[d], 1, &g);
        int d1[] = {1}, d02[] = {0, 2};
        assert_close(ig_sum(g, 1, d1, true), ig_sum(c, 1, d1, true), dts[d], 1e-5, "sum dim 1");
        assert_close(ig_mean(g, 2, d02, false), ig_mean(c, 2, d02, false), dts[d], 1e-5, "mean dims 0, 2");
        ig_tensor *yc = ig_mean(ig_transpose(c, 0, 2), 1, d1, false);
        ig_tensor *yg = ig_mean(ig_transpose(g, 0, 2), 1, d1, false);
        assert_close(yg, yc, dts[d], 1e-5, "mean of a view");
        backward_weighted(yc, yg);
        assert_grads_close(c, g, dts[d], 1e-5, "mean backward");
        /* few long rows: the chunked two-pass sum */
        ig_tensor *lg, *l = leaf_pair(IG_SHAPE(3, 70001), dts[d], 1, &lg);
        int dl[] = {-1};
        assert_close(ig_sum(lg, 1, dl, false), ig_sum(l, 1, dl, false), dts[d], 1e-3, "long rows");
        assert_close(ig_mean_all(lg), ig_mean_all(l), dts[d], 1e-5, "mean_all");
        ig_scope_end(s);
    }
}

/* ---- matmul and linear ---- */

typedef struct mm_case {
    const char *name;
    int na, nb;
    int64_t sa[4], sb[4];
    bool ta, tb; /* operand given as the transpose of a contiguous tensor */
} mm_case;

static ig_tensor *maybe_t(ig_tensor *t, bool tr) {
    return tr ? ig_transpose(t, -1, -2) : t;
}

static void matmul_and_linear_match_the_cpu_forward_and_backward(void **state) {
    (void)state;
    const mm_case cases[] = {
        {"2-D", 2, 2, {33, 17}, {17, 29}, false, false},
        {"transposed operands", 2, 2, {17, 33}, {29, 17}, true, true},
        {"batched", 3, 3, {4, 8, 16}, {4, 16, 12}, false, false},
        {"batched, b transposed", 3, 3, {4, 8, 16}, {4, 12, 16}, false, true},
        {"broadcast batch", 4, 3, {2, 1, 5, 6}, {3, 6, 7}, false, false},
        {"shared b", 3, 2, {5, 9, 16}, {16, 11}, false, false},
        {"k = 256 (no TF32)", 2, 2, {64, 256}, {256, 48}, false, false},
        {"matrix @ vector", 2, 1, {9, 12}, {12}, false, false},
    };
    const ig_dtype dts[] = {IG_F32, IG_BF16};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            const mm_case *m = &cases[k];
            ig_scope *s = ig_scope_begin();
            ig_tensor *ag, *bg, *a = leaf_pair(m->na, m->sa, dts[d], 1, &ag);
            ig_tensor *b = leaf_pair(m->nb, m->sb, dts[d], 1, &bg);
            ig_tensor *yc = ig_matmul(maybe_t(a, m->ta), maybe_t(b, m->tb));
            ig_tensor *yg = ig_matmul(maybe_t(ag, m->ta), maybe_t(bg, m->tb));
            assert_non_null(yg);
            assert_close(yg, yc, dts[d], 1e-4, m->name);
            backward_weighted(yc, yg);
            assert_grads_close(a, ag, dts[d], 1e-4, m->name);
            assert_grads_close(b, bg, dts[d], 1e-4, m->name);
            ig_scope_end(s);
        }
        ig_scope *s = ig_scope_begin();
        ig_tensor *xg, *wg, *bg, *x = leaf_pair(IG_SHAPE(2, 5, 20), dts[d], 1, &xg);
        ig_tensor *w = leaf_pair(IG_SHAPE(15, 20), dts[d], 0.3, &wg);
        ig_tensor *b = leaf_pair(IG_SHAPE(15), dts[d], 1, &bg);
        ig_tensor *yc = ig_linear(x, w, b), *yg = ig_linear(xg, wg, bg);
        assert_close(yg, yc, dts[d], 1e-4, "linear");
        backward_weighted(yc, yg);
        assert_grads_close(x, xg, dts[d], 1e-4, "linear d x");
        assert_grads_close(w, wg, dts[d], 1e-4, "linear d w");
        assert_grads_close(b, bg, dts[d], 1e-4, "linear d bias");
        ig_scope_end(s);
    }
}

/* ---- softmax and cross-entropy ---- */

static void softmax_and_log_softmax_match_the_cpu_forward_and_backward(void **state) {
    (void)state;
    const struct { int n; int64_t shape[3]; int dim; } cases[] = {
        {2, {16, 37}, -1}, {3, {5, 6, 7}, 1}, {2, {4, 5000}, -1},
    };
    const ig_dtype dts[] = {IG_F32, IG_BF16};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            for (int lg = 0; lg < 2; lg++) {
                ig_scope *s = ig_scope_begin();
                ig_tensor *g, *c = leaf_pair(cases[k].n, cases[k].shape, dts[d], 2, &g);
                ig_tensor *yc = lg ? ig_log_softmax(c, cases[k].dim) : ig_softmax(c, cases[k].dim);
                ig_tensor *yg = lg ? ig_log_softmax(g, cases[k].dim) : ig_softmax(g, cases[k].dim);
                const char *name = lg ? "log_softmax" : "softmax";
                assert_close(yg, yc, dts[d], 1e-6, name);
                backward_weighted(yc, yg);
                assert_grads_close(c, g, dts[d], 1e-6, name);
                ig_scope_end(s);
            }
        }
    }
}

static void cross_entropy_matches_the_cpu_with_ignore_index_and_smoothing(void **state) {
    (void)state;
    const struct { int n; int64_t shape[3]; double smoothing; } cases[] = {
        {2, {64, 10}, 0.0}, {2, {64, 10}, 0.1}, {3, {2, 8, 10}, 0.0}, {2, {8, 5000}, 0.05},
    };
    const ig_dtype dts[] = {IG_F32, IG_BF16};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            ig_scope *s = ig_scope_begin();
            int n = cases[k].n;
            int64_t cols = cases[k].shape[n - 1], rows = 1;
            for (int i = 0; i < n - 1; i++) rows *= cases[k].shape[i];
            int64_t tv[64];
            for (int64_t i = 0; i < rows; i++) tv[i] = i % 5 == 3 ? -100 : (i * 7 + 3) % cols;
            ig_tensor *tc = ig_from_data(tv, n - 1, cases[k].shape, IG_I64, IG_CPU);
            ig_tensor *tg = ig_to(tc, IG_I64, GPU);
            ig_tensor *g, *c = leaf_pair(n, cases[k].shape, dts[d], 2, &g);
            ig_tensor *lc = ig_cross_entropy(c, tc, -100, cases[k].smoothing);
            ig_tensor *lgpu = ig_cross_entropy(g, tg, -100, cases[k].smoothing);
            assert_non_null(lgpu);
            assert_close(lgpu, lc, dts[d], 1e-6, "cross_entropy");
            assert_int_equal(ig_backward(lc), IG_OK);
            assert_int_equal(ig_backward(lgpu), IG_OK);
            assert_grads_close(c, g, dts[d], 1e-6, "cross_entropy backward");
            /* ignored rows get no gradient */
            ig_tensor *row3 = ig_narrow(ig_reshape(ig_tensor_grad(g), IG_SHAPE(rows, cols)), 0, 3, 1);
            tu_assert_close(row3, ig_zeros(IG_SHAPE(1, cols), dts[d], IG_CPU), 0, 0, "ignored row");
            ig_scope_end(s);
        }
    }
}

/* ---- runtime: streams, errors ---- */

static void a_side_stream_orders_with_the_default_one(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_cuda_stream *main_s = ig_cuda_stream_current(0), *side = ig_cuda_stream_new(0);
    assert_non_null(main_s);
    assert_non_null(side);
    ig_tensor *x = ig_randn(IG_SHAPE(512, 512), IG_F32, GPU, NULL);
    assert_int_equal(ig_cuda_stream_wait(side, main_s), IG_OK);
    assert_int_equal(ig_cuda_stream_set_current(side), IG_OK);
    assert_true(ig_cuda_stream_current(0) == side);
    ig_tensor *y = ig_keep(ig_mul_scalar(x, 2));
    assert_int_equal(ig_cuda_stream_set_current(main_s), IG_OK);
    assert_int_equal(ig_cuda_stream_wait(main_s, side), IG_OK);
    tu_assert_close(y, ig_mul_scalar(ig_to(x, IG_F32, IG_CPU), 2), 0, 0, "side stream result");
    ig_tensor_free(y);
    ig_cuda_stream_free(side);
    assert_int_equal(ig_cuda_synchronize(GPU), IG_OK);
    assert_int_equal(ig_cuda_synchronize(IG_CPU), IG_OK);
    ig_scope_end(s);
}

static void device_memory_failures_are_statuses_naming_the_device(void **state) {
    (void)state;
    ig_clear_error();
    ig_tensor *t = ig_empty(IG_SHAPE((int64_t)1 << 48), IG_F32, GPU); /* 1 PiB */
    assert_null(t);
    assert_int_equal(ig_last_status(), IG_ERR_NOMEM);
    assert_non_null(strstr(ig_last_error(), "cuda:0"));
    ig_clear_error();
    int n = ig_cuda_device_count();
    assert_null(ig_empty(IG_SHAPE(4), IG_F32, IG_CUDA(n)));
    assert_int_equal(ig_last_status(), IG_ERR_NO_DEVICE);
    ig_clear_error();
    /* the device still works */
    ig_tensor *ok = ig_keep(ig_ones(IG_SHAPE(4), IG_F32, GPU));
    assert_true(ig_tensor_item(ig_sum_all(ok)) == 4.0);
    ig_tensor_free(ok);
}

/* ---- training: a 2-layer MLP on a synthetic 4-class problem ---- */

enum { N_POINTS = 512, N_IN = 8, N_HIDDEN = 32, N_CLASSES = 4 };

typedef struct mlp {
    ig_tensor *x, *y;          /* data (N_POINTS, N_IN), labels (N_POINTS) i64 */
    ig_tensor *p[4];           /* w1, b1, w2, b2 */
} mlp;

/* Gaussian blobs around random centers, all from the generator's seed. */
static void mlp_init(mlp *m, ig_dtype dt) {
    ig_generator gen = {2024, 0};
    float centers[N_CLASSES * N_IN], noise[N_POINTS * N_IN], x[N_POINTS * N_IN];
    int64_t y[N_POINTS];
    ig_scope *s = ig_scope_begin();
    ig_tensor_to_host(ig_randn(IG_SHAPE(N_CLASSES, N_IN), IG_F32, IG_CPU, &gen), centers);
    ig_tensor_to_host(ig_randn(IG_SHAPE(N_POINTS, N_IN), IG_F32, IG_CPU, &gen), noise);
    for (int i = 0; i < N_POINTS; i++) {
        y[i] = i % N_CLASSES;
        for (int j = 0; j < N_IN; j++)
            x[i * N_IN + j] = 2.0f * centers[y[i] * N_IN + j] + 0.5f * noise[i * N_IN + j];
    }
    m->x = ig_keep(ig_to(ig_from_data(x, IG_SHAPE(N_POINTS, N_IN), IG_F32, IG_CPU), dt, GPU));
    m->y = ig_keep(ig_from_data(y, IG_SHAPE(N_POINTS), IG_I64, GPU));
    const int64_t shapes[4][2] = {{N_HIDDEN, N_IN}, {N_HIDDEN, 0}, {N_CLASSES, N_HIDDEN}, {N_CLASSES, 0}};
    for (int i = 0; i < 4; i++) {
        int nd = shapes[i][1] ? 2 : 1;
        double scale = i % 2 ? 0.0 : 1.0 / sqrt((double)shapes[i][nd - 1]);
        ig_tensor *w = ig_mul_scalar(ig_randn(nd, shapes[i], IG_F32, IG_CPU, &gen), scale);
        m->p[i] = ig_keep(ig_requires_grad_(ig_to(w, dt, GPU), true));
    }
    ig_scope_end(s);
}

static void mlp_free(mlp *m) {
    ig_tensor_free(m->x);
    ig_tensor_free(m->y);
    for (int i = 0; i < 4; i++) ig_tensor_free(m->p[i]);
}

/* One full-batch SGD step; returns the loss before the update and the
 * address of the logits' data (steady-state allocation check). */
static double mlp_step(mlp *m, double lr, void **logits_at) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *h = ig_relu(ig_linear(m->x, m->p[0], m->p[1]));
    ig_tensor *logits = ig_linear(h, m->p[2], m->p[3]);
    ig_tensor *loss = ig_cross_entropy(logits, m->y, IG_IGNORE_INDEX_NONE, 0.0);
    assert_non_null(loss);
    if (logits_at) *logits_at = ig_tensor_data(logits);
    assert_int_equal(ig_backward(loss), IG_OK);
    bool prev = ig_grad_set_enabled(false);
    for (int i = 0; i < 4; i++) {
        ig_tensor *p = m->p[i];
        assert_int_equal(ig_copy_(p, ig_sub(p, ig_mul_scalar(ig_tensor_grad(p), lr))), IG_OK);
        ig_tensor_zero_grad(p, false);
    }
    ig_grad_set_enabled(prev);
    double v = ig_tensor_item(loss);
    ig_scope_end(s);
    return v;
}

static void steady_training_steps_make_no_device_allocation(void **state) {
    (void)state;
    mlp m;
    mlp_init(&m, IG_F32);
    void *at0, *at;
    mlp_step(&m, 0.1, &at0);
    mlp_step(&m, 0.1, &at0);
    ig_memory_stats st0, st1;
    ig_memory_stats_get(&st0);
    for (int i = 0; i < 100; i++) {
        mlp_step(&m, 0.1, &at);
        assert_ptr_equal(at, at0);
    }
    ig_memory_stats_get(&st1);
    assert_int_equal(st1.system_allocs[IG_DEV_CUDA], st0.system_allocs[IG_DEV_CUDA]);
    assert_int_equal(st1.live_bytes[IG_DEV_CUDA], st0.live_bytes[IG_DEV_CUDA]);
    assert_int_equal(st1.live_tensors, st0.live_tensors);
    mlp_free(&m);
}

static void train(ig_dtype dt, double lr) {
    mlp m;
    mlp_init(&m, dt);
    double first = mlp_step(&m, lr, NULL), last = first;
    for (int i = 1; i < 200; i++) last = mlp_step(&m, lr, NULL);
    print_message("mlp %s: loss %.4f -> %.4f in 200 steps\n", ig_dtype_name(dt), first, last);
    assert_true(last * 10 <= first);
    mlp_free(&m);
}

static void an_mlp_learns_on_the_gpu_in_f32(void **state) {
    (void)state;
    train(IG_F32, 0.5);
}

static void an_mlp_learns_on_the_gpu_in_bf16(void **state) {
    (void)state;
    train(IG_BF16, 0.5);
}

int main(void) {
    if (ig_cuda_device_count() == 0) return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copies_across_dtypes_and_devices_match_the_cpu),
        cmocka_unit_test(fills_match_the_cpu_for_every_dtype_and_view),
        cmocka_unit_test(random_numbers_equal_the_cpu_for_the_same_generator_state),
        cmocka_unit_test(binary_ops_match_the_cpu_with_broadcasting_and_views),
        cmocka_unit_test(comparisons_and_integer_arithmetic_match_the_cpu),
        cmocka_unit_test(unary_ops_and_their_gradients_match_the_cpu),
        cmocka_unit_test(sums_and_means_match_the_cpu),
        cmocka_unit_test(matmul_and_linear_match_the_cpu_forward_and_backward),
        cmocka_unit_test(softmax_and_log_softmax_match_the_cpu_forward_and_backward),
        cmocka_unit_test(cross_entropy_matches_the_cpu_with_ignore_index_and_smoothing),
        cmocka_unit_test(a_side_stream_orders_with_the_default_one),
        cmocka_unit_test(device_memory_failures_are_statuses_naming_the_device),
        cmocka_unit_test(steady_training_steps_make_no_device_allocation),
        cmocka_unit_test(an_mlp_learns_on_the_gpu_in_f32),
        cmocka_unit_test(an_mlp_learns_on_the_gpu_in_bf16),
    };
    return TU_RUN(tests);
}

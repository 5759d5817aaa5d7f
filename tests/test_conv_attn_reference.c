/* tests/test_conv_attn_reference.c: f32 attention, conv2d and pooling
 * against naive loops in double written here (on the f32 inputs), f32
 * gradients against the f64 ones of the same op (checked by finite
 * differences in test_grad_conv_attn), the statistics, scale and
 * reproducibility of dropout, and the assertions that reject bad shapes. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testutil.h"

/* The elements of t as doubles (row-major); free() it. */
static double *host(ig_tensor *t) {
    double *d = malloc(sizeof(double) * (size_t)(ig_tensor_numel(t) + 1));
    assert_non_null(d);
    assert_int_equal(ig_tensor_to_host(ig_to(ig_detach(t), IG_F64, IG_CPU), d), IG_OK);
    return d;
}

/* Asserts t equals the reference values ref (t's shape) within rtol 1e-5, atol 1e-6. */
static void assert_matches(ig_tensor *t, const double *ref, const char *what) {
    ig_tensor *r = ig_from_data(ref, ig_tensor_ndim(t), ig_tensor_shape(t), IG_F64, IG_CPU);
    tu_assert_close(t, r, 1e-6, 1e-5, what);
}

/* ---- attention ---- */

static void naive_attention(const int64_t *s, const double *q, const double *k, const double *v,
                            bool causal, double scale, double *out) {
    int64_t heads = s[0] * s[1], T = s[2], D = s[3];
    double *p = malloc(sizeof(double) * (size_t)T);
    for (int64_t h = 0; h < heads; h++)
        for (int64_t i = 0; i < T; i++) {
            const double *qi = q + (h * T + i) * D;
            int64_t n = causal ? i + 1 : T;
            double m = -INFINITY, sum = 0;
            for (int64_t j = 0; j < n; j++) {
                double dot = 0;
                for (int64_t d = 0; d < D; d++) dot += qi[d] * k[(h * T + j) * D + d];
                p[j] = dot * scale;
                m = fmax(m, p[j]);
            }
            for (int64_t j = 0; j < n; j++) sum += p[j] = exp(p[j] - m);
            for (int64_t d = 0; d < D; d++) {
                double acc = 0;
                for (int64_t j = 0; j < n; j++) acc += p[j] / sum * v[(h * T + j) * D + d];
                out[(h * T + i) * D + d] = acc;
            }
        }
    free(p);
}

static void attention_f32_matches_naive_loops(void **state) {
    (void)state;
    const struct { int64_t b, h, t, d; bool causal; double scale; bool transposed_q; } cases[] = {
        {2, 3, 17, 8, false, 0, false},   {2, 3, 17, 8, true, 0, false},
        {1, 2, 130, 32, true, 0, true},   {1, 2, 130, 32, false, 0.3, false},
        {3, 1, 64, 16, true, 0.4, false}, {1, 1, 1, 4, true, 0, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ig_scope *s = ig_scope_begin();
        int64_t shape[4] = {cases[c].b, cases[c].h, cases[c].t, cases[c].d};
        ig_tensor *q = tu_randn(4, shape, IG_F32, false);
        if (cases[c].transposed_q) /* q as a (B, T, H, D) tensor seen as (B, H, T, D) */
            q = ig_transpose(tu_randn(IG_SHAPE(shape[0], shape[2], shape[1], shape[3]), IG_F32,
                                      false), 1, 2);
        ig_tensor *k = tu_randn(4, shape, IG_F32, false), *v = tu_randn(4, shape, IG_F32, false);
        ig_tensor *out = ig_attention(q, k, v, cases[c].causal, cases[c].scale);
        assert_non_null(out);
        double *hq = host(q), *hk = host(k), *hv = host(v);
        double *ref = malloc(sizeof(double) * (size_t)ig_tensor_numel(out));
        double scale = cases[c].scale > 0 ? cases[c].scale : 1 / sqrt((double)shape[3]);
        naive_attention(shape, hq, hk, hv, cases[c].causal, scale, ref);
        assert_matches(out, ref, "attention");
        free(hq), free(hk), free(hv), free(ref);
        ig_scope_end(s);
    }
}

/* q, k, v sliced from one fused (B, T, 3, H, D) projection and transposed to
 * (B, H, T, D), as a transformer block makes them: read in place. */
static void attention_reads_views_of_a_fused_qkv_projection(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    const int64_t B = 2, T = 70, H = 3, D = 8, shape[4] = {B, H, T, D};
    ig_tensor *qkv = tu_randn(IG_SHAPE(B, T, 3, H, D), IG_F32, false), *in[3];
    double *h[3];
    for (int i = 0; i < 3; i++) {
        in[i] = ig_transpose(ig_squeeze(ig_narrow(qkv, 2, i, 1), 2), 1, 2);
        h[i] = host(in[i]);
    }
    ig_tensor *out = ig_attention(in[0], in[1], in[2], true, 0);
    assert_non_null(out);
    /* laid out like q: back to (B, T, H, D) it is contiguous */
    assert_true(ig_tensor_is_contiguous(ig_transpose(out, 1, 2)));
    double *ref = malloc(sizeof(double) * (size_t)(B * H * T * D));
    naive_attention(shape, h[0], h[1], h[2], true, 1 / sqrt((double)D), ref);
    assert_matches(out, ref, "attention on fused qkv views");
    free(h[0]), free(h[1]), free(h[2]), free(ref);
    ig_scope_end(s);
}

/* Gradients of sum(f(in) * w) for f32 inputs and for their f64 copies. */
static void assert_f32_grads_match_f64(const char *what, tu_fn f, void *user, int n,
                                       ig_tensor **in32) {
    ig_tensor *in64[4];
    for (int i = 0; i < n; i++) {
        in64[i] = ig_requires_grad_(ig_to(ig_detach(in32[i]), IG_F64, IG_CPU), true);
        ig_requires_grad_(in32[i], true);
    }
    ig_tensor *o64 = f(user, in64);
    ig_tensor *w = ig_randn(ig_tensor_ndim(o64), ig_tensor_shape(o64), IG_F64, IG_CPU, NULL);
    assert_int_equal(ig_backward(ig_sum_all(ig_mul(o64, w))), IG_OK);
    assert_int_equal(ig_backward(ig_sum_all(ig_mul(f(user, in32), ig_to(w, IG_F32, IG_CPU)))),
                     IG_OK);
    for (int i = 0; i < n; i++)
        tu_assert_close(ig_tensor_grad(in32[i]), ig_tensor_grad(in64[i]), 1e-4, 1e-4, what);
}

static ig_tensor *attention_causal(void *u, ig_tensor **in) {
    (void)u;
    return ig_attention(in[0], in[1], in[2], true, 0);
}

static void attention_f32_gradients_match_f64(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *in[3];
    for (int i = 0; i < 3; i++) in[i] = tu_randn(IG_SHAPE(2, 2, 150, 16), IG_F32, false);
    assert_f32_grads_match_f64("attention f32 gradient", attention_causal, NULL, 3, in);
    ig_scope_end(s);
}

/* ---- conv2d ---- */

static void naive_conv(const int64_t *xs, const int64_t *ws, const int64_t *os, const double *x,
                       const double *w, const double *b, const ig_conv2d_opts *o, double *out) {
    int64_t cg = ws[1], coutg = ws[0] / o->groups;
    for (int64_t n = 0; n < os[0]; n++)
        for (int64_t co = 0; co < os[1]; co++)
            for (int64_t oh = 0; oh < os[2]; oh++)
                for (int64_t ow = 0; ow < os[3]; ow++) {
                    double acc = b ? b[co] : 0;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t i = 0; i < ws[2]; i++)
                            for (int64_t j = 0; j < ws[3]; j++) {
                                int64_t ih = oh * o->stride[0] - o->padding[0] + i * o->dilation[0];
                                int64_t iw = ow * o->stride[1] - o->padding[1] + j * o->dilation[1];
                                if (ih < 0 || ih >= xs[2] || iw < 0 || iw >= xs[3]) continue;
                                int64_t ci = co / coutg * cg + c;
                                acc += x[((n * xs[1] + ci) * xs[2] + ih) * xs[3] + iw] *
                                       w[((co * cg + c) * ws[2] + i) * ws[3] + j];
                            }
                    out[((n * os[1] + co) * os[2] + oh) * os[3] + ow] = acc;
                }
}

typedef struct conv_case {
    int64_t xs[4], ws[4];
    ig_conv2d_opts o;
    bool bias;
} conv_case;

static const conv_case conv_cases[] = {
    {{2, 4, 9, 7}, {6, 4, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, true},
    {{2, 4, 11, 10}, {6, 2, 3, 2}, {{2, 1}, {1, 2}, {2, 1}, 2}, true},
    {{1, 3, 5, 5}, {8, 3, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1}, false},
    {{3, 6, 8, 8}, {6, 1, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 6}, false}, /* depthwise */
    {{1, 2, 4, 4}, {3, 2, 4, 4}, {{1, 1}, {0, 0}, {1, 1}, 1}, true},  /* kernel = input */
};

static void conv2d_f32_matches_naive_loops(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof conv_cases / sizeof conv_cases[0]; c++) {
        ig_scope *s = ig_scope_begin();
        const conv_case *cc = &conv_cases[c];
        ig_tensor *x = tu_randn(4, cc->xs, IG_F32, false), *w = tu_randn(4, cc->ws, IG_F32, false);
        ig_tensor *b = cc->bias ? tu_randn(IG_SHAPE(cc->ws[0]), IG_F32, false) : NULL;
        ig_tensor *out = ig_conv2d(x, w, b, &cc->o);
        assert_non_null(out);
        const int64_t *os = ig_tensor_shape(out);
        for (int d = 0; d < 2; d++) {
            int64_t span = cc->o.dilation[d] * (cc->ws[2 + d] - 1) + 1;
            assert_int_equal(os[2 + d], (cc->xs[2 + d] + 2 * cc->o.padding[d] - span) / cc->o.stride[d] + 1);
        }
        double *hx = host(x), *hw = host(w), *hb = b ? host(b) : NULL;
        double *ref = malloc(sizeof(double) * (size_t)ig_tensor_numel(out));
        naive_conv(cc->xs, cc->ws, os, hx, hw, hb, &cc->o, ref);
        assert_matches(out, ref, "conv2d");
        free(hx), free(hw), free(hb), free(ref);
        ig_scope_end(s);
    }
}

static ig_tensor *conv_fn(void *u, ig_tensor **in) {
    const conv_case *cc = u;
    return ig_conv2d(in[0], in[1], in[2], &cc->o);
}

static void conv2d_f32_gradients_match_f64(void **state) {
    (void)state;
    for (size_t c = 0; c < 2; c++) {
        ig_scope *s = ig_scope_begin();
        const conv_case *cc = &conv_cases[c];
        ig_tensor *in[3] = {tu_randn(4, cc->xs, IG_F32, false), tu_randn(4, cc->ws, IG_F32, false),
                            tu_randn(IG_SHAPE(cc->ws[0]), IG_F32, false)};
        assert_f32_grads_match_f64("conv2d f32 gradient", conv_fn, (void *)cc, 3, in);
        ig_scope_end(s);
    }
}

/* ---- pooling ---- */

static void pooling_f32_matches_naive_loops(void **state) {
    (void)state;
    const struct { int64_t n, c, h, w; int k, s, p; } cases[] = {
        {2, 3, 8, 9, 2, 0, 0}, {2, 3, 9, 7, 3, 2, 1}, {1, 2, 5, 5, 3, 1, 1}, {1, 1, 7, 6, 4, 3, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ig_scope *sc = ig_scope_begin();
        int k = cases[c].k, st = cases[c].s > 0 ? cases[c].s : k, p = cases[c].p;
        int64_t H = cases[c].h, W = cases[c].w, planes = cases[c].n * cases[c].c;
        ig_tensor *x = tu_randn(IG_SHAPE(cases[c].n, cases[c].c, H, W), IG_F32, false);
        ig_tensor *mx = ig_max_pool2d(x, k, cases[c].s, p), *av = ig_avg_pool2d(x, k, cases[c].s, p);
        assert_non_null(mx);
        assert_non_null(av);
        int64_t Ho = (H + 2 * p - k) / st + 1, Wo = (W + 2 * p - k) / st + 1;
        assert_int_equal(ig_tensor_size(mx, 2), Ho);
        assert_int_equal(ig_tensor_size(av, 3), Wo);
        double *hx = host(x);
        double *rm = malloc(sizeof(double) * (size_t)(planes * Ho * Wo));
        double *ra = malloc(sizeof(double) * (size_t)(planes * Ho * Wo));
        for (int64_t pl = 0; pl < planes; pl++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    double m = -INFINITY, sum = 0;
                    for (int64_t i = oh * st - p; i < oh * st - p + k; i++)
                        for (int64_t j = ow * st - p; j < ow * st - p + k; j++)
                            if (i >= 0 && i < H && j >= 0 && j < W) {
                                m = fmax(m, hx[(pl * H + i) * W + j]);
                                sum += hx[(pl * H + i) * W + j];
                            }
                    rm[(pl * Ho + oh) * Wo + ow] = m;
                    ra[(pl * Ho + oh) * Wo + ow] = sum / (k * k);
                }
        assert_matches(mx, rm, "max_pool2d");
        assert_matches(av, ra, "avg_pool2d");
        free(hx), free(rm), free(ra);
        ig_scope_end(sc);
    }
}

static void max_pool_gradient_goes_to_the_window_maximum(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    /* 0..15 in a 4x4 plane: each 2x2 window's maximum is its bottom-right element */
    ig_tensor *x = ig_requires_grad_(ig_reshape(ig_arange(0, 16, 1, IG_F32, IG_CPU), IG_SHAPE(1, 1, 4, 4)), true);
    assert_int_equal(ig_backward(ig_sum_all(ig_max_pool2d(x, 2, 2, 0))), IG_OK);
    const float want[16] = {0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1};
    tu_assert_close(ig_tensor_grad(x), ig_from_data(want, IG_SHAPE(1, 1, 4, 4), IG_F32, IG_CPU), 0, 0,
                    "max_pool2d gradient");
    ig_scope_end(s);
}

static void max_pool_propagates_nan(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = (float)i;
    v[5] = NAN; /* in the top-left 2x2 window only */
    ig_tensor *y = ig_max_pool2d(ig_from_data(v, IG_SHAPE(1, 1, 4, 4), IG_F32, IG_CPU), 2, 2, 0);
    const float *o = ig_tensor_data(y);
    assert_true(isnan(o[0]));
    assert_true(o[1] == 7 && o[2] == 13 && o[3] == 15);
    ig_scope_end(s);
}

/* ---- dropout ---- */

static void dropout_zeroes_a_fraction_p_and_scales_survivors_exactly(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    const int64_t n = 100000;
    const double ps[] = {0.1, 0.3, 0.5, 0.8};
    for (size_t c = 0; c < sizeof ps / sizeof ps[0]; c++) {
        ig_tensor *x = ig_add_scalar(ig_abs(ig_randn(IG_SHAPE(n), IG_F32, IG_CPU, NULL)), 0.1);
        ig_generator gen = {7, 0};
        ig_tensor *y = ig_dropout(x, ps[c], true, &gen);
        assert_non_null(y);
        assert_int_equal(gen.offset, n);
        const float *xs = ig_tensor_data(x), *ys = ig_tensor_data(y);
        float scale = (float)(1.0 / (1.0 - ps[c]));
        int64_t zeros = 0;
        for (int64_t i = 0; i < n; i++) {
            if (ys[i] == 0) zeros++;
            else assert_true(ys[i] == xs[i] * scale);
        }
        double frac = (double)zeros / (double)n;
        if (fabs(frac - ps[c]) > 0.01) fail_msg("p %g: dropped fraction %g", ps[c], frac);
    }
    ig_scope_end(s);
}

static void dropout_mask_is_the_philox_uniform_at_the_generator_offset(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_ones(IG_SHAPE(50, 40), IG_F64, IG_CPU);
    ig_generator g1 = {123, 55}, g2 = {123, 55}, g3 = {123, 55};
    ig_tensor *a = ig_dropout(x, 0.4, true, &g1), *b = ig_dropout(x, 0.4, true, &g2);
    tu_assert_close(a, b, 0, 0, "same seed and offset, same mask");
    ig_tensor *u = ig_rand(IG_SHAPE(50, 40), IG_F64, IG_CPU, &g3);
    const double *ua = ig_tensor_data(u), *aa = ig_tensor_data(a);
    for (int i = 0; i < 2000; i++) assert_true((aa[i] != 0) == (ua[i] >= 0.4));
    /* the next call continues from the advanced offset: another mask */
    ig_tensor *c = ig_dropout(x, 0.4, true, &g1);
    assert_true(tu_close_ratio(a, c, 0, 0) > 1);
    ig_scope_end(s);
}

static void dropout_backward_is_the_mask_times_the_scale(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = tu_randn(IG_SHAPE(30, 7), IG_F64, true);
    ig_generator gen = {9, 0};
    ig_tensor *y = ig_dropout(x, 0.25, true, &gen);
    assert_string_equal(ig_tensor_grad_fn_name(y), "dropout");
    assert_int_equal(ig_backward(ig_sum_all(y)), IG_OK);
    /* d sum(y) / dx = y / x */
    tu_assert_close(ig_tensor_grad(x), ig_div(ig_detach(y), ig_detach(x)), 1e-12, 1e-12,
                    "dropout gradient");
    ig_scope_end(s);
}

static void dropout_is_the_identity_in_eval_mode_or_with_p_zero(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = tu_randn(IG_SHAPE(4, 5), IG_F32, true);
    ig_generator gen = {1, 0};
    ig_tensor *e = ig_dropout(x, 0.5, false, &gen), *z = ig_dropout(x, 0.0, true, &gen);
    assert_int_equal(gen.offset, 0);
    assert_ptr_equal(ig_tensor_data(e), ig_tensor_data(x));
    tu_assert_close(e, x, 0, 0, "eval dropout");
    tu_assert_close(z, x, 0, 0, "p = 0 dropout");
    assert_int_equal(ig_backward(ig_sum_all(ig_add(e, z))), IG_OK);
    tu_assert_close(ig_tensor_grad(x), ig_full(IG_SHAPE(4, 5), 2, IG_F32, IG_CPU), 0, 0,
                    "identity dropout gradient");
    ig_tensor *all = ig_dropout(x, 1.0, true, &gen);
    tu_assert_close(all, ig_zeros(IG_SHAPE(4, 5), IG_F32, IG_CPU), 0, 0, "p = 1 dropout");
    ig_scope_end(s);
}

/* ---- misuse: an assertion naming the op and both operands ---- */

/* Runs fn in a child process; asserts that it aborts and that its stderr
 * holds each of the n needles. */
static void assert_aborts_naming(void (*fn)(void), int n, const char *const *needles) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL); /* not cmocka's handler */
        dup2(fd[1], 2);
        fn();
        _exit(0);
    }
    close(fd[1]);
    char msg[2048];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof msg - 1 && (got = read(fd[0], msg + len, sizeof msg - 1 - len)) > 0)
        len += (size_t)got;
    msg[len] = 0;
    close(fd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    for (int i = 0; i < n; i++)
        if (!strstr(msg, needles[i])) fail_msg("\"%s\" not in: %s", needles[i], msg);
}

static void conv_groups_not_dividing_channels(void) {
    ig_conv2d_opts o = IG_CONV2D_OPTS_INIT;
    o.groups = 2;
    ig_conv2d(ig_zeros(IG_SHAPE(1, 3, 5, 5), IG_F32, IG_CPU), ig_zeros(IG_SHAPE(4, 1, 3, 3), IG_F32, IG_CPU),
              NULL, &o);
}

static void conv_kernel_larger_than_padded_input(void) {
    ig_conv2d_opts o = IG_CONV2D_OPTS_INIT;
    o.padding[0] = o.padding[1] = 1;
    ig_conv2d(ig_zeros(IG_SHAPE(1, 2, 3, 3), IG_F32, IG_CPU), ig_zeros(IG_SHAPE(2, 2, 6, 6), IG_F32, IG_CPU),
              NULL, &o);
}

static void attention_k_of_another_length(void) {
    ig_attention(ig_zeros(IG_SHAPE(1, 2, 4, 3), IG_F32, IG_CPU), ig_zeros(IG_SHAPE(1, 2, 5, 3), IG_F32, IG_CPU),
                 ig_zeros(IG_SHAPE(1, 2, 4, 3), IG_F32, IG_CPU), false, 0);
}

static void bad_shapes_abort_naming_the_op_and_operands(void **state) {
    (void)state;
    assert_aborts_naming(conv_groups_not_dividing_channels, 4,
                         (const char *[]){"conv2d", "groups 2", "[1, 3, 5, 5]", "[4, 1, 3, 3]"});
    assert_aborts_naming(conv_kernel_larger_than_padded_input, 4,
                         (const char *[]){"conv2d", "larger than the padded input", "[1, 2, 3, 3]",
                                          "[2, 2, 6, 6]"});
    assert_aborts_naming(attention_k_of_another_length, 3,
                         (const char *[]){"attention", "[1, 2, 4, 3]", "[1, 2, 5, 3]"});
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attention_f32_matches_naive_loops),
        cmocka_unit_test(attention_reads_views_of_a_fused_qkv_projection),
        cmocka_unit_test(attention_f32_gradients_match_f64),
        cmocka_unit_test(conv2d_f32_matches_naive_loops),
        cmocka_unit_test(conv2d_f32_gradients_match_f64),
        cmocka_unit_test(pooling_f32_matches_naive_loops),
        cmocka_unit_test(max_pool_gradient_goes_to_the_window_maximum),
        cmocka_unit_test(max_pool_propagates_nan),
        cmocka_unit_test(dropout_zeroes_a_fraction_p_and_scales_survivors_exactly),
        cmocka_unit_test(dropout_mask_is_the_philox_uniform_at_the_generator_offset),
        cmocka_unit_test(dropout_backward_is_the_mask_times_the_scale),
        cmocka_unit_test(dropout_is_the_identity_in_eval_mode_or_with_p_zero),
        cmocka_unit_test(bad_shapes_abort_naming_the_op_and_operands),
    };
    return TU_RUN(tests);
}

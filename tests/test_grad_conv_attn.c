/* tests/test_grad_conv_attn.c: finite-difference checks (f64, small shapes)
 * of fused attention, conv2d, max / average pooling and dropout, including
 * non-contiguous inputs and the options that change the index arithmetic
 * (stride, padding, dilation, groups, causal masking across row blocks). */
#include "tests/testutil.h"

typedef struct attn_case {
    bool causal;
    double scale;
    bool transposed_q; /* q stored (B, T, H, D), viewed as (B, H, T, D) */
} attn_case;

static ig_tensor *attention_fn(void *u, ig_tensor **in) {
    const attn_case *c = u;
    ig_tensor *q = c->transposed_q ? ig_transpose(in[0], 1, 2) : in[0];
    return ig_attention(q, in[1], in[2], c->causal, c->scale);
}

static void attention_passes_gradcheck(void **state) {
    (void)state;
    const attn_case cases[] = {
        {false, 0, false}, {true, 0, false}, {false, 0.7, true}, {true, 1.3, true},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ig_scope *s = ig_scope_begin();
        const int64_t bhtd[4] = {2, 2, 5, 3}, bthd[4] = {2, 5, 2, 3};
        ig_tensor *in[3] = {
            tu_randn(4, cases[c].transposed_q ? bthd : bhtd, IG_F64, true),
            tu_randn(IG_SHAPE(2, 2, 5, 3), IG_F64, true),
            tu_randn(IG_SHAPE(2, 2, 5, 3), IG_F64, true),
        };
        tu_gradcheck(cases[c].causal ? "attention causal" : "attention", attention_fn,
                     (void *)&cases[c], 3, in);
        ig_scope_end(s);
    }
}

/* q, k, v as strided slices of one (B, T, 3, H, D) leaf */
static ig_tensor *fused_qkv_attention_fn(void *u, ig_tensor **in) {
    (void)u;
    ig_tensor *x[3];
    for (int i = 0; i < 3; i++) x[i] = ig_transpose(ig_squeeze(ig_narrow(in[0], 2, i, 1), 2), 1, 2);
    return ig_attention(x[0], x[1], x[2], true, 0);
}

static void attention_on_fused_qkv_views_passes_gradcheck(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *qkv = tu_randn(IG_SHAPE(2, 5, 3, 2, 3), IG_F64, true);
    tu_gradcheck("attention on fused qkv", fused_qkv_attention_fn, NULL, 1, &qkv);
    ig_scope_end(s);
}

static void causal_attention_passes_gradcheck_across_row_blocks(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    attn_case c = {true, 0, false};
    ig_tensor *in[3];
    for (int i = 0; i < 3; i++) in[i] = tu_randn(IG_SHAPE(1, 1, 70, 2), IG_F64, true);
    tu_gradcheck("attention causal, T = 70", attention_fn, &c, 3, in);
    ig_scope_end(s);
}

static ig_tensor *conv_fn(void *u, ig_tensor **in) {
    const ig_conv2d_opts *o = u;
    return ig_conv2d(in[0], in[1], in[2], o);
}

static ig_tensor *conv_nobias_fn(void *u, ig_tensor **in) {
    const ig_conv2d_opts *o = u;
    return ig_conv2d(in[0], in[1], NULL, o);
}

static void conv2d_passes_gradcheck(void **state) {
    (void)state;
    const ig_conv2d_opts opts[] = {
        IG_CONV2D_OPTS_INIT,
        {{2, 2}, {1, 1}, {1, 1}, 1},
        {{1, 2}, {1, 0}, {2, 2}, 2},
        {{2, 1}, {1, 2}, {2, 1}, 2},
        {{2, 2}, {1, 1}, {2, 2}, 2},
    };
    for (size_t c = 0; c < sizeof opts / sizeof opts[0]; c++) {
        ig_scope *s = ig_scope_begin();
        int cg = 4 / opts[c].groups;
        ig_tensor *in[3] = {tu_randn(IG_SHAPE(2, 4, 6, 5), IG_F64, true),
                            tu_randn(IG_SHAPE(4, cg, 3, 2), IG_F64, true),
                            tu_randn(IG_SHAPE(4), IG_F64, true)};
        tu_gradcheck("conv2d", conv_fn, (void *)&opts[c], 3, in);
        tu_gradcheck("conv2d without bias", conv_nobias_fn, (void *)&opts[c], 2, in);
        ig_scope_end(s);
    }
}

/* One image, one group: the kernels' other path, where im2col and col2im run
 * in parallel over channels (several (image, group) pairs run in parallel). */
static void conv2d_of_one_image_passes_gradcheck(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_conv2d_opts o = {{2, 1}, {1, 1}, {1, 2}, 1};
    ig_tensor *in[3] = {tu_randn(IG_SHAPE(1, 3, 6, 7), IG_F64, true),
                        tu_randn(IG_SHAPE(2, 3, 3, 3), IG_F64, true),
                        tu_randn(IG_SHAPE(2), IG_F64, true)};
    tu_gradcheck("conv2d of one image", conv_fn, &o, 3, in);
    ig_scope_end(s);
}

typedef struct pool_case {
    bool max;
    int kernel, stride, padding;
} pool_case;

static ig_tensor *pool_fn(void *u, ig_tensor **in) {
    const pool_case *c = u;
    return c->max ? ig_max_pool2d(in[0], c->kernel, c->stride, c->padding)
                  : ig_avg_pool2d(in[0], c->kernel, c->stride, c->padding);
}

static void pooling_passes_gradcheck(void **state) {
    (void)state;
    const pool_case cases[] = {
        {true, 2, 0, 0}, {true, 3, 2, 1}, {true, 3, 1, 1},
        {false, 2, 0, 0}, {false, 3, 2, 1}, {false, 4, 3, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = tu_randn(IG_SHAPE(2, 2, 7, 6), IG_F64, true);
        tu_gradcheck(cases[c].max ? "max_pool2d" : "avg_pool2d", pool_fn, (void *)&cases[c], 1, &x);
        ig_scope_end(s);
    }
}

/* A fresh generator with one seed each call, so every evaluation draws the same mask. */
static ig_tensor *dropout_fn(void *u, ig_tensor **in) {
    ig_generator gen = {*(const uint64_t *)u, 0};
    return ig_dropout(ig_transpose(in[0], 0, 1), 0.4, true, &gen);
}

static void dropout_passes_gradcheck(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = tu_randn(IG_SHAPE(6, 7), IG_F64, true);
    uint64_t seed = 2024;
    tu_gradcheck("dropout", dropout_fn, &seed, 1, &x);
    ig_scope_end(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attention_passes_gradcheck),
        cmocka_unit_test(attention_on_fused_qkv_views_passes_gradcheck),
        cmocka_unit_test(causal_attention_passes_gradcheck_across_row_blocks),
        cmocka_unit_test(conv2d_passes_gradcheck),
        cmocka_unit_test(conv2d_of_one_image_passes_gradcheck),
        cmocka_unit_test(pooling_passes_gradcheck),
        cmocka_unit_test(dropout_passes_gradcheck),
    };
    return TU_RUN(tests);
}

/* tests/test_grad_nn.c: finite-difference checks (f64) of the nn ops: matmul
 * (broadcast batch dims, 1-D operands, transposed operands), linear (3-D
 * input, with and without bias), softmax and log_softmax (over a non-last
 * dim and on views), layer_norm and rms_norm (on a sliced input, with and
 * without affine parameters), embedding (repeated indices) and cross_entropy
 * (ignore_index, label smoothing). */
#include "tests/testutil.h"

typedef ig_tensor *(*binfn)(ig_tensor *, ig_tensor *);

static ig_tensor *mm(void *u, ig_tensor **in) { (void)u; return ig_matmul(in[0], in[1]); }
static ig_tensor *mm_ta(void *u, ig_tensor **in) { /* A stored transposed */
    (void)u;
    return ig_matmul(ig_transpose(in[0], -1, -2), in[1]);
}
static ig_tensor *mm_tb(void *u, ig_tensor **in) { /* B stored transposed */
    (void)u;
    return ig_matmul(in[0], ig_transpose(in[1], -1, -2));
}
static ig_tensor *mm_batch_t(void *u, ig_tensor **in) { /* A's batch dim not outermost */
    (void)u;
    return ig_matmul(ig_transpose(in[0], 0, 1), in[1]);
}
static ig_tensor *mm_strided(void *u, ig_tensor **in) { /* A with step-2 columns: copied */
    (void)u;
    return ig_matmul(ig_slice(in[0], -1, 0, 8, 2), in[1]);
}

static void check2(const char *name, tu_fn f, const int64_t *sa, int na, const int64_t *sb,
                   int nb) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *in[2] = {tu_randn(na, sa, IG_F64, true), tu_randn(nb, sb, IG_F64, true)};
    tu_gradcheck(name, f, NULL, 2, in);
    ig_scope_end(s);
}
#define CHECK2(name, f, A, B) \
    check2(name, f, (const int64_t[])A, sizeof((int64_t[])A) / 8, (const int64_t[])B, \
           sizeof((int64_t[])B) / 8)
#define S(...) {__VA_ARGS__}

static void matmul_passes_gradcheck_with_broadcast_batches_and_vectors(void **state) {
    (void)state;
    CHECK2("matmul 2-D", mm, S(3, 4), S(4, 2));
    CHECK2("matmul batch (2,1,3,4)@(5,4,2)", mm, S(2, 1, 3, 4), S(5, 4, 2));
    CHECK2("matmul 3-D @ 2-D", mm, S(2, 3, 4), S(4, 5));
    CHECK2("matmul 2-D @ 3-D", mm, S(3, 4), S(2, 4, 5));
    CHECK2("matmul dot", mm, S(4), S(4));
    CHECK2("matmul matrix @ vector", mm, S(3, 4), S(4));
    CHECK2("matmul vector @ matrix", mm, S(4), S(4, 2));
    CHECK2("matmul vector @ batch", mm, S(4), S(2, 4, 3));
    CHECK2("matmul batch @ vector", mm, S(2, 3, 4), S(4));
}

static void matmul_passes_gradcheck_on_transposed_and_strided_operands(void **state) {
    (void)state;
    CHECK2("matmul A^T", mm_ta, S(4, 3), S(4, 2));
    CHECK2("matmul B^T", mm_tb, S(3, 4), S(2, 4));
    CHECK2("matmul batched A^T", mm_ta, S(2, 4, 3), S(2, 4, 5));
    CHECK2("matmul batched B^T broadcast", mm_tb, S(2, 1, 3, 4), S(3, 5, 4));
    CHECK2("matmul permuted batch", mm_batch_t, S(3, 2, 4), S(4, 5));
    CHECK2("matmul step-2 columns", mm_strided, S(3, 8), S(4, 2));
}

static ig_tensor *lin(void *u, ig_tensor **in) { return ig_linear(in[0], in[1], u ? in[2] : NULL); }
static ig_tensor *lin_t(void *u, ig_tensor **in) { /* x (T, B, in) seen as (B, T, in) */
    return ig_linear(ig_transpose(in[0], 0, 1), in[1], u ? in[2] : NULL);
}

static void linear_passes_gradcheck_with_and_without_bias(void **state) {
    (void)state;
    static int with = 1;
    struct { const char *name; tu_fn f; int64_t x[3]; int nx; void *bias; } cases[] = {
        {"linear 3-D x + bias", lin, {2, 3, 4}, 3, &with},
        {"linear 3-D x, no bias", lin, {2, 3, 4}, 3, NULL},
        {"linear 2-D x + bias", lin, {3, 4}, 2, &with},
        {"linear 1-D x + bias", lin, {4}, 1, &with},
        {"linear transposed x + bias", lin_t, {3, 2, 4}, 3, &with},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *in[3] = {tu_randn(cases[k].nx, cases[k].x, IG_F64, true),
                            tu_randn(IG_SHAPE(5, 4), IG_F64, true),
                            tu_randn(IG_SHAPE(5), IG_F64, true)};
        tu_gradcheck(cases[k].name, cases[k].f, cases[k].bias, cases[k].bias ? 3 : 2, in);
        ig_scope_end(s);
    }
}

typedef struct sm_case { bool log; int dim; bool view; } sm_case;
static ig_tensor *sm(void *u, ig_tensor **in) {
    const sm_case *c = u;
    ig_tensor *x = c->view ? ig_transpose(in[0], 0, 2) : in[0];
    return c->log ? ig_log_softmax(x, c->dim) : ig_softmax(x, c->dim);
}

static void softmax_and_log_softmax_pass_gradcheck_over_any_dim(void **state) {
    (void)state;
    for (int log = 0; log < 2; log++) {
        sm_case cases[] = {{log, -1, false}, {log, 0, false}, {log, 1, false},
                           {log, -1, true}, {log, 1, true}};
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *x = tu_randn(IG_SHAPE(3, 4, 2), IG_F64, true);
            tu_gradcheck(log ? "log_softmax" : "softmax", sm, &cases[k], 1, &x);
            ig_scope_end(s);
        }
    }
}

typedef struct norm_case { bool rms, w, b, slice, tall; } norm_case;
static ig_tensor *norm(void *u, ig_tensor **in) {
    const norm_case *c = u;
    ig_tensor *x = c->slice ? ig_slice(in[0], 1, 1, 7, 1) : in[0]; /* (3, 6) of (3, 8) */
    ig_tensor *w = c->w ? in[1] : NULL, *b = c->b ? in[2] : NULL;
    return c->rms ? ig_rms_norm(x, w, 1e-5) : ig_layer_norm(x, w, b, 1e-5);
}

static void layer_norm_and_rms_norm_pass_gradcheck(void **state) {
    (void)state;
    norm_case cases[] = {
        {false, true, true, false}, {false, true, true, true}, {false, false, false, true},
        {false, true, false, false}, {false, false, true, false},
        {true, true, false, false}, {true, true, false, true}, {true, false, false, true},
        {false, true, true, false, true}, {true, true, false, false, true}, /* 70 rows: dw, db */
    };                                                    /* summed over several row blocks */
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = cases[k].slice  ? tu_randn(IG_SHAPE(3, 8), IG_F64, true)
                       : cases[k].tall ? tu_randn(IG_SHAPE(70, 6), IG_F64, true)
                                       : tu_randn(IG_SHAPE(2, 3, 6), IG_F64, true);
        ig_tensor *in[3] = {x, tu_randn(IG_SHAPE(6), IG_F64, cases[k].w),
                            tu_randn(IG_SHAPE(6), IG_F64, cases[k].b)};
        tu_gradcheck(cases[k].rms ? "rms_norm" : "layer_norm", norm, &cases[k], 3, in);
        ig_scope_end(s);
    }
}

static ig_tensor *emb(void *u, ig_tensor **in) { (void)u; return ig_embedding(in[0], in[1]); }

static void embedding_passes_gradcheck_with_repeated_indices(void **state) {
    (void)state;
    const int64_t idx[] = {1, 3, 1, 0, 3, 3, 4, 1};
    const int32_t idx32[] = {2, 2, 0};
    ig_scope *s = ig_scope_begin();
    ig_tensor *in[2] = {tu_randn(IG_SHAPE(5, 3), IG_F64, true),
                        ig_from_data(idx, IG_SHAPE(2, 4), IG_I64, IG_CPU)};
    tu_gradcheck("embedding i64 (2, 4)", emb, NULL, 2, in);
    in[1] = ig_from_data(idx32, IG_SHAPE(3), IG_I32, IG_CPU);
    tu_gradcheck("embedding i32 (3)", emb, NULL, 2, in);
    in[1] = ig_transpose(ig_from_data(idx, IG_SHAPE(2, 4), IG_I64, IG_CPU), 0, 1);
    tu_gradcheck("embedding transposed indices", emb, NULL, 2, in);
    ig_scope_end(s);
}

typedef struct ce_case { int64_t ignore; double smoothing; } ce_case;
static ig_tensor *ce(void *u, ig_tensor **in) {
    const ce_case *c = u;
    return ig_cross_entropy(in[0], in[1], c->ignore, c->smoothing);
}

static void cross_entropy_passes_gradcheck_with_ignore_index_and_smoothing(void **state) {
    (void)state;
    const int64_t t[] = {2, 0, 3, 4, 2, 1}; /* element 2 becomes the ignored value */
    const int32_t t32[] = {1, 7, 0, 4, 7, 3};
    ce_case cases[] = {{IG_IGNORE_INDEX_NONE, 0}, {-100, 0}, {-100, 0.1}, {2, 0.25}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ig_scope *s = ig_scope_begin();
        int64_t tk[6];
        for (int i = 0; i < 6; i++) tk[i] = i == 2 && cases[k].ignore != IG_IGNORE_INDEX_NONE
                                                ? cases[k].ignore : t[i];
        ig_tensor *in[2] = {tu_randn(IG_SHAPE(6, 5), IG_F64, true),
                            ig_from_data(tk, IG_SHAPE(6), IG_I64, IG_CPU)};
        tu_gradcheck("cross_entropy (6, 5)", ce, &cases[k], 2, in);
        ig_scope_end(s);
    }
    ig_scope *s = ig_scope_begin();
    ce_case c = {7, 0.1};
    ig_tensor *in[2] = {tu_randn(IG_SHAPE(2, 3, 5), IG_F64, true),
                        ig_from_data(t32, IG_SHAPE(2, 3), IG_I32, IG_CPU)};
    tu_gradcheck("cross_entropy (2, 3, 5) i32", ce, &c, 2, in);
    ig_scope_end(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matmul_passes_gradcheck_with_broadcast_batches_and_vectors),
        cmocka_unit_test(matmul_passes_gradcheck_on_transposed_and_strided_operands),
        cmocka_unit_test(linear_passes_gradcheck_with_and_without_bias),
        cmocka_unit_test(softmax_and_log_softmax_pass_gradcheck_over_any_dim),
        cmocka_unit_test(layer_norm_and_rms_norm_pass_gradcheck),
        cmocka_unit_test(embedding_passes_gradcheck_with_repeated_indices),
        cmocka_unit_test(cross_entropy_passes_gradcheck_with_ignore_index_and_smoothing),
    };
    return TU_RUN(tests);
}

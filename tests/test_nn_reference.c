/* tests/test_nn_reference.c: f32 results of the nn ops against naive loops
 * in double written here (matmul on transposed, strided and broadcast
 * operands, linear, softmax, log_softmax, layer_norm, rms_norm, embedding,
 * cross_entropy), and the failure status for indices and targets out of
 * range. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

#define RTOL 1e-5
#define ATOL 1e-6

/* The logical (row-major) values of t as doubles; free() them. */
static double *host(ig_tensor *t) {
    double *d = malloc(sizeof(double) * (size_t)(ig_tensor_numel(t) + 1));
    assert_int_equal(ig_tensor_to_host(ig_to(ig_detach(t), IG_F64, IG_CPU), d), IG_OK);
    return d;
}

/* An f64 tensor of the given shape owning a copy of v. */
static ig_tensor *tensor(const double *v, int ndim, const int64_t *shape) {
    return ig_from_data(v, ndim, shape, IG_F64, IG_CPU);
}

static ig_tensor *randn(int ndim, const int64_t *shape) {
    return tu_randn(ndim, shape, IG_F32, false);
}

/* a (..., n, k) @ b (..., k, m), both at least 2-D, batch dims broadcast. */
static ig_tensor *ref_matmul(ig_tensor *a, ig_tensor *b) {
    int na = ig_tensor_ndim(a), nb = ig_tensor_ndim(b), nd = na > nb ? na : nb;
    const int64_t *sa = ig_tensor_shape(a), *sb = ig_tensor_shape(b);
    int64_t n = sa[na - 2], k = sa[na - 1], m = sb[nb - 1], shape[IG_MAX_DIMS], batch = 1;
    for (int d = 0; d < nd - 2; d++) {
        int da = d - nd + na, db = d - nd + nb;
        int64_t x = da >= 0 ? sa[da] : 1, y = db >= 0 ? sb[db] : 1;
        shape[d] = x > y ? x : y;
        batch *= shape[d];
    }
    shape[nd - 2] = n;
    shape[nd - 1] = m;
    double *va = host(a), *vb = host(b), *vc = calloc((size_t)(batch * n * m + 1), sizeof(double));
    for (int64_t i = 0; i < batch; i++) {
        int64_t oa = 0, ob = 0, ma = 1, mb = 1, rest = i;
        for (int d = nd - 3; d >= 0; d--) {
            int64_t j = rest % shape[d];
            rest /= shape[d];
            int da = d - nd + na, db = d - nd + nb;
            if (da >= 0) { oa += (sa[da] == 1 ? 0 : j) * ma; ma *= sa[da]; }
            if (db >= 0) { ob += (sb[db] == 1 ? 0 : j) * mb; mb *= sb[db]; }
        }
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < m; c++) {
                double acc = 0;
                for (int64_t q = 0; q < k; q++)
                    acc += va[oa * n * k + r * k + q] * vb[ob * k * m + q * m + c];
                vc[i * n * m + r * m + c] = acc;
            }
    }
    ig_tensor *c = tensor(vc, nd, shape);
    free(va), free(vb), free(vc);
    return c;
}

static void check_matmul(const char *what, ig_tensor *a, ig_tensor *b) {
    ig_tensor *r = ig_matmul(a, b);
    assert_non_null(r);
    assert_int_equal(ig_tensor_dtype(r), IG_F32);
    int na = ig_tensor_ndim(a), nb = ig_tensor_ndim(b);
    ig_tensor *ref = ref_matmul(na == 1 ? ig_unsqueeze(a, 0) : a, nb == 1 ? ig_unsqueeze(b, 1) : b);
    tu_assert_close(r, ig_reshape(ref, ig_tensor_ndim(r), ig_tensor_shape(r)), ATOL, RTOL, what);
}

static void matmul_f32_matches_naive_loops(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    check_matmul("2-D", randn(IG_SHAPE(7, 5)), randn(IG_SHAPE(5, 6)));
    check_matmul("2-D larger", randn(IG_SHAPE(33, 17)), randn(IG_SHAPE(17, 40)));
    check_matmul("A^T", ig_transpose(randn(IG_SHAPE(5, 7)), 0, 1), randn(IG_SHAPE(5, 6)));
    check_matmul("B^T", randn(IG_SHAPE(7, 5)), ig_transpose(randn(IG_SHAPE(6, 5)), 0, 1));
    check_matmul("A^T B^T", ig_transpose(randn(IG_SHAPE(5, 7)), 0, 1),
                 ig_transpose(randn(IG_SHAPE(6, 5)), 0, 1));
    check_matmul("column slice", ig_narrow(randn(IG_SHAPE(7, 9)), 1, 2, 5), randn(IG_SHAPE(5, 6)));
    check_matmul("step-2 columns", ig_slice(randn(IG_SHAPE(7, 10)), 1, 0, 10, 2),
                 randn(IG_SHAPE(5, 6)));
    check_matmul("batch broadcast (2,1,3,4)@(5,4,2)", randn(IG_SHAPE(2, 1, 3, 4)),
                 randn(IG_SHAPE(5, 4, 2)));
    check_matmul("3-D @ 2-D", randn(IG_SHAPE(3, 4, 5)), randn(IG_SHAPE(5, 6)));
    check_matmul("2-D @ 3-D", randn(IG_SHAPE(4, 5)), randn(IG_SHAPE(3, 5, 6)));
    check_matmul("permuted batch @ 2-D", ig_transpose(randn(IG_SHAPE(4, 3, 5)), 0, 1),
                 randn(IG_SHAPE(5, 6)));
    check_matmul("batched B^T", randn(IG_SHAPE(2, 3, 4, 5)),
                 ig_transpose(randn(IG_SHAPE(3, 6, 5)), -1, -2));
    check_matmul("expanded A", ig_expand(randn(IG_SHAPE(1, 4, 5)), IG_SHAPE(3, 4, 5)),
                 randn(IG_SHAPE(3, 5, 2)));
    check_matmul("k = 0: zeros", randn(IG_SHAPE(3, 0)), randn(IG_SHAPE(0, 4)));
    check_matmul("dot", randn(IG_SHAPE(6)), randn(IG_SHAPE(6)));
    check_matmul("matrix @ vector", randn(IG_SHAPE(3, 6)), randn(IG_SHAPE(6)));
    check_matmul("vector @ batch", randn(IG_SHAPE(6)), randn(IG_SHAPE(2, 6, 3)));
    check_matmul("strided vector", ig_slice(randn(IG_SHAPE(12)), 0, 0, 12, 2),
                 randn(IG_SHAPE(6, 4)));
    ig_scope_end(s);
}

static void linear_f32_matches_naive_loops(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *xs[] = {randn(IG_SHAPE(2, 3, 8)), ig_transpose(randn(IG_SHAPE(3, 2, 8)), 0, 1),
                       randn(IG_SHAPE(8))};
    ig_tensor *w = randn(IG_SHAPE(5, 8)), *b = randn(IG_SHAPE(5));
    double *vw = host(w), *vb = host(b);
    for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            ig_tensor *r = ig_linear(xs[k], w, with_bias ? b : NULL);
            assert_non_null(r);
            int64_t rows = ig_tensor_numel(xs[k]) / 8;
            double *vx = host(xs[k]), *ref = malloc(sizeof(double) * (size_t)(rows * 5));
            for (int64_t i = 0; i < rows; i++)
                for (int o = 0; o < 5; o++) {
                    double acc = with_bias ? vb[o] : 0;
                    for (int q = 0; q < 8; q++) acc += vx[i * 8 + q] * vw[o * 8 + q];
                    ref[i * 5 + o] = acc;
                }
            tu_assert_close(r, tensor(ref, ig_tensor_ndim(r), ig_tensor_shape(r)), ATOL, RTOL,
                            with_bias ? "linear + bias" : "linear");
            free(vx), free(ref);
        }
    }
    free(vw), free(vb);
    ig_scope_end(s);
}

/* softmax (or log_softmax when is_log) over dim of the logical values v */
static ig_tensor *ref_softmax(const double *v, int ndim, const int64_t *shape, int dim,
                              bool is_log) {
    int64_t outer = 1, inner = 1, n = shape[dim];
    for (int d = 0; d < dim; d++) outer *= shape[d];
    for (int d = dim + 1; d < ndim; d++) inner *= shape[d];
    double *y = malloc(sizeof(double) * (size_t)(outer * n * inner));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const double *x = v + o * n * inner + i;
            double sum = 0;
            for (int64_t j = 0; j < n; j++) sum += exp(x[j * inner]);
            for (int64_t j = 0; j < n; j++)
                y[o * n * inner + j * inner + i] =
                    is_log ? x[j * inner] - log(sum) : exp(x[j * inner]) / sum;
        }
    ig_tensor *t = tensor(y, ndim, shape);
    free(y);
    return t;
}

static void softmax_and_log_softmax_f32_match_naive_loops(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *xs[] = {randn(IG_SHAPE(4, 7)), randn(IG_SHAPE(2, 5, 3)),
                       ig_transpose(randn(IG_SHAPE(3, 5, 2)), 0, 2),
                       ig_mul_scalar(randn(IG_SHAPE(3, 6)), 40)}; /* large logits: max subtracted */
    for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
        int nd = ig_tensor_ndim(xs[k]);
        double *v = host(xs[k]);
        for (int dim = 0; dim < nd; dim++)
            for (int log = 0; log < 2; log++) {
                ig_tensor *r = log ? ig_log_softmax(xs[k], dim) : ig_softmax(xs[k], dim);
                assert_non_null(r);
                tu_assert_close(r, ref_softmax(v, nd, ig_tensor_shape(xs[k]), dim, log), ATOL,
                                RTOL, log ? "log_softmax" : "softmax");
            }
        free(v);
    }
    ig_scope_end(s);
}

static void norms_f32_match_naive_loops(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    const int64_t C = 24;
    ig_tensor *xs[] = {ig_add_scalar(randn(IG_SHAPE(3, 4, C)), 3.0),
                       ig_narrow(randn(IG_SHAPE(5, C + 4)), 1, 2, C)};
    ig_tensor *w = randn(IG_SHAPE(C)), *b = randn(IG_SHAPE(C));
    double *vw = host(w), *vb = host(b);
    for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
        double *v = host(xs[k]);
        int64_t rows = ig_tensor_numel(xs[k]) / C;
        double *ln = malloc(sizeof(double) * (size_t)(rows * C));
        double *rms = malloc(sizeof(double) * (size_t)(rows * C));
        for (int64_t r = 0; r < rows; r++) {
            const double *x = v + r * C;
            double mu = 0, var = 0, ms = 0;
            for (int64_t c = 0; c < C; c++) mu += x[c] / C;
            for (int64_t c = 0; c < C; c++) {
                var += (x[c] - mu) * (x[c] - mu) / C;
                ms += x[c] * x[c] / C;
            }
            for (int64_t c = 0; c < C; c++) {
                ln[r * C + c] = (x[c] - mu) / sqrt(var + 1e-5) * vw[c] + vb[c];
                rms[r * C + c] = x[c] / sqrt(ms + 1e-6) * vw[c];
            }
        }
        int nd = ig_tensor_ndim(xs[k]);
        const int64_t *shape = ig_tensor_shape(xs[k]);
        tu_assert_close(ig_layer_norm(xs[k], w, b, 1e-5), tensor(ln, nd, shape), ATOL, RTOL,
                        "layer_norm");
        tu_assert_close(ig_rms_norm(xs[k], w, 1e-6), tensor(rms, nd, shape), ATOL, RTOL,
                        "rms_norm");
        free(v), free(ln), free(rms);
    }
    free(vw), free(vb);
    ig_scope_end(s);
}

static void cross_entropy_f32_matches_naive_loops(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    const int64_t N = 6, C = 7;
    const int64_t t[] = {3, -100, 0, 6, 3, -100};
    ig_tensor *logits = ig_mul_scalar(randn(IG_SHAPE(N, C)), 5);
    ig_tensor *targets = ig_from_data(t, IG_SHAPE(N), IG_I64, IG_CPU);
    double *x = host(logits);
    const double smooth[] = {0, 0.1};
    for (int k = 0; k < 2; k++) {
        double total = 0;
        int count = 0;
        for (int64_t r = 0; r < N; r++) {
            if (t[r] == -100) continue;
            double sum = 0, lp_sum = 0;
            for (int64_t c = 0; c < C; c++) sum += exp(x[r * C + c]);
            for (int64_t c = 0; c < C; c++) lp_sum += x[r * C + c] - log(sum);
            total += -(1 - smooth[k]) * (x[r * C + t[r]] - log(sum)) - smooth[k] / C * lp_sum;
            count++;
        }
        ig_tensor *r = ig_cross_entropy(logits, targets, -100, smooth[k]);
        assert_non_null(r);
        tu_assert_close(r, tensor((double[]){total / count}, 0, NULL), ATOL, RTOL, "cross_entropy");
    }
    free(x);
    ig_scope_end(s);
}

static void embedding_gathers_rows_and_accumulates_repeated_ones(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    const int32_t idx[] = {2, 0, 2, 2};
    ig_tensor *w = ig_requires_grad_(randn(IG_SHAPE(3, 4)), true);
    ig_tensor *r = ig_embedding(w, ig_from_data(idx, IG_SHAPE(2, 2), IG_I32, IG_CPU));
    assert_non_null(r);
    double *vw = host(w), ref[16], grad[12] = {0};
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 4; c++) {
            ref[i * 4 + c] = vw[idx[i] * 4 + c];
            grad[idx[i] * 4 + c] += 1;
        }
    tu_assert_close(r, tensor(ref, IG_SHAPE(2, 2, 4)), 0, 0, "embedding");
    assert_int_equal(ig_backward(ig_sum_all(r)), IG_OK);
    tu_assert_close(ig_tensor_grad(w), tensor(grad, IG_SHAPE(3, 4)), 0, 0, "embedding grad");
    free(vw);
    ig_scope_end(s);
}

/* bf16 in, bf16 out, computed in f32: within bf16 rounding of the f32 op on
 * the same (bf16-exact) values; gradients come back in bf16 too. */
static void bf16_inputs_compute_in_f32(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_to(randn(IG_SHAPE(2, 3, 8)), IG_BF16, IG_CPU);
    ig_tensor *w = ig_requires_grad_(ig_to(randn(IG_SHAPE(5, 8)), IG_BF16, IG_CPU), true);
    ig_tensor *b = ig_requires_grad_(ig_to(randn(IG_SHAPE(5)), IG_BF16, IG_CPU), true);
    ig_tensor *xf = ig_to(x, IG_F32, IG_CPU), *wf = ig_to(w, IG_F32, IG_CPU);
    ig_tensor *bf = ig_to(b, IG_F32, IG_CPU);
    const int64_t t[] = {0, 4, 2, 1, 3, 0};
    ig_tensor *targets = ig_from_data(t, IG_SHAPE(2, 3), IG_I64, IG_CPU);
    struct { const char *what; ig_tensor *r, *ref; } cases[] = {
        {"matmul", ig_matmul(x, ig_transpose(w, 0, 1)), ig_matmul(xf, ig_transpose(wf, 0, 1))},
        {"linear", ig_linear(x, w, b), ig_linear(xf, wf, bf)},
        {"softmax", ig_softmax(x, 1), ig_softmax(xf, 1)},
        {"log_softmax", ig_log_softmax(x, -1), ig_log_softmax(xf, -1)},
        {"layer_norm", ig_layer_norm(x, NULL, NULL, 1e-5), ig_layer_norm(xf, NULL, NULL, 1e-5)},
        {"rms_norm", ig_rms_norm(x, NULL, 1e-5), ig_rms_norm(xf, NULL, 1e-5)},
        {"cross_entropy", ig_cross_entropy(ig_linear(x, w, b), targets, -100, 0.1),
         ig_cross_entropy(ig_linear(xf, wf, bf), targets, -100, 0.1)},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_non_null(cases[k].r);
        assert_int_equal(ig_tensor_dtype(cases[k].r), IG_BF16);
        tu_assert_close(cases[k].r, cases[k].ref, 1e-2, 1e-2, cases[k].what);
    }
    assert_int_equal(ig_backward(cases[6].r), IG_OK);
    assert_int_equal(ig_tensor_dtype(ig_tensor_grad(w)), IG_BF16);
    assert_int_equal(ig_tensor_dtype(ig_tensor_grad(b)), IG_BF16);
    ig_scope_end(s);
}

static void out_of_range_indices_and_targets_fail_with_the_value(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *w = randn(IG_SHAPE(5, 3));
    const int64_t bad[] = {1, 4, 7, 0}, neg[] = {-1};
    ig_clear_error();
    assert_null(ig_embedding(w, ig_from_data(bad, IG_SHAPE(4), IG_I64, IG_CPU)));
    assert_int_equal(ig_last_status(), IG_ERR_INVALID);
    assert_non_null(strstr(ig_last_error(), "embedding"));
    assert_non_null(strstr(ig_last_error(), "index 7"));
    ig_clear_error();
    assert_null(ig_embedding(w, ig_from_data(neg, IG_SHAPE(1), IG_I64, IG_CPU)));
    assert_int_equal(ig_last_status(), IG_ERR_INVALID);
    assert_non_null(strstr(ig_last_error(), "index -1"));

    ig_tensor *logits = randn(IG_SHAPE(4, 5));
    const int64_t t[] = {0, 9, 1, 2}, t_ignored[] = {0, -100, 4, 2};
    const int32_t t32[] = {0, 1, 5, 2};
    ig_clear_error();
    assert_null(ig_cross_entropy(logits, ig_from_data(t, IG_SHAPE(4), IG_I64, IG_CPU), -100, 0));
    assert_int_equal(ig_last_status(), IG_ERR_INVALID);
    assert_non_null(strstr(ig_last_error(), "cross_entropy"));
    assert_non_null(strstr(ig_last_error(), "target 9"));
    assert_non_null(strstr(ig_last_error(), "5 classes"));
    ig_clear_error();
    assert_null(ig_cross_entropy(logits, ig_from_data(t32, IG_SHAPE(4), IG_I32, IG_CPU),
                                 IG_IGNORE_INDEX_NONE, 0));
    assert_non_null(strstr(ig_last_error(), "target 5"));
    /* the ignored value itself is out of range, and that is fine */
    assert_non_null(ig_cross_entropy(logits, ig_from_data(t_ignored, IG_SHAPE(4), IG_I64, IG_CPU),
                                     -100, 0));
    ig_scope_end(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matmul_f32_matches_naive_loops),
        cmocka_unit_test(linear_f32_matches_naive_loops),
        cmocka_unit_test(softmax_and_log_softmax_f32_match_naive_loops),
        cmocka_unit_test(norms_f32_match_naive_loops),
        cmocka_unit_test(cross_entropy_f32_matches_naive_loops),
        cmocka_unit_test(embedding_gathers_rows_and_accumulates_repeated_ones),
        cmocka_unit_test(bf16_inputs_compute_in_f32),
        cmocka_unit_test(out_of_range_indices_and_targets_fail_with_the_value),
    };
    return TU_RUN(tests);
}

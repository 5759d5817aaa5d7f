/* tests/testutil.c: random tensors, closeness, and the finite-difference
 * gradient check (central differences in f64, eps 1e-6). */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ig_tensor *tu_randn(int ndim, const int64_t *shape, ig_dtype dtype, bool requires_grad) {
    ig_tensor *t = ig_randn(ndim, shape, dtype, IG_CPU, NULL);
    if (requires_grad) ig_requires_grad_(t, true);
    return t;
}

static double *host_f64(ig_tensor *t) {
    int64_t n = ig_tensor_numel(t);
    ig_tensor *h = ig_to(ig_detach(t), IG_F64, IG_CPU);
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    assert_non_null(d);
    assert_int_equal(ig_tensor_to_host(h, d), IG_OK);
    return d;
}

static void worst(ig_tensor *a, ig_tensor *b, double atol, double rtol, double *ratio,
                  int64_t *at, double *va, double *vb) {
    assert_int_equal(ig_tensor_ndim(a), ig_tensor_ndim(b));
    for (int d = 0; d < ig_tensor_ndim(a); d++)
        assert_int_equal(ig_tensor_size(a, d), ig_tensor_size(b, d));
    int64_t n = ig_tensor_numel(a);
    double *x = host_f64(a), *y = host_f64(b);
    *ratio = 0;
    *at = -1;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs(x[i] - y[i]);
        double r = diff == 0 ? 0 : diff / (atol + rtol * fabs(y[i]));
        if (isnan(x[i]) != isnan(y[i])) r = INFINITY;
        if (r > *ratio || *at < 0) {
            *ratio = r;
            *at = i;
            *va = x[i];
            *vb = y[i];
        }
    }
    free(x);
    free(y);
}

double tu_close_ratio(ig_tensor *a, ig_tensor *b, double atol, double rtol) {
    double r, va, vb;
    int64_t at;
    worst(a, b, atol, rtol, &r, &at, &va, &vb);
    return r;
}

void tu_assert_close(ig_tensor *a, ig_tensor *b, double atol, double rtol, const char *what) {
    double r, va, vb;
    int64_t at;
    worst(a, b, atol, rtol, &r, &at, &va, &vb);
    if (!(r <= 1.0)) {
        print_error("%s: element %lld differs: %.10g vs %.10g (atol %g, rtol %g)\n", what,
                    (long long)at, va, vb, atol, rtol);
        fail();
    }
}

static double loss_value(tu_fn f, void *user, int n, ig_tensor **in, ig_tensor *w) {
    bool prev = ig_grad_set_enabled(false);
    ig_scope *s = ig_scope_begin();
    ig_tensor *out = f(user, in);
    assert_non_null(out);
    double v = ig_tensor_item(ig_sum_all(ig_mul(ig_to(out, IG_F64, IG_CPU), w)));
    ig_scope_end(s);
    ig_grad_set_enabled(prev);
    (void)n;
    return v;
}

void tu_gradcheck(const char *name, tu_fn f, void *user, int n, ig_tensor **in) {
    ig_scope *s = ig_scope_begin();
    for (int i = 0; i < n; i++) ig_tensor_zero_grad(in[i], true);
    ig_tensor *out = f(user, in);
    assert_non_null(out);
    ig_tensor *w = ig_randn(ig_tensor_ndim(out), ig_tensor_shape(out), IG_F64, IG_CPU, NULL);
    ig_tensor *loss = ig_sum_all(ig_mul(ig_to(out, IG_F64, IG_CPU), w));
    assert_int_equal(ig_backward(loss), IG_OK);
    const double eps = 1e-6;
    for (int i = 0; i < n; i++) {
        if (!ig_tensor_requires_grad(in[i])) continue;
        ig_tensor *g = ig_tensor_grad(in[i]);
        if (!g) {
            print_error("%s: input %d received no gradient\n", name, i);
            fail();
        }
        assert_true(ig_tensor_is_contiguous(in[i]));
        assert_int_equal(ig_tensor_dtype(in[i]), IG_F64);
        double *x = ig_tensor_data(in[i]);
        double *ga = host_f64(g);
        for (int64_t j = 0; j < ig_tensor_numel(in[i]); j++) {
            double keep = x[j];
            x[j] = keep + eps;
            double lp = loss_value(f, user, n, in, w);
            x[j] = keep - eps;
            double lm = loss_value(f, user, n, in, w);
            x[j] = keep;
            double num = (lp - lm) / (2 * eps);
            if (fabs(num - ga[j]) > 1e-5 + 1e-4 * fabs(num)) {
                print_error("%s: d/d input %d [%lld]: backward %.10g, finite differences %.10g\n",
                            name, i, (long long)j, ga[j], num);
                free(ga);
                fail();
            }
        }
        free(ga);
    }
    ig_scope_end(s);
}

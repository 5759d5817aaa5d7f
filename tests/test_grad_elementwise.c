/* tests/test_grad_elementwise.c: finite-difference checks (f64) of the
 * elementwise ops, reductions and views, with broadcasting and
 * non-contiguous views among the cases. */
#include <math.h>

#include "tests/testutil.h"

typedef ig_tensor *(*binfn)(ig_tensor *, ig_tensor *);
typedef ig_tensor *(*unfn)(ig_tensor *);

static ig_tensor *apply_bin(void *u, ig_tensor **in) { return ((binfn)u)(in[0], in[1]); }
/* the same op on a transposed (non-contiguous) view of the first input */
static ig_tensor *apply_bin_t(void *u, ig_tensor **in) {
    return ((binfn)u)(ig_transpose(in[0], 0, 1), in[1]);
}
static ig_tensor *apply_un(void *u, ig_tensor **in) { return ((unfn)u)(in[0]); }
static ig_tensor *apply_un_slice(void *u, ig_tensor **in) {
    return ((unfn)u)(ig_slice(ig_transpose(in[0], 0, 1), 0, 1, 4, 2));
}

static void binary_ops_pass_gradcheck_with_broadcasting(void **state) {
    (void)state;
    const struct { const char *name; binfn f; } ops[] = {
        {"add", ig_add}, {"sub", ig_sub}, {"mul", ig_mul}, {"div", ig_div},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *a = tu_randn(IG_SHAPE(3, 4), IG_F64, true);
        ig_tensor *b = tu_randn(IG_SHAPE(4), IG_F64, true); /* broadcast over rows */
        ig_tensor *in[2] = {a, b};
        tu_gradcheck(ops[k].name, apply_bin, (void *)ops[k].f, 2, in);
        ig_tensor *c = tu_randn(IG_SHAPE(2, 1, 3), IG_F64, true); /* both sides broadcast */
        ig_tensor *d = tu_randn(IG_SHAPE(4, 1), IG_F64, true);
        ig_tensor *in2[2] = {c, d};
        tu_gradcheck(ops[k].name, apply_bin, (void *)ops[k].f, 2, in2);
        ig_tensor *e = tu_randn(IG_SHAPE(4, 3), IG_F64, true); /* transposed view */
        ig_tensor *f = tu_randn(IG_SHAPE(3, 4), IG_F64, true);
        ig_tensor *in3[2] = {e, f};
        tu_gradcheck(ops[k].name, apply_bin_t, (void *)ops[k].f, 2, in3);
        ig_scope_end(s);
    }
}

static void pow_passes_gradcheck_on_positive_base(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_requires_grad_(ig_add_scalar(ig_abs(ig_randn(IG_SHAPE(3, 2), IG_F64, IG_CPU, NULL)), 0.5), true);
    ig_tensor *b = tu_randn(IG_SHAPE(2), IG_F64, true);
    ig_tensor *in[2] = {a, b};
    tu_gradcheck("pow", apply_bin, (void *)ig_pow, 2, in);
    ig_scope_end(s);
}

static ig_tensor *add_s(ig_tensor *a) { return ig_add_scalar(a, 1.5); }
static ig_tensor *mul_s(ig_tensor *a) { return ig_mul_scalar(a, -2.5); }
static ig_tensor *rsub_s(ig_tensor *a) { return ig_rsub_scalar(a, 0.5); }
static ig_tensor *div_s(ig_tensor *a) { return ig_div_scalar(a, 4); }
static ig_tensor *pow_s(ig_tensor *a) { return ig_pow_scalar(ig_add_scalar(ig_abs(a), 0.5), 2.5); }
static ig_tensor *log_p(ig_tensor *a) { return ig_log(ig_add_scalar(ig_abs(a), 0.5)); }
static ig_tensor *sqrt_p(ig_tensor *a) { return ig_sqrt(ig_add_scalar(ig_abs(a), 0.5)); }
static ig_tensor *rsqrt_p(ig_tensor *a) { return ig_rsqrt(ig_add_scalar(ig_abs(a), 0.5)); }

static void unary_ops_pass_gradcheck_on_views(void **state) {
    (void)state;
    const struct { const char *name; unfn f; } ops[] = {
        {"neg", ig_neg},   {"exp", ig_exp},       {"log", log_p},         {"sqrt", sqrt_p},
        {"rsqrt", rsqrt_p}, {"abs", ig_abs},      {"tanh", ig_tanh},      {"sigmoid", ig_sigmoid},
        {"relu", ig_relu}, {"gelu", ig_gelu},     {"gelu_tanh", ig_gelu_tanh}, {"silu", ig_silu},
        {"add_scalar", add_s}, {"mul_scalar", mul_s}, {"rsub_scalar", rsub_s},
        {"div_scalar", div_s}, {"pow_scalar", pow_s},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *a = tu_randn(IG_SHAPE(5, 6), IG_F64, true);
        tu_gradcheck(ops[k].name, apply_un, (void *)ops[k].f, 1, &a);
        tu_gradcheck(ops[k].name, apply_un_slice, (void *)ops[k].f, 1, &a);
        ig_scope_end(s);
    }
}

static ig_tensor *sum_01(ig_tensor *a) { return ig_sum(a, 2, (int[]){0, 2}, false); }
static ig_tensor *sum_keep(ig_tensor *a) { return ig_sum(a, 1, (int[]){-1}, true); }
static ig_tensor *mean_1(ig_tensor *a) { return ig_mean(a, 1, (int[]){1}, false); }
static ig_tensor *mean_all(ig_tensor *a) { return ig_mean_all(ig_transpose(a, 0, 2)); }
static ig_tensor *sum_to(ig_tensor *a) { return ig_sum_to(a, IG_SHAPE(3, 1)); }

static void reductions_pass_gradcheck(void **state) {
    (void)state;
    const struct { const char *name; unfn f; } ops[] = {
        {"sum dims 0,2", sum_01}, {"sum keepdim", sum_keep}, {"mean dim 1", mean_1},
        {"mean all", mean_all},   {"sum_to", sum_to},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *a = tu_randn(IG_SHAPE(2, 3, 4), IG_F64, true);
        tu_gradcheck(ops[k].name, apply_un, (void *)ops[k].f, 1, &a);
        ig_scope_end(s);
    }
}

static ig_tensor *v_reshape(ig_tensor *a) { return ig_reshape(ig_transpose(a, 0, 1), IG_SHAPE(4, 6)); }
static ig_tensor *v_permute(ig_tensor *a) { return ig_permute(a, (int[]){2, 0, 1}); }
static ig_tensor *v_slice(ig_tensor *a) { return ig_slice(a, 2, 1, 4, 2); }
static ig_tensor *v_narrow(ig_tensor *a) { return ig_narrow(a, 1, 1, 2); }
static ig_tensor *v_expand(ig_tensor *a) {
    return ig_expand(ig_unsqueeze(ig_narrow(a, 0, 0, 1), 0), IG_SHAPE(3, 1, 3, 4));
}
static ig_tensor *v_squeeze(ig_tensor *a) { return ig_squeeze(ig_narrow(a, 0, 1, 1), 0); }
static ig_tensor *v_to(ig_tensor *a) { return ig_to(ig_to(a, IG_F32, IG_CPU), IG_F64, IG_CPU); }

static void views_pass_gradcheck(void **state) {
    (void)state;
    const struct { const char *name; unfn f; } ops[] = {
        {"reshape", v_reshape}, {"permute", v_permute}, {"slice", v_slice},
        {"narrow", v_narrow},   {"expand", v_expand},   {"squeeze", v_squeeze},
        {"contiguous", ig_contiguous}, {"clone", ig_clone},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *a = tu_randn(IG_SHAPE(2, 3, 4), IG_F64, true);
        tu_gradcheck(ops[k].name, apply_un, (void *)ops[k].f, 1, &a);
        ig_scope_end(s);
    }
    /* to(f32) and back loses precision: check the gradient is passed through exactly */
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = tu_randn(IG_SHAPE(3), IG_F64, true);
    assert_int_equal(ig_backward(ig_sum_all(v_to(a))), IG_OK);
    tu_assert_close(ig_tensor_grad(a), ig_ones(IG_SHAPE(3), IG_F64, IG_CPU), 0, 0, "to");
    ig_scope_end(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binary_ops_pass_gradcheck_with_broadcasting),
        cmocka_unit_test(pow_passes_gradcheck_on_positive_base),
        cmocka_unit_test(unary_ops_pass_gradcheck_on_views),
        cmocka_unit_test(reductions_pass_gradcheck),
        cmocka_unit_test(views_pass_gradcheck),
    };
    return TU_RUN(tests);
}

/* tests/test_grad_index.c: var, max and the joining/selecting ops (cat, stack,
 * split, where, masked_fill, index_select, gather): finite-difference checks
 * in f64 on small shapes, forward values against hand-computed results, and
 * the failure an out-of-range index gives. */
#include <math.h>
#include <string.h>

#include "tests/testutil.h"

static ig_tensor *f64(int ndim, const int64_t *shape, const double *v) {
    return ig_from_data(v, ndim, shape, IG_F64, IG_CPU);
}
static ig_tensor *i64(int ndim, const int64_t *shape, const int64_t *v) {
    return ig_from_data(v, ndim, shape, IG_I64, IG_CPU);
}
static ig_tensor *u8(int ndim, const int64_t *shape, const uint8_t *v) {
    return ig_from_data(v, ndim, shape, IG_U8, IG_CPU);
}

/* ---- var ---- */

typedef struct var_case {
    int ndims, dims[3], correction;
    bool keepdim;
} var_case;

static ig_tensor *var_fn(void *u, ig_tensor **in) {
    const var_case *c = u;
    return ig_var(in[0], c->ndims, c->dims, c->correction, c->keepdim);
}
static ig_tensor *var_t_fn(void *u, ig_tensor **in) {
    const var_case *c = u;
    return ig_var(ig_transpose(in[0], 0, 2), c->ndims, c->dims, c->correction, c->keepdim);
}

static void var_passes_gradcheck_over_dims_corrections_and_keepdim(void **state) {
    (void)state;
    const var_case cases[] = {
        {1, {1}, 0, false},  {1, {1}, 1, true},     {2, {0, 2}, 1, false},
        {1, {-1}, 0, true},  {0, {0}, 1, false},    {0, {0}, 0, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *a = tu_randn(IG_SHAPE(2, 3, 4), IG_F64, true);
        tu_gradcheck("var", var_fn, (void *)&cases[k], 1, &a);
        tu_gradcheck("var of a transposed view", var_t_fn, (void *)&cases[k], 1, &a);
        ig_scope_end(s);
    }
}

static void var_matches_hand_computed_values(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = f64(IG_SHAPE(2, 4), (double[]){1, 2, 3, 4, 2, 2, 2, 10});
    /* row means 2.5 and 4; squared deviations 5 and 48 */
    tu_assert_close(ig_var(a, 1, (int[]){1}, 0, false), f64(IG_SHAPE(2), (double[]){1.25, 12}),
                    1e-12, 1e-12, "population var");
    tu_assert_close(ig_var(a, 1, (int[]){-1}, 1, true),
                    f64(IG_SHAPE(2, 1), (double[]){5.0 / 3, 16}), 1e-12, 1e-12, "sample var");
    /* all 8: mean 3.25, squared deviations 5.0625+1.5625*4+0.0625+0.5625+45.5625 = 57.5 */
    tu_assert_close(ig_var(a, 0, NULL, 1, false), f64(0, NULL, (double[]){57.5 / 7}), 1e-12,
                    1e-12, "var of all");
    ig_tensor *f = ig_to(a, IG_F32, IG_CPU);
    assert_int_equal(ig_tensor_dtype(ig_var(f, 1, (int[]){0}, 1, false)), IG_F32);
    tu_assert_close(ig_var(f, 1, (int[]){0}, 1, false),
                    f64(IG_SHAPE(4), (double[]){0.5, 0, 0.5, 18}), 1e-6, 1e-6, "f32 var dim 0");
    ig_scope_end(s);
}

/* ---- max ---- */

typedef struct max_case {
    int dim;
    bool keepdim;
} max_case;

static ig_tensor *max_fn(void *u, ig_tensor **in) {
    const max_case *c = u;
    return ig_max(in[0], c->dim, c->keepdim, NULL);
}

static void max_passes_gradcheck(void **state) {
    (void)state;
    const max_case cases[] = {{1, false}, {-1, true}, {0, false}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *a = tu_randn(IG_SHAPE(3, 4, 2), IG_F64, true);
        tu_gradcheck("max", max_fn, (void *)&cases[k], 1, &a);
        ig_scope_end(s);
    }
}

static void max_gives_first_argmax_and_sends_ties_gradient_to_it(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_requires_grad_(f64(IG_SHAPE(3, 3), (double[]){1, 5, 5, 7, 2, 5, 7, 0, 1}),
                                     true);
    ig_tensor *idx = NULL;
    ig_tensor *v = ig_max(a, 1, false, &idx);
    tu_assert_close(v, f64(IG_SHAPE(3), (double[]){5, 7, 7}), 0, 0, "max dim 1");
    assert_non_null(idx);
    assert_int_equal(ig_tensor_dtype(idx), IG_I64);
    tu_assert_close(idx, i64(IG_SHAPE(3), (int64_t[]){1, 0, 0}), 0, 0, "argmax dim 1");
    assert_int_equal(ig_backward(ig_sum_all(v)), IG_OK);
    tu_assert_close(ig_tensor_grad(a), f64(IG_SHAPE(3, 3), (double[]){0, 1, 0, 1, 0, 0, 1, 0, 0}),
                    0, 0, "max dim 1 gradient");

    ig_tensor_zero_grad(a, true);
    v = ig_max(a, 0, true, &idx);
    tu_assert_close(v, f64(IG_SHAPE(1, 3), (double[]){7, 5, 5}), 0, 0, "max dim 0");
    tu_assert_close(idx, i64(IG_SHAPE(1, 3), (int64_t[]){1, 0, 0}), 0, 0, "argmax dim 0");
    assert_int_equal(ig_backward(ig_sum_all(v)), IG_OK);
    tu_assert_close(ig_tensor_grad(a), f64(IG_SHAPE(3, 3), (double[]){0, 1, 1, 1, 0, 0, 0, 0, 0}),
                    0, 0, "max dim 0 gradient");
    ig_scope_end(s);
}

/* ---- cat, stack, split ---- */

/* (2,3) ++ (2,1) ++ (3,2)^T ++ (2,2) along the last dim */
static ig_tensor *cat4_fn(void *u, ig_tensor **in) {
    (void)u;
    ig_tensor *ts[4] = {in[0], in[1], ig_transpose(in[2], 0, 1), in[3]};
    return ig_cat(4, ts, -1);
}
static ig_tensor *cat0_fn(void *u, ig_tensor **in) {
    (void)u;
    ig_tensor *ts[3] = {in[0], ig_slice(in[1], 1, 0, 4, 2), in[0]};
    return ig_cat(3, ts, 0);
}

static void cat_passes_gradcheck_on_views_and_negative_dim(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *in[4] = {tu_randn(IG_SHAPE(2, 3), IG_F64, true), tu_randn(IG_SHAPE(2, 1), IG_F64, true),
                        tu_randn(IG_SHAPE(3, 2), IG_F64, true), tu_randn(IG_SHAPE(2, 2), IG_F64, true)};
    ig_tensor *out = cat4_fn(NULL, in);
    assert_int_equal(ig_tensor_size(out, 0), 2);
    assert_int_equal(ig_tensor_size(out, 1), 9);
    tu_gradcheck("cat of 4", cat4_fn, NULL, 4, in);
    /* the same input twice and a strided slice, along dim 0 */
    ig_tensor *in2[2] = {tu_randn(IG_SHAPE(1, 2), IG_F64, true), tu_randn(IG_SHAPE(3, 4), IG_F64, true)};
    tu_gradcheck("cat dim 0", cat0_fn, NULL, 2, in2);
    ig_scope_end(s);
}

static void cat_stack_split_move_values_of_any_dtype(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = i64(IG_SHAPE(1, 2), (int64_t[]){1, 2});
    ig_tensor *b = i64(IG_SHAPE(2, 2), (int64_t[]){3, 4, 5, 6});
    ig_tensor *c = ig_cat(2, (ig_tensor *[]){a, b}, 0);
    tu_assert_close(c, i64(IG_SHAPE(3, 2), (int64_t[]){1, 2, 3, 4, 5, 6}), 0, 0, "cat i64");
    ig_tensor *m = u8(IG_SHAPE(2), (uint8_t[]){1, 2});
    ig_tensor *n = u8(IG_SHAPE(2), (uint8_t[]){3, 4});
    ig_tensor *st = ig_stack(2, (ig_tensor *[]){m, n}, -1);
    assert_int_equal(ig_tensor_dtype(st), IG_U8);
    tu_assert_close(st, u8(IG_SHAPE(2, 2), (uint8_t[]){1, 3, 2, 4}), 0, 0, "stack u8 dim -1");
    ig_tensor *parts[3];
    assert_int_equal(ig_split(ig_transpose(c, 0, 1), 1, 3, (int64_t[]){1, 0, 2}, parts), IG_OK);
    tu_assert_close(parts[0], i64(IG_SHAPE(2, 1), (int64_t[]){1, 2}), 0, 0, "split part 0");
    assert_int_equal(ig_tensor_size(parts[1], 1), 0);
    tu_assert_close(parts[2], i64(IG_SHAPE(2, 2), (int64_t[]){3, 5, 4, 6}), 0, 0, "split part 2");
    ig_scope_end(s);
}

static ig_tensor *stack_fn(void *u, ig_tensor **in) {
    ig_tensor *ts[3] = {in[0], ig_transpose(in[1], 0, 1), in[2]};
    return ig_stack(3, ts, *(int *)u);
}

static void stack_passes_gradcheck(void **state) {
    (void)state;
    for (int dim = -3; dim <= 2; dim += 2) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *in[3] = {tu_randn(IG_SHAPE(2, 3), IG_F64, true), tu_randn(IG_SHAPE(3, 2), IG_F64, true),
                            tu_randn(IG_SHAPE(2, 3), IG_F64, true)};
        tu_gradcheck("stack", stack_fn, &dim, 3, in);
        ig_scope_end(s);
    }
}

/* uses pieces 0 and 2 only: piece 1's slab gets a zero gradient */
static ig_tensor *split_fn(void *u, ig_tensor **in) {
    (void)u;
    ig_tensor *p[3];
    if (ig_split(in[0], -1, 3, (int64_t[]){2, 3, 2}, p) != IG_OK) return NULL;
    return ig_mul(p[0], ig_exp(p[2]));
}

static void split_passes_gradcheck_when_some_outputs_are_unused(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = tu_randn(IG_SHAPE(2, 7), IG_F64, true);
    tu_gradcheck("split", split_fn, NULL, 1, &a);
    ig_tensor_zero_grad(a, true);
    assert_int_equal(ig_backward(ig_sum_all(split_fn(NULL, &a))), IG_OK);
    double g[14];
    assert_int_equal(ig_tensor_to_host(ig_tensor_grad(a), g), IG_OK);
    for (int r = 0; r < 2; r++)
        for (int c = 2; c < 5; c++) assert_true(g[r * 7 + c] == 0);
    ig_scope_end(s);
}

/* ---- where, masked_fill ---- */

static ig_tensor *where_fn(void *u, ig_tensor **in) { return ig_where(u, in[0], in[1]); }
static ig_tensor *masked_fill_fn(void *u, ig_tensor **in) {
    return ig_masked_fill(ig_transpose(in[0], 0, 1), u, -2.5);
}

static void where_and_masked_fill_pass_gradcheck_with_broadcasting(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *cond = u8(IG_SHAPE(3, 1), (uint8_t[]){1, 0, 1});
    ig_tensor *in[2] = {tu_randn(IG_SHAPE(3, 4), IG_F64, true), tu_randn(IG_SHAPE(4), IG_F64, true)};
    tu_gradcheck("where", where_fn, cond, 2, in);
    ig_tensor *mask = u8(IG_SHAPE(4), (uint8_t[]){0, 1, 1, 0});
    ig_tensor *a = tu_randn(IG_SHAPE(4, 3), IG_F64, true);
    tu_gradcheck("masked_fill", masked_fill_fn, mask, 1, &a);
    ig_scope_end(s);
}

static void where_and_masked_fill_match_hand_computed_values(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *cond = u8(IG_SHAPE(2, 1), (uint8_t[]){0, 3});
    ig_tensor *a = f64(IG_SHAPE(2, 3), (double[]){1, 2, 3, 4, 5, 6});
    ig_tensor *b = f64(IG_SHAPE(3), (double[]){-1, -2, -3});
    tu_assert_close(ig_where(cond, a, b), f64(IG_SHAPE(2, 3), (double[]){-1, -2, -3, 4, 5, 6}), 0,
                    0, "where");
    ig_tensor *mask = u8(IG_SHAPE(3), (uint8_t[]){1, 0, 1});
    tu_assert_close(ig_masked_fill(a, mask, 9), f64(IG_SHAPE(2, 3), (double[]){9, 2, 9, 9, 5, 9}),
                    0, 0, "masked_fill");
    ig_scope_end(s);
}

/* ---- index_select, gather ---- */

typedef struct sel_case {
    int dim;
    ig_tensor *index;
} sel_case;

static ig_tensor *index_select_fn(void *u, ig_tensor **in) {
    const sel_case *c = u;
    return ig_index_select(in[0], c->dim, c->index);
}
static ig_tensor *gather_fn(void *u, ig_tensor **in) {
    const sel_case *c = u;
    return ig_gather(in[0], c->dim, c->index);
}

static void index_select_passes_gradcheck_with_repeated_indices(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = tu_randn(IG_SHAPE(4, 3), IG_F64, true);
    sel_case c0 = {0, i64(IG_SHAPE(5), (int64_t[]){2, 0, 2, 2, 3})};
    tu_gradcheck("index_select dim 0", index_select_fn, &c0, 1, &a);
    int32_t i32v[3] = {1, 1, 0};
    sel_case c1 = {-1, ig_from_data(i32v, IG_SHAPE(3), IG_I32, IG_CPU)};
    tu_gradcheck("index_select dim -1, i32", index_select_fn, &c1, 1, &a);
    /* the gradient of a row selected three times is three times the ones */
    ig_tensor_zero_grad(a, true);
    assert_int_equal(ig_backward(ig_sum_all(index_select_fn(&c0, &a))), IG_OK);
    tu_assert_close(ig_tensor_grad(a),
                    f64(IG_SHAPE(4, 3), (double[]){1, 1, 1, 0, 0, 0, 3, 3, 3, 1, 1, 1}), 0, 0,
                    "index_select accumulates");
    ig_scope_end(s);
}

static void gather_passes_gradcheck(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = tu_randn(IG_SHAPE(3, 4), IG_F64, true);
    sel_case c1 = {1, i64(IG_SHAPE(3, 2), (int64_t[]){3, 3, 0, 1, 2, 0})};
    tu_gradcheck("gather dim 1", gather_fn, &c1, 1, &a);
    sel_case c0 = {0, i64(IG_SHAPE(2, 4), (int64_t[]){2, 0, 0, 1, 2, 2, 1, 1})};
    tu_gradcheck("gather dim 0", gather_fn, &c0, 1, &a);
    ig_scope_end(s);
}

static void index_select_and_gather_match_hand_computed_values(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = f64(IG_SHAPE(2, 3), (double[]){1, 2, 3, 4, 5, 6});
    ig_tensor *idx = i64(IG_SHAPE(4), (int64_t[]){2, 0, 2, 1});
    tu_assert_close(ig_index_select(a, 1, idx),
                    f64(IG_SHAPE(2, 4), (double[]){3, 1, 3, 2, 6, 4, 6, 5}), 0, 0, "index_select");
    tu_assert_close(ig_index_select(ig_transpose(a, 0, 1), 0, idx),
                    f64(IG_SHAPE(4, 2), (double[]){3, 6, 1, 4, 3, 6, 2, 5}), 0, 0,
                    "index_select of a transposed view");
    ig_tensor *ia = i64(IG_SHAPE(3), (int64_t[]){7, 8, 9});
    tu_assert_close(ig_index_select(ia, 0, idx), i64(IG_SHAPE(4), (int64_t[]){9, 7, 9, 8}), 0, 0,
                    "index_select i64");
    ig_tensor *gi = i64(IG_SHAPE(2, 2), (int64_t[]){0, 0, 1, 0});
    tu_assert_close(ig_gather(a, 1, gi), f64(IG_SHAPE(2, 2), (double[]){1, 1, 5, 4}), 0, 0,
                    "gather dim 1");
    tu_assert_close(ig_gather(a, 0, gi), f64(IG_SHAPE(2, 2), (double[]){1, 2, 4, 2}), 0, 0,
                    "gather dim 0");
    ig_scope_end(s);
}

static void index_out_of_range_fails_with_invalid(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = tu_randn(IG_SHAPE(4, 3), IG_F64, true);
    ig_clear_error();
    assert_null(ig_index_select(a, 0, i64(IG_SHAPE(3), (int64_t[]){0, 17, 2})));
    assert_int_equal(ig_last_status(), IG_ERR_INVALID);
    assert_non_null(strstr(ig_last_error(), "index 17 out of range"));
    ig_clear_error();
    assert_null(ig_gather(a, 1, i64(IG_SHAPE(1, 2), (int64_t[]){1, -1})));
    assert_int_equal(ig_last_status(), IG_ERR_INVALID);
    assert_non_null(strstr(ig_last_error(), "index -1 out of range"));
    ig_scope_end(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(var_passes_gradcheck_over_dims_corrections_and_keepdim),
        cmocka_unit_test(var_matches_hand_computed_values),
        cmocka_unit_test(max_passes_gradcheck),
        cmocka_unit_test(max_gives_first_argmax_and_sends_ties_gradient_to_it),
        cmocka_unit_test(cat_passes_gradcheck_on_views_and_negative_dim),
        cmocka_unit_test(cat_stack_split_move_values_of_any_dtype),
        cmocka_unit_test(stack_passes_gradcheck),
        cmocka_unit_test(split_passes_gradcheck_when_some_outputs_are_unused),
        cmocka_unit_test(where_and_masked_fill_pass_gradcheck_with_broadcasting),
        cmocka_unit_test(where_and_masked_fill_match_hand_computed_values),
        cmocka_unit_test(index_select_passes_gradcheck_with_repeated_indices),
        cmocka_unit_test(gather_passes_gradcheck),
        cmocka_unit_test(index_select_and_gather_match_hand_computed_values),
        cmocka_unit_test(index_out_of_range_fails_with_invalid),
    };
    return TU_RUN(tests);
}

/* tests/test_tensor.c: tensors themselves: creation, dtype conversions, views
 * sharing storage, copies, printing, scopes and the caching allocator. */
#include <math.h>
#include <string.h>

#include "tests/testutil.h"

static void creation_fills_and_arange_counts(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *z = ig_zeros(IG_SHAPE(2, 3), IG_F32, IG_CPU);
    ig_tensor *o = ig_ones(IG_SHAPE(2, 3), IG_I64, IG_CPU);
    ig_tensor *f = ig_full(IG_SHAPE(4), 2.5, IG_F64, IG_CPU);
    ig_tensor *r = ig_arange(0, 10, 3, IG_I32, IG_CPU);
    assert_int_equal(ig_tensor_numel(z), 6);
    assert_true(((float *)ig_tensor_data(z))[5] == 0.0f);
    assert_true(((int64_t *)ig_tensor_data(o))[4] == 1);
    assert_true(((double *)ig_tensor_data(f))[3] == 2.5);
    assert_int_equal(ig_tensor_numel(r), 4);
    assert_int_equal(((int32_t *)ig_tensor_data(r))[3], 9);
    ig_scope_end(s);
}

static void bf16_and_f16_round_to_nearest_even(void **state) {
    (void)state;
    /* 1 + 2^-8 lies halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1) */
    assert_int_equal(ig_f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);
    /* 1 + 3 * 2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up */
    assert_int_equal(ig_f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
    assert_true(ig_bf16_to_f32(ig_f32_to_bf16(3.0f)) == 3.0f);
    assert_true(isnan(ig_bf16_to_f32(ig_f32_to_bf16(NAN))));
    /* f16: 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even */
    assert_int_equal(ig_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);
    assert_int_equal(ig_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
    assert_int_equal(ig_f32_to_f16(65520.0f), 0x7c00); /* rounds to inf */
    assert_true(ig_f16_to_f32(ig_f32_to_f16(-2.0f)) == -2.0f);
    assert_true(ig_f16_to_f32(0x0001) == ldexpf(1, -24)); /* smallest subnormal */
    assert_int_equal(ig_f32_to_f16(ldexpf(1, -24)), 0x0001);
}

static void conversions_between_every_dtype_keep_small_integers(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *src = ig_arange(0, 12, 1, IG_F64, IG_CPU);
    for (int a = 0; a < IG_DTYPE_COUNT; a++) {
        ig_tensor *x = ig_to(src, (ig_dtype)a, IG_CPU);
        for (int b = 0; b < IG_DTYPE_COUNT; b++) {
            ig_tensor *y = ig_to(ig_to(x, (ig_dtype)b, IG_CPU), IG_F64, IG_CPU);
            assert_true(tu_close_ratio(y, src, 0, 0) <= 1.0);
        }
    }
    ig_scope_end(s);
}

static void views_share_storage_and_transpose_reads_columns(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_arange(0, 6, 1, IG_F32, IG_CPU);
    ig_tensor *m = ig_view(a, IG_SHAPE(2, 3));
    ig_tensor *t = ig_transpose(m, 0, 1);
    assert_int_equal(ig_tensor_size(t, 0), 3);
    assert_false(ig_tensor_is_contiguous(t));
    ig_tensor *c = ig_contiguous(t);
    const float *p = ig_tensor_data(c);
    float expect[6] = {0, 3, 1, 4, 2, 5};
    for (int i = 0; i < 6; i++) assert_true(p[i] == expect[i]);
    /* writing through the view changes the base */
    ig_fill_(ig_narrow(m, 1, 1, 1), 9);
    const float *q = ig_tensor_data(a);
    assert_true(q[1] == 9 && q[4] == 9 && q[0] == 0);
    /* slice with a step, expand, squeeze and unsqueeze */
    ig_tensor *sl = ig_slice(a, 0, 0, 6, 2);
    assert_int_equal(ig_tensor_numel(sl), 3);
    assert_true(ig_tensor_item(ig_narrow(sl, 0, 2, 1)) == 9.0f); /* a[4] */
    ig_tensor *e = ig_expand(ig_unsqueeze(sl, 0), IG_SHAPE(4, 3));
    assert_int_equal(ig_tensor_strides(e)[0], 0);
    assert_int_equal(ig_tensor_ndim(ig_squeeze(ig_unsqueeze(sl, 1), 1)), 1);
    /* reshape of a non-contiguous tensor copies; view of it would assert */
    ig_tensor *r = ig_reshape(t, IG_SHAPE(6));
    assert_true(((float *)ig_tensor_data(r))[1] == 3);
    /* -1 is inferred */
    assert_int_equal(ig_tensor_size(ig_view(a, IG_SHAPE(-1, 2)), 0), 3);
    ig_scope_end(s);
}

static void permute_then_view_follows_pytorch_stride_rules(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_arange(0, 24, 1, IG_F32, IG_CPU);
    ig_tensor *b = ig_permute(ig_view(a, IG_SHAPE(2, 3, 4)), (int[]){1, 0, 2});
    /* (3, 2, 4) with the last dim contiguous: merging dims 1..2 is not a view,
     * splitting the last dim is */
    ig_tensor *v = ig_view(b, IG_SHAPE(3, 2, 2, 2));
    assert_int_equal(ig_tensor_strides(v)[3], 1);
    assert_int_equal(ig_tensor_strides(v)[2], 2);
    ig_tensor *r = ig_reshape(b, IG_SHAPE(3, 8));
    assert_true(ig_tensor_is_contiguous(r));
    assert_true(((float *)ig_tensor_data(r))[4] == 12);
    ig_scope_end(s);
}

static void print_summarizes_long_tensors(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    char buf[4096];
    ig_tensor_format(ig_arange(0, 4, 1, IG_F32, IG_CPU), buf, sizeof buf);
    assert_non_null(strstr(buf, "shape=[4], dtype=f32, device=cpu"));
    assert_non_null(strstr(buf, "[0, 1, 2, 3]"));
    ig_tensor_format(ig_arange(0, 2000, 1, IG_I64, IG_CPU), buf, sizeof buf);
    assert_non_null(strstr(buf, "[0, 1, 2, ..., 1997, 1998, 1999]"));
    ig_scope_end(s);
}

static void scope_end_releases_everything_but_kept(void **state) {
    (void)state;
    ig_memory_stats before, after;
    ig_memory_stats_get(&before);
    ig_tensor *kept;
    ig_scope *s = ig_scope_begin();
    for (int i = 0; i < 100; i++) ig_add(ig_ones(IG_SHAPE(8), IG_F32, IG_CPU), ig_ones(IG_SHAPE(8), IG_F32, IG_CPU));
    kept = ig_keep(ig_full(IG_SHAPE(3), 7, IG_F32, IG_CPU));
    ig_scope_end(s);
    ig_memory_stats_get(&after);
    assert_int_equal(after.live_tensors, before.live_tensors + 1);
    /* with no scope open, what is made belongs to the caller */
    ig_tensor *v = ig_narrow(kept, 0, 0, 1);
    assert_true(ig_tensor_item(v) == 7);
    ig_tensor_free(v);
    ig_tensor_free(kept);
    ig_memory_stats_get(&after);
    assert_int_equal(after.live_tensors, before.live_tensors);
}

static void scope_end_with_moves_the_result_out(void **state) {
    (void)state;
    ig_scope *outer = ig_scope_begin();
    ig_scope *inner = ig_scope_begin();
    ig_tensor *r = ig_scope_end_with(inner, ig_full(IG_SHAPE(2), 4, IG_F32, IG_CPU));
    assert_true(((float *)ig_tensor_data(r))[1] == 4);
    ig_scope_end(outer);
}

static void steady_state_allocates_nothing_new(void **state) {
    (void)state;
    ig_memory_stats a, b;
    for (int round = 0; round < 3; round++) {
        if (round == 2) ig_memory_stats_get(&a);
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = ig_randn(IG_SHAPE(64, 64), IG_F32, IG_CPU, NULL);
        for (int i = 0; i < 10; i++) x = ig_tanh(ig_add(x, x));
        ig_scope_end(s);
    }
    ig_memory_stats_get(&b);
    assert_int_equal(b.system_allocs[IG_DEV_CPU], a.system_allocs[IG_DEV_CPU]);
    assert_int_equal(b.live_bytes[IG_DEV_CPU], a.live_bytes[IG_DEV_CPU]);
}

static void philox_fills_are_reproducible_and_normal(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_generator g1 = {42, 0}, g2 = {42, 0};
    ig_tensor *a = ig_randn(IG_SHAPE(100000), IG_F64, IG_CPU, &g1);
    ig_tensor *b = ig_randn(IG_SHAPE(100000), IG_F64, IG_CPU, &g2);
    assert_true(tu_close_ratio(a, b, 0, 0) <= 1.0);
    assert_int_equal(g1.offset, 100000);
    double mean = ig_tensor_item(ig_mean_all(a));
    double var = ig_tensor_item(ig_mean_all(ig_mul(a, a)));
    assert_true(fabs(mean) < 0.02 && fabs(var - 1) < 0.02);
    /* element i depends only on (seed, offset + i): a window drawn later matches */
    ig_generator g3 = {42, 500};
    ig_tensor *c = ig_randn(IG_SHAPE(10), IG_F64, IG_CPU, &g3);
    tu_assert_close(c, ig_narrow(a, 0, 500, 10), 0, 1e-7, "philox window");
    ig_tensor *u = ig_rand(IG_SHAPE(10000), IG_F32, IG_CPU, &g1);
    double um = ig_tensor_item(ig_mean_all(u));
    assert_true(fabs(um - 0.5) < 0.02);
    ig_scope_end(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(creation_fills_and_arange_counts),
        cmocka_unit_test(bf16_and_f16_round_to_nearest_even),
        cmocka_unit_test(conversions_between_every_dtype_keep_small_integers),
        cmocka_unit_test(views_share_storage_and_transpose_reads_columns),
        cmocka_unit_test(permute_then_view_follows_pytorch_stride_rules),
        cmocka_unit_test(print_summarizes_long_tensors),
        cmocka_unit_test(scope_end_releases_everything_but_kept),
        cmocka_unit_test(scope_end_with_moves_the_result_out),
        cmocka_unit_test(steady_state_allocates_nothing_new),
        cmocka_unit_test(philox_fills_are_reproducible_and_normal),
    };
    return TU_RUN(tests);
}

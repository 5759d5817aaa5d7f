/* tests/test_autograd.c: the engine: accumulation into leaves, shared
 * subexpressions, grad-ready hooks, no-grad, detach, retain_graph, activation
 * checkpointing and a custom op registered like the built-ins. */
#include <math.h>

#include "tests/testutil.h"

static void gradients_accumulate_across_backward_calls(void **state) {
    (void)state;
    ig_tensor *x = ig_requires_grad_(ig_full(IG_SHAPE(3), 2.0, IG_F64, IG_CPU), true);
    for (int k = 0; k < 2; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *y = ig_sum_all(ig_mul(x, x)); /* dy/dx = 2x = 4 */
        assert_int_equal(ig_backward(y), IG_OK);
        ig_scope_end(s);
    }
    assert_true(((double *)ig_tensor_data(ig_tensor_grad(x)))[2] == 8.0);
    ig_tensor_zero_grad(x, false);
    assert_true(((double *)ig_tensor_data(ig_tensor_grad(x)))[0] == 0.0);
    ig_tensor_zero_grad(x, true);
    assert_null(ig_tensor_grad(x));
    ig_tensor_free(x);
}

static void shared_subexpression_sums_both_paths(void **state) {
    (void)state;
    ig_tensor *x = ig_requires_grad_(ig_full(IG_SHAPE(1), 3.0, IG_F64, IG_CPU), true);
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_exp(x);
    ig_tensor *y = ig_add(ig_mul(a, a), a); /* e^2x + e^x -> 2e^2x + e^x */
    assert_int_equal(ig_backward(ig_sum_all(y)), IG_OK);
    double g = ((double *)ig_tensor_data(ig_tensor_grad(x)))[0];
    assert_true(fabs(g - (2 * exp(6.0) + exp(3.0))) < 1e-9 * g);
    ig_scope_end(s);
    ig_tensor_free(x);
}

typedef struct hook_log {
    int calls;
    double grad_seen;
    int order[4];
    int n;
} hook_log;

static ig_tensor *leaf_a, *leaf_b;

static void on_ready(ig_tensor *leaf, void *user) {
    hook_log *h = user;
    h->calls++;
    h->grad_seen = ((double *)ig_tensor_data(ig_tensor_grad(leaf)))[0];
    h->order[h->n++] = leaf == leaf_a ? 0 : 1;
}

static void grad_ready_hook_fires_once_when_final(void **state) {
    (void)state;
    leaf_a = ig_requires_grad_(ig_full(IG_SHAPE(1), 1.0, IG_F64, IG_CPU), true);
    leaf_b = ig_requires_grad_(ig_full(IG_SHAPE(1), 1.0, IG_F64, IG_CPU), true);
    hook_log h = {0};
    ig_tensor_add_grad_ready_hook(leaf_a, on_ready, &h);
    int id = ig_tensor_add_grad_ready_hook(leaf_b, on_ready, &h);
    ig_scope *s = ig_scope_begin();
    /* a is reached by four edges on paths of different depth; d/da = 2 */
    ig_tensor *t = ig_mul_scalar(ig_exp(ig_mul(leaf_b, ig_mul_scalar(leaf_a, 0))), 1);
    ig_tensor *y = ig_add(ig_add(leaf_a, ig_tanh(ig_mul_scalar(leaf_a, 0))), ig_add(leaf_a, t));
    assert_int_equal(ig_backward(ig_sum_all(y)), IG_OK);
    assert_int_equal(h.calls, 2);
    assert_true(fabs(((double *)ig_tensor_data(ig_tensor_grad(leaf_a)))[0] - 2.0) < 1e-12);
    assert_true(fabs(h.grad_seen - 2.0) < 1e-12 || h.order[0] == 1);
    ig_scope_end(s);
    ig_tensor_remove_hook(leaf_b, id);
    ig_tensor_free(leaf_a);
    ig_tensor_free(leaf_b);
}

static void no_grad_and_detach_record_nothing(void **state) {
    (void)state;
    ig_tensor *x = ig_requires_grad_(ig_ones(IG_SHAPE(2), IG_F64, IG_CPU), true);
    ig_scope *s = ig_scope_begin();
    bool prev = ig_grad_set_enabled(false);
    ig_tensor *y = ig_mul(x, x);
    ig_grad_set_enabled(prev);
    assert_false(ig_tensor_requires_grad(y));
    assert_false(ig_tensor_has_grad_fn(ig_detach(ig_mul(x, x))));
    assert_string_equal(ig_tensor_grad_fn_name(ig_mul(x, x)), "mul");
    ig_scope_end(s);
    ig_tensor_free(x);
}

static void retain_graph_allows_a_second_backward(void **state) {
    (void)state;
    ig_tensor *x = ig_requires_grad_(ig_full(IG_SHAPE(1), 0.5, IG_F64, IG_CPU), true);
    ig_scope *s = ig_scope_begin();
    ig_tensor *y = ig_sum_all(ig_tanh(x));
    ig_backward_opts o = {NULL, true};
    assert_int_equal(ig_backward_ex(y, &o), IG_OK);
    assert_int_equal(ig_backward(y), IG_OK);
    double g = ((double *)ig_tensor_data(ig_tensor_grad(x)))[0];
    double t = tanh(0.5);
    assert_true(fabs(g - 2 * (1 - t * t)) < 1e-12);
    ig_scope_end(s);
    ig_tensor_free(x);
}

static void backward_with_grad_output_weights_elements(void **state) {
    (void)state;
    ig_tensor *x = ig_requires_grad_(ig_ones(IG_SHAPE(3), IG_F64, IG_CPU), true);
    ig_scope *s = ig_scope_begin();
    ig_tensor *y = ig_mul_scalar(x, 3);
    ig_tensor *go = ig_arange(1, 4, 1, IG_F64, IG_CPU);
    ig_backward_opts o = {go, false};
    assert_int_equal(ig_backward_ex(y, &o), IG_OK);
    assert_true(((double *)ig_tensor_data(ig_tensor_grad(x)))[2] == 9.0);
    ig_scope_end(s);
    ig_tensor_free(x);
}

static int ckpt_calls;
static ig_tensor *ckpt_w;

static ig_tensor *block(void *user, int n, ig_tensor *const *in) {
    (void)user, (void)n;
    ckpt_calls++;
    return ig_tanh(ig_mul(ig_exp(in[0]), ckpt_w));
}

static void checkpoint_recomputes_and_matches_plain_gradients(void **state) {
    (void)state;
    ckpt_w = ig_requires_grad_(ig_randn(IG_SHAPE(5), IG_F64, IG_CPU, NULL), true);
    ig_tensor *x = ig_requires_grad_(ig_randn(IG_SHAPE(5), IG_F64, IG_CPU, NULL), true);
    ig_scope *s = ig_scope_begin();
    assert_int_equal(ig_backward(ig_sum_all(ig_mul_scalar(block(NULL, 1, &x), 2))), IG_OK);
    ig_tensor *gx = ig_clone(ig_tensor_grad(x)), *gw = ig_clone(ig_tensor_grad(ckpt_w));
    ig_tensor_zero_grad(x, true);
    ig_tensor_zero_grad(ckpt_w, true);
    ckpt_calls = 0;
    ig_tensor *y = ig_checkpoint(block, NULL, 1, &x);
    assert_int_equal(ckpt_calls, 1);
    assert_int_equal(ig_backward(ig_sum_all(ig_mul_scalar(y, 2))), IG_OK);
    assert_int_equal(ckpt_calls, 2); /* recomputed in backward */
    tu_assert_close(ig_tensor_grad(x), gx, 1e-12, 1e-12, "checkpoint dx");
    tu_assert_close(ig_tensor_grad(ckpt_w), gw, 1e-12, 1e-12, "checkpoint dw");
    ig_scope_end(s);
    ig_tensor_free(x);
    ig_tensor_free(ckpt_w);
}

/* A custom op: y = x^3 with its own forward (CPU) and backward. */
static ig_status cube_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                              ig_tensor **out) {
    (void)n_in, (void)n_out;
    ig_op_ctx_save(ctx, in[0]);
    out[0] = ig_mul(in[0], ig_mul(in[0], in[0]));
    return out[0] ? IG_OK : ig_last_status();
}

static void cube_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                          ig_tensor **gin) {
    (void)n_out, (void)n_in;
    ig_tensor *x = ig_op_ctx_saved(ctx, 0);
    gin[0] = ig_mul(gout[0], ig_mul_scalar(ig_mul(x, x), 3));
}

static const ig_op_def cube_op = {"cube", {cube_forward, NULL}, cube_backward};

static ig_tensor *cube_fn(void *u, ig_tensor **in) {
    (void)u;
    return ig_op_call(&cube_op, 1, in, NULL, 0);
}

static void custom_op_records_and_passes_gradcheck(void **state) {
    (void)state;
    ig_tensor *x = tu_randn(IG_SHAPE(4, 3), IG_F64, true);
    ig_scope *s = ig_scope_begin();
    ig_tensor *y = cube_fn(NULL, &x);
    assert_string_equal(ig_tensor_grad_fn_name(y), "cube");
    tu_gradcheck("cube", cube_fn, NULL, 1, &x);
    ig_scope_end(s);
    ig_tensor_free(x);
}

/* A small model (embedding, layer norm, MLP with GELU, cross-entropy, SGD)
 * trained for 1000 steps: after warm-up, nothing grows — no tensor handle, no
 * autograd record, no byte, and no new system allocation. */
static void a_thousand_steps_of_a_small_model_leak_nothing(void **state) {
    (void)state;
    enum { V = 32, C = 16, N = 24 };
    ig_manual_seed(1);
    ig_tensor *p[7] = {
        ig_randn(IG_SHAPE(V, C), IG_F32, IG_CPU, NULL),    /* embedding */
        ig_ones(IG_SHAPE(C), IG_F32, IG_CPU),              /* ln weight */
        ig_zeros(IG_SHAPE(C), IG_F32, IG_CPU),             /* ln bias */
        ig_normal_(ig_empty(IG_SHAPE(4 * C, C), IG_F32, IG_CPU), 0, 0.2, NULL),
        ig_zeros(IG_SHAPE(4 * C), IG_F32, IG_CPU),
        ig_normal_(ig_empty(IG_SHAPE(V, 4 * C), IG_F32, IG_CPU), 0, 0.1, NULL),
        ig_zeros(IG_SHAPE(V), IG_F32, IG_CPU),
    };
    for (int i = 0; i < 7; i++) ig_requires_grad_(p[i], true);
    ig_generator data = {5, 0};
    ig_memory_stats a, b;
    double first = 0, last = 0;
    for (int step = 0; step < 1000; step++) {
        if (step == 10) ig_memory_stats_get(&a);
        ig_scope *s = ig_scope_begin();
        /* task: predict (token + 1) mod V */
        ig_tensor *tok = ig_to(ig_mul_scalar(ig_rand(IG_SHAPE(N), IG_F32, IG_CPU, &data), V - 1e-3),
                               IG_I64, IG_CPU);
        int64_t *t = ig_tensor_data(tok), tgt_v[N];
        for (int i = 0; i < N; i++) tgt_v[i] = (t[i] + 1) % V;
        ig_tensor *tgt = ig_from_data(tgt_v, IG_SHAPE(N), IG_I64, IG_CPU);
        ig_tensor *h = ig_layer_norm(ig_embedding(p[0], tok), p[1], p[2], 1e-5);
        ig_tensor *logits = ig_linear(ig_gelu_tanh(ig_linear(h, p[3], p[4])), p[5], p[6]);
        ig_tensor *loss = ig_cross_entropy(logits, tgt, IG_IGNORE_INDEX_NONE, 0.0);
        assert_int_equal(ig_backward(loss), IG_OK);
        bool g = ig_grad_set_enabled(false);
        for (int i = 0; i < 7; i++) {
            ig_copy_(p[i], ig_sub(p[i], ig_mul_scalar(ig_tensor_grad(p[i]), 0.2)));
            ig_tensor_zero_grad(p[i], false);
        }
        ig_grad_set_enabled(g);
        if (step < 10) first += ig_tensor_item(loss) / 10;
        if (step >= 990) last += ig_tensor_item(loss) / 10;
        ig_scope_end(s);
    }
    ig_memory_stats_get(&b);
    assert_int_equal(b.live_tensors, a.live_tensors);
    assert_int_equal(b.live_nodes, a.live_nodes);
    assert_int_equal(b.live_bytes[IG_DEV_CPU], a.live_bytes[IG_DEV_CPU]);
    assert_int_equal(b.system_allocs[IG_DEV_CPU], a.system_allocs[IG_DEV_CPU]);
    assert_true(last < first / 4); /* and it learned */
    for (int i = 0; i < 7; i++) ig_tensor_free(p[i]);
    ig_memory_stats_get(&b);
    assert_int_equal(b.live_nodes, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradients_accumulate_across_backward_calls),
        cmocka_unit_test(shared_subexpression_sums_both_paths),
        cmocka_unit_test(grad_ready_hook_fires_once_when_final),
        cmocka_unit_test(no_grad_and_detach_record_nothing),
        cmocka_unit_test(retain_graph_allows_a_second_backward),
        cmocka_unit_test(backward_with_grad_output_weights_elements),
        cmocka_unit_test(checkpoint_recomputes_and_matches_plain_gradients),
        cmocka_unit_test(custom_op_records_and_passes_gradcheck),
        cmocka_unit_test(a_thousand_steps_of_a_small_model_leak_nothing),
    };
    return TU_RUN(tests);
}

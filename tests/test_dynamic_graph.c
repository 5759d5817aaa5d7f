/* tests/test_dynamic_graph.c: the graph is built anew at every step. A small
 * recurrent cell, h_t = tanh(x_t W_x^T + h_{t-1} W_h^T + b), is trained over
 * sequences whose length changes every step (3..12) to output the running mean
 * of its inputs; the loss must fall, and memory must not grow across steps. */
#include <math.h>

#include "tests/testutil.h"

enum { HID = 16, BATCH = 32 };

typedef struct rnn {
    ig_tensor *wx, *wh, *b, *wo;
} rnn;

static ig_tensor *param(int ndim, const int64_t *shape, double std) {
    ig_tensor *t = ig_empty(ndim, shape, IG_F32, IG_CPU);
    ig_normal_(t, 0, std, NULL);
    return ig_requires_grad_(t, true);
}

/* x (BATCH, len) -> prediction (BATCH, 1) of the mean of each row */
static ig_tensor *run(rnn *m, ig_tensor *x, int len) {
    ig_tensor *h = ig_zeros(IG_SHAPE(BATCH, HID), IG_F32, IG_CPU);
    for (int t = 0; t < len; t++) {
        ig_tensor *xt = ig_narrow(x, 1, t, 1); /* (BATCH, 1): a strided view */
        h = ig_tanh(ig_add(ig_linear(xt, m->wx, m->b), ig_matmul(h, ig_transpose(m->wh, 0, 1))));
    }
    return ig_linear(h, m->wo, NULL);
}

/* loss on a fixed set of sequences of every length 3..12, without recording */
static double eval(rnn *m) {
    ig_generator g = {99, 0};
    bool prev = ig_grad_set_enabled(false);
    ig_scope *s = ig_scope_begin();
    double total = 0;
    for (int len = 3; len <= 12; len++) {
        ig_tensor *x = ig_uniform_(ig_empty(IG_SHAPE(BATCH, len), IG_F32, IG_CPU), -1, 1, &g);
        ig_tensor *target = ig_mean(x, 1, (int[]){1}, true);
        total += ig_tensor_item(ig_mean_all(ig_pow_scalar(ig_sub(run(m, x, len), target), 2)));
    }
    ig_scope_end(s);
    ig_grad_set_enabled(prev);
    return total / 10;
}

static void recurrent_cell_learns_over_varying_lengths(void **state) {
    (void)state;
    ig_generator data = {7, 0};
    ig_manual_seed(3);
    rnn m = {param(IG_SHAPE(HID, 1), 0.5), param(IG_SHAPE(HID, HID), 0.2),
             param(IG_SHAPE(HID), 0.0), param(IG_SHAPE(1, HID), 0.3)};
    ig_tensor *ps[4] = {m.wx, m.wh, m.b, m.wo};
    double first = eval(&m), last;
    const char *prev_fn = NULL;
    ig_memory_stats a = {0}, b;
    int lens_seen[13] = {0};
    for (int step = 0; step < 3000; step++) {
        if (step == 100) ig_memory_stats_get(&a);
        ig_scope *s = ig_scope_begin();
        int len = 3 + (int)(ig_tensor_item(ig_rand(IG_SHAPE(1), IG_F64, IG_CPU, &data)) * 10);
        lens_seen[len] = 1;
        ig_tensor *x = ig_uniform_(ig_empty(IG_SHAPE(BATCH, len), IG_F32, IG_CPU), -1, 1, &data);
        ig_tensor *target = ig_mean(x, 1, (int[]){1}, true);
        ig_tensor *loss = ig_mean_all(ig_pow_scalar(ig_sub(run(&m, x, len), target), 2));
        assert_int_equal(ig_backward(loss), IG_OK);
        bool g = ig_grad_set_enabled(false);
        for (int i = 0; i < 4; i++) {
            ig_copy_(ps[i], ig_sub(ps[i], ig_mul_scalar(ig_tensor_grad(ps[i]), 0.3)));
            ig_tensor_zero_grad(ps[i], false);
        }
        ig_grad_set_enabled(g);
        prev_fn = ig_tensor_grad_fn_name(loss);
        ig_scope_end(s);
    }
    ig_memory_stats_get(&b);
    last = eval(&m);
    assert_string_equal(prev_fn, "mean");
    for (int len = 3; len <= 12; len++) assert_true(lens_seen[len]);
    /* graphs of different sizes every step, yet nothing accumulates */
    assert_int_equal(b.live_tensors, a.live_tensors);
    assert_int_equal(b.live_nodes, a.live_nodes);
    assert_int_equal(b.live_bytes[IG_DEV_CPU], a.live_bytes[IG_DEV_CPU]);
    print_message("rnn held-out loss: before %.5f, after %.5f\n", first, last);
    assert_true(last < first / 10);
    for (int i = 0; i < 4; i++) ig_tensor_free(ps[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recurrent_cell_learns_over_varying_lengths),
    };
    return TU_RUN(tests);
}

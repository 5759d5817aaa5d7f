/* examples/custom_op.c: defining a new op in C and using it like a built-in.
 *
 * The op is a "scaled softsign", y = x / (1 + |x|) * s, with its own CPU loop
 * for forward and its own backward. It is registered the way every built-in
 * op is (a static ig_op_def), recorded by autograd, and trained through: a
 * scalar parameter s is fitted so that scaled_softsign(x) matches a target.
 *
 *     ./build/examples/custom_op
 */
#include <math.h>
#include <stdio.h>

#include "ignis/ignis.h"

typedef struct softsign_attrs {
    int unused; /* an op may carry attributes; this one needs none */
} softsign_attrs;

/* forward: runs with grad mode off; builds its output, saves what backward needs */
static ig_status softsign_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                  ig_tensor **out) {
    (void)n_in, (void)n_out;
    ig_tensor *x = ig_contiguous(in[0]), *s = in[1];
    ig_tensor *y = ig_empty_like(x);
    if (!y) return ig_last_status();
    const float *px = ig_tensor_data(x);
    float *py = ig_tensor_data(y);
    float scale = (float)ig_tensor_item(s);
    for (int64_t i = 0; i < ig_tensor_numel(x); i++) py[i] = px[i] / (1 + fabsf(px[i])) * scale;
    ig_op_ctx_save(ctx, x);
    ig_op_ctx_save(ctx, s);
    out[0] = y;
    return IG_OK;
}

/* backward: dy/dx = s / (1 + |x|)^2, dy/ds = x / (1 + |x|); written with ops */
static void softsign_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                              ig_tensor **gin) {
    (void)n_out, (void)n_in;
    ig_tensor *x = ig_op_ctx_saved(ctx, 0), *s = ig_op_ctx_saved(ctx, 1);
    ig_tensor *den = ig_add_scalar(ig_abs(x), 1);
    if (ig_op_ctx_needs_grad(ctx, 0)) gin[0] = ig_div(ig_mul(gout[0], s), ig_mul(den, den));
    if (ig_op_ctx_needs_grad(ctx, 1)) gin[1] = ig_sum_all(ig_mul(gout[0], ig_div(x, den)));
}

static const ig_op_def softsign_op = {
    .name = "scaled_softsign",
    .forward = {[IG_DEV_CPU] = softsign_forward}, /* no CUDA kernel: CUDA inputs fail cleanly */
    .backward = softsign_backward,
};

static ig_tensor *scaled_softsign(ig_tensor *x, ig_tensor *s) {
    ig_tensor *in[2] = {x, s};
    softsign_attrs a = {0};
    return ig_op_call(&softsign_op, 2, in, &a, sizeof a);
}

int main(void) {
    ig_manual_seed(0);
    ig_tensor *s = ig_requires_grad_(ig_full(0, NULL, 0.5, IG_F32, IG_CPU), true);
    double loss_v = 0;
    for (int step = 0; step < 200; step++) {
        ig_scope *sc = ig_scope_begin();
        ig_tensor *x = ig_randn(IG_SHAPE(64), IG_F32, IG_CPU, NULL);
        ig_tensor *target = ig_mul_scalar(ig_div(x, ig_add_scalar(ig_abs(x), 1)), 3.0);
        ig_tensor *loss = ig_mean_all(ig_pow_scalar(ig_sub(scaled_softsign(x, s), target), 2));
        if (ig_backward(loss) != IG_OK) {
            fprintf(stderr, "backward: %s\n", ig_last_error());
            return 1;
        }
        bool prev = ig_grad_set_enabled(false);
        ig_copy_(s, ig_sub(s, ig_mul_scalar(ig_tensor_grad(s), 0.5)));
        ig_grad_set_enabled(prev);
        ig_tensor_zero_grad(s, false);
        loss_v = ig_tensor_item(loss);
        if (step % 50 == 0) printf("step %3d  loss %.6f  s %.4f\n", step, loss_v, ig_tensor_item(s));
        ig_scope_end(sc);
    }
    printf("fitted s = %.4f (target 3)\n", ig_tensor_item(s));
    int ok = fabs(ig_tensor_item(s) - 3.0) < 1e-2;
    ig_tensor_free(s);
    return ok ? 0 : 1;
}

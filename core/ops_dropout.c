/* core/ops_dropout.c: inverted dropout. In training with p > 0, element i is
 * kept when the Philox uniform at the generator's (seed, offset + i) is >= p
 * and then scaled by 1 / (1 - p); the generator's offset advances by numel,
 * so a seed reproduces the mask. Forward saves the mask (u8); backward is
 * g * mask / (1 - p). Otherwise the op is the identity: a view whose backward
 * passes the gradient through, on any device. Dropping runs on the CPU only;
 * bf16/f16 compute in f32. */
#include "core/dispatch.h"
#include "core/impl.h"
#include "kernels/cpu/cpu_conv_attn.h"

typedef struct dropout_attrs {
    double p, scale;
    uint64_t seed, offset;
} dropout_attrs;

static ig_status dropout_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                 ig_tensor **out) {
    (void)n_in, (void)n_out;
    const dropout_attrs *at = IG_ATTRS(ctx, dropout_attrs);
    ig_tensor *a = in[0];
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_contiguous(a), *o = ig__tensor_new(a->ndim, a->shape, a->dtype, IG_CPU);
    ig_tensor *keep = ig__tensor_new(a->ndim, a->shape, IG_U8, IG_CPU);
    if (!x || !o || !keep) {
        ig_scope_end(s);
        return ig_last_status();
    }
    ig_kt ko = ig__kt(o), kk = ig__kt(keep), kx = ig__kt(x);
    if (a->numel) ig_cpu_dropout_forward(&ko, &kk, &kx, at->seed, at->offset, at->p, at->scale);
    ig_op_ctx_save(ctx, keep);
    out[0] = ig_scope_end_with(s, o);
    return IG_OK;
}

static void dropout_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                             ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const dropout_attrs *at = IG_ATTRS(ctx, dropout_attrs);
    ig_tensor *keep = ig_op_ctx_saved(ctx, 0), *g = ig_contiguous(gout[0]);
    ig_tensor *gx = g ? ig__tensor_new(g->ndim, g->shape, g->dtype, IG_CPU) : NULL;
    if (!gx) return;
    ig_kt kx = ig__kt(gx), kg = ig__kt(g), kk = ig__kt(keep);
    if (gx->numel) ig_cpu_dropout_backward(&kx, &kg, &kk, at->scale);
    gin[0] = gx;
}

static ig_status identity_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                  ig_tensor **out) {
    (void)ctx, (void)n_in, (void)n_out;
    ig_tensor *a = in[0];
    out[0] = ig__tensor_alias(a, a->ndim, a->shape, a->strides, a->offset);
    return out[0] ? IG_OK : ig_last_status();
}

static void identity_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                              ig_tensor **gin) {
    (void)ctx, (void)n_out, (void)n_in;
    gin[0] = gout[0];
}

static const ig_op_def dropout_op = {"dropout", {dropout_forward, NULL}, dropout_backward};
static const ig_op_def identity_op = {"dropout", {identity_forward, identity_forward},
                                      identity_backward};

ig_tensor *ig_dropout(ig_tensor *a, double p, bool training, ig_generator *gen) {
    if (!a) return NULL;
    IG_CHECK(p >= 0 && p <= 1, "dropout: probability %g of a %s is not in [0, 1]", p,
             ig__describe(a));
    IG_CHECK(ig_dtype_is_float(a->dtype), "dropout: a %s is not floating", ig__describe(a));
    if (!training || p == 0) return ig_op_call(&identity_op, 1, &a, NULL, 0);
    if (a->dtype != IG_F32 && a->dtype != IG_F64)
        return ig_to(ig_dropout(ig_to(a, IG_F32, a->device), p, training, gen), a->dtype,
                     a->device);
    if (!gen) gen = ig_default_generator();
    dropout_attrs at = {p, 1.0 / (1.0 - p), gen->seed, gen->offset};
    gen->offset += (uint64_t)a->numel;
    return ig_op_call(&dropout_op, 1, &a, &at, sizeof at);
}

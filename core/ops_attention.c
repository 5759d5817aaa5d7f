/* core/ops_attention.c: fused scaled-dot-product attention, one op with its
 * own forward and backward kernels (kernels/cpu/attention.c). The kernels
 * read any (B, H, T, D) view whose last dim is contiguous (a (B, T, H, D)
 * tensor transposed, a slice of a fused qkv projection) without copying it;
 * other views are made contiguous. The output and the input gradients are
 * laid out in memory like q and the inputs (so out.transpose(1, 2) of a
 * (B, T, H, D) q is contiguous again, as in PyTorch). Forward saves q, k, v,
 * the output and the per-row logsumexp, from which backward recomputes the
 * probabilities. CPU only; bf16/f16 inputs compute in f32. */
#include <math.h>

#include "core/dispatch.h"
#include "core/impl.h"
#include "kernels/cpu/cpu_conv_attn.h"

typedef struct attention_attrs {
    bool causal;
    double scale;
} attention_attrs;

/* t itself when the kernels can read it, else a contiguous copy. */
static ig_tensor *heads_view(ig_tensor *t) {
    const int64_t *st = t->strides;
    bool ok = st[3] == 1 && st[2] >= t->shape[3] && st[1] >= 0 && st[0] >= 0;
    return ok ? t : ig_contiguous(t);
}

/* A new dense tensor of t's shape whose dims lie in memory in the order of
 * t's strides (largest first). */
static ig_tensor *new_like(const ig_tensor *t) {
    int perm[4] = {0, 1, 2, 3};
    for (int i = 1; i < 4; i++) /* insertion sort, stable on equal strides */
        for (int j = i; j > 0 && t->strides[perm[j]] > t->strides[perm[j - 1]]; j--) {
            int x = perm[j];
            perm[j] = perm[j - 1];
            perm[j - 1] = x;
        }
    int64_t pshape[4], pstrides[4], strides[4];
    for (int d = 0; d < 4; d++) pshape[d] = t->shape[perm[d]];
    ig_tensor *base = ig__tensor_new(4, pshape, t->dtype, t->device);
    if (!base) return NULL;
    ig__contiguous_strides(4, pshape, pstrides);
    for (int d = 0; d < 4; d++) strides[perm[d]] = pstrides[d];
    ig_tensor *r = ig__tensor_alias(base, 4, t->shape, strides, base->offset);
    ig__tensor_release(ig_keep(base));
    return r;
}

static ig_status attention_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                   ig_tensor **out) {
    (void)n_in, (void)n_out;
    const attention_attrs *at = IG_ATTRS(ctx, attention_attrs);
    ig_scope *s = ig_scope_begin();
    ig_tensor *q = heads_view(in[0]), *k = heads_view(in[1]), *v = heads_view(in[2]);
    ig_tensor *o = q ? new_like(q) : NULL;
    ig_tensor *lse = ig__tensor_new(3, in[0]->shape, in[0]->dtype, IG_CPU);
    ig_status st = q && k && v && o && lse ? IG_OK : ig_last_status();
    if (st == IG_OK && o->numel) {
        ig_kt ko = ig__kt(o), kl = ig__kt(lse), kq = ig__kt(q), kk = ig__kt(k), kv = ig__kt(v);
        st = ig_cpu_attention_forward(&ko, &kl, &kq, &kk, &kv, at->causal, at->scale);
        if (st != IG_OK) st = ig__error(st, "attention: no memory for the scores");
    }
    if (st != IG_OK) {
        ig_scope_end(s);
        return st;
    }
    ig_op_ctx_save(ctx, q);
    ig_op_ctx_save(ctx, k);
    ig_op_ctx_save(ctx, v);
    ig_op_ctx_save(ctx, o);
    ig_op_ctx_save(ctx, lse);
    out[0] = ig_scope_end_with(s, o);
    return IG_OK;
}

static void attention_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                               ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const attention_attrs *at = IG_ATTRS(ctx, attention_attrs);
    ig_tensor *q = ig_op_ctx_saved(ctx, 0), *k = ig_op_ctx_saved(ctx, 1);
    ig_tensor *v = ig_op_ctx_saved(ctx, 2), *o = ig_op_ctx_saved(ctx, 3);
    ig_tensor *lse = ig_op_ctx_saved(ctx, 4), *g = heads_view(gout[0]), *d[3];
    for (int i = 0; i < 3; i++) d[i] = new_like(ig_op_ctx_saved(ctx, i));
    if (!g || !d[0] || !d[1] || !d[2]) return;
    if (q->numel) {
        ig_kt kd[3] = {ig__kt(d[0]), ig__kt(d[1]), ig__kt(d[2])};
        ig_kt kg = ig__kt(g), kq = ig__kt(q), kk = ig__kt(k), kv = ig__kt(v), ko = ig__kt(o),
              kl = ig__kt(lse);
        if (ig_cpu_attention_backward(&kd[0], &kd[1], &kd[2], &kg, &kq, &kk, &kv, &ko, &kl,
                                      at->causal, at->scale) != IG_OK) {
            ig__error(IG_ERR_NOMEM, "attention backward: no memory for the scores");
            return;
        }
    }
    for (int i = 0; i < 3; i++)
        if (ig_op_ctx_needs_grad(ctx, i)) gin[i] = d[i];
}

static const ig_op_def attention_op = {"attention", {attention_forward, NULL},
                                       attention_backward};

ig_tensor *ig_attention(ig_tensor *q, ig_tensor *k, ig_tensor *v, bool causal, double scale) {
    if (!q || !k || !v) return NULL;
    ig__check_same("attention", q, k);
    ig__check_same("attention", q, v);
    IG_CHECK(q->ndim == 4 && ig__same_shape(q, k) && ig__same_shape(q, v),
             "attention: q %s, k %s and v %s must share one (B, H, T, D) shape", ig__describe(q),
             ig__describe(k), ig__describe(v));
    IG_CHECK(ig_dtype_is_float(q->dtype), "attention: q %s and k %s are not floating",
             ig__describe(q), ig__describe(k));
    if (scale <= 0) scale = 1.0 / sqrt((double)q->shape[3]);
    if (q->dtype != IG_F32 && q->dtype != IG_F64)
        return ig_to(ig_attention(ig_to(q, IG_F32, q->device), ig_to(k, IG_F32, k->device),
                                  ig_to(v, IG_F32, v->device), causal, scale),
                     q->dtype, q->device);
    attention_attrs at = {causal, scale};
    ig_tensor *in[3] = {q, k, v};
    return ig_op_call(&attention_op, 3, in, &at, sizeof at);
}

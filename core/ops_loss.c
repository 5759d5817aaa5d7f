/* core/ops_loss.c: embedding (a row gather) and cross-entropy (fused
 * log-softmax + NLL with label smoothing, mean over the targets not ignored).
 *
 * Indices and targets come from data, so a value out of range is a failure
 * status (IG_ERR_INVALID naming the op, the value and the bound), checked
 * before any kernel runs, never an assertion. Kernels take i64 indices,
 * contiguous; logits compute in f32/f64 on the CPU (f32/bf16 on CUDA, whose
 * per-row losses are f32). Embedding has no CUDA kernel. */
#include "core/dispatch.h"
#include "core/impl.h"
#include "core/ops_impl.h"
#include "kernels/cpu/cpu_index.h"

/* t as contiguous i64 on dev: t itself when it is one, else a copy. */
static ig_tensor *as_i64(ig_tensor *t, ig_device dev) {
    if (t->dtype == IG_I64 && ig_device_eq(t->device, dev)) return ig_contiguous(t);
    return ig_to(t, IG_I64, dev);
}

/* ---- embedding: weight (V, C), indices (...) -> (..., C) ---- */

static ig_status embedding_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                   ig_tensor **out) {
    (void)n_in, (void)n_out;
    ig_tensor *w = in[0];
    int64_t V = w->shape[0], C = w->shape[1];
    ig_scope *s = ig_scope_begin();
    ig_tensor *ix = as_i64(in[1], IG_CPU);
    if (!ix) {
        ig_scope_end(s);
        return ig_last_status();
    }
    ig_kt kix = ig__kt(ix);
    int64_t bad = ix->numel ? ig_cpu_index_find_bad(&kix, V) : -1;
    if (bad >= 0) {
        int64_t v = ((const int64_t *)ig__ptr(ix))[bad];
        ig_scope_end(s);
        return ig__error(IG_ERR_INVALID,
                         "embedding: index %lld out of range for weight %s (%lld rows)",
                         (long long)v, ig__describe(w), (long long)V);
    }
    int64_t shape[IG_MAX_DIMS];
    for (int d = 0; d < ix->ndim; d++) shape[d] = ix->shape[d];
    shape[ix->ndim] = C;
    ig_tensor *r = ig__tensor_new(ix->ndim + 1, shape, w->dtype, IG_CPU);
    if (r && r->numel) {
        /* out[i, c] = w[ix[i], c]: a gather along dim 0, the index broadcast over c */
        ig_kt kr = {ig__ptr(r), r->dtype, 2, {ix->numel, C}, {C, 1}};
        ig_kt kw = ig__kt(w), ki = {ig__ptr(ix), IG_I64, 2, {ix->numel, C}, {1, 0}};
        ig_cpu_gather(&kr, &kw, &ki, 0);
    }
    ig_op_ctx_save(ctx, ix);
    out[0] = ig_scope_end_with(s, r);
    return r ? IG_OK : ig_last_status();
}

/* dweight: the rows of g scatter-added at their indices (repeats add up). */
static void embedding_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                               ig_tensor **gin) {
    (void)n_out, (void)n_in;
    ig_tensor *ix = ig_op_ctx_saved(ctx, 0);
    const int64_t *wshape = ig_op_ctx_input_shape(ctx, 0);
    ig_tensor *g = gout[0];
    ig_dtype dt = g->dtype == IG_F64 ? IG_F64 : IG_F32;
    g = ig_reshape(g->dtype == dt ? g : ig_to(g, dt, IG_CPU), IG_SHAPE(ix->numel, wshape[1]));
    ig_tensor *dw = g ? ig_zeros(2, wshape, dt, IG_CPU) : NULL;
    if (!dw) return;
    if (g->numel) {
        ig_kt kd = ig__kt(dw), kg = ig__kt(g);
        ig_kt ki = {ig__ptr(ix), IG_I64, 2, {g->shape[0], g->shape[1]}, {1, 0}};
        ig_cpu_scatter_add(&kd, &kg, &ki, 0);
    }
    gin[0] = dw;
}

static const ig_op_def embedding_op = {"embedding", {embedding_forward, NULL}, embedding_backward};

ig_tensor *ig_embedding(ig_tensor *weight, ig_tensor *indices) {
    if (!weight || !indices) return NULL;
    IG_CHECK(weight->ndim == 2 && ig_dtype_is_float(weight->dtype) &&
                 (indices->dtype == IG_I32 || indices->dtype == IG_I64) &&
                 indices->ndim < IG_MAX_DIMS && ig_device_eq(weight->device, indices->device),
             "embedding: weight %s must be (V, C) floating and indices %s i32/i64 on its device",
             ig__describe(weight), ig__describe(indices));
    ig_tensor *in[2] = {weight, indices};
    return ig_op_call(&embedding_op, 2, in, NULL, 0);
}

/* ---- cross_entropy: logits (..., C), targets (...) ---- */

typedef struct ce_attrs {
    int64_t ignore_index;
    double smoothing;
    int64_t count; /* targets not ignored: the mean's divisor */
} ce_attrs;

static ig_status ce_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                            ig_tensor **out) {
    (void)n_in, (void)n_out;
    const ce_attrs *at = IG_ATTRS(ctx, ce_attrs);
    ig_tensor *logits = in[0];
    ig_device dev = logits->device;
    bool cpu = dev.kind == IG_DEV_CPU;
    ig_dtype dt = ig__kernel_dtype(logits->dtype, dev);
    int64_t cols = logits->shape[logits->ndim - 1], rows = logits->numel / cols;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_contiguous(logits->dtype == dt ? logits : ig_to(logits, dt, dev));
    ig_tensor *t = as_i64(in[1], dev);
    ig_tensor *losses = x && t ? ig__tensor_new(1, &rows, cpu ? dt : IG_F32, dev) : NULL;
    ig_status st = losses ? IG_OK : ig_last_status();
    if (st == IG_OK && rows) {
        ig_kt kl = ig__kt(losses), kx = ig__kt(x), kt = ig__kt(t);
        if (cpu)
            ig_cpu_cross_entropy_forward(&kl, &kx, &kt, rows, cols, at->ignore_index,
                                         at->smoothing);
        else
            st = IG__CUDA(cross_entropy_forward, &kl, &kx, &kt, rows, cols, at->ignore_index,
                          at->smoothing);
    }
    ig_tensor *r = NULL;
    if (st == IG_OK) {
        r = ig_to(ig_mul_scalar(ig_sum_all(losses), 1.0 / (double)at->count), logits->dtype, dev);
        if (!r) st = ig_last_status();
    }
    ig_op_ctx_save(ctx, x);
    ig_op_ctx_save(ctx, t);
    out[0] = ig_scope_end_with(s, r);
    return st;
}

/* glogits from the kernel with gloss[r] = g / count for every row. */
static void ce_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                        ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const ce_attrs *at = IG_ATTRS(ctx, ce_attrs);
    ig_tensor *x = ig_op_ctx_saved(ctx, 0), *t = ig_op_ctx_saved(ctx, 1);
    int64_t rows = x->numel / x->shape[x->ndim - 1], cols = x->shape[x->ndim - 1];
    bool cpu = x->device.kind == IG_DEV_CPU;
    ig_tensor *g = ig_to(gout[0], cpu ? x->dtype : IG_F32, x->device);
    ig_tensor *gloss =
        ig_contiguous(ig_expand(ig_mul_scalar(g, 1.0 / (double)at->count), 1, &rows));
    ig_tensor *gx = gloss ? ig__tensor_new(x->ndim, x->shape, x->dtype, x->device) : NULL;
    if (!gx) return;
    if (rows) {
        ig_kt kgx = ig__kt(gx), kx = ig__kt(x), kt = ig__kt(t), kg = ig__kt(gloss);
        if (cpu)
            ig_cpu_cross_entropy_backward(&kgx, &kx, &kt, &kg, rows, cols, at->ignore_index,
                                          at->smoothing);
        else if (IG__CUDA(cross_entropy_backward, &kgx, &kx, &kt, &kg, rows, cols,
                          at->ignore_index, at->smoothing) != IG_OK)
            return;
    }
    gin[0] = gx;
}

static const ig_op_def ce_op = {"cross_entropy", {ce_forward, ce_forward}, ce_backward};

ig_tensor *ig_cross_entropy(ig_tensor *logits, ig_tensor *targets, int64_t ignore_index,
                            double label_smoothing) {
    if (!logits || !targets) return NULL;
    bool shapes = logits->ndim >= 1 && targets->ndim == logits->ndim - 1 &&
                  logits->shape[logits->ndim - 1] > 0;
    for (int d = 0; shapes && d < targets->ndim; d++)
        shapes = targets->shape[d] == logits->shape[d];
    IG_CHECK(shapes && ig_dtype_is_float(logits->dtype) &&
                 (targets->dtype == IG_I32 || targets->dtype == IG_I64) &&
                 ig_device_eq(logits->device, targets->device),
             "cross_entropy: logits %s must be (..., C) floating and targets %s i32/i64 of "
             "its leading shape, on its device", ig__describe(logits), ig__describe(targets));
    IG_CHECK(label_smoothing >= 0 && label_smoothing < 1,
             "cross_entropy: label_smoothing %g not in [0, 1)", label_smoothing);
    /* targets come from data: check them on the host, counting those not ignored */
    int64_t cols = logits->shape[logits->ndim - 1];
    ce_attrs at = {ignore_index, label_smoothing, 0};
    ig_scope *s = ig_scope_begin();
    ig_tensor *h = as_i64(targets, IG_CPU);
    ig_status st = h ? IG_OK : ig_last_status();
    const int64_t *tv = h ? (const int64_t *)ig__ptr(h) : NULL;
    for (int64_t i = 0; st == IG_OK && i < h->numel; i++) {
        if (tv[i] == ignore_index) continue;
        if (tv[i] < 0 || tv[i] >= cols)
            st = ig__error(IG_ERR_INVALID, "cross_entropy: target %lld out of range for %lld "
                           "classes (logits %s)", (long long)tv[i], (long long)cols,
                           ig__describe(logits));
        at.count++;
    }
    ig_scope_end(s);
    if (st != IG_OK) return NULL;
    ig_tensor *in[2] = {logits, targets};
    return ig_op_call(&ce_op, 2, in, &at, sizeof at);
}

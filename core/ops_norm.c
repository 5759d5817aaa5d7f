/* core/ops_norm.c: softmax and log-softmax over any dim, layer norm and RMS
 * norm over the last dim, each one op on a fused kernel.
 *
 * Kernels see contiguous (rows, cols) data with the reduced dim last: a
 * softmax over another dim moves it last (transpose + copy) and returns the
 * result transposed back (a view). Dtypes a kernel lacks (bf16/f16 on the
 * CPU, f16/f64 on CUDA) compute in f32; the engine converts gradients back.
 * The norms save x, rstd, mean (layer norm) and the weight (when given),
 * in that order, and have no CUDA kernel. */
#include "core/dispatch.h"
#include "core/impl.h"
#include "core/ops_impl.h"

/* t as contiguous data of dtype dt with dim d moved last (d < 0: kept). */
static ig_tensor *rows_of(ig_tensor *t, int d, ig_dtype dt) {
    if (d >= 0 && d != t->ndim - 1) t = ig_transpose(t, d, -1);
    return t && t->dtype != dt ? ig_to(t, dt, t->device) : ig_contiguous(t);
}

/* ---- softmax, log_softmax ---- */

typedef struct softmax_attrs {
    int dim;
    bool log;
} softmax_attrs;

static ig_status softmax_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                 ig_tensor **out) {
    (void)n_in, (void)n_out;
    const softmax_attrs *at = IG_ATTRS(ctx, softmax_attrs);
    ig_tensor *x = in[0];
    ig_scope *s = ig_scope_begin();
    ig_tensor *xr = rows_of(x, at->dim, ig__kernel_dtype(x->dtype, x->device));
    ig_tensor *y = xr ? ig__tensor_new(xr->ndim, xr->shape, xr->dtype, x->device) : NULL;
    ig_status st = y ? IG_OK : ig_last_status();
    if (st == IG_OK && y->numel) {
        int64_t cols = y->shape[y->ndim - 1], rows = y->numel / cols;
        ig_kt ky = ig__kt(y), kx = ig__kt(xr);
        if (x->device.kind == IG_DEV_CPU) ig_cpu_softmax_forward(&ky, &kx, rows, cols, at->log);
        else st = IG__CUDA(softmax_forward, &ky, &kx, rows, cols, at->log);
    }
    ig_op_ctx_save(ctx, y);
    ig_tensor *r = st == IG_OK ? rows_of(y, -1, x->dtype) : NULL;
    if (r && at->dim != x->ndim - 1) r = ig_transpose(r, at->dim, -1);
    if (st == IG_OK && !r) st = ig_last_status();
    out[0] = ig_scope_end_with(s, r);
    return st;
}

static void softmax_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                             ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const softmax_attrs *at = IG_ATTRS(ctx, softmax_attrs);
    ig_tensor *y = ig_op_ctx_saved(ctx, 0), *g = rows_of(gout[0], at->dim, y->dtype);
    ig_tensor *gi = g ? ig__tensor_new(y->ndim, y->shape, y->dtype, y->device) : NULL;
    if (!gi) return;
    if (gi->numel) {
        int64_t cols = y->shape[y->ndim - 1], rows = y->numel / cols;
        ig_kt ki = ig__kt(gi), kg = ig__kt(g), ky = ig__kt(y);
        if (y->device.kind == IG_DEV_CPU)
            ig_cpu_softmax_backward(&ki, &kg, &ky, rows, cols, at->log);
        else if (IG__CUDA(softmax_backward, &ki, &kg, &ky, rows, cols, at->log) != IG_OK) return;
    }
    gin[0] = at->dim == y->ndim - 1 ? gi : ig_transpose(gi, at->dim, -1);
}

static const ig_op_def softmax_op = {"softmax", {softmax_forward, softmax_forward},
                                     softmax_backward};
static const ig_op_def log_softmax_op = {"log_softmax", {softmax_forward, softmax_forward},
                                         softmax_backward};

static ig_tensor *softmax(const ig_op_def *def, ig_tensor *a, int dim, bool log) {
    if (!a) return NULL;
    IG_CHECK(ig_dtype_is_float(a->dtype), "%s: %s is not floating", def->name, ig__describe(a));
    softmax_attrs at = {ig__dim(def->name, a, dim), log};
    return ig_op_call(def, 1, &a, &at, sizeof at);
}

ig_tensor *ig_softmax(ig_tensor *a, int dim) { return softmax(&softmax_op, a, dim, false); }
ig_tensor *ig_log_softmax(ig_tensor *a, int dim) {
    return softmax(&log_softmax_op, a, dim, true);
}

/* ---- layer_norm, rms_norm: inputs x, then weight and bias when given ---- */

typedef struct norm_attrs {
    double eps;
    bool rms;
    int w, b; /* input index of weight and bias, 0 when absent */
} norm_attrs;

static ig_status norm_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                              ig_tensor **out) {
    (void)n_in, (void)n_out;
    const norm_attrs *at = IG_ATTRS(ctx, norm_attrs);
    ig_tensor *x = in[0];
    ig_dtype dt = ig__kernel_dtype(x->dtype, x->device);
    int64_t cols = x->shape[x->ndim - 1], rows = cols ? x->numel / cols : 0;
    ig_scope *s = ig_scope_begin();
    ig_tensor *xc = rows_of(x, -1, dt);
    ig_tensor *w = at->w ? rows_of(in[at->w], -1, dt) : NULL;
    ig_tensor *b = at->b ? rows_of(in[at->b], -1, dt) : NULL;
    ig_tensor *y = ig__tensor_new(x->ndim, x->shape, dt, IG_CPU);
    ig_tensor *rstd = ig__tensor_new(1, &rows, dt, IG_CPU);
    ig_tensor *mean = at->rms ? NULL : ig__tensor_new(1, &rows, dt, IG_CPU);
    ig_status st = xc && y && rstd && (mean || at->rms) && (w || !at->w) && (b || !at->b)
                       ? IG_OK : ig_last_status();
    if (st == IG_OK) {
        ig_kt ky = ig__kt(y), kx = ig__kt(xc), kr = ig__kt(rstd);
        ig_kt km = mean ? ig__kt(mean) : kr, kw = w ? ig__kt(w) : kr, kb = b ? ig__kt(b) : kr;
        ig_cpu_norm_forward(&ky, mean ? &km : NULL, &kr, &kx, w ? &kw : NULL, b ? &kb : NULL,
                            rows, cols, at->eps, at->rms);
        ig_op_ctx_save(ctx, xc);
        ig_op_ctx_save(ctx, rstd);
        ig_op_ctx_save(ctx, mean); /* no-op when NULL */
        ig_op_ctx_save(ctx, w);
    }
    ig_tensor *r = st == IG_OK ? rows_of(y, -1, x->dtype) : NULL;
    if (st == IG_OK && !r) st = ig_last_status();
    out[0] = ig_scope_end_with(s, r);
    return st;
}

static void norm_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                          ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const norm_attrs *at = IG_ATTRS(ctx, norm_attrs);
    ig_tensor *x = ig_op_ctx_saved(ctx, 0), *rstd = ig_op_ctx_saved(ctx, 1);
    ig_tensor *mean = at->rms ? NULL : ig_op_ctx_saved(ctx, 2);
    ig_tensor *w = at->w ? ig_op_ctx_saved(ctx, at->rms ? 2 : 3) : NULL;
    int64_t cols = x->shape[x->ndim - 1], rows = rstd->numel;
    bool need_w = at->w && ig_op_ctx_needs_grad(ctx, at->w);
    bool need_b = at->b && ig_op_ctx_needs_grad(ctx, at->b);
    /* blocks of at least 32 rows for the dw/db partial sums, at most 64 */
    int64_t parts = rows / 32 < 1 ? 1 : rows / 32 > 64 ? 64 : rows / 32;
    ig_tensor *g = rows_of(gout[0], -1, x->dtype);
    ig_tensor *dx = ig__tensor_new(x->ndim, x->shape, x->dtype, IG_CPU);
    ig_tensor *dw = need_w ? ig__tensor_new(1, &cols, x->dtype, IG_CPU) : NULL;
    ig_tensor *db = need_b ? ig__tensor_new(1, &cols, x->dtype, IG_CPU) : NULL;
    ig_tensor *work = need_w || need_b ? ig__tensor_new(IG_SHAPE(parts, 2 * cols), IG_F64, IG_CPU)
                                       : NULL;
    if (!g || !dx || (need_w && !dw) || (need_b && !db) || ((need_w || need_b) && !work)) return;
    ig_kt kdx = ig__kt(dx), kg = ig__kt(g), kx = ig__kt(x), kr = ig__kt(rstd);
    ig_kt kdw = dw ? ig__kt(dw) : kr, kdb = db ? ig__kt(db) : kr, kwork = work ? ig__kt(work) : kr;
    ig_kt km = mean ? ig__kt(mean) : kr, kw = w ? ig__kt(w) : kr;
    ig_cpu_norm_backward(&kdx, dw ? &kdw : NULL, db ? &kdb : NULL, work ? &kwork : NULL, &kg, &kx,
                         mean ? &km : NULL, &kr, w ? &kw : NULL, rows, cols, at->rms);
    gin[0] = dx;
    if (need_w) gin[at->w] = dw;
    if (need_b) gin[at->b] = db;
}

static const ig_op_def layer_norm_op = {"layer_norm", {norm_forward, NULL}, norm_backward};
static const ig_op_def rms_norm_op = {"rms_norm", {norm_forward, NULL}, norm_backward};

static ig_tensor *norm(const ig_op_def *def, ig_tensor *x, ig_tensor *w, ig_tensor *b, double eps,
                       bool rms) {
    if (!x) return NULL;
    IG_CHECK(ig_dtype_is_float(x->dtype) && x->ndim >= 1, "%s: %s is not floating",
             def->name, ig__describe(x));
    ig_tensor *in[3] = {x};
    norm_attrs at = {eps, rms, 0, 0};
    int n = 1;
    ig_tensor *given[2] = {w, b};
    for (int i = 0; i < 2; i++) {
        if (!given[i]) continue;
        ig__check_same(def->name, x, given[i]);
        IG_CHECK(given[i]->ndim == 1 && given[i]->shape[0] == x->shape[x->ndim - 1],
                 "%s: %s %s does not match the last dim of %s", def->name,
                 i ? "bias" : "weight", ig__describe(given[i]), ig__describe(x));
        *(i ? &at.b : &at.w) = n;
        in[n++] = given[i];
    }
    return ig_op_call(def, n, in, &at, sizeof at);
}

ig_tensor *ig_layer_norm(ig_tensor *x, ig_tensor *weight, ig_tensor *bias, double eps) {
    return norm(&layer_norm_op, x, weight, bias, eps, false);
}
ig_tensor *ig_rms_norm(ig_tensor *x, ig_tensor *weight, double eps) {
    return norm(&rms_norm_op, x, weight, NULL, eps, true);
}

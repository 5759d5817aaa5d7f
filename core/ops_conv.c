/* core/ops_conv.c: 2-D convolution (im2col + GEMM) and max / average
 * pooling, NCHW, on the CPU (kernels/cpu/conv.c, kernels/cpu/pool.c).
 * Forwards take contiguous copies of strided inputs and save what backward
 * needs: x and w for conv2d, the argmax for max pooling, nothing for average
 * pooling. Backwards are direct kernel calls. bf16/f16 compute in f32. */
#include "core/dispatch.h"
#include "core/impl.h"
#include "kernels/cpu/cpu_conv_attn.h"

static bool native(ig_dtype t) { return t == IG_F32 || t == IG_F64; }

/* Output size of a window sweep: floor((in + 2 pad - span) / stride) + 1. */
static int64_t out_size(int64_t in, int pad, int64_t span, int stride) {
    return (in + 2 * pad - span) / stride + 1;
}

/* ---- conv2d ---- */

typedef struct conv_attrs {
    ig_conv2d_geom g;
} conv_attrs;

static ig_status conv_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                              ig_tensor **out) {
    (void)n_out;
    const ig_conv2d_geom *g = &IG_ATTRS(ctx, conv_attrs)->g;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_contiguous(in[0]), *w = ig_contiguous(in[1]);
    ig_tensor *b = n_in > 2 ? ig_contiguous(in[2]) : NULL;
    const int64_t *xs = in[0]->shape, *ws = in[1]->shape;
    int64_t shape[4] = {xs[0], ws[0],
                        out_size(xs[2], g->padding[0], g->dilation[0] * (ws[2] - 1) + 1, g->stride[0]),
                        out_size(xs[3], g->padding[1], g->dilation[1] * (ws[3] - 1) + 1, g->stride[1])};
    ig_tensor *o = ig__tensor_new(4, shape, in[0]->dtype, IG_CPU);
    ig_status st = x && w && (b || n_in == 2) && o ? IG_OK : ig_last_status();
    if (st == IG_OK && o->numel) {
        ig_kt ko = ig__kt(o), kx = ig__kt(x), kw = ig__kt(w), kb = b ? ig__kt(b) : ko;
        st = ig_cpu_conv2d_forward(&ko, &kx, &kw, b ? &kb : NULL, g);
        if (st != IG_OK) st = ig__error(st, "conv2d: no memory for im2col");
    }
    if (st != IG_OK) {
        ig_scope_end(s);
        return st;
    }
    ig_op_ctx_save(ctx, x);
    ig_op_ctx_save(ctx, w);
    out[0] = ig_scope_end_with(s, o);
    return IG_OK;
}

static void conv_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                          ig_tensor **gin) {
    (void)n_out;
    const ig_conv2d_geom *g = &IG_ATTRS(ctx, conv_attrs)->g;
    ig_tensor *x = ig_op_ctx_saved(ctx, 0), *w = ig_op_ctx_saved(ctx, 1);
    ig_tensor *go = ig_contiguous(gout[0]), *d[3] = {NULL, NULL, NULL};
    ig_kt kd[3];
    for (int i = 0; i < n_in; i++) {
        if (!ig_op_ctx_needs_grad(ctx, i)) continue;
        d[i] = ig__tensor_new(ig_op_ctx_input_ndim(ctx, i), ig_op_ctx_input_shape(ctx, i),
                              x->dtype, IG_CPU);
        if (!d[i]) return;
        kd[i] = ig__kt(d[i]);
    }
    if (!go) return;
    if (go->numel == 0) { /* no output pixels: every gradient is zero */
        for (int i = 0; i < n_in; i++)
            if (d[i] && ig_fill_(d[i], 0.0) != IG_OK) return;
    } else {
        ig_kt kg = ig__kt(go), kx = ig__kt(x), kw = ig__kt(w);
        if (ig_cpu_conv2d_backward(d[0] ? &kd[0] : NULL, d[1] ? &kd[1] : NULL,
                                   d[2] ? &kd[2] : NULL, &kg, &kx, &kw, g) != IG_OK) {
            ig__error(IG_ERR_NOMEM, "conv2d backward: no memory for im2col");
            return;
        }
    }
    for (int i = 0; i < n_in; i++) gin[i] = d[i];
}

static const ig_op_def conv2d_op = {"conv2d", {conv_forward, NULL}, conv_backward};

ig_tensor *ig_conv2d(ig_tensor *x, ig_tensor *w, ig_tensor *bias, const ig_conv2d_opts *opts) {
    if (!x || !w) return NULL;
    ig_conv2d_opts o = opts ? *opts : (ig_conv2d_opts)IG_CONV2D_OPTS_INIT;
    ig__check_same("conv2d", x, w);
    IG_CHECK(ig_dtype_is_float(x->dtype), "conv2d: x %s and w %s are not floating",
             ig__describe(x), ig__describe(w));
    IG_CHECK(x->ndim == 4 && w->ndim == 4,
             "conv2d: x %s must be (N, Cin, H, W) and w %s (Cout, Cin/groups, kH, kW)",
             ig__describe(x), ig__describe(w));
    IG_CHECK(o.groups >= 1 && o.stride[0] >= 1 && o.stride[1] >= 1 && o.dilation[0] >= 1 &&
                 o.dilation[1] >= 1 && o.padding[0] >= 0 && o.padding[1] >= 0,
             "conv2d: x %s, w %s: bad options (stride %dx%d, padding %dx%d, dilation %dx%d, "
             "groups %d)", ig__describe(x), ig__describe(w), o.stride[0], o.stride[1],
             o.padding[0], o.padding[1], o.dilation[0], o.dilation[1], o.groups);
    IG_CHECK(x->shape[1] % o.groups == 0 && w->shape[0] % o.groups == 0,
             "conv2d: channels of x %s and w %s are not divisible by groups %d",
             ig__describe(x), ig__describe(w), o.groups);
    IG_CHECK(w->shape[1] * o.groups == x->shape[1] && w->shape[1] > 0,
             "conv2d: w %s takes %lld channels per group but x %s has %lld / groups %d",
             ig__describe(w), (long long)w->shape[1], ig__describe(x), (long long)x->shape[1],
             o.groups);
    for (int d = 0; d < 2; d++) {
        int64_t span = o.dilation[d] * (w->shape[2 + d] - 1) + 1;
        IG_CHECK(w->shape[2 + d] >= 1 && span <= x->shape[2 + d] + 2 * o.padding[d],
                 "conv2d: kernel of w %s (dilated span %lld) is larger than the padded input "
                 "x %s (padding %d) in dim %d",
                 ig__describe(w), (long long)span, ig__describe(x), o.padding[d], 2 + d);
    }
    if (bias) {
        ig__check_same("conv2d", x, bias);
        IG_CHECK(bias->ndim == 1 && bias->shape[0] == w->shape[0],
                 "conv2d: bias %s does not match the %lld output channels of w %s",
                 ig__describe(bias), (long long)w->shape[0], ig__describe(w));
    }
    if (!native(x->dtype)) {
        ig_tensor *fb = bias ? ig_to(bias, IG_F32, bias->device) : NULL;
        return ig_to(ig_conv2d(ig_to(x, IG_F32, x->device), ig_to(w, IG_F32, w->device), fb, &o),
                     x->dtype, x->device);
    }
    conv_attrs at = {{{o.stride[0], o.stride[1]}, {o.padding[0], o.padding[1]},
                      {o.dilation[0], o.dilation[1]}, o.groups}};
    ig_tensor *in[3] = {x, w, bias};
    return ig_op_call(&conv2d_op, bias ? 3 : 2, in, &at, sizeof at);
}

/* ---- pooling ---- */

typedef struct pool_attrs {
    int kernel, stride, padding;
} pool_attrs;

/* A new tensor of x's shape with the last two dims pooled. */
static ig_tensor *pooled(const ig_tensor *x, const pool_attrs *at, ig_dtype dtype) {
    int64_t shape[IG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    for (int d = x->ndim - 2; d < x->ndim; d++)
        shape[d] = out_size(x->shape[d], at->padding, at->kernel, at->stride);
    return ig__tensor_new(x->ndim, shape, dtype, IG_CPU);
}

static ig_status max_pool_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                  ig_tensor **out) {
    (void)n_in, (void)n_out;
    const pool_attrs *at = IG_ATTRS(ctx, pool_attrs);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_contiguous(in[0]), *o = pooled(in[0], at, in[0]->dtype);
    ig_tensor *arg = pooled(in[0], at, IG_I64);
    if (!x || !o || !arg) {
        ig_scope_end(s);
        return ig_last_status();
    }
    if (o->numel) {
        ig_kt ko = ig__kt(o), ka = ig__kt(arg), kx = ig__kt(x);
        ig_cpu_max_pool2d_forward(&ko, &ka, &kx, at->kernel, at->stride, at->padding);
    }
    ig_op_ctx_save(ctx, arg);
    out[0] = ig_scope_end_with(s, o);
    return IG_OK;
}

static void max_pool_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                              ig_tensor **gin) {
    (void)n_out, (void)n_in;
    ig_tensor *arg = ig_op_ctx_saved(ctx, 0), *go = ig_contiguous(gout[0]);
    ig_tensor *gx = ig__tensor_new(ig_op_ctx_input_ndim(ctx, 0), ig_op_ctx_input_shape(ctx, 0),
                                   go ? go->dtype : IG_F32, IG_CPU);
    if (!go || !gx) return;
    ig_kt kx = ig__kt(gx), kg = ig__kt(go), ka = ig__kt(arg);
    if (gx->numel) ig_cpu_max_pool2d_backward(&kx, &kg, &ka);
    gin[0] = gx;
}

static ig_status avg_pool_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                  ig_tensor **out) {
    (void)n_in, (void)n_out;
    const pool_attrs *at = IG_ATTRS(ctx, pool_attrs);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_contiguous(in[0]), *o = pooled(in[0], at, in[0]->dtype);
    if (!x || !o) {
        ig_scope_end(s);
        return ig_last_status();
    }
    ig_kt ko = ig__kt(o), kx = ig__kt(x);
    if (o->numel) ig_cpu_avg_pool2d_forward(&ko, &kx, at->kernel, at->stride, at->padding);
    out[0] = ig_scope_end_with(s, o);
    return IG_OK;
}

static void avg_pool_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                              ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const pool_attrs *at = IG_ATTRS(ctx, pool_attrs);
    ig_tensor *go = ig_contiguous(gout[0]);
    ig_tensor *gx = ig__tensor_new(ig_op_ctx_input_ndim(ctx, 0), ig_op_ctx_input_shape(ctx, 0),
                                   go ? go->dtype : IG_F32, IG_CPU);
    if (!go || !gx) return;
    ig_kt kx = ig__kt(gx), kg = ig__kt(go);
    if (gx->numel) ig_cpu_avg_pool2d_backward(&kx, &kg, at->kernel, at->stride, at->padding);
    gin[0] = gx;
}

static const ig_op_def max_pool2d_op = {"max_pool2d", {max_pool_forward, NULL},
                                        max_pool_backward};
static const ig_op_def avg_pool2d_op = {"avg_pool2d", {avg_pool_forward, NULL},
                                        avg_pool_backward};

static ig_tensor *pool(const ig_op_def *def, ig_tensor *x, int kernel, int stride, int padding) {
    if (!x) return NULL;
    pool_attrs at = {kernel, stride > 0 ? stride : kernel, padding};
    IG_CHECK(ig_dtype_is_float(x->dtype), "%s: x %s is not floating", def->name,
             ig__describe(x));
    IG_CHECK(x->ndim == 3 || x->ndim == 4, "%s: x %s must be (N, C, H, W) or (C, H, W)",
             def->name, ig__describe(x));
    IG_CHECK(kernel >= 1 && padding >= 0 && 2 * padding <= kernel,
             "%s: x %s: kernel %d with padding %d (padding must be at most half the kernel)",
             def->name, ig__describe(x), kernel, padding);
    for (int d = x->ndim - 2; d < x->ndim; d++)
        IG_CHECK(x->shape[d] + 2 * padding >= kernel,
                 "%s: kernel %d is larger than the padded input x %s (padding %d)", def->name,
                 kernel, ig__describe(x), padding);
    if (!native(x->dtype))
        return ig_to(pool(def, ig_to(x, IG_F32, x->device), kernel, stride, padding), x->dtype,
                     x->device);
    return ig_op_call(def, 1, &x, &at, sizeof at);
}

ig_tensor *ig_max_pool2d(ig_tensor *x, int kernel, int stride, int padding) {
    return pool(&max_pool2d_op, x, kernel, stride, padding);
}

ig_tensor *ig_avg_pool2d(ig_tensor *x, int kernel, int stride, int padding) {
    return pool(&avg_pool2d_op, x, kernel, stride, padding);
}

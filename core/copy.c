/* core/copy.c: copies across dtypes and devices, fills, contiguous(), clone(),
 * to(). Cross-device copies stage through a contiguous buffer of the source
 * dtype on the destination device, then convert there. */
#include <string.h>

#include "core/dispatch.h"
#include "core/impl.h"

/* Same-device strided copy with conversion; src broadcast to dst's shape. */
static ig_status copy_same_device(ig_tensor *dst, const ig_tensor *src) {
    if (dst->numel == 0) return IG_OK;
    ig_kt d = ig__kt(dst), s = ig__kt_bcast(src, dst->ndim, dst->shape);
    if (dst->device.kind == IG_DEV_CPU) {
        ig_cpu_copy(&d, &s);
        return IG_OK;
    }
    return IG__CUDA(copy, &d, &s);
}

ig_status ig__copy_strided(ig_tensor *dst, const ig_tensor *src) {
    if (ig_device_eq(dst->device, src->device)) return copy_same_device(dst, src);
    /* stage: contiguous src (its dtype) -> raw bytes on dst's device -> convert */
    ig_scope *s = ig_scope_begin();
    ig_status st = IG_OK;
    ig_tensor *c = ig_contiguous((ig_tensor *)src);
    ig_tensor *stage = c ? ig__tensor_new(c->ndim, c->shape, c->dtype, dst->device) : NULL;
    if (!stage) st = ig_last_status();
    if (st == IG_OK)
        st = ig__cuda_memcpy(ig__ptr(stage), stage->device, ig__ptr(c), c->device,
                             (size_t)c->numel * ig_dtype_size(c->dtype));
    if (st == IG_OK) st = copy_same_device(dst, stage);
    ig_scope_end(s);
    return st;
}

ig_status ig_copy_(ig_tensor *dst, const ig_tensor *src) {
    if (!dst || !src) return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_INVALID;
    int64_t shape[IG_MAX_DIMS];
    int n = ig__broadcast_shape("copy_", dst, src, shape);
    IG_CHECK(n == dst->ndim, "copy_: %s does not broadcast to %s",
             ig__describe(src), ig__describe(dst));
    for (int d = 0; d < n; d++)
        IG_CHECK(shape[d] == dst->shape[d], "copy_: %s does not broadcast to %s",
                 ig__describe(src), ig__describe(dst));
    return ig__copy_strided(dst, src);
}

ig_status ig_fill_(ig_tensor *t, double v) {
    if (!t) return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_INVALID;
    if (t->numel == 0) return IG_OK;
    ig_kt k = ig__kt(t);
    if (t->device.kind == IG_DEV_CPU) {
        ig_cpu_fill(&k, v);
        return IG_OK;
    }
    return IG__CUDA(fill, &k, v);
}

/* ---- differentiable copies: contiguous, clone, to ---- */

typedef struct to_attrs {
    ig_dtype dtype;
    ig_device device;
} to_attrs;

static ig_status to_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                            ig_tensor **out) {
    (void)n_in, (void)n_out;
    const to_attrs *a = IG_ATTRS(ctx, to_attrs);
    ig_tensor *r = ig__tensor_new(in[0]->ndim, in[0]->shape, a->dtype, a->device);
    if (!r) return ig_last_status();
    ig_status st = ig__copy_strided(r, in[0]);
    if (st != IG_OK) return st;
    out[0] = r;
    return IG_OK;
}

/* The engine converts the gradient back to the input's dtype and device. */
static void to_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                        ig_tensor **gin) {
    (void)ctx, (void)n_out, (void)n_in;
    gin[0] = gout[0];
}

static const ig_op_def to_op = {"to", {to_forward, to_forward}, to_backward};

ig_tensor *ig_to(ig_tensor *t, ig_dtype dtype, ig_device dev) {
    if (!t) return NULL;
    to_attrs a = {dtype, dev};
    return ig_op_call(&to_op, 1, &t, &a, sizeof a);
}

ig_tensor *ig_clone(ig_tensor *t) { return t ? ig_to(t, t->dtype, t->device) : NULL; }

ig_tensor *ig_contiguous(ig_tensor *t) {
    if (!t || ig_tensor_is_contiguous(t)) return t;
    return ig_to(t, t->dtype, t->device);
}

/* core/view.c: views that share storage (view/reshape, permute, transpose,
 * narrow/slice, expand, squeeze/unsqueeze), each recorded by autograd. Their
 * backwards map the gradient back onto the input's geometry. */
#include <string.h>

#include "core/impl.h"

typedef struct geom_attrs {
    int ndim;
    int64_t shape[IG_MAX_DIMS];
    int64_t strides[IG_MAX_DIMS];
    int64_t offset;
    /* for narrow/slice backward */
    int dim;
    int64_t start, step;
    int perm[IG_MAX_DIMS];
} geom_attrs;

static ig_status alias_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                               ig_tensor **out) {
    (void)n_in, (void)n_out;
    const geom_attrs *a = IG_ATTRS(ctx, geom_attrs);
    out[0] = ig__tensor_alias(in[0], a->ndim, a->shape, a->strides, a->offset);
    return out[0] ? IG_OK : ig_last_status();
}

/* reshape-like views: the gradient is reshaped back */
static void reshape_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                             ig_tensor **gin) {
    (void)n_out, (void)n_in;
    gin[0] = ig_reshape(gout[0], ig_op_ctx_input_ndim(ctx, 0), ig_op_ctx_input_shape(ctx, 0));
}

static void permute_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                             ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const geom_attrs *a = IG_ATTRS(ctx, geom_attrs);
    int inv[IG_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++) inv[a->perm[d]] = d;
    gin[0] = ig_permute(gout[0], inv);
}

static void slice_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                           ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const geom_attrs *a = IG_ATTRS(ctx, geom_attrs);
    ig_tensor *g = gout[0];
    ig_tensor *z = ig_zeros(ig_op_ctx_input_ndim(ctx, 0), ig_op_ctx_input_shape(ctx, 0), g->dtype,
                            g->device);
    if (!z) return;
    int64_t strides[IG_MAX_DIMS];
    memcpy(strides, z->strides, sizeof strides);
    strides[a->dim] *= a->step;
    ig_tensor *win = ig__tensor_alias(z, g->ndim, g->shape, strides,
                                      z->offset + a->start * z->strides[a->dim]);
    if (!win || ig__copy_strided(win, g) != IG_OK) return;
    gin[0] = z;
}

/* expand: the engine sums the broadcast dims away */
static void expand_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                            ig_tensor **gin) {
    (void)ctx, (void)n_out, (void)n_in;
    gin[0] = gout[0];
}

static const ig_op_def reshape_op = {"view", {alias_forward, alias_forward}, reshape_backward};
static const ig_op_def permute_op = {"permute", {alias_forward, alias_forward}, permute_backward};
static const ig_op_def slice_op = {"slice", {alias_forward, alias_forward}, slice_backward};
static const ig_op_def expand_op = {"expand", {alias_forward, alias_forward}, expand_backward};

static ig_tensor *make_view(const ig_op_def *def, ig_tensor *t, geom_attrs *a) {
    return ig_op_call(def, 1, &t, a, sizeof *a);
}

/* Resolves one -1 and checks the element count. */
static void infer_shape(const char *op, const ig_tensor *t, int ndim, const int64_t *shape,
                        int64_t *out) {
    IG_CHECK(ndim >= 0 && ndim <= IG_MAX_DIMS, "%s: %d dims", op, ndim);
    int infer = -1;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        out[d] = shape[d];
        if (shape[d] == -1) {
            IG_CHECK(infer < 0, "%s: more than one -1 in the shape", op);
            infer = d;
        } else {
            IG_CHECK(shape[d] >= 0, "%s: negative size %lld", op, (long long)shape[d]);
            n *= shape[d];
        }
    }
    if (infer >= 0) {
        IG_CHECK(n > 0 && t->numel % n == 0, "%s: cannot infer -1 for %s", op, ig__describe(t));
        out[infer] = t->numel / n;
        n *= out[infer];
    }
    IG_CHECK(n == t->numel, "%s: %s has %lld elements, the new shape %lld", op, ig__describe(t),
             (long long)t->numel, (long long)n);
}

/* Strides of a view of t with the new shape, if one exists: each chunk of
 * t's dims that is contiguous in itself maps onto a run of new dims (the rule
 * of PyTorch's computeStride). */
static bool view_strides(const ig_tensor *t, int ndim, const int64_t *shape, int64_t *strides) {
    if (t->numel == 0 || t->ndim == 0 || ig_tensor_is_contiguous(t)) {
        ig__contiguous_strides(ndim, shape, strides);
        return true;
    }
    int view_d = ndim - 1;
    int64_t base = t->strides[t->ndim - 1], tensor_numel = 1, view_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        if (d == 0 || (t->shape[d - 1] != 1 && t->strides[d - 1] != tensor_numel * base)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                strides[view_d] = view_numel * base;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) {
                base = t->strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

ig_tensor *ig_view(ig_tensor *t, int ndim, const int64_t *shape) {
    if (!t) return NULL;
    geom_attrs a = {0};
    infer_shape("view", t, ndim, shape, a.shape);
    a.ndim = ndim;
    a.offset = t->offset;
    IG_CHECK(view_strides(t, ndim, a.shape, a.strides),
             "view: the strides of %s do not allow this shape; use ig_reshape", ig__describe(t));
    return make_view(&reshape_op, t, &a);
}

ig_tensor *ig_reshape(ig_tensor *t, int ndim, const int64_t *shape) {
    if (!t) return NULL;
    geom_attrs a = {0};
    infer_shape("reshape", t, ndim, shape, a.shape);
    a.ndim = ndim;
    a.offset = t->offset;
    if (view_strides(t, ndim, a.shape, a.strides)) return make_view(&reshape_op, t, &a);
    return ig_view(ig_contiguous(t), ndim, a.shape);
}

ig_tensor *ig_flatten(ig_tensor *t) {
    if (!t) return NULL;
    int64_t n = t->numel;
    return ig_reshape(t, 1, &n);
}

ig_tensor *ig_permute(ig_tensor *t, const int *dims) {
    if (!t) return NULL;
    geom_attrs a = {0};
    a.ndim = t->ndim;
    a.offset = t->offset;
    bool seen[IG_MAX_DIMS] = {0};
    for (int d = 0; d < t->ndim; d++) {
        int s = ig__dim("permute", t, dims[d]);
        IG_CHECK(!seen[s], "permute: dim %d repeated for %s", s, ig__describe(t));
        seen[s] = true;
        a.perm[d] = s;
        a.shape[d] = t->shape[s];
        a.strides[d] = t->strides[s];
    }
    return make_view(&permute_op, t, &a);
}

ig_tensor *ig_transpose(ig_tensor *t, int d0, int d1) {
    if (!t) return NULL;
    int dims[IG_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) dims[d] = d;
    d0 = ig__dim("transpose", t, d0);
    d1 = ig__dim("transpose", t, d1);
    dims[d0] = d1;
    dims[d1] = d0;
    return ig_permute(t, dims);
}

ig_tensor *ig_slice(ig_tensor *t, int dim, int64_t start, int64_t end, int64_t step) {
    if (!t) return NULL;
    dim = ig__dim("slice", t, dim);
    int64_t size = t->shape[dim];
    if (start < 0) start += size;
    if (end < 0) end += size;
    if (end > size) end = size;
    IG_CHECK(step >= 1, "slice: step %lld (must be >= 1)", (long long)step);
    IG_CHECK(start >= 0 && start <= size && end >= start,
             "slice: [%lld, %lld) out of range for dim %d of %s", (long long)start, (long long)end,
             dim, ig__describe(t));
    geom_attrs a = {0};
    a.ndim = t->ndim;
    memcpy(a.shape, t->shape, sizeof a.shape);
    memcpy(a.strides, t->strides, sizeof a.strides);
    a.shape[dim] = (end - start + step - 1) / step;
    a.strides[dim] = t->strides[dim] * step;
    a.offset = t->offset + start * t->strides[dim];
    a.dim = dim;
    a.start = start;
    a.step = step;
    return make_view(&slice_op, t, &a);
}

ig_tensor *ig_narrow(ig_tensor *t, int dim, int64_t start, int64_t length) {
    if (!t) return NULL;
    int d = ig__dim("narrow", t, dim);
    IG_CHECK(start >= 0 && length >= 0 && start + length <= t->shape[d],
             "narrow: [%lld, %lld) out of range for dim %d of %s", (long long)start,
             (long long)(start + length), d, ig__describe(t));
    return ig_slice(t, d, start, start + length, 1);
}

ig_tensor *ig_expand(ig_tensor *t, int ndim, const int64_t *shape) {
    if (!t) return NULL;
    IG_CHECK(ndim >= t->ndim && ndim <= IG_MAX_DIMS, "expand: %s to %d dims", ig__describe(t),
             ndim);
    geom_attrs a = {0};
    a.ndim = ndim;
    a.offset = t->offset;
    for (int i = 0; i < ndim; i++) {
        int d = t->ndim - ndim + i;
        int64_t have = d >= 0 ? t->shape[d] : 1;
        int64_t want = shape[i] == -1 ? have : shape[i];
        IG_CHECK(have == want || have == 1, "expand: %s cannot expand to size %lld in dim %d",
                 ig__describe(t), (long long)want, i);
        a.shape[i] = want;
        a.strides[i] = (d < 0 || (have == 1 && want != 1)) ? 0 : t->strides[d];
    }
    return make_view(&expand_op, t, &a);
}

ig_tensor *ig_squeeze(ig_tensor *t, int dim) {
    if (!t) return NULL;
    int d = ig__dim("squeeze", t, dim);
    IG_CHECK(t->shape[d] == 1, "squeeze: dim %d of %s is not 1", d, ig__describe(t));
    geom_attrs a = {0};
    a.ndim = t->ndim - 1;
    a.offset = t->offset;
    for (int i = 0, j = 0; i < t->ndim; i++) {
        if (i == d) continue;
        a.shape[j] = t->shape[i];
        a.strides[j++] = t->strides[i];
    }
    return make_view(&reshape_op, t, &a);
}

ig_tensor *ig_unsqueeze(ig_tensor *t, int dim) {
    if (!t) return NULL;
    int d = dim < 0 ? dim + t->ndim + 1 : dim;
    IG_CHECK(d >= 0 && d <= t->ndim && t->ndim < IG_MAX_DIMS,
             "unsqueeze: dim %d out of range for %s", dim, ig__describe(t));
    geom_attrs a = {0};
    a.ndim = t->ndim + 1;
    a.offset = t->offset;
    for (int i = 0, j = 0; i < a.ndim; i++) {
        if (i == d) {
            a.shape[i] = 1;
            a.strides[i] = d < t->ndim ? t->strides[d] * t->shape[d] : 1;
        } else {
            a.shape[i] = t->shape[j];
            a.strides[i] = t->strides[j++];
        }
    }
    return make_view(&reshape_op, t, &a);
}

/* core/ops_join.c: cat, stack (unsqueeze + cat) and split. cat copies each
 * input, whatever its strides, into its slab of the output; split's outputs
 * are views of its input, and its backward is a cat of the output gradients.
 * Any dtype; CPU only (no CUDA launcher). */
#include <stdlib.h>

#include "core/impl.h"

typedef struct join_attrs {
    int dim;
    const int64_t *sizes; /* split: the caller's array, read by forward only */
} join_attrs;

static ig_status cat_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                             ig_tensor **out) {
    (void)n_out;
    int dim = IG_ATTRS(ctx, join_attrs)->dim;
    int64_t shape[IG_MAX_DIMS];
    for (int d = 0; d < in[0]->ndim; d++) shape[d] = in[0]->shape[d];
    for (int i = 1; i < n_in; i++) shape[dim] += in[i]->shape[dim];
    ig_tensor *r = ig__tensor_new(in[0]->ndim, shape, in[0]->dtype, in[0]->device);
    if (!r) return ig_last_status();
    ig_scope *s = ig_scope_begin();
    ig_status st = IG_OK;
    int64_t start = 0;
    for (int i = 0; i < n_in && st == IG_OK; i++) {
        ig_tensor *slab = ig__tensor_alias(r, r->ndim, in[i]->shape, r->strides,
                                          r->offset + start * r->strides[dim]);
        st = slab ? ig__copy_strided(slab, in[i]) : ig_last_status();
        start += in[i]->shape[dim];
    }
    ig_scope_end(s);
    if (st == IG_OK) out[0] = r;
    return st;
}

/* each input's gradient is its slab of the output's */
static void cat_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                         ig_tensor **gin) {
    (void)n_out;
    int dim = IG_ATTRS(ctx, join_attrs)->dim;
    int64_t start = 0;
    for (int i = 0; i < n_in; i++) {
        int64_t size = ig_op_ctx_input_shape(ctx, i)[dim];
        if (ig_op_ctx_needs_grad(ctx, i)) gin[i] = ig_narrow(gout[0], dim, start, size);
        start += size;
    }
}

static const ig_op_def cat_op = {"cat", {cat_forward, NULL}, cat_backward};

ig_tensor *ig_cat(int n, ig_tensor *const *ts, int dim) {
    IG_CHECK(n >= 1, "cat: %d tensors", n);
    for (int i = 0; i < n; i++)
        if (!ts[i]) return NULL;
    IG_CHECK(ts[0]->ndim >= 1, "cat: tensor 0 %s has no dim to join", ig__describe(ts[0]));
    int d = ig__dim("cat", ts[0], dim);
    for (int i = 1; i < n; i++) {
        bool ok = ts[i]->dtype == ts[0]->dtype && ig_device_eq(ts[i]->device, ts[0]->device) &&
                  ts[i]->ndim == ts[0]->ndim;
        for (int k = 0; ok && k < ts[0]->ndim; k++) ok = k == d || ts[i]->shape[k] == ts[0]->shape[k];
        IG_CHECK(ok, "cat: tensor %d %s does not match tensor 0 %s (same dtype, device and "
                 "sizes but in dim %d)", i, ig__describe(ts[i]), ig__describe(ts[0]), d);
    }
    join_attrs at = {d, NULL};
    return ig_op_call(&cat_op, n, ts, &at, sizeof at);
}

ig_tensor *ig_stack(int n, ig_tensor *const *ts, int dim) {
    IG_CHECK(n >= 1, "stack: %d tensors", n);
    for (int i = 0; i < n; i++) {
        if (!ts[i]) return NULL;
        IG_CHECK(ig__same_shape(ts[i], ts[0]), "stack: tensor %d %s and tensor 0 %s differ in shape",
                 i, ig__describe(ts[i]), ig__describe(ts[0]));
    }
    ig_tensor **u = malloc(sizeof *u * (size_t)n);
    IG_CHECK(u, "stack: out of host memory");
    for (int i = 0; i < n; i++) u[i] = ig_unsqueeze(ts[i], dim);
    int d = dim < 0 ? dim + ts[0]->ndim + 1 : dim;
    ig_tensor *r = ig_cat(n, u, d);
    free(u);
    return r;
}

static ig_status split_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                               ig_tensor **out) {
    (void)n_in;
    const join_attrs *at = IG_ATTRS(ctx, join_attrs);
    ig_tensor *a = in[0];
    int64_t shape[IG_MAX_DIMS], start = 0;
    for (int d = 0; d < a->ndim; d++) shape[d] = a->shape[d];
    for (int j = 0; j < n_out; j++) {
        shape[at->dim] = at->sizes[j];
        out[j] = ig__tensor_alias(a, a->ndim, shape, a->strides,
                                 a->offset + start * a->strides[at->dim]);
        if (!out[j]) return ig_last_status();
        start += at->sizes[j];
    }
    return IG_OK;
}

/* the engine gives zeros for outputs that got no gradient */
static void split_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                           ig_tensor **gin) {
    (void)n_in;
    gin[0] = ig_cat(n_out, gout, IG_ATTRS(ctx, join_attrs)->dim);
}

static const ig_op_def split_op = {"split", {split_forward, NULL}, split_backward};

ig_status ig_split(ig_tensor *a, int dim, int n, const int64_t *sizes, ig_tensor **out) {
    IG_CHECK(n >= 1, "split: %d pieces", n);
    for (int j = 0; j < n; j++) out[j] = NULL;
    if (!a) return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_INVALID;
    IG_CHECK(a->ndim >= 1, "split: %s has no dim to split", ig__describe(a));
    int d = ig__dim("split", a, dim);
    int64_t total = 0;
    for (int j = 0; j < n; j++) {
        IG_CHECK(sizes[j] >= 0, "split: size %d is %lld", j, (long long)sizes[j]);
        total += sizes[j];
    }
    IG_CHECK(total == a->shape[d], "split: sizes add up to %lld, dim %d of %s is %lld",
             (long long)total, d, ig__describe(a), (long long)a->shape[d]);
    join_attrs at = {d, sizes};
    return ig_op_call_multi(&split_op, 1, &a, &at, sizeof at, n, out);
}

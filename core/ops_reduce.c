/* core/ops_reduce.c: reductions over dims (sum, mean, var, max) and sum_to,
 * the reduction that undoes broadcasting in backward. A reduction lays its
 * input out as contiguous (kept, reduced) and reduces rows. var and max run
 * on the CPU only; max is argmax followed by a gather, so its gradient goes to
 * the first maximal element. */
#include <string.h>

#include "core/dispatch.h"
#include "core/impl.h"
#include "core/ops_impl.h"
#include "kernels/cpu/cpu_index.h"

uint32_t ig__dims_mask(const char *op, const ig_tensor *a, int ndims, const int *dims) {
    if (ndims == 0) return a->ndim ? (1u << a->ndim) - 1 : 0;
    uint32_t m = 0;
    for (int i = 0; i < ndims; i++) m |= 1u << ig__dim(op, a, dims[i]);
    return m;
}

int ig__reduced_shape(const ig_tensor *a, uint32_t mask, bool keepdim, int64_t *shape) {
    int n = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (mask & (1u << d)) {
            if (keepdim) shape[n++] = 1;
        } else {
            shape[n++] = a->shape[d];
        }
    }
    return n;
}

ig_tensor *ig__reduce_layout(ig_tensor *a, uint32_t mask, int64_t *rows, int64_t *cols) {
    int perm[IG_MAX_DIMS], k = 0;
    *rows = 1;
    *cols = 1;
    for (int d = 0; d < a->ndim; d++)
        if (!(mask & (1u << d))) {
            perm[k++] = d;
            *rows *= a->shape[d];
        }
    for (int d = 0; d < a->ndim; d++)
        if (mask & (1u << d)) {
            perm[k++] = d;
            *cols *= a->shape[d];
        }
    return ig_contiguous(ig_permute(a, perm));
}

/* ---- sum and mean ---- */

typedef struct reduce_attrs {
    uint32_t mask;
    bool keepdim, mean;
} reduce_attrs;

/* The output gradient g reshaped to the input's rank (reduced dims of size 1,
 * ready to broadcast); *cols = the number of elements reduced into each. */
static ig_tensor *keepdim_grad(const ig_op_ctx *ctx, uint32_t mask, ig_tensor *g, int64_t *cols) {
    int nd = ig_op_ctx_input_ndim(ctx, 0);
    const int64_t *in_shape = ig_op_ctx_input_shape(ctx, 0);
    int64_t kshape[IG_MAX_DIMS];
    *cols = 1;
    for (int d = 0; d < nd; d++) {
        bool red = mask & (1u << d);
        kshape[d] = red ? 1 : in_shape[d];
        if (red) *cols *= in_shape[d];
    }
    return ig_reshape(g, nd, kshape);
}

/* True when mask reduces exactly the leading dims 0..k-1 (k >= 1) and keeps
 * at least one; rows/cols get the reduced and kept element counts. */
static bool leading_mask(const ig_tensor *a, uint32_t mask, int64_t *rows, int64_t *cols) {
    int k = 0;
    while (k < a->ndim && (mask & (1u << k))) k++;
    if (k == 0 || k == a->ndim || (mask >> k) != 0) return false;
    *rows = 1;
    *cols = 1;
    for (int d = 0; d < a->ndim; d++) *(d < k ? rows : cols) *= a->shape[d];
    return *rows > 0;
}

static ig_status sum_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                             ig_tensor **out) {
    (void)n_in, (void)n_out;
    const reduce_attrs *at = IG_ATTRS(ctx, reduce_attrs);
    ig_tensor *a = in[0];
    int64_t shape[IG_MAX_DIMS], rows, cols;
    int nd = ig__reduced_shape(a, at->mask, at->keepdim, shape);
    bool native = a->dtype == IG_F32 || a->dtype == IG_F64;
    if (native && a->device.kind == IG_DEV_CPU && leading_mask(a, at->mask, &rows, &cols) &&
        ig_tensor_is_contiguous(a)) {
        /* leading dims reduced (a broadcast gradient): column sums, no copy */
        ig_tensor *r = ig__tensor_new(nd, shape, a->dtype, a->device);
        if (!r) return ig_last_status();
        ig_kt kr = ig__kt(r), ka = ig__kt(a);
        ig_cpu_sum_cols(&kr, &ka, rows, cols, at->mean ? 1.0 / (double)rows : 1.0);
        out[0] = r;
        return IG_OK;
    }
    ig_tensor *x = ig__reduce_layout(native ? a : ig_to(a, IG_F32, a->device), at->mask, &rows, &cols);
    ig_tensor *r = ig__tensor_new(nd, shape, x ? x->dtype : a->dtype, a->device);
    if (!x || !r) return ig_last_status();
    double scale = at->mean ? 1.0 / (double)(cols ? cols : 1) : 1.0;
    ig_kt kr = ig__kt(r), kx = ig__kt(x);
    ig_status st = IG_OK;
    if (rows * cols == 0 && r->numel) st = ig_fill_(r, 0.0);
    else if (a->device.kind == IG_DEV_CPU) ig_cpu_sum_rows(&kr, &kx, rows, cols, scale);
    else st = IG__CUDA(sum_rows, &kr, &kx, rows, cols, scale);
    if (st != IG_OK) return st;
    out[0] = native ? r : ig_to(r, a->dtype, a->device);
    return out[0] ? IG_OK : ig_last_status();
}

static void sum_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                         ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const reduce_attrs *at = IG_ATTRS(ctx, reduce_attrs);
    int nd = ig_op_ctx_input_ndim(ctx, 0);
    const int64_t *in_shape = ig_op_ctx_input_shape(ctx, 0);
    int64_t cols;
    ig_tensor *g = keepdim_grad(ctx, at->mask, gout[0], &cols);
    if (at->mean) g = ig_mul_scalar(g, 1.0 / (double)(cols ? cols : 1));
    gin[0] = ig_expand(g, nd, in_shape);
}

static const ig_op_def sum_op = {"sum", {sum_forward, sum_forward}, sum_backward};
static const ig_op_def mean_op = {"mean", {sum_forward, sum_forward}, sum_backward};

static ig_tensor *reduce(const ig_op_def *def, ig_tensor *a, int ndims, const int *dims,
                         bool keepdim, bool mean) {
    if (!a) return NULL;
    IG_CHECK(ig_dtype_is_float(a->dtype), "%s: %s is not floating", def->name, ig__describe(a));
    reduce_attrs at = {ig__dims_mask(def->name, a, ndims, dims), keepdim, mean};
    return ig_op_call(def, 1, &a, &at, sizeof at);
}

ig_tensor *ig_sum(ig_tensor *a, int ndims, const int *dims, bool keepdim) {
    return reduce(&sum_op, a, ndims, dims, keepdim, false);
}
ig_tensor *ig_mean(ig_tensor *a, int ndims, const int *dims, bool keepdim) {
    return reduce(&mean_op, a, ndims, dims, keepdim, true);
}
ig_tensor *ig_sum_all(ig_tensor *a) { return ig_sum(a, 0, NULL, false); }
ig_tensor *ig_mean_all(ig_tensor *a) { return ig_mean(a, 0, NULL, false); }

ig_tensor *ig_sum_to(ig_tensor *a, int ndim, const int64_t *shape) {
    if (!a) return NULL;
    IG_CHECK(ndim <= a->ndim, "sum_to: %s cannot reduce to %d dims", ig__describe(a), ndim);
    int lead = a->ndim - ndim, dims[IG_MAX_DIMS], n = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (d < lead) dims[n++] = d;
        else if (shape[d - lead] == 1 && a->shape[d] != 1) dims[n++] = d;
        else IG_CHECK(shape[d - lead] == a->shape[d], "sum_to: %s does not reduce to size %lld in dim %d",
                      ig__describe(a), (long long)shape[d - lead], d);
    }
    if (n == 0) return ig_reshape(a, ndim, shape);
    return ig_reshape(ig_sum(a, n, dims, true), ndim, shape);
}

/* ---- var: one fused two-pass kernel; gradient 2 (x - mean) / (n - correction) ---- */

typedef struct var_attrs {
    uint32_t mask;
    int correction;
    bool keepdim;
} var_attrs;

static ig_status var_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                             ig_tensor **out) {
    (void)n_in, (void)n_out;
    const var_attrs *at = IG_ATTRS(ctx, var_attrs);
    ig_tensor *a = in[0];
    int64_t shape[IG_MAX_DIMS], rows, cols;
    int nd = ig__reduced_shape(a, at->mask, at->keepdim, shape);
    bool native = a->dtype == IG_F32 || a->dtype == IG_F64;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig__reduce_layout(native ? a : ig_to(a, IG_F32, IG_CPU), at->mask, &rows, &cols);
    ig_tensor *r = x ? ig__tensor_new(nd, shape, x->dtype, IG_CPU) : NULL;
    if (r && rows) {
        ig_kt kr = ig__kt(r), kx = ig__kt(x);
        ig_cpu_var_rows(&kr, &kx, rows, cols, at->correction);
    }
    out[0] = ig_scope_end_with(s, r && !native ? ig_to(r, a->dtype, IG_CPU) : r);
    if (!out[0]) return ig_last_status();
    ig_op_ctx_save(ctx, a);
    return IG_OK;
}

static void var_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                         ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const var_attrs *at = IG_ATTRS(ctx, var_attrs);
    ig_tensor *x = ig_op_ctx_saved(ctx, 0);
    int64_t cols;
    ig_tensor *g = keepdim_grad(ctx, at->mask, gout[0], &cols);
    int dims[IG_MAX_DIMS], n = 0;
    for (int d = 0; d < x->ndim; d++)
        if (at->mask & (1u << d)) dims[n++] = d;
    ig_tensor *dev = ig_sub(x, ig_mean(x, n, dims, true));
    gin[0] = ig_mul(dev, ig_mul_scalar(g, 2.0 / (double)(cols - at->correction)));
}

static const ig_op_def var_op = {"var", {var_forward, NULL}, var_backward};

ig_tensor *ig_var(ig_tensor *a, int ndims, const int *dims, int correction, bool keepdim) {
    if (!a) return NULL;
    IG_CHECK(ig_dtype_is_float(a->dtype), "var: %s is not floating", ig__describe(a));
    IG_CHECK(correction >= 0, "var: correction %d is negative", correction);
    var_attrs at = {ig__dims_mask("var", a, ndims, dims), correction, keepdim};
    return ig_op_call(&var_op, 1, &a, &at, sizeof at);
}

/* ---- max: the argmax (i64, keepdim; not differentiable), then a gather ---- */

static ig_status argmax_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                ig_tensor **out) {
    (void)n_in, (void)n_out;
    int dim = *IG_ATTRS(ctx, int);
    ig_tensor *a = in[0];
    int64_t shape[IG_MAX_DIMS], rows, cols;
    int nd = ig__reduced_shape(a, 1u << dim, true, shape);
    bool native = a->dtype == IG_F32 || a->dtype == IG_F64;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig__reduce_layout(native ? a : ig_to(a, IG_F64, IG_CPU), 1u << dim, &rows, &cols);
    ig_tensor *r = x ? ig__tensor_new(nd, shape, IG_I64, IG_CPU) : NULL;
    if (r && rows) {
        ig_kt kr = ig__kt(r), kx = ig__kt(x);
        ig_cpu_argmax_rows(&kr, &kx, rows, cols);
    }
    out[0] = ig_scope_end_with(s, r);
    return out[0] ? IG_OK : ig_last_status();
}

static const ig_op_def argmax_op = {"argmax", {argmax_forward, NULL}, NULL};

ig_tensor *ig_max(ig_tensor *a, int dim, bool keepdim, ig_tensor **indices) {
    if (indices) *indices = NULL;
    if (!a) return NULL;
    IG_CHECK(a->ndim >= 1, "max: %s has no dim to reduce", ig__describe(a));
    int d = ig__dim("max", a, dim);
    IG_CHECK(a->shape[d] > 0, "max: dim %d of %s is empty", d, ig__describe(a));
    ig_tensor *idx = ig_op_call(&argmax_op, 1, &a, &d, sizeof d);
    ig_tensor *v = ig_gather(a, d, idx);
    if (!keepdim) {
        v = ig_squeeze(v, d);
        idx = ig_squeeze(idx, d);
    }
    if (indices && v) *indices = idx;
    return v;
}

/* core/ops_index.c: where and masked_fill (a masked copy over broadcast
 * operands), index_select and gather (one gather kernel; index_select's 1-D
 * index is seen broadcast over the other dims). Their backwards: where sends
 * the gradient to the operand it took (zero elsewhere), gather and
 * index_select scatter-add it (repeated indices accumulate). cond, mask and
 * indices get no gradient. Any dtype forward; CPU only (no CUDA launcher).
 * An index out of range is data, not misuse: IG_ERR_INVALID. */
#include "core/dispatch.h"
#include "core/impl.h"
#include "kernels/cpu/cpu_index.h"

/* ---- where ---- */

/* The shape of cond, a and b broadcast together. */
static int where_shape(const ig_tensor *c, const ig_tensor *a, const ig_tensor *b,
                       int64_t *shape) {
    int64_t ab[IG_MAX_DIMS];
    int n = ig__broadcast_shape("where", a, b, ab);
    int nd = n > c->ndim ? n : c->ndim;
    for (int i = 0; i < nd; i++) {
        int dc = c->ndim - nd + i, d = n - nd + i;
        int64_t sc = dc >= 0 ? c->shape[dc] : 1, s = d >= 0 ? ab[d] : 1;
        IG_CHECK(sc == s || sc == 1 || s == 1, "where: cond %s does not broadcast with %s and %s",
                 ig__describe(c), ig__describe(a), ig__describe(b));
        shape[i] = sc == 1 ? s : sc;
    }
    return nd;
}

/* out = b, then a copied over it where cond */
static ig_status where_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                               ig_tensor **out) {
    (void)n_in, (void)n_out;
    ig_tensor *c = in[0], *a = in[1], *b = in[2];
    int64_t shape[IG_MAX_DIMS];
    int nd = where_shape(c, a, b, shape);
    ig_tensor *r = ig__tensor_new(nd, shape, a->dtype, IG_CPU);
    if (!r) return ig_last_status();
    ig_status st = ig__copy_strided(r, b);
    if (st != IG_OK) return st;
    if (r->numel) {
        ig_kt kr = ig__kt(r), kc = ig__kt_bcast(c, nd, shape), ka = ig__kt_bcast(a, nd, shape);
        ig_cpu_masked_copy(&kr, &kc, &ka);
    }
    ig_op_ctx_save(ctx, c);
    out[0] = r;
    return IG_OK;
}

static void where_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                           ig_tensor **gin) {
    (void)n_out, (void)n_in;
    ig_tensor *c = ig_op_ctx_saved(ctx, 0), *g = gout[0];
    ig_tensor *zero = ig_zeros(0, NULL, g->dtype, g->device);
    if (ig_op_ctx_needs_grad(ctx, 1)) gin[1] = ig_where(c, g, zero);
    if (ig_op_ctx_needs_grad(ctx, 2)) gin[2] = ig_where(c, zero, g);
}

static const ig_op_def where_op = {"where", {where_forward, NULL}, where_backward};

ig_tensor *ig_where(ig_tensor *cond, ig_tensor *a, ig_tensor *b) {
    if (!cond || !a || !b) return NULL;
    IG_CHECK(cond->dtype == IG_U8, "where: cond %s is not u8 (a %s, b %s)", ig__describe(cond),
             ig__describe(a), ig__describe(b));
    ig__check_same("where", a, b);
    ig_tensor *in[3] = {cond, a, b};
    return ig_op_call(&where_op, 3, in, NULL, 0);
}

ig_tensor *ig_masked_fill(ig_tensor *a, ig_tensor *mask, double value) {
    if (!a || !mask) return NULL;
    IG_CHECK(mask->dtype == IG_U8, "masked_fill: mask %s is not u8 (a %s)", ig__describe(mask),
             ig__describe(a));
    int64_t shape[IG_MAX_DIMS];
    int nd = ig__broadcast_shape("masked_fill", a, mask, shape);
    bool ok = nd == a->ndim;
    for (int d = 0; ok && d < nd; d++) ok = shape[d] == a->shape[d];
    IG_CHECK(ok, "masked_fill: mask %s does not broadcast to a %s", ig__describe(mask),
             ig__describe(a));
    return ig_where(mask, ig_full(0, NULL, value, a->dtype, a->device), a);
}

/* ---- gather and index_select ---- */

typedef struct gather_attrs {
    int dim;
    bool select; /* index_select: the 1-D index broadcast over the other dims */
} gather_attrs;

static ig_status gather_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                ig_tensor **out) {
    (void)n_in, (void)n_out;
    const gather_attrs *at = IG_ATTRS(ctx, gather_attrs);
    ig_tensor *a = in[0];
    int dim = at->dim;
    ig_scope *s = ig_scope_begin();
    ig_tensor *idx = ig_contiguous(in[1]->dtype == IG_I64 ? in[1] : ig_to(in[1], IG_I64, IG_CPU));
    ig_kt ki = idx ? ig__kt(idx) : (ig_kt){0};
    int64_t bad = idx && idx->numel ? ig_cpu_index_find_bad(&ki, a->shape[dim]) : -1;
    if (bad >= 0) {
        ig_status st = ig__error(IG_ERR_INVALID, "%s: index %lld out of range for dim %d of size %lld",
                                 ctx->def->name, (long long)((const int64_t *)ig__ptr(idx))[bad],
                                 dim, (long long)a->shape[dim]);
        ig_scope_end(s);
        return st;
    }
    if (idx && at->select) {
        int64_t shape[IG_MAX_DIMS], strides[IG_MAX_DIMS] = {0};
        for (int d = 0; d < a->ndim; d++) shape[d] = a->shape[d];
        shape[dim] = idx->numel;
        strides[dim] = idx->strides[0];
        idx = ig__tensor_alias(idx, a->ndim, shape, strides, idx->offset);
    }
    ig_tensor *r = idx ? ig__tensor_new(idx->ndim, idx->shape, a->dtype, IG_CPU) : NULL;
    if (r && r->numel) {
        ig_kt kr = ig__kt(r), ka = ig__kt(a);
        ki = ig__kt(idx);
        ig_cpu_gather(&kr, &ka, &ki, dim);
    }
    if (r) ig_op_ctx_save(ctx, idx);
    out[0] = ig_scope_end_with(s, r);
    return out[0] ? IG_OK : ig_last_status();
}

/* zeros of a's shape, the gradient added at the gathered positions */
static void gather_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                            ig_tensor **gin) {
    (void)n_out, (void)n_in;
    int dim = IG_ATTRS(ctx, gather_attrs)->dim;
    ig_tensor *idx = ig_op_ctx_saved(ctx, 0), *g = gout[0];
    ig_dtype ft = g->dtype == IG_F64 ? IG_F64 : IG_F32;
    ig_tensor *z = ig_zeros(ig_op_ctx_input_ndim(ctx, 0), ig_op_ctx_input_shape(ctx, 0), ft, IG_CPU);
    ig_tensor *gf = g->dtype == ft ? g : ig_to(g, ft, IG_CPU);
    if (!z || !gf) return;
    if (gf->numel) {
        ig_kt kz = ig__kt(z), kg = ig__kt(gf), ki = ig__kt(idx);
        ig_cpu_scatter_add(&kz, &kg, &ki, dim);
    }
    gin[0] = z;
}

static const ig_op_def gather_op = {"gather", {gather_forward, NULL}, gather_backward};
static const ig_op_def index_select_op = {"index_select", {gather_forward, NULL}, gather_backward};

static int check_index(const char *op, const ig_tensor *a, int dim, const ig_tensor *index) {
    IG_CHECK(index->dtype == IG_I32 || index->dtype == IG_I64,
             "%s: index %s is not i32/i64 (a %s)", op, ig__describe(index), ig__describe(a));
    IG_CHECK(a->ndim >= 1, "%s: %s has no dim to index (index %s)", op, ig__describe(a),
             ig__describe(index));
    return ig__dim(op, a, dim);
}

ig_tensor *ig_index_select(ig_tensor *a, int dim, ig_tensor *index) {
    if (!a || !index) return NULL;
    int d = check_index("index_select", a, dim, index);
    IG_CHECK(index->ndim == 1, "index_select: index %s is not 1-D (a %s)", ig__describe(index),
             ig__describe(a));
    gather_attrs at = {d, true};
    ig_tensor *in[2] = {a, index};
    return ig_op_call(&index_select_op, 2, in, &at, sizeof at);
}

ig_tensor *ig_gather(ig_tensor *a, int dim, ig_tensor *index) {
    if (!a || !index) return NULL;
    int d = check_index("gather", a, dim, index);
    IG_CHECK(index->ndim == a->ndim, "gather: index %s and a %s differ in rank",
             ig__describe(index), ig__describe(a));
    for (int k = 0; k < a->ndim; k++)
        IG_CHECK(k == d || index->shape[k] <= a->shape[k],
                 "gather: index %s is larger than a %s in dim %d", ig__describe(index),
                 ig__describe(a), k);
    gather_attrs at = {d, false};
    ig_tensor *in[2] = {a, index};
    return ig_op_call(&gather_op, 2, in, &at, sizeof at);
}

/* core/ops_matmul.c: matmul (torch.matmul) and linear (torch.nn.Linear), each
 * one op whose forward is a batched GEMM (ig_gemm_args) on the operands as
 * they lie in memory.
 *
 * Invariants: an operand whose last two dims are row-major, or the transpose
 * of row-major, goes to the GEMM as it is (trans flag and leading dimension);
 * only other layouts (and dtypes the backend lacks) are copied. Batch dims
 * broadcast with stride 0; batch dims that are contiguous across A, B and C
 * merge into one strided GEMM batch, and a batch of A's sharing one B becomes
 * a single tall GEMM when A's and C's rows stack. Besides such copies, the
 * output is the only allocation. */
#include "core/dispatch.h"
#include "core/impl.h"
#include "core/ops_impl.h"
#include "kernels/cpu/iter.h"

/* The kernel view of t as matrices: a 1-D t is one row. */
static ig_kt mat_kt(const ig_tensor *t) {
    ig_kt k = ig__kt(t);
    if (k.ndim == 1) {
        k.ndim = 2;
        k.shape[1] = k.shape[0];
        k.strides[1] = k.strides[0];
        k.shape[0] = 1;
        k.strides[0] = k.shape[1] * k.strides[1];
    }
    return k;
}

/* The same matrices transposed. */
static ig_kt mat_t(ig_kt k) {
    int r = k.ndim - 2, c = k.ndim - 1;
    int64_t s = k.shape[r], st = k.strides[r];
    k.shape[r] = k.shape[c];
    k.strides[r] = k.strides[c];
    k.shape[c] = s;
    k.strides[c] = st;
    return k;
}

/* Whether the last two dims (r, c) of t are a GEMM operand: row-major with
 * row stride *ld >= c, or (*trans) the transpose of a row-major (c, r) matrix
 * with row stride *ld >= r. A dim of size 1 fits any stride. */
static bool mat_layout(const ig_kt *t, bool *trans, int64_t *ld) {
    int64_t r = t->shape[t->ndim - 2], c = t->shape[t->ndim - 1];
    int64_t sr = t->strides[t->ndim - 2], sc = t->strides[t->ndim - 1];
    if ((c == 1 || sc == 1) && (r == 1 || sr >= c)) {
        *trans = false;
        *ld = r == 1 ? c : sr;
        return true;
    }
    if ((r == 1 || sr == 1) && (c == 1 || sc >= r)) {
        *trans = true;
        *ld = c == 1 ? r : sc;
        return true;
    }
    return false;
}

/* t as a GEMM operand of dtype dt: t itself, or a copy (current scope). */
static ig_tensor *operand(ig_tensor *t, ig_dtype dt) {
    if (t->dtype != dt) return ig_to(t, dt, t->device);
    ig_kt k = mat_kt(t);
    bool trans;
    int64_t ld;
    return mat_layout(&k, &trans, &ld) ? t : ig_contiguous(t);
}

/* c (batch..., n, m), contiguous, = a (..., n, k) @ b (..., k, m) + beta c.
 * a and b have GEMM layouts and batch dims that broadcast to c's. */
static ig_status gemm(const ig_kt *c, const ig_kt *a, const ig_kt *b, double beta, ig_device dev) {
    int nb = c->ndim - 2;
    int64_t n = c->shape[nb], m = c->shape[nb + 1], k = a->shape[a->ndim - 1], count = n * m;
    for (int d = 0; d < nb; d++) count *= c->shape[d];
    if (count == 0) return IG_OK;
    if (k == 0) { /* empty sums */
        if (beta != 0) return IG_OK;
        ig_kt flat = {c->data, c->dtype, 1, {count}, {1}};
        if (dev.kind != IG_DEV_CPU) return IG__CUDA(fill, &flat, 0.0);
        ig_cpu_fill(&flat, 0.0);
        return IG_OK;
    }
    ig_gemm_args g = {.dtype = c->dtype, .m = n, .n = m, .k = k, .ldc = m, .alpha = 1,
                      .beta = beta};
    mat_layout(a, &g.trans_a, &g.lda);
    mat_layout(b, &g.trans_b, &g.ldb);
    int64_t sa[IG_MAX_DIMS], sb[IG_MAX_DIMS];
    for (int d = 0; d < nb; d++) {
        int da = d - nb + a->ndim - 2, db = d - nb + b->ndim - 2;
        sa[d] = da >= 0 && a->shape[da] != 1 ? a->strides[da] : 0;
        sb[d] = db >= 0 && b->shape[db] != 1 ? b->strides[db] : 0;
    }
    const int64_t *strides[3] = {sa, sb, c->strides};
    ig_iter it;
    ig_iter_init(&it, nb, c->shape, 3, strides);
    int last = it.ndim - 1;
    g.batch = it.shape[last];
    g.stride_a = it.strides[0][last];
    g.stride_b = it.strides[1][last];
    g.stride_c = it.strides[2][last];
    if (g.batch > 1 && g.stride_b == 0 && !g.trans_a && g.stride_a == n * g.lda &&
        g.stride_c == n * g.ldc) {
        g.m *= g.batch; /* one B for the whole batch: stack the rows of A */
        g.batch = 1;
    }
    int64_t es = (int64_t)ig_dtype_size(c->dtype);
    for (int64_t row = 0; row < ig_iter_rows(&it); row++) { /* batch dims that did not merge */
        int64_t off[3];
        ig_iter_row_offsets(&it, row, off);
        ig_gemm_args h = g;
        h.a = a->data + off[0] * es;
        h.b = b->data + off[1] * es;
        h.c = c->data + off[2] * es;
        if (dev.kind == IG_DEV_CPU) {
            ig_cpu_gemm(&h);
        } else {
            ig_status st = IG__CUDA(gemm, &h);
            if (st != IG_OK) return st;
        }
    }
    return IG_OK;
}

/* Converts r back to dtype when the GEMM ran in another; ends scope s with
 * the result in out. */
static ig_status finish(ig_scope *s, ig_status st, ig_tensor *r, ig_dtype dtype, ig_tensor **out) {
    if (st == IG_OK && r->dtype != dtype) r = ig_to(r, dtype, r->device);
    if (st == IG_OK && !r) st = ig_last_status();
    out[0] = ig_scope_end_with(s, st == IG_OK ? r : NULL);
    return st;
}

/* t (..., c) as a (rows, c) matrix over its leading dims: a view when the
 * strides allow (backward's weight gradients are one GEMM this way). */
static ig_tensor *as_rows(ig_tensor *t) {
    int64_t rows = 1;
    for (int d = 0; d < t->ndim - 1; d++) rows *= t->shape[d];
    return ig_reshape(t, IG_SHAPE(rows, t->shape[t->ndim - 1]));
}

/* ---- matmul: (..., n, k) @ (..., k, m), both at least 2-D (ig_matmul
 * makes 1-D operands matrices with views) ---- */

static ig_status matmul_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                ig_tensor **out) {
    (void)n_in, (void)n_out;
    ig_tensor *a = in[0], *b = in[1];
    int nb = (a->ndim > b->ndim ? a->ndim : b->ndim) - 2;
    int64_t shape[IG_MAX_DIMS];
    for (int d = 0; d < nb; d++) {
        int da = d - nb + a->ndim - 2, db = d - nb + b->ndim - 2;
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        IG_CHECK(sa == sb || sa == 1 || sb == 1,
                 "matmul: batch dims of %s and %s do not broadcast", ig__describe(a),
                 ig__describe(b));
        shape[d] = sa == 1 ? sb : sa;
    }
    shape[nb] = a->shape[a->ndim - 2];
    shape[nb + 1] = b->shape[b->ndim - 1];
    ig_dtype dt = ig__kernel_dtype(a->dtype, a->device);
    ig_scope *s = ig_scope_begin();
    ig_tensor *ca = operand(a, dt), *cb = operand(b, dt);
    ig_tensor *r = ca && cb ? ig__tensor_new(nb + 2, shape, dt, a->device) : NULL;
    ig_status st = r ? IG_OK : ig_last_status();
    if (st == IG_OK) {
        ig_kt kr = ig__kt(r), ka = ig__kt(ca), kb = ig__kt(cb);
        st = gemm(&kr, &ka, &kb, 0.0, a->device);
    }
    ig_op_ctx_save(ctx, a);
    ig_op_ctx_save(ctx, b);
    return finish(s, st, r, a->dtype, out);
}

/* dA = g @ B^T, dB = A^T @ g, in the broadcast shape (the engine sums the
 * batch dims away); when B is one matrix for a batch of A's, dB is one GEMM
 * over A's rows stacked. */
static void matmul_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                            ig_tensor **gin) {
    (void)n_out, (void)n_in;
    ig_tensor *a = ig_op_ctx_saved(ctx, 0), *b = ig_op_ctx_saved(ctx, 1), *g = gout[0];
    if (ig_op_ctx_needs_grad(ctx, 0)) gin[0] = ig_matmul(g, ig_transpose(b, -1, -2));
    if (!ig_op_ctx_needs_grad(ctx, 1)) return;
    if (b->ndim == 2 && a->ndim > 2) {
        gin[1] = ig_matmul(ig_transpose(as_rows(a), 0, 1), as_rows(g));
    } else {
        gin[1] = ig_matmul(ig_transpose(a, -1, -2), g);
    }
}

static const ig_op_def matmul_op = {"matmul", {matmul_forward, matmul_forward}, matmul_backward};

ig_tensor *ig_matmul(ig_tensor *a, ig_tensor *b) {
    if (!a || !b) return NULL;
    ig__check_same("matmul", a, b);
    IG_CHECK(ig_dtype_is_float(a->dtype) && a->ndim >= 1 && b->ndim >= 1 &&
                 a->shape[a->ndim - 1] == b->shape[b->ndim > 1 ? b->ndim - 2 : 0],
             "matmul: %s and %s are not floating matrices of matching inner size",
             ig__describe(a), ig__describe(b));
    if (a->ndim == 1 || b->ndim == 1) {
        /* torch.matmul: a 1-D operand is a row (left) or a column (right), dropped after */
        ig_tensor *r = ig_matmul(a->ndim == 1 ? ig_unsqueeze(a, 0) : a,
                                 b->ndim == 1 ? ig_unsqueeze(b, 1) : b);
        if (b->ndim == 1) r = ig_squeeze(r, -1);
        if (a->ndim == 1) r = ig_squeeze(r, b->ndim == 1 ? -1 : -2);
        return r;
    }
    ig_tensor *in[2] = {a, b};
    return ig_op_call(&matmul_op, 2, in, NULL, 0);
}

/* ---- linear: x (..., in) @ w^T + bias, w (out, in) ---- */

static ig_status linear_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                ig_tensor **out) {
    (void)n_out;
    ig_tensor *x = in[0], *w = in[1], *bias = n_in > 2 ? in[2] : NULL;
    int64_t shape[IG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[x->ndim - 1] = w->shape[0];
    ig_dtype dt = ig__kernel_dtype(x->dtype, x->device);
    ig_scope *s = ig_scope_begin();
    ig_tensor *cx = operand(x, dt), *cw = operand(w, dt);
    ig_tensor *r = cx && cw ? ig__tensor_new(x->ndim, shape, dt, x->device) : NULL;
    ig_status st = r ? IG_OK : ig_last_status();
    if (st == IG_OK && bias) st = ig__copy_strided(r, bias); /* broadcast over the rows */
    if (st == IG_OK) { /* accumulated onto the bias (beta 1) */
        ig_kt kr = mat_kt(r), kx = mat_kt(cx), kw = mat_t(ig__kt(cw));
        st = gemm(&kr, &kx, &kw, bias ? 1.0 : 0.0, x->device);
    }
    ig_op_ctx_save(ctx, x);
    ig_op_ctx_save(ctx, w);
    return finish(s, st, r, x->dtype, out);
}

/* dx = g @ w; dw = g^T @ x over the leading dims flattened (one GEMM); db is
 * g itself, which the engine sums over the rows. */
static void linear_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                            ig_tensor **gin) {
    (void)n_out;
    ig_tensor *x = ig_op_ctx_saved(ctx, 0), *w = ig_op_ctx_saved(ctx, 1), *g = gout[0];
    if (ig_op_ctx_needs_grad(ctx, 0)) gin[0] = ig_matmul(g, w);
    if (ig_op_ctx_needs_grad(ctx, 1))
        gin[1] = ig_matmul(ig_transpose(as_rows(g), 0, 1), as_rows(x));
    if (n_in > 2) gin[2] = g;
}

static const ig_op_def linear_op = {"linear", {linear_forward, linear_forward}, linear_backward};

ig_tensor *ig_linear(ig_tensor *x, ig_tensor *w, ig_tensor *bias) {
    if (!x || !w) return NULL;
    ig__check_same("linear", x, w);
    IG_CHECK(ig_dtype_is_float(x->dtype) && w->ndim == 2 && x->ndim >= 1 &&
                 x->shape[x->ndim - 1] == w->shape[1],
             "linear: input %s does not match weight %s (out, in)", ig__describe(x),
             ig__describe(w));
    if (bias) {
        ig__check_same("linear", x, bias);
        IG_CHECK(bias->ndim == 1 && bias->shape[0] == w->shape[0],
                 "linear: bias %s does not match weight %s", ig__describe(bias), ig__describe(w));
    }
    ig_tensor *in[3] = {x, w, bias};
    return ig_op_call(&linear_op, bias ? 3 : 2, in, NULL, 0);
}

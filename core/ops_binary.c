/* core/ops_binary.c: add, sub, mul, div, pow with broadcasting, the in-place
 * add that gradient accumulation uses, and comparisons. Kernels run in the
 * operands' dtype; bf16/f16 on the CPU go through f32 (ig__binary_apply). */
#include <string.h>

#include "core/dispatch.h"
#include "core/impl.h"
#include "core/ops_impl.h"

static bool cpu_native(ig_dtype t) { return t != IG_BF16 && t != IG_F16 && t != IG_U16; }

ig_status ig__binary_apply(ig_binop op, ig_tensor *out, const ig_tensor *a, const ig_tensor *b) {
    if (out->numel == 0) return IG_OK;
    if (out->device.kind == IG_DEV_CUDA) {
        ig_kt ko = ig__kt(out), ka = ig__kt_bcast(a, out->ndim, out->shape),
              kb = ig__kt_bcast(b, out->ndim, out->shape);
        return IG__CUDA(binary, op, &ko, &ka, &kb);
    }
    if (cpu_native(out->dtype)) {
        ig_kt ko = ig__kt(out), ka = ig__kt_bcast(a, out->ndim, out->shape),
              kb = ig__kt_bcast(b, out->ndim, out->shape);
        ig_cpu_binary(op, &ko, &ka, &kb);
        return IG_OK;
    }
    /* compute in f32, round once into out */
    ig_scope *s = ig_scope_begin();
    ig_tensor *fa = ig_to((ig_tensor *)a, IG_F32, IG_CPU), *fb = ig_to((ig_tensor *)b, IG_F32, IG_CPU);
    ig_tensor *fo = ig__tensor_new(out->ndim, out->shape, IG_F32, IG_CPU);
    ig_status st = fa && fb && fo ? IG_OK : ig_last_status();
    if (st == IG_OK) {
        ig_kt ko = ig__kt(fo), ka = ig__kt_bcast(fa, fo->ndim, fo->shape),
              kb = ig__kt_bcast(fb, fo->ndim, fo->shape);
        ig_cpu_binary(op, &ko, &ka, &kb);
        st = ig__copy_strided(out, fo);
    }
    ig_scope_end(s);
    return st;
}

ig_status ig__add_inplace(ig_tensor *a, const ig_tensor *b) {
    return ig__binary_apply(IG_BIN_ADD, a, a, b);
}

typedef struct bin_attrs {
    ig_binop op;
} bin_attrs;

static ig_status binary_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                                ig_tensor **out) {
    (void)n_in, (void)n_out;
    const bin_attrs *at = IG_ATTRS(ctx, bin_attrs);
    ig_tensor *a = in[0], *b = in[1];
    int64_t shape[IG_MAX_DIMS];
    int nd = ig__broadcast_shape(ctx->def->name, a, b, shape);
    ig_tensor *r = ig__tensor_new(nd, shape, a->dtype, a->device);
    if (!r) return ig_last_status();
    ig_status st = ig__binary_apply(at->op, r, a, b);
    if (st != IG_OK) return st;
    switch (at->op) {
    case IG_BIN_MUL:
    case IG_BIN_DIV:
        ig_op_ctx_save(ctx, a);
        ig_op_ctx_save(ctx, b);
        break;
    case IG_BIN_POW:
        ig_op_ctx_save(ctx, a);
        ig_op_ctx_save(ctx, b);
        ig_op_ctx_save(ctx, r);
        break;
    default: break;
    }
    out[0] = r;
    return IG_OK;
}

static void binary_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                            ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const bin_attrs *at = IG_ATTRS(ctx, bin_attrs);
    ig_tensor *g = gout[0];
    bool g0 = ig_op_ctx_needs_grad(ctx, 0), g1 = ig_op_ctx_needs_grad(ctx, 1);
    switch (at->op) {
    case IG_BIN_ADD:
        gin[0] = g;
        gin[1] = g;
        break;
    case IG_BIN_SUB:
        gin[0] = g;
        if (g1) gin[1] = ig_neg(g);
        break;
    case IG_BIN_MUL:
        if (g0) gin[0] = ig_mul(g, ig_op_ctx_saved(ctx, 1));
        if (g1) gin[1] = ig_mul(g, ig_op_ctx_saved(ctx, 0));
        break;
    case IG_BIN_DIV: {
        ig_tensor *a = ig_op_ctx_saved(ctx, 0), *b = ig_op_ctx_saved(ctx, 1);
        ig_tensor *gb = ig_div(g, b);
        if (g0) gin[0] = gb;
        if (g1) gin[1] = ig_neg(ig_mul(gb, ig_div(a, b)));
        break;
    }
    case IG_BIN_POW: {
        ig_tensor *a = ig_op_ctx_saved(ctx, 0), *b = ig_op_ctx_saved(ctx, 1),
                  *r = ig_op_ctx_saved(ctx, 2);
        if (g0) gin[0] = ig_mul(g, ig_mul(b, ig_div(r, a)));
        if (g1) gin[1] = ig_mul(g, ig_mul(r, ig_log(a)));
        break;
    }
    default: break;
    }
}

static const ig_op_def add_op = {"add", {binary_forward, binary_forward}, binary_backward};
static const ig_op_def sub_op = {"sub", {binary_forward, binary_forward}, binary_backward};
static const ig_op_def mul_op = {"mul", {binary_forward, binary_forward}, binary_backward};
static const ig_op_def div_op = {"div", {binary_forward, binary_forward}, binary_backward};
static const ig_op_def pow_op = {"pow", {binary_forward, binary_forward}, binary_backward};

static ig_tensor *binary(const ig_op_def *def, ig_binop op, ig_tensor *a, ig_tensor *b) {
    if (!a || !b) return NULL;
    ig__check_same(def->name, a, b);
    ig_tensor *in[2] = {a, b};
    bin_attrs at = {op};
    return ig_op_call(def, 2, in, &at, sizeof at);
}

ig_tensor *ig_add(ig_tensor *a, ig_tensor *b) { return binary(&add_op, IG_BIN_ADD, a, b); }
ig_tensor *ig_sub(ig_tensor *a, ig_tensor *b) { return binary(&sub_op, IG_BIN_SUB, a, b); }
ig_tensor *ig_mul(ig_tensor *a, ig_tensor *b) { return binary(&mul_op, IG_BIN_MUL, a, b); }
ig_tensor *ig_div(ig_tensor *a, ig_tensor *b) { return binary(&div_op, IG_BIN_DIV, a, b); }
ig_tensor *ig_pow(ig_tensor *a, ig_tensor *b) { return binary(&pow_op, IG_BIN_POW, a, b); }

/* ---- comparisons: u8 results, no gradient ---- */

static ig_tensor *compare(const char *name, ig_binop op, ig_tensor *a, ig_tensor *b) {
    if (!a || !b) return NULL;
    ig__check_same(name, a, b);
    int64_t shape[IG_MAX_DIMS];
    int nd = ig__broadcast_shape(name, a, b, shape);
    ig_scope *s = ig_scope_begin();
    ig_tensor *r = ig__tensor_new(nd, shape, a->dtype, a->device);
    ig_status st = r ? ig__binary_apply(op, r, a, b) : ig_last_status();
    ig_tensor *u = st == IG_OK ? ig_to(r, IG_U8, a->device) : NULL;
    return ig_scope_end_with(s, u);
}

static ig_tensor *scalar_like(ig_tensor *a, double s) {
    return a ? ig_full(0, NULL, s, a->dtype, a->device) : NULL;
}

ig_tensor *ig_eq(ig_tensor *a, ig_tensor *b) { return compare("eq", IG_BIN_EQ, a, b); }
ig_tensor *ig_gt_scalar(ig_tensor *a, double s) {
    return compare("gt", IG_BIN_GT, a, scalar_like(a, s));
}
ig_tensor *ig_lt_scalar(ig_tensor *a, double s) {
    return compare("lt", IG_BIN_LT, a, scalar_like(a, s));
}

/* core/ops_unary.c: elementwise unary ops and the scalar forms (x + s, x * s,
 * s - x, x / s, x ** s). One op definition serves them all, keyed by the
 * ig_unop code in its attributes; the derivative comes from the same shared
 * formula file as the forward (kernels/unary_math.h). */
#include "core/dispatch.h"
#include "core/impl.h"
#include "core/ops_impl.h"

typedef struct unary_attrs {
    ig_unop op;
    double alpha;
} unary_attrs;

static bool saves_output(ig_unop op) {
    return op == IG_UN_EXP || op == IG_UN_TANH || op == IG_UN_SIGMOID || op == IG_UN_SQRT ||
           op == IG_UN_RSQRT;
}

static bool native(ig_dtype t) { return t == IG_F32 || t == IG_F64; }

static ig_status unary_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                               ig_tensor **out) {
    (void)n_in, (void)n_out;
    const unary_attrs *at = IG_ATTRS(ctx, unary_attrs);
    ig_tensor *x = in[0];
    ig_tensor *r = ig__tensor_new(x->ndim, x->shape, x->dtype, x->device);
    if (!r) return ig_last_status();
    ig_status st = IG_OK;
    if (x->numel == 0) {
    } else if (x->device.kind == IG_DEV_CUDA) {
        ig_kt kr = ig__kt(r), kx = ig__kt(x);
        st = IG__CUDA(unary, at->op, &kr, &kx, at->alpha);
    } else if (native(x->dtype)) {
        ig_kt kr = ig__kt(r), kx = ig__kt(x);
        ig_cpu_unary(at->op, &kr, &kx, at->alpha);
    } else {
        ig_tensor *fx = ig_to(x, IG_F32, IG_CPU);
        ig_tensor *fr = ig__tensor_new(x->ndim, x->shape, IG_F32, IG_CPU);
        if (!fx || !fr) return ig_last_status();
        ig_kt kr = ig__kt(fr), kx = ig__kt(fx);
        ig_cpu_unary(at->op, &kr, &kx, at->alpha);
        st = ig__copy_strided(r, fr);
    }
    if (st != IG_OK) return st;
    ig_op_ctx_save(ctx, x);
    if (saves_output(at->op)) ig_op_ctx_save(ctx, r);
    out[0] = r;
    return IG_OK;
}

/* gin = g * f'(x), not itself differentiable. */
static ig_tensor *unary_grad(ig_unop op, double alpha, ig_tensor *g, ig_tensor *x, ig_tensor *y) {
    ig_tensor *gi = ig__tensor_new(x->ndim, x->shape, x->dtype, x->device);
    if (!gi) return NULL;
    if (x->numel == 0) return gi;
    if (x->device.kind == IG_DEV_CUDA || native(x->dtype)) {
        ig_kt ki = ig__kt(gi), kg = ig__kt_bcast(g, x->ndim, x->shape), kx = ig__kt(x);
        ig_kt ky = y ? ig__kt(y) : kx;
        if (x->device.kind == IG_DEV_CUDA) {
            if (IG__CUDA(unary_backward, op, &ki, &kg, &kx, y ? &ky : NULL, alpha) != IG_OK)
                return NULL;
        } else {
            ig_cpu_unary_backward(op, &ki, &kg, &kx, y ? &ky : NULL, alpha);
        }
        return gi;
    }
    ig_tensor *fg = ig_to(g, IG_F32, IG_CPU), *fx = ig_to(x, IG_F32, IG_CPU);
    ig_tensor *fi = fx ? ig__tensor_new(x->ndim, x->shape, IG_F32, IG_CPU) : NULL;
    if (!fg || !fi) return NULL;
    ig_kt ki = ig__kt(fi), kg = ig__kt(fg), kx = ig__kt(fx);
    ig_cpu_unary_backward(op, &ki, &kg, &kx, NULL, alpha);
    return ig__copy_strided(gi, fi) == IG_OK ? gi : NULL;
}

static void unary_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                           ig_tensor **gin) {
    (void)n_out, (void)n_in;
    const unary_attrs *at = IG_ATTRS(ctx, unary_attrs);
    ig_tensor *x = ig_op_ctx_saved(ctx, 0);
    ig_tensor *y = saves_output(at->op) ? ig_op_ctx_saved(ctx, 1) : NULL;
    gin[0] = unary_grad(at->op, at->alpha, gout[0], x, y);
}

#define UNARY_DEF(var, name) \
    static const ig_op_def var = {name, {unary_forward, unary_forward}, unary_backward};
UNARY_DEF(neg_op, "neg")
UNARY_DEF(exp_op, "exp")
UNARY_DEF(log_op, "log")
UNARY_DEF(sqrt_op, "sqrt")
UNARY_DEF(rsqrt_op, "rsqrt")
UNARY_DEF(abs_op, "abs")
UNARY_DEF(tanh_op, "tanh")
UNARY_DEF(sigmoid_op, "sigmoid")
UNARY_DEF(relu_op, "relu")
UNARY_DEF(gelu_op, "gelu")
UNARY_DEF(gelu_tanh_op, "gelu_tanh")
UNARY_DEF(silu_op, "silu")
UNARY_DEF(add_scalar_op, "add_scalar")
UNARY_DEF(mul_scalar_op, "mul_scalar")
UNARY_DEF(rsub_scalar_op, "rsub_scalar")
UNARY_DEF(pow_scalar_op, "pow_scalar")

static ig_tensor *unary(const ig_op_def *def, ig_unop op, ig_tensor *x, double alpha) {
    if (!x) return NULL;
    IG_CHECK(ig_dtype_is_float(x->dtype), "%s: %s is not of a floating dtype", def->name,
             ig__describe(x));
    unary_attrs at = {op, alpha};
    return ig_op_call(def, 1, &x, &at, sizeof at);
}

ig_tensor *ig_neg(ig_tensor *a) { return unary(&neg_op, IG_UN_NEG, a, 0); }
ig_tensor *ig_exp(ig_tensor *a) { return unary(&exp_op, IG_UN_EXP, a, 0); }
ig_tensor *ig_log(ig_tensor *a) { return unary(&log_op, IG_UN_LOG, a, 0); }
ig_tensor *ig_sqrt(ig_tensor *a) { return unary(&sqrt_op, IG_UN_SQRT, a, 0); }
ig_tensor *ig_rsqrt(ig_tensor *a) { return unary(&rsqrt_op, IG_UN_RSQRT, a, 0); }
ig_tensor *ig_abs(ig_tensor *a) { return unary(&abs_op, IG_UN_ABS, a, 0); }
ig_tensor *ig_tanh(ig_tensor *a) { return unary(&tanh_op, IG_UN_TANH, a, 0); }
ig_tensor *ig_sigmoid(ig_tensor *a) { return unary(&sigmoid_op, IG_UN_SIGMOID, a, 0); }
ig_tensor *ig_relu(ig_tensor *a) { return unary(&relu_op, IG_UN_RELU, a, 0); }
ig_tensor *ig_gelu(ig_tensor *a) { return unary(&gelu_op, IG_UN_GELU, a, 0); }
ig_tensor *ig_gelu_tanh(ig_tensor *a) { return unary(&gelu_tanh_op, IG_UN_GELU_TANH, a, 0); }
ig_tensor *ig_silu(ig_tensor *a) { return unary(&silu_op, IG_UN_SILU, a, 0); }
ig_tensor *ig_add_scalar(ig_tensor *a, double s) {
    return unary(&add_scalar_op, IG_UN_ADD_SCALAR, a, s);
}
ig_tensor *ig_mul_scalar(ig_tensor *a, double s) {
    return unary(&mul_scalar_op, IG_UN_MUL_SCALAR, a, s);
}
ig_tensor *ig_rsub_scalar(ig_tensor *a, double s) {
    return unary(&rsub_scalar_op, IG_UN_RSUB_SCALAR, a, s);
}
ig_tensor *ig_div_scalar(ig_tensor *a, double s) {
    return unary(&mul_scalar_op, IG_UN_MUL_SCALAR, a, 1.0 / s);
}
ig_tensor *ig_pow_scalar(ig_tensor *a, double p) {
    return unary(&pow_scalar_op, IG_UN_POW_SCALAR, a, p);
}

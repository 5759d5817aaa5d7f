/* kernels/unary_math.h: the scalar formulas of the unary ops and of their
 * derivatives, shared verbatim by the CPU and CUDA backends. Computed in the
 * precision of T (float or double). */
#ifndef IGNIS_KERNELS_UNARY_MATH_H
#define IGNIS_KERNELS_UNARY_MATH_H

#include <math.h>

#include "kernels/kernels.h"

#ifdef __CUDACC__
#define IG_UN_FN __host__ __device__ __forceinline__
#else
#define IG_UN_FN static inline
#endif

#define IG__SQRT_2_OVER_PI 0.7978845608028654
#define IG__INV_SQRT_2 0.7071067811865476
#define IG__INV_SQRT_2PI 0.3989422804014327

IG_UN_FN double ig_unary_f(ig_unop op, double x, double alpha) {
    switch (op) {
    case IG_UN_NEG: return -x;
    case IG_UN_EXP: return exp(x);
    case IG_UN_LOG: return log(x);
    case IG_UN_SQRT: return sqrt(x);
    case IG_UN_RSQRT: return 1.0 / sqrt(x);
    case IG_UN_ABS: return fabs(x);
    case IG_UN_TANH: return tanh(x);
    case IG_UN_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case IG_UN_RELU: return x > 0 ? x : 0;
    case IG_UN_GELU: return 0.5 * x * (1.0 + erf(x * IG__INV_SQRT_2));
    case IG_UN_GELU_TANH: {
        double u = IG__SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
        return 0.5 * x * (1.0 + tanh(u));
    }
    case IG_UN_SILU: return x / (1.0 + exp(-x));
    case IG_UN_ADD_SCALAR: return x + alpha;
    case IG_UN_MUL_SCALAR: return x * alpha;
    case IG_UN_RSUB_SCALAR: return alpha - x;
    case IG_UN_POW_SCALAR: return pow(x, alpha);
    default: return 0;
    }
}

/* d f / d x at x (y = f(x)). */
IG_UN_FN double ig_unary_df(ig_unop op, double x, double y, double alpha) {
    switch (op) {
    case IG_UN_NEG: return -1;
    case IG_UN_EXP: return y;
    case IG_UN_LOG: return 1.0 / x;
    case IG_UN_SQRT: return 0.5 / y;
    case IG_UN_RSQRT: return -0.5 * y / x;
    case IG_UN_ABS: return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case IG_UN_TANH: return 1 - y * y;
    case IG_UN_SIGMOID: return y * (1 - y);
    case IG_UN_RELU: return x > 0 ? 1 : 0;
    case IG_UN_GELU:
        return 0.5 * (1.0 + erf(x * IG__INV_SQRT_2)) + x * IG__INV_SQRT_2PI * exp(-0.5 * x * x);
    case IG_UN_GELU_TANH: {
        double u = IG__SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
        double t = tanh(u);
        double du = IG__SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
    }
    case IG_UN_SILU: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1 + x * (1 - s));
    }
    case IG_UN_ADD_SCALAR: return 1;
    case IG_UN_MUL_SCALAR: return alpha;
    case IG_UN_RSUB_SCALAR: return -1;
    case IG_UN_POW_SCALAR: return alpha == 0 ? 0 : alpha * pow(x, alpha - 1);
    default: return 0;
    }
}

/* The same formulas in single precision, for f32 tensors: a transformer's
 * GELU through double tanh cost 13% of a block's time on the CPU. */
IG_UN_FN float ig_unary_f32(ig_unop op, float x, float alpha) {
    switch (op) {
    case IG_UN_NEG: return -x;
    case IG_UN_EXP: return expf(x);
    case IG_UN_LOG: return logf(x);
    case IG_UN_SQRT: return sqrtf(x);
    case IG_UN_RSQRT: return 1.0f / sqrtf(x);
    case IG_UN_ABS: return fabsf(x);
    case IG_UN_TANH: return tanhf(x);
    case IG_UN_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case IG_UN_RELU: return x > 0 ? x : 0;
    case IG_UN_GELU: return 0.5f * x * (1.0f + erff(x * (float)IG__INV_SQRT_2));
    case IG_UN_GELU_TANH: {
        float u = (float)IG__SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    case IG_UN_SILU: return x / (1.0f + expf(-x));
    case IG_UN_ADD_SCALAR: return x + alpha;
    case IG_UN_MUL_SCALAR: return x * alpha;
    case IG_UN_RSUB_SCALAR: return alpha - x;
    case IG_UN_POW_SCALAR: return powf(x, alpha);
    default: return 0;
    }
}

IG_UN_FN float ig_unary_df32(ig_unop op, float x, float y, float alpha) {
    switch (op) {
    case IG_UN_NEG: return -1;
    case IG_UN_EXP: return y;
    case IG_UN_LOG: return 1.0f / x;
    case IG_UN_SQRT: return 0.5f / y;
    case IG_UN_RSQRT: return -0.5f * y / x;
    case IG_UN_ABS: return x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f);
    case IG_UN_TANH: return 1 - y * y;
    case IG_UN_SIGMOID: return y * (1 - y);
    case IG_UN_RELU: return x > 0 ? 1.0f : 0.0f;
    case IG_UN_GELU:
        return 0.5f * (1.0f + erff(x * (float)IG__INV_SQRT_2)) +
               x * (float)IG__INV_SQRT_2PI * expf(-0.5f * x * x);
    case IG_UN_GELU_TANH: {
        float u = (float)IG__SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
        float t = tanhf(u);
        float du = (float)IG__SQRT_2_OVER_PI * (1 + 3 * 0.044715f * x * x);
        return 0.5f * (1 + t) + 0.5f * x * (1 - t * t) * du;
    }
    case IG_UN_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1 + x * (1 - s));
    }
    case IG_UN_ADD_SCALAR: return 1;
    case IG_UN_MUL_SCALAR: return alpha;
    case IG_UN_RSUB_SCALAR: return -1;
    case IG_UN_POW_SCALAR: return alpha == 0 ? 0 : alpha * powf(x, alpha - 1);
    default: return 0;
    }
}

#endif

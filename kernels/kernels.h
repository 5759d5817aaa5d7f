/* kernels/kernels.h: what a kernel sees of a tensor. Kernels know no autograd,
 * scopes or ownership: only an address, a dtype and a strided geometry. The
 * core turns a tensor into an ig_kt (ig__kt in core/dispatch.h). */
#ifndef IGNIS_KERNELS_H
#define IGNIS_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "ignis/tensor.h"

typedef struct ig_kt {
    char *data; /* element 0 */
    ig_dtype dtype;
    int ndim;
    int64_t shape[IG_MAX_DIMS];
    int64_t strides[IG_MAX_DIMS]; /* in elements; 0 on broadcast dims */
} ig_kt;

/* Elementwise op codes shared by the CPU and CUDA backends. Grow at the end. */
typedef enum ig_binop {
    IG_BIN_ADD,
    IG_BIN_SUB,
    IG_BIN_MUL,
    IG_BIN_DIV,
    IG_BIN_POW,
    IG_BIN_MAX,
    IG_BIN_MIN,
    IG_BIN_EQ, /* result 1/0 in the output dtype */
    IG_BIN_GT,
    IG_BIN_LT,
    IG_BINOP_COUNT
} ig_binop;

/* Row-major batched GEMM, the contract of both backends:
 *   for b in [0, batch): C_b = alpha * op(A_b) @ op(B_b) + beta * C_b
 * op(A_b) is (m, k): A_b stored (m, k) with row stride lda, or, when trans_a,
 * stored (k, m) with row stride lda; likewise op(B_b) is (k, n). Matrix b of
 * each operand starts stride_* elements after matrix b-1 (0: shared). C is
 * (m, n) with row stride ldc. dtype: f32 or f64 (CPU); f32 or bf16 (CUDA,
 * accumulating in f32). All three operands share the dtype. */
typedef struct ig_gemm_args {
    ig_dtype dtype;
    bool trans_a, trans_b;
    int64_t m, n, k, batch;
    const void *a;
    int64_t lda, stride_a;
    const void *b;
    int64_t ldb, stride_b;
    void *c;
    int64_t ldc, stride_c;
    double alpha, beta;
} ig_gemm_args;

/* Unary op codes (alpha is the scalar of the scalar forms). Grow at the end. */
typedef enum ig_unop {
    IG_UN_NEG,
    IG_UN_EXP,
    IG_UN_LOG,
    IG_UN_SQRT,
    IG_UN_RSQRT,
    IG_UN_ABS,
    IG_UN_TANH,
    IG_UN_SIGMOID,
    IG_UN_RELU,
    IG_UN_GELU,      /* exact: x * Phi(x) */
    IG_UN_GELU_TANH, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    IG_UN_SILU,
    IG_UN_ADD_SCALAR, /* x + alpha */
    IG_UN_MUL_SCALAR, /* x * alpha */
    IG_UN_RSUB_SCALAR, /* alpha - x */
    IG_UN_POW_SCALAR, /* x ** alpha */
    IG_UNOP_COUNT
} ig_unop;

#endif

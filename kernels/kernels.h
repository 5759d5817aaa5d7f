/* kernels/kernels.h: what a kernel sees of a tensor. Kernels know no autograd,
 * scopes or ownership: only an address, a dtype and a strided geometry. The
 * core turns a tensor into an ig_kt (ig__kt in core/dispatch.h). */
#ifndef IGNIS_KERNELS_H
#define IGNIS_KERNELS_H

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

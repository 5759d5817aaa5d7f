/* ignis/ops.h: the differentiable ops. Each returns a new tensor in the
 * current scope (NULL, with ig_last_error(), on a failure of the world; NULL
 * when an input is NULL). Binary ops broadcast as NumPy/PyTorch do. Both
 * operands must share dtype and device: a mismatch is an assertion naming the
 * op and both operands. Dims may be negative (counted from the end).
 * Floating dtypes: f32 and f64 everywhere; bf16 and f16 compute in f32. */
#ifndef IGNIS_OPS_H
#define IGNIS_OPS_H

#include "ignis/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise ---- */
ig_tensor *ig_add(ig_tensor *a, ig_tensor *b);
ig_tensor *ig_sub(ig_tensor *a, ig_tensor *b);
ig_tensor *ig_mul(ig_tensor *a, ig_tensor *b);
ig_tensor *ig_div(ig_tensor *a, ig_tensor *b);
ig_tensor *ig_add_scalar(ig_tensor *a, double s);
ig_tensor *ig_mul_scalar(ig_tensor *a, double s);
ig_tensor *ig_rsub_scalar(ig_tensor *a, double s); /* s - a */
ig_tensor *ig_div_scalar(ig_tensor *a, double s);  /* a / s */
ig_tensor *ig_pow_scalar(ig_tensor *a, double p);  /* a ** p */
ig_tensor *ig_pow(ig_tensor *a, ig_tensor *b);     /* a ** b, a > 0 */
ig_tensor *ig_neg(ig_tensor *a);
ig_tensor *ig_exp(ig_tensor *a);
ig_tensor *ig_log(ig_tensor *a);
ig_tensor *ig_sqrt(ig_tensor *a);
ig_tensor *ig_rsqrt(ig_tensor *a);
ig_tensor *ig_abs(ig_tensor *a);
ig_tensor *ig_tanh(ig_tensor *a);
ig_tensor *ig_sigmoid(ig_tensor *a);
ig_tensor *ig_relu(ig_tensor *a);
ig_tensor *ig_gelu(ig_tensor *a);      /* exact, with erf */
ig_tensor *ig_gelu_tanh(ig_tensor *a); /* the tanh approximation (GPT-2) */
ig_tensor *ig_silu(ig_tensor *a);

/* ---- reductions over `ndims` dims listed in `dims` (ndims 0: all dims) ---- */
ig_tensor *ig_sum(ig_tensor *a, int ndims, const int *dims, bool keepdim);
ig_tensor *ig_mean(ig_tensor *a, int ndims, const int *dims, bool keepdim);
/* Population variance when correction is 0, sample variance when 1. */
ig_tensor *ig_var(ig_tensor *a, int ndims, const int *dims, int correction, bool keepdim);
/* Max over one dim; indices (i64, may be NULL) receives the argmax. The
 * gradient flows to the first maximal element. */
ig_tensor *ig_max(ig_tensor *a, int dim, bool keepdim, ig_tensor **indices);
ig_tensor *ig_sum_all(ig_tensor *a);
ig_tensor *ig_mean_all(ig_tensor *a);
/* Sums broadcast dims away so the result has `shape` (the gradient of expand). */
ig_tensor *ig_sum_to(ig_tensor *a, int ndim, const int64_t *shape);

/* ---- linear algebra ---- */
/* matmul: 1-D and 2-D as torch.matmul; (..., n, k) @ (..., k, m) with the
 * batch dims broadcast. */
ig_tensor *ig_matmul(ig_tensor *a, ig_tensor *b);
/* x (..., in) @ w^T + b; w is (out, in) as torch.nn.Linear; bias may be NULL. */
ig_tensor *ig_linear(ig_tensor *x, ig_tensor *w, ig_tensor *bias);

/* ---- normalization and activations over the last dim ---- */
ig_tensor *ig_softmax(ig_tensor *a, int dim);
ig_tensor *ig_log_softmax(ig_tensor *a, int dim);
/* Over the last dim; weight and bias (C) may be NULL. */
ig_tensor *ig_layer_norm(ig_tensor *x, ig_tensor *weight, ig_tensor *bias, double eps);
ig_tensor *ig_rms_norm(ig_tensor *x, ig_tensor *weight, double eps);

/* ---- embeddings and losses ---- */
/* weight (V, C), indices any shape of i32/i64 -> (..., C). */
ig_tensor *ig_embedding(ig_tensor *weight, ig_tensor *indices);
/* logits (N, C) or (..., C); targets i32/i64 of the leading shape. Mean over
 * the targets that are not ignore_index. label_smoothing in [0, 1). */
ig_tensor *ig_cross_entropy(ig_tensor *logits, ig_tensor *targets, int64_t ignore_index,
                            double label_smoothing);
#define IG_IGNORE_INDEX_NONE INT64_MIN
/* Zeroes elements with probability p and scales the rest by 1/(1-p) when
 * training; identity otherwise. gen NULL: the default generator. */
ig_tensor *ig_dropout(ig_tensor *a, double p, bool training, ig_generator *gen);

/* ---- attention ----
 * q, k, v (B, H, T, D) -> (B, H, T, D): softmax(q k^T * scale + causal mask) v
 * as one fused kernel; scale <= 0 means 1/sqrt(D). */
ig_tensor *ig_attention(ig_tensor *q, ig_tensor *k, ig_tensor *v, bool causal, double scale);

/* ---- convolution and pooling, NCHW ---- */
typedef struct ig_conv2d_opts {
    int stride[2], padding[2], dilation[2], groups;
} ig_conv2d_opts;
#define IG_CONV2D_OPTS_INIT {{1, 1}, {0, 0}, {1, 1}, 1}
/* x (N, Cin, H, W), w (Cout, Cin/groups, kH, kW), bias (Cout) or NULL. */
ig_tensor *ig_conv2d(ig_tensor *x, ig_tensor *w, ig_tensor *bias, const ig_conv2d_opts *opts);
ig_tensor *ig_max_pool2d(ig_tensor *x, int kernel, int stride, int padding);
/* Padded zeros count in the average (count_include_pad, PyTorch's default). */
ig_tensor *ig_avg_pool2d(ig_tensor *x, int kernel, int stride, int padding);

/* ---- joining, splitting, selecting ---- */
ig_tensor *ig_cat(int n, ig_tensor *const *ts, int dim);
ig_tensor *ig_stack(int n, ig_tensor *const *ts, int dim);
/* Splits dim into pieces of `sizes[i]` (sum = size of dim); fills out[n]. */
ig_status ig_split(ig_tensor *a, int dim, int n, const int64_t *sizes, ig_tensor **out);
/* cond: u8 (nonzero = take a), broadcast with a and b. */
ig_tensor *ig_where(ig_tensor *cond, ig_tensor *a, ig_tensor *b);
/* Elements where mask (u8, broadcast to a) is nonzero become value. */
ig_tensor *ig_masked_fill(ig_tensor *a, ig_tensor *mask, double value);
/* index: 1-D i32/i64. */
ig_tensor *ig_index_select(ig_tensor *a, int dim, ig_tensor *index);
/* out[i][j] = a[i][index[i][j]] along dim (torch.gather). */
ig_tensor *ig_gather(ig_tensor *a, int dim, ig_tensor *index);

/* ---- comparisons (u8 results, not differentiable) ---- */
ig_tensor *ig_gt_scalar(ig_tensor *a, double s);
ig_tensor *ig_lt_scalar(ig_tensor *a, double s);
ig_tensor *ig_eq(ig_tensor *a, ig_tensor *b);

#ifdef __cplusplus
}
#endif
#endif

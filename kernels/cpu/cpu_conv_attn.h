/* kernels/cpu/cpu_conv_attn.h: the CPU kernels of fused attention,
 * convolution, pooling and dropout. Every tensor handed in is contiguous
 * (unless a kernel says otherwise) and f32 or f64 (one dtype for all float
 * operands); outputs are written (=), never accumulated. Shapes are read
 * from the ig_kt descriptors. Kernels that need scratch memory return
 * IG_ERR_NOMEM when they cannot get it. */
#ifndef IGNIS_KERNELS_CPU_CONV_ATTN_H
#define IGNIS_KERNELS_CPU_CONV_ATTN_H

#include "kernels/cpu/cpu.h"
#include "kernels/kernels.h"

/* OpenBLAS built on pthreads threads every GEMM by itself; called from our
 * own OpenMP threads it oversubscribes the cores (attention ran 10x slower
 * on 2 cores). Kernels that run small GEMMs in parallel loops bracket them
 * with these, which make OpenBLAS single-threaded meanwhile (a process-wide
 * setting: a GEMM another thread runs at that time also goes single-
 * threaded). No-ops with a BLAS other than OpenBLAS, and with OpenBLAS's
 * OpenMP build (the one meson prefers), which runs serially inside a parallel
 * region by itself — and whose set_num_threads would shrink OUR regions. */
void openblas_set_num_threads(int num_threads) __attribute__((weak));
int openblas_get_num_threads(void) __attribute__((weak));
int openblas_get_parallel(void) __attribute__((weak));
static inline int ig__blas_serial_begin(void) {
    if (openblas_get_parallel && openblas_get_parallel() == 2) return 1; /* OpenMP build */
    int n = openblas_get_num_threads ? openblas_get_num_threads() : 1;
    if (n > 1) openblas_set_num_threads(1);
    return n;
}
static inline void ig__blas_serial_end(int n) {
    if (n > 1) openblas_set_num_threads(n);
}

/* One row-major GEMM through ig_cpu_gemm: C = alpha op(A) op(B) + beta C. */
static inline void ig__gemm(ig_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                            double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                            double beta, void *c, int64_t ldc) {
    ig_gemm_args g = {dt, ta, tb, m, n, k, 1, a, lda, 0, b, ldb, 0, c, ldc, 0, alpha, beta};
    ig_cpu_gemm(&g);
}

/* ---- attention: q, k, v, out (B, H, T, D); lse (B, H, T) ----
 * out = softmax(scale q k^T + mask) v, lse = the logsumexp of each score row
 * (mask: -inf above the diagonal when causal). The (B, H, T, D) operands
 * (q, k, v, out and below dout, dq, dk, dv) may be strided views with the
 * last dim contiguous, row stride (strides[2]) >= D and strides[0], [1] >= 0;
 * outputs must not overlap. lse is contiguous. */
ig_status ig_cpu_attention_forward(const ig_kt *out, const ig_kt *lse, const ig_kt *q,
                                   const ig_kt *k, const ig_kt *v, bool causal, double scale);
/* dq, dk, dv (B, H, T, D) from dout, recomputing P = exp(scale q k^T - lse). */
ig_status ig_cpu_attention_backward(const ig_kt *dq, const ig_kt *dk, const ig_kt *dv,
                                    const ig_kt *dout, const ig_kt *q, const ig_kt *k,
                                    const ig_kt *v, const ig_kt *out, const ig_kt *lse,
                                    bool causal, double scale);

/* ---- conv2d: x (N, Cin, H, W), w (Cout, Cin/groups, kH, kW), bias (Cout),
 * out (N, Cout, Ho, Wo) ---- */
typedef struct ig_conv2d_geom {
    int stride[2], padding[2], dilation[2], groups;
} ig_conv2d_geom;
/* bias may be NULL. */
ig_status ig_cpu_conv2d_forward(const ig_kt *out, const ig_kt *x, const ig_kt *w,
                                const ig_kt *bias, const ig_conv2d_geom *g);
/* Gradients of x, w and bias from gout; each may be NULL (not wanted). */
ig_status ig_cpu_conv2d_backward(const ig_kt *gx, const ig_kt *gw, const ig_kt *gbias,
                                 const ig_kt *gout, const ig_kt *x, const ig_kt *w,
                                 const ig_conv2d_geom *g);

/* ---- pooling over the last two dims: x (..., H, W) -> out (..., Ho, Wo),
 * square window `kernel`, padding on each side ---- */
/* Padding counts as -inf; argmax (i64, out's shape) gets h * W + w of the
 * maximum in its plane (the first one; NaN wins). */
void ig_cpu_max_pool2d_forward(const ig_kt *out, const ig_kt *argmax, const ig_kt *x, int kernel,
                               int stride, int padding);
/* gx (x's shape) = gout scattered to the argmax of each window. */
void ig_cpu_max_pool2d_backward(const ig_kt *gx, const ig_kt *gout, const ig_kt *argmax);
/* Mean over the kernel * kernel window, padded zeros included. */
void ig_cpu_avg_pool2d_forward(const ig_kt *out, const ig_kt *x, int kernel, int stride,
                               int padding);
void ig_cpu_avg_pool2d_backward(const ig_kt *gx, const ig_kt *gout, int kernel, int stride,
                                int padding);

/* ---- dropout over numel elements ----
 * keep[i] = philox_uniform(seed, offset + i) >= p (u8); out = x * keep * scale. */
void ig_cpu_dropout_forward(const ig_kt *out, const ig_kt *keep, const ig_kt *x, uint64_t seed,
                            uint64_t offset, double p, double scale);
/* gx = gout * keep * scale. */
void ig_cpu_dropout_backward(const ig_kt *gx, const ig_kt *gout, const ig_kt *keep, double scale);

#endif

/* kernels/cuda/cuda.h: the CUDA backend as seen from C. Every launcher runs
 * on the calling thread's current stream of the device that owns the data
 * (ig_cuda_current_stream), returns once enqueued, and checks the launch.
 * Semantics and layouts are those of the CPU kernel of the same name
 * (kernels/cpu/cpu.h); dtypes: f32 and bf16 (bf16 computes in f32), plus
 * what each says. Implemented in the .cu files of kernels/cuda and in
 * core/cuda_runtime.c.
 *
 * Rule for the op files: call IG__CUDA(name, ...) only for a name declared
 * here; everything declared here is implemented (the CUDA build links it). */
#ifndef IGNIS_KERNELS_CUDA_H
#define IGNIS_KERNELS_CUDA_H

#include "ignis/status.h"
#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The stream kernels are enqueued on (a cudaStream_t), for the device that is
 * current on this thread. */
void *ig_cuda_current_stream(void);
/* Makes `device` current on this thread (cudaSetDevice when it changes). */
ig_status ig_cuda_set_device(int device);

/* ---- data movement and fills: any dtype ---- */
ig_status ig_cuda_copy(const ig_kt *dst, const ig_kt *src);
ig_status ig_cuda_fill(const ig_kt *dst, double v);
/* f32/f64 outputs, contiguous; element i from counter offset + i */
ig_status ig_cuda_randn(const ig_kt *out, uint64_t seed, uint64_t offset, double mean, double std);
ig_status ig_cuda_rand(const ig_kt *out, uint64_t seed, uint64_t offset, double lo, double hi);

/* ---- elementwise and reductions ---- */
ig_status ig_cuda_binary(ig_binop op, const ig_kt *out, const ig_kt *a, const ig_kt *b);
ig_status ig_cuda_unary(ig_unop op, const ig_kt *out, const ig_kt *x, double alpha);
ig_status ig_cuda_unary_backward(ig_unop op, const ig_kt *gin, const ig_kt *gout, const ig_kt *x,
                                 const ig_kt *y, double alpha);
ig_status ig_cuda_sum_rows(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols,
                           double scale);

/* ---- nn family ---- */
ig_status ig_cuda_gemm(const ig_gemm_args *g); /* cuBLASLt / cuBLAS */
ig_status ig_cuda_softmax_forward(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols,
                                  bool log);
ig_status ig_cuda_softmax_backward(const ig_kt *gin, const ig_kt *gout, const ig_kt *y,
                                   int64_t rows, int64_t cols, bool log);
/* losses are f32 whatever the logits' dtype */
ig_status ig_cuda_cross_entropy_forward(const ig_kt *losses, const ig_kt *logits,
                                        const ig_kt *targets, int64_t rows, int64_t cols,
                                        int64_t ignore_index, double smoothing);
ig_status ig_cuda_cross_entropy_backward(const ig_kt *glogits, const ig_kt *logits,
                                         const ig_kt *targets, const ig_kt *gloss, int64_t rows,
                                         int64_t cols, int64_t ignore_index, double smoothing);

#ifdef __cplusplus
}
#endif
#endif

/* kernels/cpu/cpu.h: the CPU backend, the readable reference that every other
 * backend is tested against. Kernels take ig_kt geometries; the output is
 * written (=), never accumulated, unless a kernel says otherwise. f32 and f64
 * are native; the core converts other floating dtypes to f32 around a call. */
#ifndef IGNIS_KERNELS_CPU_H
#define IGNIS_KERNELS_CPU_H

#include "kernels/kernels.h"

/* dst <- src elementwise; src strides already broadcast to dst's shape; any
 * dtypes (floats round to nearest even, ints truncate). */
void ig_cpu_copy(const ig_kt *dst, const ig_kt *src);
/* Every element of dst <- v. */
void ig_cpu_fill(const ig_kt *dst, double v);
/* out <- a OP b; a and b strides broadcast to out's shape; f32/f64/i32/i64/u8. */
void ig_cpu_binary(ig_binop op, const ig_kt *out, const ig_kt *a, const ig_kt *b);
/* Philox normal / uniform numbers: element i (row-major) uses counter offset+i. */
void ig_cpu_randn(const ig_kt *out, uint64_t seed, uint64_t offset, double mean, double std);
void ig_cpu_rand(const ig_kt *out, uint64_t seed, uint64_t offset, double lo, double hi);

/* out <- f(x) elementwise; out and x of one shape (any strides); f32/f64. */
void ig_cpu_unary(ig_unop op, const ig_kt *out, const ig_kt *x, double alpha);
/* gin <- gout * f'(x) (=, not +=); all four of one shape; y = f(x) is passed
 * for ops whose derivative is cheaper from the output (exp, tanh, sigmoid). */
void ig_cpu_unary_backward(ig_unop op, const ig_kt *gin, const ig_kt *gout, const ig_kt *x,
                           const ig_kt *y, double alpha);
/* out[r] = scale * sum_c in[r, c]; in (rows, cols) and out (rows) contiguous;
 * f32 accumulates in double. */
void ig_cpu_sum_rows(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols, double scale);
/* out[c] = scale * sum_r in[r, c]: the leading dims reduced, as a broadcast
 * gradient (a bias's) is; in (rows, cols) and out (cols) contiguous. */
void ig_cpu_sum_cols(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols, double scale);

/* ---- the kernels below are the nn family (matmul, softmax, losses, norms) ---- */
void ig_cpu_gemm(const ig_gemm_args *g);
/* Over the last dim of contiguous (rows, cols) data: out = softmax(in), or
 * log_softmax(in) when log. f32/f64. */
void ig_cpu_softmax_forward(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols, bool log);
/* gin = y * (gout - sum(gout * y)) (softmax), or gin = gout - exp(y) * sum(gout)
 * (log_softmax; y is the log-probabilities). All (rows, cols) contiguous. */
void ig_cpu_softmax_backward(const ig_kt *gin, const ig_kt *gout, const ig_kt *y, int64_t rows,
                             int64_t cols, bool log);
/* losses[r] = -(1 - s) logp[r, t_r] - (s / cols) sum_c logp[r, c], and 0 where
 * t_r == ignore_index; logits (rows, cols) contiguous f32/f64, targets (rows)
 * contiguous i64, losses (rows) in the logits' dtype. s = label smoothing. */
void ig_cpu_cross_entropy_forward(const ig_kt *losses, const ig_kt *logits, const ig_kt *targets,
                                  int64_t rows, int64_t cols, int64_t ignore_index,
                                  double smoothing);
/* glogits[r, c] = gloss[r] * (softmax[r, c] - (1 - s) [c == t_r] - s / cols),
 * and 0 on ignored rows; gloss (rows) contiguous. Written (=). */
void ig_cpu_cross_entropy_backward(const ig_kt *glogits, const ig_kt *logits,
                                   const ig_kt *targets, const ig_kt *gloss, int64_t rows,
                                   int64_t cols, int64_t ignore_index, double smoothing);

/* Layer norm (rms false) or RMS norm (rms true) over the last dim of
 * contiguous (rows, cols) x: y = (x - mean) rstd w + b with rstd =
 * 1 / sqrt(var + eps), var the population variance; RMS norm takes mean = 0,
 * so rstd = 1 / sqrt(mean(x^2) + eps), and no b. w and b (cols) may be NULL
 * (1 and 0); mean (rows; NULL for RMS norm) and rstd (rows) are saved for
 * backward. All contiguous, of x's dtype (f32/f64); statistics in double.
 * Written (=). */
void ig_cpu_norm_forward(const ig_kt *y, const ig_kt *mean, const ig_kt *rstd, const ig_kt *x,
                         const ig_kt *w, const ig_kt *b, int64_t rows, int64_t cols, double eps,
                         bool rms);
/* Its backward in one pass over the rows: dx and, each unless NULL, dw and db
 * (cols), all written (=). work (parts, 2 cols) f64 holds the sums of dw and db
 * over `parts` blocks of rows, added up in order afterwards, so results do not
 * depend on the thread count; NULL when dw and db are. */
void ig_cpu_norm_backward(const ig_kt *dx, const ig_kt *dw, const ig_kt *db, const ig_kt *work,
                          const ig_kt *gy, const ig_kt *x, const ig_kt *mean, const ig_kt *rstd,
                          const ig_kt *w, int64_t rows, int64_t cols, bool rms);

#endif

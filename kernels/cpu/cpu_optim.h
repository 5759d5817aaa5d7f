/* kernels/cpu/cpu_optim.h: fused in-place optimizer updates and the sum of
 * squares behind gradient clipping (kernels/cpu/optim.c). Every operand is a
 * contiguous array of n elements of one dtype, f32 or f64; each update reads
 * and writes its operands once per element, computing in that dtype (float
 * for f32, as PyTorch does; twice as fast as double here). Elements are
 * independent, so the results do not depend on the thread count. */
#ifndef IGNIS_KERNELS_CPU_OPTIM_H
#define IGNIS_KERNELS_CPU_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "ignis/tensor.h"

/* torch.optim.SGD, per element:
 *   d = g + l2 p
 *   buf = first ? d : momentum buf + (1 - dampening) d     (when buf != NULL)
 *   d = nesterov ? d + momentum buf : buf                  (when buf != NULL)
 *   p = p - lr d
 * p and buf are updated in place (=); g is read only. */
typedef struct ig_cpu_sgd_args {
    double lr, l2, momentum, dampening;
    bool nesterov;
    bool first; /* the buffer has no history yet: it becomes d */
} ig_cpu_sgd_args;
void ig_cpu_sgd_step(ig_dtype dtype, int64_t n, void *p, const void *g, void *buf,
                     const ig_cpu_sgd_args *a);

/* torch.optim.Adam (decay = 1) and AdamW (l2 = 0), per element:
 *   d = g + l2 p
 *   m = beta1 m + (1 - beta1) d
 *   v = beta2 v + (1 - beta2) d d
 *   p = decay p - step_size m / (sqrt(v) / bc2_sqrt + eps)
 * with step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t) and
 * decay = 1 - lr wd for AdamW. p, m, v are updated in place (=). */
typedef struct ig_cpu_adam_args {
    double l2, decay, beta1, beta2, eps, step_size, bc2_sqrt;
} ig_cpu_adam_args;
void ig_cpu_adam_step(ig_dtype dtype, int64_t n, void *p, const void *g, void *m, void *v,
                      const ig_cpu_adam_args *a);

/* sum_i x[i]^2 in double, over a fixed split of the elements into blocks
 * added up in order: the same result for any thread count. */
double ig_cpu_sum_squares(ig_dtype dtype, int64_t n, const void *x);

#endif

/* core/ops_impl.h: helpers shared by the op files of core/ (ops_*.c). */
#ifndef IGNIS_CORE_OPS_IMPL_H
#define IGNIS_CORE_OPS_IMPL_H

#include "core/impl.h"
#include "kernels/kernels.h"

/* The dtype a device's kernels compute `t` in: f32 and f64 on the CPU, f32
 * and bf16 on CUDA; any other floating dtype computes in f32. */
static inline ig_dtype ig__kernel_dtype(ig_dtype t, ig_device dev) {
    ig_dtype native = dev.kind == IG_DEV_CPU ? IG_F64 : IG_BF16;
    return t == IG_F32 || t == native ? t : IG_F32;
}

/* out <- a OP b (a, b broadcast to out); any device; bf16/f16 on CPU via f32. */
ig_status ig__binary_apply(ig_binop op, ig_tensor *out, const ig_tensor *a, const ig_tensor *b);

/* Splits a's dims into kept and reduced ones (mask bit d set: reduce d) and
 * returns a contiguous (kept..., reduced...) copy or view, with rows = product
 * of kept sizes and cols = product of reduced sizes. */
ig_tensor *ig__reduce_layout(ig_tensor *a, uint32_t mask, int64_t *rows, int64_t *cols);
/* Bit mask of the dims listed (ndims 0: all). Asserts each is in range. */
uint32_t ig__dims_mask(const char *op, const ig_tensor *a, int ndims, const int *dims);
/* The result shape of reducing `mask` of a (keepdim: size 1 kept). */
int ig__reduced_shape(const ig_tensor *a, uint32_t mask, bool keepdim, int64_t *shape);

#endif

/* kernels/cpu/cpu_index.h: CPU kernels of the selecting family (masked copy,
 * gather, scatter-add, index checks; kernels/cpu/index.c) and the var and
 * argmax row reductions (kernels/cpu/reduce.c). Indices are i64; the core
 * checks them (ig_cpu_index_find_bad) before a gather or scatter runs. */
#ifndef IGNIS_KERNELS_CPU_INDEX_H
#define IGNIS_KERNELS_CPU_INDEX_H

#include "kernels/kernels.h"

/* out[r] = sum_c (in[r, c] - mean_r)^2 / max(cols - correction, 0), two
 * passes in double; in (rows, cols) and out (rows) contiguous, f32/f64.
 * Written (=). */
void ig_cpu_var_rows(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols,
                     int correction);
/* idx[r] = the first c where in[r, c] is maximal (a NaN counts as the
 * maximum); in (rows, cols) contiguous f32/f64, cols >= 1; idx (rows)
 * contiguous i64. Written (=). */
void ig_cpu_argmax_rows(const ig_kt *idx, const ig_kt *in, int64_t rows, int64_t cols);

/* out[i] = src[i] where mask[i] != 0, else left as it is; mask (u8) and src
 * strides broadcast to out's shape; src of out's dtype, any dtype. */
void ig_cpu_masked_copy(const ig_kt *out, const ig_kt *mask, const ig_kt *src);
/* Position (row-major) of the first element of index (i64, any strides)
 * outside [0, size), or -1 when all are inside. */
int64_t ig_cpu_index_find_bad(const ig_kt *index, int64_t size);
/* Along dim (torch.gather): out[..., i, ...] = a[..., index[..., i, ...], ...].
 * out and index (i64) share a shape, each dim but dim no larger than a's;
 * any strides (index may be broadcast); any dtype. Written (=). */
void ig_cpu_gather(const ig_kt *out, const ig_kt *a, const ig_kt *index, int dim);
/* The transpose of gather: out[..., index[..., i, ...], ...] += src[..., i, ...].
 * src and index share a shape; any strides; f32/f64. Accumulated (+=);
 * repeated indices add up. */
void ig_cpu_scatter_add(const ig_kt *out, const ig_kt *src, const ig_kt *index, int dim);

#endif

/* kernels/cpu/iter.h: walking up to three strided operands over one index
 * space. Dims that are contiguous across all operands are merged so that the
 * common cases (contiguous, broadcast of a row, a transposed view) run as long
 * inner loops. Header-only: the loops inline into each kernel. */
#ifndef IGNIS_KERNELS_CPU_ITER_H
#define IGNIS_KERNELS_CPU_ITER_H

#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

typedef struct ig_iter {
    int ndim;     /* after merging, >= 1 */
    int nops;
    int64_t shape[IG_MAX_DIMS];
    int64_t strides[3][IG_MAX_DIMS]; /* in elements */
} ig_iter;

/* Sets up the iteration over `shape` for nops operands with the given strides
 * (each already broadcast to `shape`), merging mergeable dims. */
static inline void ig_iter_init(ig_iter *it, int ndim, const int64_t *shape, int nops,
                                const int64_t *const *strides) {
    it->nops = nops;
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue; /* size-1 dims add nothing */
        if (n > 0) {
            bool merge = true;
            for (int k = 0; k < nops; k++)
                if (it->strides[k][n - 1] != strides[k][d] * shape[d]) merge = false;
            if (merge) {
                it->shape[n - 1] *= shape[d];
                for (int k = 0; k < nops; k++) it->strides[k][n - 1] = strides[k][d];
                continue;
            }
        }
        it->shape[n] = shape[d];
        for (int k = 0; k < nops; k++) it->strides[k][n] = strides[k][d];
        n++;
    }
    if (n == 0) {
        it->shape[0] = 1;
        for (int k = 0; k < nops; k++) it->strides[k][0] = 0;
        n = 1;
    }
    it->ndim = n;
}

/* Number of inner rows (product of all but the last merged dim). */
static inline int64_t ig_iter_rows(const ig_iter *it) {
    int64_t r = 1;
    for (int d = 0; d < it->ndim - 1; d++) r *= it->shape[d];
    return r;
}

/* Element offsets of operand k at the start of row `row`. */
static inline void ig_iter_row_offsets(const ig_iter *it, int64_t row, int64_t *off) {
    for (int k = 0; k < it->nops; k++) off[k] = 0;
    for (int d = it->ndim - 2; d >= 0; d--) {
        int64_t i = row % it->shape[d];
        row /= it->shape[d];
        for (int k = 0; k < it->nops; k++) off[k] += i * it->strides[k][d];
    }
}

#endif

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

/* Work is split into tasks: a task is a chunk of at most IG_ITER_CHUNK
 * elements of one inner row, so one long contiguous row parallelizes too. */
#define IG_ITER_CHUNK 8192

static inline int64_t ig_iter_tasks(const ig_iter *it) {
    int64_t inner = it->shape[it->ndim - 1];
    return ig_iter_rows(it) * ((inner + IG_ITER_CHUNK - 1) / IG_ITER_CHUNK);
}

/* Offsets of each operand at the start of task t, and its length. */
static inline int64_t ig_iter_task(const ig_iter *it, int64_t t, int64_t *off) {
    int64_t inner = it->shape[it->ndim - 1];
    int64_t per_row = (inner + IG_ITER_CHUNK - 1) / IG_ITER_CHUNK;
    int64_t row = t / per_row, start = (t % per_row) * IG_ITER_CHUNK;
    ig_iter_row_offsets(it, row, off);
    for (int k = 0; k < it->nops; k++) off[k] += start * it->strides[k][it->ndim - 1];
    return inner - start < IG_ITER_CHUNK ? inner - start : IG_ITER_CHUNK;
}

/* Runs the statements after `big` for r in [0, n), on all OpenMP threads when
 * `big` holds and serially otherwise: entering a parallel region (even with
 * an if clause that fails) costs more than a whole tiny op. */
#define IG_PARALLEL_FOR(r, n, big, ...)                                       \
    do {                                                                      \
        if (big) {                                                            \
            _Pragma("omp parallel for schedule(static)")                      \
            for (int64_t r = 0; r < (n); r++) { __VA_ARGS__ }                 \
        } else {                                                              \
            for (int64_t r = 0; r < (n); r++) { __VA_ARGS__ }                 \
        }                                                                     \
    } while (0)

/* Work above which a kernel goes parallel (elements touched). */
#define IG_PARALLEL_MIN 32768

#endif

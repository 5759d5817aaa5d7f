/* kernels/cpu/reduce.c: row reductions over contiguous (rows, cols) data
 * (sum, var, argmax). The core lays any reduction out this way (reduced dims
 * last) before calling; each output element is one row, written (=). */
#include <math.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_index.h"
#include "kernels/cpu/iter.h"

void ig_cpu_sum_rows(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols, double scale) {
    if (in->dtype == IG_F32) {
        const float *x = (const float *)in->data;
        float *y = (float *)out->data;
        #pragma omp parallel for if (rows * cols > 65536) schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            double acc = 0;
            const float *row = x + r * cols;
            for (int64_t c = 0; c < cols; c++) acc += row[c];
            y[r] = (float)(acc * scale);
        }
    } else {
        const double *x = (const double *)in->data;
        double *y = (double *)out->data;
        #pragma omp parallel for if (rows * cols > 65536) schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            double acc = 0;
            const double *row = x + r * cols;
            for (int64_t c = 0; c < cols; c++) acc += row[c];
            y[r] = acc * scale;
        }
    }
}

/* two passes in double: the mean, then the squared deviations from it */
#define VAR_ROWS(T)                                                            \
    do {                                                                       \
        const T *x = (const T *)in->data;                                      \
        T *y = (T *)out->data;                                                 \
        IG_PARALLEL_FOR(r, rows, rows > 1 && rows * cols > IG_PARALLEL_MIN,    \
            const T *row = x + r * cols;                                       \
            double mean = 0, ss = 0;                                           \
            for (int64_t c = 0; c < cols; c++) mean += row[c];                 \
            mean /= (double)cols;                                              \
            for (int64_t c = 0; c < cols; c++)                                 \
                ss += (row[c] - mean) * (row[c] - mean);                       \
            y[r] = (T)(ss / (double)(cols > correction ? cols - correction : 0));  \
        );                                                                     \
    } while (0)

void ig_cpu_var_rows(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols,
                     int correction) {
    if (in->dtype == IG_F32) VAR_ROWS(float);
    else VAR_ROWS(double);
}

#define ARGMAX_ROWS(T)                                                         \
    do {                                                                       \
        const T *x = (const T *)in->data;                                      \
        int64_t *ix = (int64_t *)idx->data;                                    \
        IG_PARALLEL_FOR(r, rows, rows > 1 && rows * cols > IG_PARALLEL_MIN,    \
            const T *row = x + r * cols;                                       \
            int64_t best = 0;                                                  \
            for (int64_t c = 1; c < cols && !isnan(row[best]); c++)            \
                if (row[c] > row[best] || isnan(row[c])) best = c;             \
            ix[r] = best;                                                      \
        );                                                                     \
    } while (0)

void ig_cpu_argmax_rows(const ig_kt *idx, const ig_kt *in, int64_t rows, int64_t cols) {
    if (in->dtype == IG_F32) ARGMAX_ROWS(float);
    else ARGMAX_ROWS(double);
}

/* Column sums in blocks of 256 columns, each accumulated in double across all
 * rows: the inner loop runs along a row, so it vectorizes, and no transposed
 * copy of the input is needed. */
#define SUM_COLS(T)                                                                   \
    IG_PARALLEL_FOR(blk, nblk, nblk > 1 && rows * cols > IG_PARALLEL_MIN,             \
        int64_t c0 = blk * 256, w = cols - c0 < 256 ? cols - c0 : 256;                \
        double acc[256] = {0};                                                        \
        for (int64_t r = 0; r < rows; r++) {                                          \
            const T *row = (const T *)in->data + r * cols + c0;                       \
            for (int64_t j = 0; j < w; j++) acc[j] += row[j];                         \
        }                                                                             \
        T *y = (T *)out->data + c0;                                                   \
        for (int64_t j = 0; j < w; j++) y[j] = (T)(acc[j] * scale);)

void ig_cpu_sum_cols(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols, double scale) {
    int64_t nblk = (cols + 255) / 256;
    if (in->dtype == IG_F32) SUM_COLS(float);
    else SUM_COLS(double);
}

/* kernels/cpu/reduce.c: row reductions over contiguous (rows, cols) data. The
 * core lays any reduction out this way (reduced dims last) before calling. */
#include "kernels/cpu/cpu.h"

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

/* kernels/cpu/norm.c: layer norm and RMS norm over the last dim of
 * contiguous (rows, cols) data, fused: forward writes y and the per-row
 * statistics (mean, rstd); backward writes dx, dw and db in one pass over the
 * rows. Sums run in double. Rows spread over OpenMP threads; the dw/db sums
 * go through per-block partials (work) reduced in a fixed order.
 *
 * Backward, with xh = (x - mean) rstd and gh = gy w:
 *   dx = rstd (gh - mean_c(gh) - xh mean_c(gh xh))   (RMS norm: no mean_c(gh))
 *   dw = sum_r gy xh,  db = sum_r gy */
#include <math.h>

#include "kernels/cpu/cpu.h"

#define NORM_KERNELS(T)                                                       \
static void forward_##T(T *y, T *mean, T *rstd, const T *x, const T *w, const T *b, \
                        int64_t rows, int64_t cols, double eps) {             \
    _Pragma("omp parallel for if (rows * cols > 32768) schedule(static)")     \
    for (int64_t r = 0; r < rows; r++) {                                      \
        const T *xr = x + r * cols;                                           \
        T *yr = y + r * cols;                                                 \
        double mu = 0, var = 0;                                               \
        if (mean) {                                                           \
            for (int64_t c = 0; c < cols; c++) mu += xr[c];                   \
            mu /= (double)cols;                                               \
            mean[r] = (T)mu;                                                  \
        }                                                                     \
        for (int64_t c = 0; c < cols; c++) var += (xr[c] - mu) * (xr[c] - mu); \
        double rs = 1.0 / sqrt(var / (double)cols + eps);                     \
        rstd[r] = (T)rs;                                                      \
        for (int64_t c = 0; c < cols; c++)                                    \
            yr[c] = (T)((xr[c] - mu) * rs * (w ? w[c] : 1) + (b ? b[c] : 0)); \
    }                                                                         \
}                                                                             \
                                                                              \
static void backward_##T(T *dx, T *dw, T *db, double *work, int64_t parts, const T *gy, \
                         const T *x, const T *mean, const T *rstd, const T *w, \
                         int64_t rows, int64_t cols) {                        \
    _Pragma("omp parallel for if (rows * cols > 32768) schedule(static)")     \
    for (int64_t p = 0; p < parts; p++) {                                     \
        double *pw = work ? work + p * 2 * cols : NULL, *pb = pw ? pw + cols : NULL; \
        for (int64_t c = 0; pw && c < 2 * cols; c++) pw[c] = 0;               \
        for (int64_t r = rows * p / parts; r < rows * (p + 1) / parts; r++) { \
            const T *xr = x + r * cols, *gr = gy + r * cols;                  \
            T *dr = dx + r * cols;                                            \
            double mu = mean ? mean[r] : 0, rs = rstd[r], s1 = 0, s2 = 0;     \
            for (int64_t c = 0; c < cols; c++) {                              \
                double gh = gr[c] * (w ? w[c] : 1.0);                         \
                s1 += gh;                                                     \
                s2 += gh * (xr[c] - mu) * rs;                                 \
            }                                                                 \
            s1 = mean ? s1 / (double)cols : 0;                                \
            s2 /= (double)cols;                                               \
            for (int64_t c = 0; c < cols; c++) {                              \
                double xh = (xr[c] - mu) * rs, gh = gr[c] * (w ? w[c] : 1.0); \
                dr[c] = (T)(rs * (gh - s1 - xh * s2));                        \
                if (pw) {                                                     \
                    pw[c] += gr[c] * xh;                                      \
                    pb[c] += gr[c];                                           \
                }                                                             \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    for (int64_t c = 0; work && c < cols; c++) {                              \
        double sw = 0, sb = 0;                                                \
        for (int64_t p = 0; p < parts; p++) {                                 \
            sw += work[p * 2 * cols + c];                                     \
            sb += work[p * 2 * cols + cols + c];                              \
        }                                                                     \
        if (dw) dw[c] = (T)sw;                                                \
        if (db) db[c] = (T)sb;                                                \
    }                                                                         \
}

NORM_KERNELS(float)
NORM_KERNELS(double)

#define DATA(T, k) ((k) ? (T *)(k)->data : NULL)

void ig_cpu_norm_forward(const ig_kt *y, const ig_kt *mean, const ig_kt *rstd, const ig_kt *x,
                         const ig_kt *w, const ig_kt *b, int64_t rows, int64_t cols, double eps,
                         bool rms) {
    if (rms) mean = b = NULL;
    if (x->dtype == IG_F64)
        forward_double(DATA(double, y), DATA(double, mean), DATA(double, rstd), DATA(double, x),
                       DATA(double, w), DATA(double, b), rows, cols, eps);
    else
        forward_float(DATA(float, y), DATA(float, mean), DATA(float, rstd), DATA(float, x),
                      DATA(float, w), DATA(float, b), rows, cols, eps);
}

void ig_cpu_norm_backward(const ig_kt *dx, const ig_kt *dw, const ig_kt *db, const ig_kt *work,
                          const ig_kt *gy, const ig_kt *x, const ig_kt *mean, const ig_kt *rstd,
                          const ig_kt *w, int64_t rows, int64_t cols, bool rms) {
    if (rms) mean = NULL;
    int64_t parts = work ? work->shape[0] : rows; /* without sums, a part is a row */
    if (x->dtype == IG_F64)
        backward_double(DATA(double, dx), DATA(double, dw), DATA(double, db), DATA(double, work),
                        parts, DATA(double, gy), DATA(double, x), DATA(double, mean),
                        DATA(double, rstd), DATA(double, w), rows, cols);
    else
        backward_float(DATA(float, dx), DATA(float, dw), DATA(float, db), DATA(double, work),
                       parts, DATA(float, gy), DATA(float, x), DATA(float, mean),
                       DATA(float, rstd), DATA(float, w), rows, cols);
}

/* kernels/cpu/loss.c: cross-entropy over the last dim of contiguous
 * (rows, cols) logits with i64 targets (in range or ignore_index: the core
 * checks), with PyTorch's label smoothing s:
 *   loss_r = -(1 - s) logp[r, t_r] - (s / cols) sum_c logp[r, c]
 * computed from the row's log-sum-exp (max subtracted, sums in double).
 * Outputs written (=); ignored rows give 0. Rows spread over OpenMP threads. */
#include <math.h>

#include "kernels/cpu/cpu.h"

#define PAR_ROWS _Pragma("omp parallel for if (rows * cols > 32768) schedule(static)")

/* declares lse = log sum_c exp(x[c]) over the row x */
#define ROW_LSE(x)                                                            \
    double mx = -INFINITY, sum = 0;                                           \
    for (int64_t c = 0; c < cols; c++) mx = x[c] > mx ? x[c] : mx;            \
    for (int64_t c = 0; c < cols; c++) sum += exp((double)x[c] - mx);         \
    double lse = mx + log(sum);

#define CE_FORWARD(T)                                                         \
    PAR_ROWS for (int64_t r = 0; r < rows; r++) {                             \
        const T *x = (const T *)logits->data + r * cols;                      \
        int64_t t = ((const int64_t *)targets->data)[r];                      \
        T *out = (T *)losses->data + r;                                       \
        if (t == ignore_index) {                                              \
            *out = 0;                                                         \
            continue;                                                         \
        }                                                                     \
        ROW_LSE(x)                                                            \
        double sx = 0;                                                        \
        for (int64_t c = 0; c < cols; c++) sx += x[c];                        \
        *out = (T)(-(1 - s) * (x[t] - lse) - s / (double)cols * (sx - (double)cols * lse)); \
    }

void ig_cpu_cross_entropy_forward(const ig_kt *losses, const ig_kt *logits, const ig_kt *targets,
                                  int64_t rows, int64_t cols, int64_t ignore_index, double s) {
    if (logits->dtype == IG_F64) CE_FORWARD(double)
    else CE_FORWARD(float)
}

#define CE_BACKWARD(T)                                                        \
    PAR_ROWS for (int64_t r = 0; r < rows; r++) {                             \
        const T *x = (const T *)logits->data + r * cols;                      \
        int64_t t = ((const int64_t *)targets->data)[r];                      \
        T *gi = (T *)glogits->data + r * cols;                                \
        double gl = ((const T *)gloss->data)[r];                              \
        if (t == ignore_index) {                                              \
            for (int64_t c = 0; c < cols; c++) gi[c] = 0;                     \
            continue;                                                         \
        }                                                                     \
        ROW_LSE(x)                                                            \
        for (int64_t c = 0; c < cols; c++)                                    \
            gi[c] = (T)(gl * (exp((double)x[c] - lse) - (c == t) * (1 - s) - s / (double)cols)); \
    }

void ig_cpu_cross_entropy_backward(const ig_kt *glogits, const ig_kt *logits,
                                   const ig_kt *targets, const ig_kt *gloss, int64_t rows,
                                   int64_t cols, int64_t ignore_index, double s) {
    if (logits->dtype == IG_F64) CE_BACKWARD(double)
    else CE_BACKWARD(float)
}

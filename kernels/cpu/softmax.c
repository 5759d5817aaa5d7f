/* kernels/cpu/softmax.c: softmax and log-softmax over the last dim of
 * contiguous (rows, cols) data, forward and backward; outputs written (=).
 * Each row subtracts its max before exp, so nothing overflows; row sums run
 * in double. Rows spread over OpenMP threads. */
#include <math.h>

#include "kernels/cpu/cpu.h"

#define PAR_ROWS _Pragma("omp parallel for if (rows * cols > 32768) schedule(static)")

#define SOFTMAX_FORWARD(T)                                                    \
    PAR_ROWS for (int64_t r = 0; r < rows; r++) {                             \
        const T *x = (const T *)in->data + r * cols;                          \
        T *y = (T *)out->data + r * cols;                                     \
        double mx = -INFINITY, sum = 0;                                       \
        for (int64_t c = 0; c < cols; c++) mx = x[c] > mx ? x[c] : mx;        \
        for (int64_t c = 0; c < cols; c++) {                                  \
            double e = exp((double)x[c] - mx);                                \
            sum += e;                                                         \
            if (!is_log) y[c] = (T)e;                                         \
        }                                                                     \
        double lse = mx + log(sum), inv = 1.0 / sum;                          \
        for (int64_t c = 0; c < cols; c++)                                    \
            y[c] = is_log ? (T)((double)x[c] - lse) : (T)(y[c] * inv);        \
    }

void ig_cpu_softmax_forward(const ig_kt *out, const ig_kt *in, int64_t rows, int64_t cols,
                            bool is_log) {
    if (in->dtype == IG_F64) SOFTMAX_FORWARD(double)
    else SOFTMAX_FORWARD(float)
}

/* softmax: gin = y (g - sum g y); log-softmax: gin = g - exp(y) sum g */
#define SOFTMAX_BACKWARD(T)                                                   \
    PAR_ROWS for (int64_t r = 0; r < rows; r++) {                             \
        const T *g = (const T *)gout->data + r * cols;                        \
        const T *y = (const T *)yk->data + r * cols;                          \
        T *gi = (T *)gin->data + r * cols;                                    \
        double s = 0;                                                         \
        for (int64_t c = 0; c < cols; c++) s += is_log ? g[c] : (double)g[c] * y[c]; \
        for (int64_t c = 0; c < cols; c++)                                    \
            gi[c] = is_log ? (T)(g[c] - exp((double)y[c]) * s) : (T)(y[c] * (g[c] - s)); \
    }

void ig_cpu_softmax_backward(const ig_kt *gin, const ig_kt *gout, const ig_kt *yk, int64_t rows,
                             int64_t cols, bool is_log) {
    if (gin->dtype == IG_F64) SOFTMAX_BACKWARD(double)
    else SOFTMAX_BACKWARD(float)
}

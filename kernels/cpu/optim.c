/* kernels/cpu/optim.c: fused optimizer updates (SGD, Adam/AdamW) and the sum
 * of squares of gradient clipping; formulas in kernels/cpu/cpu_optim.h.
 * Operands are contiguous, f32 or f64. Updates overwrite p and the state (=)
 * in one pass; work is split into chunks of IG_ITER_CHUNK elements across
 * OpenMP threads past IG_PARALLEL_MIN elements. */
#include <math.h>

#include "kernels/cpu/cpu_optim.h"
#include "kernels/cpu/iter.h"

/* Runs the statements for i in [0, n), chunked, in parallel for large n. */
#define CHUNKED(n, ...)                                                       \
    IG_PARALLEL_FOR(t, ((n) + IG_ITER_CHUNK - 1) / IG_ITER_CHUNK,             \
                    (n) > IG_PARALLEL_MIN,                                    \
        int64_t lo = t * IG_ITER_CHUNK;                                       \
        int64_t hi = lo + IG_ITER_CHUNK < (n) ? lo + IG_ITER_CHUNK : (n);     \
        for (int64_t i = lo; i < hi; i++) { __VA_ARGS__ })

/* The arguments go into locals of the compute type: loop invariants the
 * compiler can keep in registers and vectorize with. */
#define SGD(T)                                                                \
    do {                                                                      \
        T *pp = p, *pb = buf;                                                 \
        const T *pg = g;                                                      \
        const T lr = (T)a->lr, l2 = (T)a->l2, mom = (T)a->momentum,           \
                keep = (T)(1 - a->dampening);                                 \
        const bool first = a->first, nesterov = a->nesterov;                  \
        CHUNKED(n,                                                            \
            T pi = pp[i], d = l2 != 0 ? pg[i] + l2 * pi : pg[i];              \
            if (pb) {                                                         \
                T b = first ? d : mom * pb[i] + keep * d;                     \
                pb[i] = b;                                                    \
                d = nesterov ? d + mom * b : b;                               \
            }                                                                 \
            pp[i] = pi - lr * d;                                              \
        );                                                                    \
    } while (0)

void ig_cpu_sgd_step(ig_dtype dtype, int64_t n, void *p, const void *g, void *buf,
                     const ig_cpu_sgd_args *a) {
    if (dtype == IG_F32) SGD(float);
    else SGD(double);
}

#define ADAM(T, SQRT)                                                         \
    do {                                                                      \
        T *pp = p, *pm = m, *pv = v;                                          \
        const T *pg = g;                                                      \
        const T l2 = (T)a->l2, decay = (T)a->decay, b1 = (T)a->beta1,         \
                b2 = (T)a->beta2, eps = (T)a->eps, step = (T)a->step_size,    \
                bc2 = (T)a->bc2_sqrt;                                         \
        CHUNKED(n,                                                            \
            T pi = pp[i], d = l2 != 0 ? pg[i] + l2 * pi : pg[i];              \
            T mi = b1 * pm[i] + (1 - b1) * d;                                 \
            T vi = b2 * pv[i] + (1 - b2) * d * d;                             \
            pm[i] = mi;                                                       \
            pv[i] = vi;                                                       \
            pp[i] = decay * pi - step * mi / (SQRT(vi) / bc2 + eps);          \
        );                                                                    \
    } while (0)

void ig_cpu_adam_step(ig_dtype dtype, int64_t n, void *p, const void *g, void *m, void *v,
                      const ig_cpu_adam_args *a) {
    if (dtype == IG_F32) ADAM(float, sqrtf);
    else ADAM(double, sqrt);
}

enum { PARTS = 64 }; /* fixed split: the sum does not depend on the threads */

#define SUM_SQUARES(T)                                                        \
    do {                                                                      \
        const T *px = x;                                                      \
        IG_PARALLEL_FOR(k, PARTS, n > IG_PARALLEL_MIN,                        \
            int64_t lo = k * per, hi = lo + per < n ? lo + per : n;           \
            double s = 0;                                                     \
            for (int64_t i = lo; i < hi; i++) s += (double)px[i] * px[i];     \
            part[k] = s;                                                      \
        );                                                                    \
    } while (0)

double ig_cpu_sum_squares(ig_dtype dtype, int64_t n, const void *x) {
    double part[PARTS];
    int64_t per = (n + PARTS - 1) / PARTS;
    if (dtype == IG_F32) SUM_SQUARES(float);
    else SUM_SQUARES(double);
    double s = 0;
    for (int k = 0; k < PARTS; k++) s += part[k];
    return s;
}

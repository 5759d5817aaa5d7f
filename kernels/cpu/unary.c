/* kernels/cpu/unary.c: elementwise unary ops and their backward, from the
 * shared formulas in kernels/unary_math.h. f32 computes through double: this
 * is the reference, not the fast path. */
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/iter.h"
#include "kernels/unary_math.h"

#define UNARY_LOOP(T)                                                         \
    IG_PARALLEL_FOR(t, tasks, tasks > 1 && total > IG_PARALLEL_MIN,           \
        int64_t off[2];                                                       \
        int64_t n = ig_iter_task(&it, t, off);                                     \
        T *po = (T *)out->data + off[0];                                      \
        const T *px = (const T *)x->data + off[1];                            \
        for (int64_t i = 0; i < n; i++)                                   \
            po[i * so] = (T)ig_unary_f(op, (double)px[i * sx], alpha);)

void ig_cpu_unary(ig_unop op, const ig_kt *out, const ig_kt *x, double alpha) {
    const int64_t *st[2] = {out->strides, x->strides};
    ig_iter it;
    ig_iter_init(&it, out->ndim, out->shape, 2, st);
    int64_t tasks = ig_iter_tasks(&it), total = ig_iter_rows(&it) * it.shape[it.ndim - 1];
    int64_t so = it.strides[0][it.ndim - 1], sx = it.strides[1][it.ndim - 1];
    if (out->dtype == IG_F64) UNARY_LOOP(double);
    else UNARY_LOOP(float);
}

/* y, when given, has x's strides, so it is read at x's offsets. */
#define UNARY_BWD_LOOP(T)                                                     \
    IG_PARALLEL_FOR(t, tasks, tasks > 1 && total > IG_PARALLEL_MIN,           \
        int64_t off[3];                                                       \
        int64_t n = ig_iter_task(&it, t, off);                                     \
        T *pi = (T *)gin->data + off[0];                                      \
        const T *pg = (const T *)gout->data + off[1];                         \
        const T *px = (const T *)x->data + off[2];                            \
        const T *py = y ? (const T *)y->data + off[2] : NULL;                 \
        for (int64_t i = 0; i < n; i++) {                                 \
            double xv = (double)px[i * sx];                                   \
            double yv = py ? (double)py[i * sx] : ig_unary_f(op, xv, alpha);  \
            pi[i * si] = (T)((double)pg[i * sg] * ig_unary_df(op, xv, yv, alpha)); \
        })

void ig_cpu_unary_backward(ig_unop op, const ig_kt *gin, const ig_kt *gout, const ig_kt *x,
                           const ig_kt *y, double alpha) {
    if (y) {
        for (int d = 0; d < x->ndim; d++)
            if (y->strides[d] != x->strides[d]) { y = NULL; break; } /* recompute instead */
    }
    const int64_t *st[3] = {gin->strides, gout->strides, x->strides};
    ig_iter it;
    ig_iter_init(&it, gin->ndim, gin->shape, 3, st);
    int64_t tasks = ig_iter_tasks(&it), total = ig_iter_rows(&it) * it.shape[it.ndim - 1];
    int64_t si = it.strides[0][it.ndim - 1], sg = it.strides[1][it.ndim - 1],
            sx = it.strides[2][it.ndim - 1];
    if (gin->dtype == IG_F64) UNARY_BWD_LOOP(double);
    else UNARY_BWD_LOOP(float);
}

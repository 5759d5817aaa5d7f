/* kernels/cpu/unary.c: elementwise unary ops and their backward, from the
 * shared formulas in kernels/unary_math.h: f64 in double, f32 in float. */
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/fastmath.h"
#include "kernels/cpu/iter.h"
#include "kernels/unary_math.h"

#define UNARY_LOOP(T, F)                                                         \
    IG_PARALLEL_FOR(t, tasks, tasks > 1 && total > IG_PARALLEL_MIN,           \
        int64_t off[2];                                                       \
        int64_t n = ig_iter_task(&it, t, off);                                     \
        T *po = (T *)out->data + off[0];                                      \
        const T *px = (const T *)x->data + off[1];                            \
        for (int64_t i = 0; i < n; i++)                                   \
            po[i * so] = (T)F(op, px[i * sx], (T)alpha);)

/* GELU (tanh form) on contiguous f32, branch-free so it vectorizes: through
 * glibc's tanhf it took a third of a transformer block's CPU time. */
#define GELU_C 0.7978845608028654f
__attribute__((target_clones("avx2", "default")))
static void gelu_tanh_f32(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + ig_tanh_f32(GELU_C * (v + 0.044715f * v * v * v)));
    }
}

__attribute__((target_clones("avx2", "default")))
static void gelu_tanh_backward_f32(float *gi, const float *g, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], t = ig_tanh_f32(GELU_C * (v + 0.044715f * v * v * v));
        float du = GELU_C * (1.0f + 3.0f * 0.044715f * v * v);
        gi[i] = g[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
}

void ig_cpu_unary(ig_unop op, const ig_kt *out, const ig_kt *x, double alpha) {
    const int64_t *st[2] = {out->strides, x->strides};
    ig_iter it;
    ig_iter_init(&it, out->ndim, out->shape, 2, st);
    int64_t tasks = ig_iter_tasks(&it), total = ig_iter_rows(&it) * it.shape[it.ndim - 1];
    int64_t so = it.strides[0][it.ndim - 1], sx = it.strides[1][it.ndim - 1];
    if (op == IG_UN_GELU_TANH && out->dtype == IG_F32 && so == 1 && sx == 1) {
        IG_PARALLEL_FOR(t, tasks, tasks > 1 && total > IG_PARALLEL_MIN,
            int64_t off[2];
            int64_t n = ig_iter_task(&it, t, off);
            gelu_tanh_f32((float *)out->data + off[0], (const float *)x->data + off[1], n););
        return;
    }
    if (out->dtype == IG_F64) UNARY_LOOP(double, ig_unary_f);
    else UNARY_LOOP(float, ig_unary_f32);
}

/* y, when given, has x's strides, so it is read at x's offsets. */
#define UNARY_BWD_LOOP(T, F, DF)                                                     \
    IG_PARALLEL_FOR(t, tasks, tasks > 1 && total > IG_PARALLEL_MIN,           \
        int64_t off[3];                                                       \
        int64_t n = ig_iter_task(&it, t, off);                                     \
        T *pi = (T *)gin->data + off[0];                                      \
        const T *pg = (const T *)gout->data + off[1];                         \
        const T *px = (const T *)x->data + off[2];                            \
        const T *py = y ? (const T *)y->data + off[2] : NULL;                 \
        for (int64_t i = 0; i < n; i++) {                                 \
            T xv = px[i * sx];                                                \
            T yv = py ? py[i * sx] : F(op, xv, (T)alpha);                     \
            pi[i * si] = pg[i * sg] * DF(op, xv, yv, (T)alpha);               \
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
    if (op == IG_UN_GELU_TANH && gin->dtype == IG_F32 && si == 1 && sg == 1 && sx == 1) {
        IG_PARALLEL_FOR(t, tasks, tasks > 1 && total > IG_PARALLEL_MIN,
            int64_t off[3];
            int64_t n = ig_iter_task(&it, t, off);
            gelu_tanh_backward_f32((float *)gin->data + off[0], (const float *)gout->data + off[1],
                                   (const float *)x->data + off[2], n););
        return;
    }
    if (gin->dtype == IG_F64) UNARY_BWD_LOOP(double, ig_unary_f, ig_unary_df);
    else UNARY_BWD_LOOP(float, ig_unary_f32, ig_unary_df32);
}

/* kernels/cpu/pool.c: max and average pooling over the last two dims.
 * x (P planes of H x W), out (P planes of Ho x Wo), argmax
 * i64 of out's shape; all contiguous, one float dtype; outputs written (=).
 * Windows are clipped to the input, never empty (padding <= kernel / 2).
 * A window starts at (oh s - pad, ow s - pad) and spans kernel x kernel;
 * planes run in parallel, and each plane's gradient stays in its plane, so
 * backward needs no atomics. */
#include <math.h>

#include "kernels/cpu/cpu_conv_attn.h"

typedef struct plane_geom {
    int64_t planes, h, w, ho, wo;
} plane_geom;

static plane_geom planes_of(const ig_kt *x, const ig_kt *out) {
    plane_geom g = {1, x->shape[x->ndim - 2], x->shape[x->ndim - 1], out->shape[out->ndim - 2],
                    out->shape[out->ndim - 1]};
    for (int d = 0; d < x->ndim - 2; d++) g.planes *= x->shape[d];
    return g;
}

/* Window of output o along a dim of size n, clipped to the input: [lo, hi). */
static void window(int64_t o, int s, int pad, int k, int64_t n, int64_t *lo, int64_t *hi) {
    *lo = o * s - pad < 0 ? 0 : o * s - pad;
    *hi = o * s - pad + k > n ? n : o * s - pad + k;
}

#define POOL_KERNELS(real, sfx)                                                               \
    static void max_forward_##sfx(plane_geom g, real *out, int64_t *arg, const real *x, int k,  \
                                  int s, int pad) {                                          \
        _Pragma("omp parallel for if (g.planes * g.ho * g.wo > 16384)")                       \
        for (int64_t pl = 0; pl < g.planes; pl++) {                                           \
            const real *xp = x + pl * g.h * g.w;                                              \
            for (int64_t oh = 0; oh < g.ho; oh++)                                             \
                for (int64_t ow = 0; ow < g.wo; ow++) {                                       \
                    int64_t best = -1, h0, h1, w0, w1;                                        \
                    window(oh, s, pad, k, g.h, &h0, &h1);                                     \
                    window(ow, s, pad, k, g.w, &w0, &w1);                                     \
                    /* the maximum in a pass without branches, then the first place */     \
                    /* holding it (or the first NaN): cheaper than one pass whose */         \
                    /* updates mispredict on random data */                                  \
                    real m = xp[h0 * g.w + w0];                                               \
                    bool nan = false;                                                         \
                    for (int64_t ih = h0; ih < h1; ih++)                                      \
                        for (int64_t iw = w0; iw < w1; iw++) {                                \
                            real v = xp[ih * g.w + iw];                                       \
                            m = v > m ? v : m;                                                \
                            nan |= v != v;                                                    \
                        }                                                                     \
                    for (int64_t ih = h0; best < 0 && ih < h1; ih++)                          \
                        for (int64_t iw = w0; best < 0 && iw < w1; iw++) {                    \
                            real v = xp[ih * g.w + iw];                                       \
                            if (nan ? v != v : v == m) best = ih * g.w + iw;                  \
                        }                                                                     \
                    m = xp[best];                                                             \
                    int64_t o = (pl * g.ho + oh) * g.wo + ow;                                 \
                    out[o] = m;                                                               \
                    arg[o] = best;                                                            \
                }                                                                             \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    static void max_backward_##sfx(plane_geom g, real *gx, const real *gout, const int64_t *arg) { \
        _Pragma("omp parallel for if (g.planes * g.h * g.w > 16384)")                         \
        for (int64_t pl = 0; pl < g.planes; pl++) {                                           \
            real *gp = gx + pl * g.h * g.w;                                                   \
            for (int64_t i = 0; i < g.h * g.w; i++) gp[i] = 0;                                \
            for (int64_t o = pl * g.ho * g.wo; o < (pl + 1) * g.ho * g.wo; o++)               \
                gp[arg[o]] += gout[o];                                                        \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    static void avg_forward_##sfx(plane_geom g, real *out, const real *x, int k, int s,      \
                                  int pad) {                                                  \
        real inv = (real)1 / (real)(k * k);                                                   \
        _Pragma("omp parallel for if (g.planes * g.ho * g.wo > 16384)")                       \
        for (int64_t pl = 0; pl < g.planes; pl++) {                                           \
            const real *xp = x + pl * g.h * g.w;                                              \
            for (int64_t oh = 0; oh < g.ho; oh++)                                             \
                for (int64_t ow = 0; ow < g.wo; ow++) {                                       \
                    real acc = 0;                                                             \
                    int64_t h0, h1, w0, w1;                                                   \
                    window(oh, s, pad, k, g.h, &h0, &h1);                                     \
                    window(ow, s, pad, k, g.w, &w0, &w1);                                     \
                    for (int64_t ih = h0; ih < h1; ih++)                                      \
                        for (int64_t iw = w0; iw < w1; iw++) acc += xp[ih * g.w + iw];        \
                    out[(pl * g.ho + oh) * g.wo + ow] = acc * inv;                            \
                }                                                                             \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    static void avg_backward_##sfx(plane_geom g, real *gx, const real *gout, int k, int s,    \
                                   int pad) {                                                 \
        real inv = (real)1 / (real)(k * k);                                                   \
        _Pragma("omp parallel for if (g.planes * g.h * g.w > 16384)")                         \
        for (int64_t pl = 0; pl < g.planes; pl++) {                                           \
            real *gp = gx + pl * g.h * g.w;                                                   \
            for (int64_t i = 0; i < g.h * g.w; i++) gp[i] = 0;                                \
            for (int64_t oh = 0; oh < g.ho; oh++)                                             \
                for (int64_t ow = 0; ow < g.wo; ow++) {                                       \
                    real go = gout[(pl * g.ho + oh) * g.wo + ow] * inv;                       \
                    int64_t h0, h1, w0, w1;                                                   \
                    window(oh, s, pad, k, g.h, &h0, &h1);                                     \
                    window(ow, s, pad, k, g.w, &w0, &w1);                                     \
                    for (int64_t ih = h0; ih < h1; ih++)                                      \
                        for (int64_t iw = w0; iw < w1; iw++) gp[ih * g.w + iw] += go;         \
                }                                                                             \
        }                                                                                     \
    }                                                                                         \


POOL_KERNELS(float, f32)
POOL_KERNELS(double, f64)

#define F32(t) ((float *)(t)->data)
#define F64(t) ((double *)(t)->data)
#define I64(t) ((int64_t *)(t)->data)

void ig_cpu_max_pool2d_forward(const ig_kt *out, const ig_kt *argmax, const ig_kt *x, int kernel,
                               int stride, int padding) {
    plane_geom g = planes_of(x, out);
    if (x->dtype == IG_F64) max_forward_f64(g, F64(out), I64(argmax), F64(x), kernel, stride, padding);
    else max_forward_f32(g, F32(out), I64(argmax), F32(x), kernel, stride, padding);
}

void ig_cpu_max_pool2d_backward(const ig_kt *gx, const ig_kt *gout, const ig_kt *argmax) {
    plane_geom g = planes_of(gx, gout);
    if (gx->dtype == IG_F64) max_backward_f64(g, F64(gx), F64(gout), I64(argmax));
    else max_backward_f32(g, F32(gx), F32(gout), I64(argmax));
}

void ig_cpu_avg_pool2d_forward(const ig_kt *out, const ig_kt *x, int kernel, int stride,
                               int padding) {
    plane_geom g = planes_of(x, out);
    if (x->dtype == IG_F64) avg_forward_f64(g, F64(out), F64(x), kernel, stride, padding);
    else avg_forward_f32(g, F32(out), F32(x), kernel, stride, padding);
}

void ig_cpu_avg_pool2d_backward(const ig_kt *gx, const ig_kt *gout, int kernel, int stride,
                                int padding) {
    plane_geom g = planes_of(gx, gout);
    if (gx->dtype == IG_F64) avg_backward_f64(g, F64(gx), F64(gout), kernel, stride, padding);
    else avg_backward_f32(g, F32(gx), F32(gout), kernel, stride, padding);
}

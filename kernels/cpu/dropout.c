/* kernels/cpu/dropout.c: dropout's mask and scaling. Element i keeps when the
 * Philox uniform at counter offset + i is >= p (kernels/philox.h: the numbers
 * ig_rand gives at that offset), so a mask is regenerated from (seed, offset)
 * alone. x, out, keep (u8) contiguous, one float dtype; outputs written (=). */
#include "kernels/cpu/cpu_conv_attn.h"
#include "kernels/cpu/iter.h"
#include "kernels/philox.h"

static int64_t numel(const ig_kt *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* out = x * keep * scale; with draw, keep is drawn first */
#define DROPOUT(real, sfx)                                                                    \
    static void dropout_##sfx(int64_t n, real *out, uint8_t *keep, const real *x, bool draw,  \
                              uint64_t seed, uint64_t offset, double p, real scale) {         \
        IG_PARALLEL_FOR(i, n, n > IG_PARALLEL_MIN,                                            \
            if (draw) keep[i] = (double)ig_philox_uniform(seed, offset + (uint64_t)i) >= p;   \
            out[i] = keep[i] ? x[i] * scale : 0;);                                            \
    }

DROPOUT(float, f32)
DROPOUT(double, f64)

void ig_cpu_dropout_forward(const ig_kt *out, const ig_kt *keep, const ig_kt *x, uint64_t seed,
                            uint64_t offset, double p, double scale) {
    uint8_t *k = (uint8_t *)keep->data;
    if (x->dtype == IG_F64)
        dropout_f64(numel(x), (double *)out->data, k, (const double *)x->data, true, seed, offset,
                    p, scale);
    else
        dropout_f32(numel(x), (float *)out->data, k, (const float *)x->data, true, seed, offset, p,
                    (float)scale);
}

void ig_cpu_dropout_backward(const ig_kt *gx, const ig_kt *gout, const ig_kt *keep, double scale) {
    uint8_t *k = (uint8_t *)keep->data;
    if (gx->dtype == IG_F64)
        dropout_f64(numel(gx), (double *)gx->data, k, (const double *)gout->data, false, 0, 0, 0,
                    scale);
    else
        dropout_f32(numel(gx), (float *)gx->data, k, (const float *)gout->data, false, 0, 0, 0,
                    (float)scale);
}

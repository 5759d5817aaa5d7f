/* kernels/cpu/fastmath.h: branch-free single-precision math that GCC
 * vectorizes (glibc's expf/tanhf are scalar calls): used by the f32 kernels
 * where a transcendental per element dominates (attention's softmax, GELU).
 * Accuracy is stated per function; the f64 kernels keep libm. */
#ifndef IGNIS_KERNELS_CPU_FASTMATH_H
#define IGNIS_KERNELS_CPU_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) in f32 for x <= ~0 (softmax probabilities, tanh): no overflow
 * handling above 88. Cody-Waite reduction
 * x = n ln2 + r and Cephes' degree-6 polynomial for exp(r), within 2 ulp of
 * expf, branch-free so that the row loops vectorize. x below -87 (and -inf)
 * is taken as -87, so the result is ~2e-38 rather than 0: no effect on sums
 * dominated by exp(0) = 1. The clamp works on the bits, where the floats
 * below -87 down to -inf form one unsigned range, through a mask: a float
 * compare or a select would keep GCC from vectorizing (-ftrapping-math, no
 * unsigned compare in SSE2). */
static inline __attribute__((always_inline)) float ig_exp_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t below = 0u - (uint32_t)(u - 0xC2AE0001u <= 0xFF800000u - 0xC2AE0001u);
    u = (u & ~below) | (0xC2AE0000u & below); /* 0xC2AE0000 = -87.0f, 0xFF800000 = -inf */
    memcpy(&x, &u, sizeof x);
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n */
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|) in (0, 1]: no overflow;
 * absolute error ~1e-7 (relative error grows near 0: use where an absolute
 * bound suffices, as in GELU's 0.5 x (1 + tanh(u))). */
static inline __attribute__((always_inline)) float ig_tanh_f32(float x) {
    float e = ig_exp_f32(-2.0f * fabsf(x));
    return copysignf((1.0f - e) / (1.0f + e), x);
}

#endif

/* kernels/philox.h: Philox4x32-10 (Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3"), shared verbatim by the CPU and CUDA backends so both
 * draw the same numbers for the same (seed, counter). Element i of a fill at
 * generator offset o takes its own counter o + i (lane 0, and lane 1 for the
 * second Box-Muller input), so any element can be drawn independently. */
#ifndef IGNIS_KERNELS_PHILOX_H
#define IGNIS_KERNELS_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define IG_HOSTDEV __host__ __device__ __forceinline__
#else
#define IG_HOSTDEV static inline
#endif

typedef struct ig_philox4 {
    uint32_t v[4];
} ig_philox4;

IG_HOSTDEV uint32_t ig__mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* Four 32-bit random words for (seed, counter). */
IG_HOSTDEV ig_philox4 ig_philox(uint64_t seed, uint64_t counter) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = ig__mulhilo(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = ig__mulhilo(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    ig_philox4 out = {{c0, c1, c2, c3}};
    return out;
}

/* Uniform in [0, 1) with 24 bits (exact in f32). */
IG_HOSTDEV float ig_philox_uniform(uint64_t seed, uint64_t counter) {
    return (float)(ig_philox(seed, counter).v[0] >> 8) * (1.0f / 16777216.0f);
}

/* Standard normal by Box-Muller from lanes 0 and 1 of one counter; computed
 * in double on both sides so CPU and CUDA agree to the last f32 bit. */
IG_HOSTDEV float ig_philox_normal(uint64_t seed, uint64_t counter) {
    ig_philox4 r = ig_philox(seed, counter);
    double u1 = ((double)(r.v[0] >> 8) + 1.0) * (1.0 / 16777217.0); /* (0, 1] */
    double u2 = (double)(r.v[1] >> 8) * (1.0 / 16777216.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif

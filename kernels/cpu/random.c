/* kernels/cpu/random.c: Philox fills, element i (row-major) from counter
 * offset + i, the same mapping as the CUDA kernels. */
#include "kernels/cpu/cpu.h"
#include "kernels/philox.h"

static void fill(const ig_kt *out, uint64_t seed, uint64_t offset, double a, double b,
                 bool normal) {
    int64_t n = 1;
    for (int d = 0; d < out->ndim; d++) n *= out->shape[d];
    /* out is contiguous (the core fills a fresh tensor, then copies). */
    #pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double x = normal ? a + b * (double)ig_philox_normal(seed, offset + (uint64_t)i)
                          : a + (b - a) * (double)ig_philox_uniform(seed, offset + (uint64_t)i);
        if (out->dtype == IG_F64) ((double *)out->data)[i] = x;
        else ((float *)out->data)[i] = (float)x;
    }
}

void ig_cpu_randn(const ig_kt *out, uint64_t seed, uint64_t offset, double mean, double std) {
    fill(out, seed, offset, mean, std, true);
}

void ig_cpu_rand(const ig_kt *out, uint64_t seed, uint64_t offset, double lo, double hi) {
    fill(out, seed, offset, lo, hi, false);
}

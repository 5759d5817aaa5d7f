/* kernels/cuda/random.cu: Philox normal and uniform fills, the CUDA side of
 * kernels/cpu/random.c: element i of the contiguous f32/f64 output (written)
 * is drawn from counter offset + i with the shared kernels/philox.h, and the
 * affine map is rounded step by step (no fused multiply-add), so the numbers
 * are the CPU's, bit for bit. */
#include "kernels/cuda/common.cuh"
#include "kernels/philox.h"

template <typename T>
__global__ void philox_fill(T *out, int64_t n, uint64_t seed, uint64_t offset, double a, double b,
                            bool normal) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t c = offset + (uint64_t)i;
        double x = normal ? __dadd_rn(a, __dmul_rn(b, (double)ig_philox_normal(seed, c)))
                          : __dadd_rn(a, __dmul_rn(b - a, (double)ig_philox_uniform(seed, c)));
        out[i] = (T)x;
    }
}

static ig_status fill(const ig_kt *out, uint64_t seed, uint64_t offset, double a, double b,
                      bool normal) {
    int64_t n = 1;
    for (int d = 0; d < out->ndim; d++) n *= out->shape[d];
    if (n == 0) return IG_OK;
    if (out->dtype == IG_F64)
        philox_fill<<<ig__blocks(n, 256), 256, 0, ig__stream()>>>((double *)out->data, n, seed,
                                                                  offset, a, b, normal);
    else if (out->dtype == IG_F32)
        philox_fill<<<ig__blocks(n, 256), 256, 0, ig__stream()>>>((float *)out->data, n, seed,
                                                                  offset, a, b, normal);
    else
        return ig_set_error(IG_ERR_UNSUPPORTED, "cuda random fill: dtype %s (f32 or f64 only)",
                         ig_dtype_name(out->dtype));
    IG__TRY(cudaGetLastError());
    return IG_OK;
}

extern "C" ig_status ig_cuda_randn(const ig_kt *out, uint64_t seed, uint64_t offset, double mean,
                                   double std) {
    return fill(out, seed, offset, mean, std, true);
}

extern "C" ig_status ig_cuda_rand(const ig_kt *out, uint64_t seed, uint64_t offset, double lo,
                                  double hi) {
    return fill(out, seed, offset, lo, hi, false);
}

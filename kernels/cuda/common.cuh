/* kernels/cuda/common.cuh: what the .cu files share: loads and stores of each
 * dtype, dtype dispatch, strided index arithmetic, block reductions and grid
 * sizes. Every launch in a .cu file is followed by IG__TRY(cudaGetLastError()).
 *
 * Conversions are those of the CPU reference (kernels/cpu/copy.c): a float
 * stored to bf16/f16 is rounded to nearest even (via f32 when it is a double),
 * a float stored to an integer truncates. */
#ifndef IGNIS_KERNELS_CUDA_COMMON_CUH
#define IGNIS_KERNELS_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cpu/iter.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda.h"

/* The device allocator (core/cuda_runtime.c), for scratch memory. Freeing
 * right after the launches that use it is safe: blocks are reused in stream
 * order. */
extern "C" void *ig__cuda_alloc(size_t nbytes, int device);
extern "C" void ig__cuda_free(void *p, size_t nbytes, int device);

static inline cudaStream_t ig__stream(void) { return (cudaStream_t)ig_cuda_current_stream(); }

/* Blocks for a grid-stride loop over n items. */
static inline unsigned ig__blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 65536 ? (b > 0 ? b : 1) : 65536);
}

/* ---- element types: storage type T, arithmetic type io<T>::acc ---- */
template <typename T> struct io {
    typedef T acc; /* f32, f64 and the integers compute in their own type */
    static __device__ __forceinline__ T ld(T x) { return x; }
    static __device__ __forceinline__ T st(T v) { return v; }
};
template <> struct io<__nv_bfloat16> {
    typedef float acc;
    static __device__ __forceinline__ float ld(__nv_bfloat16 x) { return __bfloat162float(x); }
    static __device__ __forceinline__ __nv_bfloat16 st(float v) { return __float2bfloat16_rn(v); }
};
template <> struct io<__half> {
    typedef float acc;
    static __device__ __forceinline__ float ld(__half x) { return __half2float(x); }
    static __device__ __forceinline__ __half st(float v) { return __float2half_rn(v); }
};

/* Element i of a dtype known only at run time, as a double (CPU semantics). */
static __device__ __forceinline__ double ig__ld_any(const char *p, ig_dtype t, int64_t i) {
    switch (t) {
    case IG_F32: return ((const float *)p)[i];
    case IG_F64: return ((const double *)p)[i];
    case IG_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case IG_F16: return __half2float(((const __half *)p)[i]);
    case IG_I32: return ((const int32_t *)p)[i];
    case IG_I64: return (double)((const int64_t *)p)[i];
    case IG_U8: return ((const uint8_t *)p)[i];
    case IG_U16: return ((const uint16_t *)p)[i];
    default: return 0;
    }
}

static __device__ __forceinline__ void ig__st_any(char *p, ig_dtype t, int64_t i, double v) {
    switch (t) {
    case IG_F32: ((float *)p)[i] = (float)v; break;
    case IG_F64: ((double *)p)[i] = v; break;
    case IG_BF16: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn((float)v); break;
    case IG_F16: ((__half *)p)[i] = __float2half_rn((float)v); break;
    case IG_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case IG_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    case IG_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case IG_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    default: break;
    }
}

/* Calls f(T()) with T the storage type of dtype t: the floating types, and
 * the integer ones (i32, i64, u8) when Ints (only then are they compiled). */
template <bool Ints, typename F> static ig_status ig__dispatch(ig_dtype t, const char *what, F f) {
    switch (t) {
    case IG_F32: return f(float());
    case IG_F64: return f(double());
    case IG_BF16: return f(__nv_bfloat16());
    case IG_F16: return f(__half());
    default: break;
    }
    if constexpr (Ints) {
        switch (t) {
        case IG_I32: return f(int32_t());
        case IG_I64: return f(int64_t());
        case IG_U8: return f(uint8_t());
        default: break;
        }
    }
    return ig_set_error(IG_ERR_UNSUPPORTED, "cuda %s: dtype %s is not supported", what,
                     ig_dtype_name(t));
}

/* ---- strided operands ----
 * The host merges dims (ig_iter_init, kernels/cpu/iter.h); a kernel maps a
 * row-major element index to each operand's offset in index type I (int32_t
 * divides faster; see ig__launch_indexed). */
template <typename I, int N>
static __device__ __forceinline__ void ig__offsets(const ig_iter &it, int64_t idx, I *off) {
    I i = (I)idx;
#pragma unroll
    for (int k = 0; k < N; k++) off[k] = 0;
    if (it.ndim == 1) {
#pragma unroll
        for (int k = 0; k < N; k++) off[k] = i * (I)it.strides[k][0];
        return;
    }
    for (int d = it.ndim - 1; d >= 0; d--) {
        I s = (I)it.shape[d], q = i / s, r = i - q * s;
        i = q;
#pragma unroll
        for (int k = 0; k < N; k++) off[k] += r * (I)it.strides[k][d];
    }
}

static inline int64_t ig__iter_numel(const ig_iter &it) {
    int64_t n = 1;
    for (int d = 0; d < it.ndim; d++) n *= it.shape[d];
    return n;
}

/* True when 32-bit arithmetic covers every index and offset of it. */
static inline bool ig__fits32(const ig_iter &it) {
    int64_t lim = INT32_MAX / 2;
    if (ig__iter_numel(it) > lim) return false;
    for (int k = 0; k < it.nops; k++) {
        int64_t span = 0;
        for (int d = 0; d < it.ndim; d++)
            span += (it.shape[d] - 1) * (it.strides[k][d] < 0 ? -it.strides[k][d]
                                                               : it.strides[k][d]);
        if (span > lim) return false;
    }
    return true;
}

/* Runs launch(I()) with I the index type that it needs (int32_t when every
 * index and offset fits, else int64_t), then checks the launch. */
template <typename F> static ig_status ig__launch_indexed(const ig_iter &it, F launch) {
    if (ig__fits32(it)) launch(int32_t());
    else launch(int64_t());
    IG__TRY(cudaGetLastError());
    return IG_OK;
}

/* True when it covers contiguous memory in every operand. */
static inline bool ig__iter_contiguous(const ig_iter &it) {
    for (int k = 0; k < it.nops; k++)
        if (it.ndim != 1 || (it.strides[k][0] != 1 && it.shape[0] > 1)) return false;
    return true;
}

/* ---- reductions over a block (blockDim.x a multiple of 32, at most 1024);
 * every thread gets the result ---- */
template <typename A> struct ig__sum_op {
    static __device__ __forceinline__ A id() { return 0; }
    static __device__ __forceinline__ A f(A a, A b) { return a + b; }
};
template <typename A> struct ig__max_op {
    static __device__ __forceinline__ A id() { return -INFINITY; }
    static __device__ __forceinline__ A f(A a, A b) { return a > b ? a : b; }
};

template <typename Op, typename A> static __device__ __forceinline__ A ig__warp_reduce(A v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = Op::f(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

template <typename Op, typename A> static __device__ A ig__block_reduce(A v) {
    __shared__ A part[32];
    v = ig__warp_reduce<Op>(v);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* part may still be read by a previous reduction */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? part[lane] : Op::id();
    return ig__warp_reduce<Op>(v);
}

/* Threads for a block that walks a row of `cols`: a power of two in [32, 1024]. */
static inline int ig__row_threads(int64_t cols) {
    int t = 32;
    while (t < 1024 && t < cols) t *= 2;
    return t;
}

#endif

/* kernels/cuda/copy.cu: strided copies with dtype conversion, and fills; the
 * CUDA side of kernels/cpu/copy.c, with the same conversions. dst is written
 * (=); src strides are already broadcast to dst's shape. A same-dtype copy of
 * contiguous memory is a cudaMemcpyAsync, a zero fill of it a cudaMemsetAsync;
 * other same-dtype copies move raw elements, conversions go through double. */
#include <string.h>

#include "kernels/cuda/common.cuh"

template <typename U, typename I>
__global__ void copy_raw(ig_iter it, int64_t n, U *dst, const U *src) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        I off[2];
        ig__offsets<I, 2>(it, i, off);
        dst[off[0]] = src[off[1]];
    }
}

template <typename I>
__global__ void copy_convert(ig_iter it, int64_t n, char *dst, ig_dtype dt, const char *src,
                             ig_dtype st) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        I off[2];
        ig__offsets<I, 2>(it, i, off);
        ig__st_any(dst, dt, off[0], ig__ld_any(src, st, off[1]));
    }
}

template <typename U, typename I>
__global__ void fill_raw(ig_iter it, int64_t n, U *dst, U v) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        I off[1];
        ig__offsets<I, 1>(it, i, off);
        dst[off[0]] = v;
    }
}

template <typename U>
static ig_status launch_copy_raw(const ig_iter &it, int64_t n, void *dst, const void *src) {
    return ig__launch_indexed(it, [&](auto index) {
        copy_raw<U, decltype(index)><<<ig__blocks(n, 256), 256, 0, ig__stream()>>>(
            it, n, (U *)dst, (const U *)src);
    });
}

template <typename U> static ig_status launch_fill(const ig_iter &it, int64_t n, void *dst, U v) {
    return ig__launch_indexed(it, [&](auto index) {
        fill_raw<U, decltype(index)><<<ig__blocks(n, 256), 256, 0, ig__stream()>>>(it, n,
                                                                                 (U *)dst, v);
    });
}

extern "C" ig_status ig_cuda_copy(const ig_kt *dst, const ig_kt *src) {
    const int64_t *strides[2] = {dst->strides, src->strides};
    ig_iter it;
    ig_iter_init(&it, dst->ndim, dst->shape, 2, strides);
    int64_t n = ig__iter_numel(it);
    if (n == 0) return IG_OK;
    size_t esz = ig_dtype_size(dst->dtype);
    if (dst->dtype == src->dtype) {
        if (ig__iter_contiguous(it)) {
            IG__TRY(cudaMemcpyAsync(dst->data, src->data, (size_t)n * esz,
                                    cudaMemcpyDeviceToDevice, ig__stream()));
            return IG_OK;
        }
        switch (esz) {
        case 8: return launch_copy_raw<uint64_t>(it, n, dst->data, src->data);
        case 4: return launch_copy_raw<uint32_t>(it, n, dst->data, src->data);
        case 2: return launch_copy_raw<uint16_t>(it, n, dst->data, src->data);
        default: return launch_copy_raw<uint8_t>(it, n, dst->data, src->data);
        }
    }
    return ig__launch_indexed(it, [&](auto index) {
        copy_convert<decltype(index)><<<ig__blocks(n, 256), 256, 0, ig__stream()>>>(
            it, n, dst->data, dst->dtype, src->data, src->dtype);
    });
}

/* The bits of v stored as dtype t, as the CPU stores it. */
static uint64_t stored_bits(ig_dtype t, double v) {
    uint64_t bits = 0;
    union {
        float f;
        double d;
        uint16_t h;
        int32_t i32;
        int64_t i64;
        uint8_t u8;
    } u;
    switch (t) {
    case IG_F32: u.f = (float)v; break;
    case IG_F64: u.d = v; break;
    case IG_BF16: u.h = ig_f32_to_bf16((float)v); break;
    case IG_F16: u.h = ig_f32_to_f16((float)v); break;
    case IG_I32: u.i32 = (int32_t)v; break;
    case IG_I64: u.i64 = (int64_t)v; break;
    case IG_U8: u.u8 = (uint8_t)v; break;
    case IG_U16: u.h = (uint16_t)v; break;
    default: break;
    }
    memcpy(&bits, &u, ig_dtype_size(t));
    return bits;
}

extern "C" ig_status ig_cuda_fill(const ig_kt *dst, double v) {
    const int64_t *strides[1] = {dst->strides};
    ig_iter it;
    ig_iter_init(&it, dst->ndim, dst->shape, 1, strides);
    int64_t n = ig__iter_numel(it);
    if (n == 0) return IG_OK;
    size_t esz = ig_dtype_size(dst->dtype);
    uint64_t bits = stored_bits(dst->dtype, v);
    if (bits == 0 && ig__iter_contiguous(it)) {
        IG__TRY(cudaMemsetAsync(dst->data, 0, (size_t)n * esz, ig__stream()));
        return IG_OK;
    }
    switch (esz) {
    case 8: return launch_fill<uint64_t>(it, n, dst->data, bits);
    case 4: return launch_fill<uint32_t>(it, n, dst->data, (uint32_t)bits);
    case 2: return launch_fill<uint16_t>(it, n, dst->data, (uint16_t)bits);
    default: return launch_fill<uint8_t>(it, n, dst->data, (uint8_t)bits);
    }
}

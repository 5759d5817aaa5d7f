/* kernels/cuda/binary.cu: out = a OP b with broadcasting (a and b strides
 * already broadcast to out's shape; any strides), the CUDA side of
 * kernels/cpu/binary.c. out is written (=). All three share one dtype: f32,
 * f64, bf16, f16 (computed in f32 and rounded once), i32, i64, u8. Comparisons
 * give 1 or 0 in that dtype. pow computes in double, as on the CPU. */
#include "kernels/cuda/common.cuh"

template <typename A> static __device__ __forceinline__ A apply(ig_binop op, A x, A y) {
    switch (op) {
    case IG_BIN_ADD: return x + y;
    case IG_BIN_SUB: return x - y;
    case IG_BIN_MUL: return x * y;
    case IG_BIN_DIV: return x / y;
    case IG_BIN_POW: return (A)pow((double)x, (double)y);
    case IG_BIN_MAX: return x > y ? x : y;
    case IG_BIN_MIN: return x < y ? x : y;
    case IG_BIN_EQ: return x == y;
    case IG_BIN_GT: return x > y;
    case IG_BIN_LT: return x < y;
    default: return 0;
    }
}

template <typename T, typename I>
__global__ void binary_kernel(ig_binop op, ig_iter it, int64_t n, T *out, const T *a, const T *b) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        I off[3];
        ig__offsets<I, 3>(it, i, off);
        out[off[0]] = io<T>::st(apply(op, io<T>::ld(a[off[1]]), io<T>::ld(b[off[2]])));
    }
}

extern "C" ig_status ig_cuda_binary(ig_binop op, const ig_kt *out, const ig_kt *a, const ig_kt *b) {
    const int64_t *strides[3] = {out->strides, a->strides, b->strides};
    ig_iter it;
    ig_iter_init(&it, out->ndim, out->shape, 3, strides);
    int64_t n = ig__iter_numel(it);
    if (n == 0) return IG_OK;
    return ig__dispatch<true>(out->dtype, "binary", [&](auto tag) {
        typedef decltype(tag) T;
        return ig__launch_indexed(it, [&](auto index) {
            binary_kernel<T, decltype(index)><<<ig__blocks(n, 256), 256, 0, ig__stream()>>>(
                op, it, n, (T *)out->data, (const T *)a->data, (const T *)b->data);
        });
    });
}

/* kernels/cuda/unary.cu: elementwise unary ops and their backward, the CUDA
 * side of kernels/cpu/unary.c, from the same formulas (kernels/unary_math.h,
 * computed in double and rounded once into the output's dtype). Operands of
 * one shape with any strides (gout may be broadcast); outputs written (=).
 * dtypes f32, f64, bf16, f16. */
#include "kernels/cuda/common.cuh"
#include "kernels/unary_math.h"

template <typename T, typename I>
__global__ void unary_kernel(ig_unop op, ig_iter it, int64_t n, T *out, const T *x, double alpha) {
    typedef typename io<T>::acc A;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        I off[2];
        ig__offsets<I, 2>(it, i, off);
        out[off[0]] = io<T>::st((A)ig_unary_f(op, (double)io<T>::ld(x[off[1]]), alpha));
    }
}

/* y, when given, has x's strides, so it is read at x's offsets. */
template <typename T, typename I>
__global__ void unary_backward_kernel(ig_unop op, ig_iter it, int64_t n, T *gin, const T *gout,
                                      const T *x, const T *y, double alpha) {
    typedef typename io<T>::acc A;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        I off[3];
        ig__offsets<I, 3>(it, i, off);
        double xv = (double)io<T>::ld(x[off[2]]);
        double yv = y ? (double)io<T>::ld(y[off[2]]) : ig_unary_f(op, xv, alpha);
        double g = (double)io<T>::ld(gout[off[1]]);
        gin[off[0]] = io<T>::st((A)(g * ig_unary_df(op, xv, yv, alpha)));
    }
}

extern "C" ig_status ig_cuda_unary(ig_unop op, const ig_kt *out, const ig_kt *x, double alpha) {
    const int64_t *strides[2] = {out->strides, x->strides};
    ig_iter it;
    ig_iter_init(&it, out->ndim, out->shape, 2, strides);
    int64_t n = ig__iter_numel(it);
    if (n == 0) return IG_OK;
    return ig__dispatch<false>(out->dtype, "unary", [&](auto tag) {
        typedef decltype(tag) T;
        return ig__launch_indexed(it, [&](auto index) {
            unary_kernel<T, decltype(index)><<<ig__blocks(n, 256), 256, 0, ig__stream()>>>(
                op, it, n, (T *)out->data, (const T *)x->data, alpha);
        });
    });
}

extern "C" ig_status ig_cuda_unary_backward(ig_unop op, const ig_kt *gin, const ig_kt *gout,
                                            const ig_kt *x, const ig_kt *y, double alpha) {
    /* y is used only with x's strides, and not when it was rounded to 16 bits
     * (recomputing f(x) in double is more exact) */
    if (y && (x->dtype == IG_BF16 || x->dtype == IG_F16)) y = NULL;
    for (int d = 0; y && d < x->ndim; d++)
        if (y->strides[d] != x->strides[d]) y = NULL;
    const int64_t *strides[3] = {gin->strides, gout->strides, x->strides};
    ig_iter it;
    ig_iter_init(&it, gin->ndim, gin->shape, 3, strides);
    int64_t n = ig__iter_numel(it);
    if (n == 0) return IG_OK;
    return ig__dispatch<false>(gin->dtype, "unary_backward", [&](auto tag) {
        typedef decltype(tag) T;
        const T *py = y ? (const T *)y->data : NULL;
        return ig__launch_indexed(it, [&](auto index) {
            unary_backward_kernel<T, decltype(index)><<<ig__blocks(n, 256), 256, 0, ig__stream()>>>(
                op, it, n, (T *)gin->data, (const T *)gout->data, (const T *)x->data, py, alpha);
        });
    });
}

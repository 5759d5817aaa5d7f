/* kernels/cuda/softmax.cu: softmax and log_softmax over the last dim of
 * contiguous (rows, cols) data, forward and backward, the CUDA side of
 * kernels/cpu/softmax.c. One block per row; f32, bf16 and f16 compute in f32,
 * f64 in f64. Outputs written (=).
 *   forward:  y = exp(x - max) / sum, or x - max - log(sum)
 *   backward: gin = y * (gout - sum(gout * y)) (softmax), or
 *             gin = gout - exp(y) * sum(gout) (log_softmax, y = log-probs) */
#include "kernels/cuda/common.cuh"

template <typename T>
__global__ void softmax_forward_kernel(T *out, const T *in, int64_t cols, bool log) {
    typedef typename io<T>::acc A;
    const T *x = in + blockIdx.x * cols;
    T *y = out + blockIdx.x * cols;
    A m = -INFINITY;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmax(m, io<T>::ld(x[c]));
    m = ig__block_reduce<ig__max_op<A>>(m);
    A s = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += exp(io<T>::ld(x[c]) - m);
    s = ig__block_reduce<ig__sum_op<A>>(s);
    A ls = ::log(s), inv = 1 / s;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        A v = io<T>::ld(x[c]) - m;
        y[c] = io<T>::st(log ? v - ls : exp(v) * inv);
    }
}

template <typename T>
__global__ void softmax_backward_kernel(T *gin, const T *gout, const T *yin, int64_t cols,
                                        bool log) {
    typedef typename io<T>::acc A;
    int64_t base = blockIdx.x * cols;
    const T *g = gout + base, *y = yin + base;
    A s = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        s += log ? io<T>::ld(g[c]) : io<T>::ld(g[c]) * io<T>::ld(y[c]);
    s = ig__block_reduce<ig__sum_op<A>>(s);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        A gv = io<T>::ld(g[c]), yv = io<T>::ld(y[c]);
        gin[base + c] = io<T>::st(log ? gv - exp(yv) * s : yv * (gv - s));
    }
}

static ig_status check_rows(const char *what, int64_t rows) {
    if (rows <= INT32_MAX) return IG_OK;
    return ig_set_error(IG_ERR_UNSUPPORTED, "cuda %s: %lld rows are too many", what, (long long)rows);
}

extern "C" ig_status ig_cuda_softmax_forward(const ig_kt *out, const ig_kt *in, int64_t rows,
                                             int64_t cols, bool log) {
    if (rows == 0 || cols == 0) return IG_OK;
    ig_status st = check_rows("softmax", rows);
    if (st != IG_OK) return st;
    return ig__dispatch<false>(in->dtype, "softmax", [&](auto tag) {
        typedef decltype(tag) T;
        softmax_forward_kernel<<<(unsigned)rows, ig__row_threads(cols), 0, ig__stream()>>>(
            (T *)out->data, (const T *)in->data, cols, log);
        IG__TRY(cudaGetLastError());
        return IG_OK;
    });
}

extern "C" ig_status ig_cuda_softmax_backward(const ig_kt *gin, const ig_kt *gout, const ig_kt *y,
                                              int64_t rows, int64_t cols, bool log) {
    if (rows == 0 || cols == 0) return IG_OK;
    ig_status st = check_rows("softmax_backward", rows);
    if (st != IG_OK) return st;
    return ig__dispatch<false>(y->dtype, "softmax_backward", [&](auto tag) {
        typedef decltype(tag) T;
        softmax_backward_kernel<<<(unsigned)rows, ig__row_threads(cols), 0, ig__stream()>>>(
            (T *)gin->data, (const T *)gout->data, (const T *)y->data, cols, log);
        IG__TRY(cudaGetLastError());
        return IG_OK;
    });
}

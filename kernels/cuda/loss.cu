/* kernels/cuda/loss.cu: cross-entropy over contiguous (rows, cols) logits
 * with targets (rows) of i64 (or i32), the CUDA side of kernels/cpu/loss.c.
 * One block per row; f32/bf16/f16 logits compute in f32, f64 in f64. s is the
 * label smoothing; rows whose target is ignore_index get loss 0 and gradient 0;
 * a target outside [0, cols) gives a NaN loss.
 *   forward:  losses[r] = -(1 - s) logp[r, t] - (s / cols) sum_c logp[r, c]
 *             (losses f32, or the dtype of the losses buffer), written (=)
 *   backward: glogits[r, c] = gloss[r] (softmax[r, c] - (1 - s) [c == t] - s / cols)
 *             written (=) in the logits' dtype; gloss (rows) of any stride */
#include "kernels/cuda/common.cuh"

/* max and log-sum-exp of row x, on every thread of the block */
template <typename T, typename A>
static __device__ void row_stats(const T *x, int64_t cols, A *max, A *lse) {
    A m = -INFINITY;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmax(m, io<T>::ld(x[c]));
    m = ig__block_reduce<ig__max_op<A>>(m);
    A s = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += exp(io<T>::ld(x[c]) - m);
    s = ig__block_reduce<ig__sum_op<A>>(s);
    *max = m;
    *lse = m + log(s);
}

template <typename T>
__global__ void ce_forward_kernel(char *losses, ig_dtype lt, const T *logits, const char *targets,
                                  ig_dtype tt, int64_t cols, int64_t ignore, double smoothing) {
    typedef typename io<T>::acc A;
    int64_t r = blockIdx.x;
    int64_t t = (int64_t)ig__ld_any(targets, tt, r);
    if (t == ignore) { /* uniform over the block */
        if (threadIdx.x == 0) ig__st_any(losses, lt, r, 0.0);
        return;
    }
    const T *x = logits + r * cols;
    A m, lse;
    row_stats(x, cols, &m, &lse);
    A sx = 0;
    if (smoothing != 0) {
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sx += io<T>::ld(x[c]);
        sx = ig__block_reduce<ig__sum_op<A>>(sx);
    }
    if (threadIdx.x != 0) return;
    A s = (A)smoothing;
    A xt = t >= 0 && t < cols ? io<T>::ld(x[t]) : (A)NAN;
    A loss = -(1 - s) * (xt - lse);
    if (smoothing != 0) loss -= s / (A)cols * (sx - (A)cols * lse);
    ig__st_any(losses, lt, r, (double)loss);
}

template <typename T>
__global__ void ce_backward_kernel(T *glogits, const T *logits, const char *targets, ig_dtype tt,
                                   const char *gloss, ig_dtype gt, int64_t gstride, int64_t cols,
                                   int64_t ignore, double smoothing) {
    typedef typename io<T>::acc A;
    int64_t r = blockIdx.x;
    int64_t t = (int64_t)ig__ld_any(targets, tt, r);
    T *gx = glogits + r * cols;
    if (t == ignore) {
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) gx[c] = io<T>::st((A)0);
        return;
    }
    const T *x = logits + r * cols;
    A m, lse;
    row_stats(x, cols, &m, &lse);
    A g = (A)ig__ld_any(gloss, gt, r * gstride), s = (A)smoothing, u = s / (A)cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        A p = exp(io<T>::ld(x[c]) - lse);
        gx[c] = io<T>::st(g * (p - (c == t ? 1 - s : (A)0) - u));
    }
}

static ig_status check_rows(int64_t rows) {
    if (rows <= INT32_MAX) return IG_OK;
    return ig_set_error(IG_ERR_UNSUPPORTED, "cuda cross_entropy: %lld rows are too many",
                     (long long)rows);
}

extern "C" ig_status ig_cuda_cross_entropy_forward(const ig_kt *losses, const ig_kt *logits,
                                                   const ig_kt *targets, int64_t rows,
                                                   int64_t cols, int64_t ignore_index,
                                                   double smoothing) {
    if (rows == 0) return IG_OK;
    ig_status st = check_rows(rows);
    if (st != IG_OK) return st;
    return ig__dispatch<false>(logits->dtype, "cross_entropy", [&](auto tag) {
        typedef decltype(tag) T;
        ce_forward_kernel<<<(unsigned)rows, ig__row_threads(cols), 0, ig__stream()>>>(
            losses->data, losses->dtype, (const T *)logits->data, targets->data, targets->dtype,
            cols, ignore_index, smoothing);
        IG__TRY(cudaGetLastError());
        return IG_OK;
    });
}

extern "C" ig_status ig_cuda_cross_entropy_backward(const ig_kt *glogits, const ig_kt *logits,
                                                    const ig_kt *targets, const ig_kt *gloss,
                                                    int64_t rows, int64_t cols,
                                                    int64_t ignore_index, double smoothing) {
    if (rows == 0 || cols == 0) return IG_OK;
    ig_status st = check_rows(rows);
    if (st != IG_OK) return st;
    int64_t gstride = gloss->ndim ? gloss->strides[gloss->ndim - 1] : 0; /* 0: one gradient */
    return ig__dispatch<false>(logits->dtype, "cross_entropy_backward", [&](auto tag) {
        typedef decltype(tag) T;
        ce_backward_kernel<<<(unsigned)rows, ig__row_threads(cols), 0, ig__stream()>>>(
            (T *)glogits->data, (const T *)logits->data, targets->data, targets->dtype,
            gloss->data, gloss->dtype, gstride, cols, ignore_index, smoothing);
        IG__TRY(cudaGetLastError());
        return IG_OK;
    });
}

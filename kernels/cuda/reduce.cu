/* kernels/cuda/reduce.cu: out[r] = scale * sum_c in[r, c] over contiguous
 * (rows, cols) data into contiguous out (rows), written (=); the CUDA side of
 * kernels/cpu/reduce.c. Sums accumulate in double whatever the dtype (f32,
 * f64, bf16, f16). One block sums a row; when there are too few rows to fill
 * the GPU, blocks sum chunks of a row into a double scratch buffer and a second
 * pass adds the chunks. */
#include "kernels/cuda/common.cuh"

/* Block b sums in[row, part*chunk : (part+1)*chunk) with row = b / parts,
 * part = b % parts, and writes scale * sum to out[b]. */
template <typename T, typename O>
__global__ void sum_kernel(O *out, const T *in, int64_t cols, int64_t chunk, int64_t parts,
                           double scale) {
    int64_t row = blockIdx.x / parts, part = blockIdx.x % parts;
    int64_t lo = part * chunk, hi = min(lo + chunk, cols);
    const T *x = in + row * cols;
    double acc = 0;
    for (int64_t c = lo + threadIdx.x; c < hi; c += blockDim.x) acc += (double)io<T>::ld(x[c]);
    acc = ig__block_reduce<ig__sum_op<double>>(acc);
    if (threadIdx.x == 0) out[blockIdx.x] = io<O>::st((typename io<O>::acc)(acc * scale));
}

template <typename T>
static ig_status sum_rows(T *out, const T *in, int64_t rows, int64_t cols, double scale) {
    int dev, sms;
    IG__TRY(cudaGetDevice(&dev));
    IG__TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int64_t chunk = 16384;
    int64_t parts = rows < 2 * sms && cols > 2 * chunk ? (cols + chunk - 1) / chunk : 1;
    if (rows * parts > INT32_MAX)
        return ig_set_error(IG_ERR_UNSUPPORTED, "cuda sum_rows: %lld rows are too many",
                         (long long)rows);
    if (parts == 1) {
        sum_kernel<<<(unsigned)rows, ig__row_threads(cols), 0, ig__stream()>>>(out, in, cols, cols,
                                                                             1, scale);
        IG__TRY(cudaGetLastError());
        return IG_OK;
    }
    size_t bytes = sizeof(double) * (size_t)(rows * parts);
    double *partial = (double *)ig__cuda_alloc(bytes, dev);
    if (!partial) return ig_last_status();
    sum_kernel<<<(unsigned)(rows * parts), 1024, 0, ig__stream()>>>(partial, in, cols, chunk,
                                                                     parts, 1.0);
    ig_status st = IG__CK(cudaGetLastError());
    if (st == IG_OK) {
        sum_kernel<<<(unsigned)rows, ig__row_threads(parts), 0, ig__stream()>>>(
            out, (const double *)partial, parts, parts, 1, scale);
        st = IG__CK(cudaGetLastError());
    }
    ig__cuda_free(partial, bytes, dev); /* after the kernels, in stream order */
    return st;
}

extern "C" ig_status ig_cuda_sum_rows(const ig_kt *out, const ig_kt *in, int64_t rows,
                                      int64_t cols, double scale) {
    if (rows == 0) return IG_OK;
    return ig__dispatch<false>(in->dtype, "sum_rows", [&](auto tag) {
        typedef decltype(tag) T;
        return sum_rows<T>((T *)out->data, (const T *)in->data, rows, cols, scale);
    });
}

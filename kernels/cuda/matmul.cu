/* kernels/cuda/matmul.cu: the batched GEMM of kernels/kernels.h on cuBLAS
 * (cublasGemmStridedBatchedEx). The contract is row-major and cuBLAS is
 * column-major: a row-major (m, n) C is a column-major (n, m) C^T, so
 * C^T = op(B)^T op(A)^T is computed with the operands swapped.
 * f32 accumulates in true f32 (CUBLAS_COMPUTE_32F, never TF32: results match
 * the CPU's); bf16 and f16 accumulate in f32; f64 in f64. C is written as
 * alpha * op(A) op(B) + beta * C. One cuBLAS handle per thread and device,
 * bound to the thread's current stream at each call. */
#include <cublas_v2.h>

#include "kernels/cuda/common.cuh"

#define MAX_DEVICES 16

static thread_local cublasHandle_t handles[MAX_DEVICES];
static thread_local cudaStream_t bound[MAX_DEVICES];

static ig_status handle_for_stream(cublasHandle_t *h) {
    int dev;
    IG__TRY(cudaGetDevice(&dev));
    if (dev >= MAX_DEVICES) return ig_set_error(IG_ERR_NO_DEVICE, "cuda gemm: device %d", dev);
    if (!handles[dev]) IG__TRY(cublasCreate(&handles[dev]));
    cudaStream_t s = ig__stream();
    if (bound[dev] != s) {
        IG__TRY(cublasSetStream(handles[dev], s));
        bound[dev] = s;
    }
    *h = handles[dev];
    return IG_OK;
}

extern "C" ig_status ig_cuda_gemm(const ig_gemm_args *g) {
    if (g->m == 0 || g->n == 0 || g->batch == 0) return IG_OK;
    int64_t dims[] = {g->m, g->n, g->k, g->batch, g->lda, g->ldb, g->ldc};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i] > INT32_MAX)
            return ig_set_error(IG_ERR_UNSUPPORTED,
                             "cuda gemm: size %lld is over the int range of cuBLAS",
                             (long long)dims[i]);
    cudaDataType_t t;
    cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
    switch (g->dtype) {
    case IG_F32: t = CUDA_R_32F; break;
    case IG_BF16: t = CUDA_R_16BF; break;
    case IG_F16: t = CUDA_R_16F; break;
    case IG_F64: t = CUDA_R_64F, ct = CUBLAS_COMPUTE_64F; break;
    default:
        return ig_set_error(IG_ERR_UNSUPPORTED, "cuda gemm: dtype %s", ig_dtype_name(g->dtype));
    }
    float af = (float)g->alpha, bf = (float)g->beta;
    const void *alpha = ct == CUBLAS_COMPUTE_64F ? (const void *)&g->alpha : (const void *)&af;
    const void *beta = ct == CUBLAS_COMPUTE_64F ? (const void *)&g->beta : (const void *)&bf;
    cublasHandle_t h = NULL;
    ig_status st = handle_for_stream(&h);
    if (st != IG_OK) return st;
    IG__TRY(cublasGemmStridedBatchedEx(
        h, g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
        (int)g->n, (int)g->m, (int)g->k, alpha, g->b, t, (int)g->ldb, g->stride_b, g->a, t,
        (int)g->lda, g->stride_a, beta, g->c, t, (int)g->ldc, g->stride_c, (int)g->batch, ct,
        CUBLAS_GEMM_DEFAULT));
    return IG_OK;
}

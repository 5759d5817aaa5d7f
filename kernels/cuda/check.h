/* kernels/cuda/check.h: the one check that every CUDA runtime and cuBLAS call
 * of ignis goes through, for C (core/cuda_runtime.c) and CUDA C++ (.cu).
 *
 *   IG__CK(call)   evaluates call; IG_OK, or the failure turned into
 *                  ig_set_error(IG_ERR_CUDA or IG_ERR_CUBLAS,
 *                            "file:line: call: <library's message>")
 *   IG__TRY(call)  the same, returning the failure from the enclosing function
 *
 * After a kernel launch, IG__TRY(cudaGetLastError()) reports a bad launch.
 * The failing call's error is consumed (cudaGetLastError), so one failure is
 * reported once; a sticky error (a crashed kernel) keeps failing later calls. */
#ifndef IGNIS_KERNELS_CUDA_CHECK_H
#define IGNIS_KERNELS_CUDA_CHECK_H

#include <cuda_runtime_api.h>

#include "ignis/status.h"

#ifdef __cplusplus
#include <cublas_api.h>
#endif

static inline ig_status ig__ck(cudaError_t e, const char *file, int line, const char *call) {
    if (e == cudaSuccess) return IG_OK;
    (void)cudaGetLastError();
    return ig_set_error(IG_ERR_CUDA, "%s:%d: %s: %s", file, line, call, cudaGetErrorString(e));
}
#ifdef __cplusplus
static inline ig_status ig__ck(cublasStatus_t e, const char *file, int line, const char *call) {
    if (e == CUBLAS_STATUS_SUCCESS) return IG_OK;
    return ig_set_error(IG_ERR_CUBLAS, "%s:%d: %s: %s", file, line, call, cublasGetStatusString(e));
}
#endif

#define IG__CK(call) ig__ck((call), __FILE__, __LINE__, #call)
#define IG__TRY(call)                                                         \
    do {                                                                      \
        ig_status ig__st = IG__CK(call);                                      \
        if (ig__st != IG_OK) return ig__st;                                   \
    } while (0)

#endif

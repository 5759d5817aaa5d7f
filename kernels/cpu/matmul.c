/* kernels/cpu/matmul.c: the batched GEMM of kernels.h on OpenBLAS, one
 * cblas_sgemm / cblas_dgemm per batch matrix (C written with beta as given:
 * = when beta is 0, accumulated when 1). OpenBLAS threads each call. */
#include <cblas.h>

#include "kernels/cpu/cpu.h"

void ig_cpu_gemm(const ig_gemm_args *g) {
    enum CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = g->trans_b ? CblasTrans : CblasNoTrans;
    for (int64_t i = 0; i < g->batch; i++) {
        if (g->dtype == IG_F64) {
            cblas_dgemm(CblasRowMajor, ta, tb, (int)g->m, (int)g->n, (int)g->k, g->alpha,
                        (const double *)g->a + i * g->stride_a, (int)g->lda,
                        (const double *)g->b + i * g->stride_b, (int)g->ldb, g->beta,
                        (double *)g->c + i * g->stride_c, (int)g->ldc);
        } else {
            cblas_sgemm(CblasRowMajor, ta, tb, (int)g->m, (int)g->n, (int)g->k, (float)g->alpha,
                        (const float *)g->a + i * g->stride_a, (int)g->lda,
                        (const float *)g->b + i * g->stride_b, (int)g->ldb, (float)g->beta,
                        (float *)g->c + i * g->stride_c, (int)g->ldc);
        }
    }
}

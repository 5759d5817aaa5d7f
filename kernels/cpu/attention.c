/* kernels/cpu/attention.c: fused scaled-dot-product attention on the CPU.
 * q, k, v, out, dq, dk, dv (B, H, T, D), one float dtype, each with its last
 * dim contiguous and any strides otherwise (a head is a (T, D) matrix with a
 * row stride, as BLAS takes it); lse (B, H, T) contiguous. All outputs
 * written (=).
 *
 * Heads run in parallel (OpenMP over B * H), each GEMM single-threaded.
 * Within a head, query rows go in blocks of ROWS: the block's scores
 * S = scale Q_blk K^T come from one GEMM, restricted under causal masking to
 * the keys 0 .. last row of the block, so the masked upper triangle is mostly
 * never computed; probabilities past a row's last key are set to 0. Backward
 * recomputes P = exp(S - lse) block by block and never holds a T x T matrix:
 *   dV += P^T dO,  dP = dO V^T,  dS = P (dP - rowsum(dO O)),
 *   dQ = scale dS K,  dK += scale dS^T Q. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_conv_attn.h"
#include "kernels/cpu/fastmath.h"

enum { ROWS = 64 }; /* query rows per block */

/* The row work of one block of r rows of width w, row i of which sees keys
 * 0 .. n_i - 1 (n_i = w, or first + i + 1 under causal masking):
 *   softmax_rows: s <- softmax over each row's keys, 0 past them; lse[i] set;
 *   exp_rows:     s <- exp(s - lse[i]) over the keys, 0 past them;
 *   ds_rows:      dp <- p (dp - d), d[i] = sum_c dout[i, c] out[i, c]. */
#define ROW_KERNELS(real, sfx, EXP, LOG, CLONES)                                                       \
    CLONES static void softmax_rows_##sfx(real *s, int64_t r, int64_t w, int64_t first, bool causal,  \
                                   real *lse) {                                                \
        for (int64_t i = 0; i < r; i++) {                                                      \
            real *row = s + i * w, m[4] = {row[0], row[0], row[0], row[0]}, sum = 0;           \
            int64_t n = causal ? first + i + 1 : w, j = 0;                                     \
            for (; j + 4 <= n; j += 4) /* four chains: no reduction through memory */          \
                for (int c = 0; c < 4; c++) m[c] = row[j + c] > m[c] ? row[j + c] : m[c];      \
            for (; j < n; j++) m[0] = row[j] > m[0] ? row[j] : m[0];                           \
            m[0] = m[0] > m[1] ? m[0] : m[1];                                                  \
            m[2] = m[2] > m[3] ? m[2] : m[3];                                                  \
            m[0] = m[0] > m[2] ? m[0] : m[2];                                                  \
            _Pragma("omp simd reduction(+ : sum)")                                             \
            for (int64_t j = 0; j < n; j++) {                                                  \
                row[j] = EXP(row[j] - m[0]);                                                   \
                sum += row[j];                                                                 \
            }                                                                                  \
            real inv = 1 / sum;                                                                \
            _Pragma("omp simd")                                                                \
            for (int64_t j = 0; j < n; j++) row[j] *= inv;                                     \
            for (int64_t j = n; j < w; j++) row[j] = 0;                                        \
            lse[i] = m[0] + LOG(sum);                                                          \
        }                                                                                      \
    }                                                                                          \
    CLONES static void exp_rows_##sfx(real *s, int64_t r, int64_t w, int64_t first, bool causal,      \
                               const real *lse) {                                              \
        for (int64_t i = 0; i < r; i++) {                                                      \
            real *row = s + i * w, l = lse[i];                                                 \
            int64_t n = causal ? first + i + 1 : w;                                            \
            _Pragma("omp simd")                                                                \
            for (int64_t j = 0; j < n; j++) row[j] = EXP(row[j] - l);                          \
            for (int64_t j = n; j < w; j++) row[j] = 0;                                        \
        }                                                                                      \
    }                                                                                          \
    CLONES static void ds_rows_##sfx(real *dp, const real *p, int64_t r, int64_t w,            \
                                     const real *dout, int64_t ldg, const real *out,            \
                                     int64_t ldo, int64_t D) {                                  \
        for (int64_t i = 0; i < r; i++) {                                                      \
            real d = 0;                                                                        \
            _Pragma("omp simd reduction(+ : d)")                                               \
            for (int64_t c = 0; c < D; c++) d += dout[i * ldg + c] * out[i * ldo + c];         \
            _Pragma("omp simd")                                                                \
            for (int64_t j = 0; j < w; j++) dp[i * w + j] = p[i * w + j] * (dp[i * w + j] - d); \
        }                                                                                      \
    }

ROW_KERNELS(float, f32, ig_exp_f32, logf, __attribute__((target_clones("avx2", "default"))))
ROW_KERNELS(double, f64, exp, log, )

/* One call's geometry. */
typedef struct attn {
    ig_dtype dt;
    size_t es; /* element size */
    int64_t T, D, H;
    bool causal;
    double scale;
} attn;

/* A head's (T, D) matrix of a (B, H, T, D) tensor: its start and row stride. */
typedef struct mat {
    char *p;
    int64_t ld;
} mat;

static mat head(const attn *a, const ig_kt *t, int64_t bh) {
    int64_t b = bh / a->H, h = bh % a->H;
    mat m = {t->data + (size_t)(b * t->strides[0] + h * t->strides[1]) * a->es, t->strides[2]};
    return m;
}

/* Row i of m. */
static char *row(const attn *a, mat m, int64_t i) { return m.p + (size_t)(i * m.ld) * a->es; }

/* Block of rows i0 .. i0 + r - 1: r and the width w of the keys it sees. */
static int64_t block_rows(const attn *a, int64_t i0, int64_t *w) {
    int64_t r = a->T - i0 < ROWS ? a->T - i0 : ROWS;
    *w = a->causal ? i0 + r : a->T;
    return r;
}

/* s: ROWS x T scratch. */
static void forward_head(const attn *a, mat q, mat k, mat v, mat out, char *lse, void *s) {
    int64_t D = a->D, w;
    for (int64_t i0 = 0; i0 < a->T; i0 += ROWS) {
        int64_t r = block_rows(a, i0, &w);
        char *l = lse + (size_t)i0 * a->es;
        ig__gemm(a->dt, false, true, r, w, D, a->scale, row(a, q, i0), q.ld, k.p, k.ld, 0, s, w);
        if (a->dt == IG_F64) softmax_rows_f64(s, r, w, i0, a->causal, (double *)l);
        else softmax_rows_f32(s, r, w, i0, a->causal, (float *)l);
        ig__gemm(a->dt, false, false, r, D, w, 1, s, w, v.p, v.ld, 0, row(a, out, i0), out.ld);
    }
}

/* p and dp: ROWS x T scratch each; dk and dv are accumulated (zeroed here). */
static void backward_head(const attn *a, mat q, mat k, mat v, mat out, const char *lse, mat g,
                          mat dq, mat dk, mat dv, void *p, void *dp) {
    int64_t D = a->D, w;
    for (int64_t i = 0; i < a->T; i++) {
        memset(row(a, dk, i), 0, a->es * (size_t)D);
        memset(row(a, dv, i), 0, a->es * (size_t)D);
    }
    for (int64_t i0 = 0; i0 < a->T; i0 += ROWS) {
        int64_t r = block_rows(a, i0, &w);
        const char *qb = row(a, q, i0), *gb = row(a, g, i0), *ob = row(a, out, i0);
        const char *l = lse + (size_t)i0 * a->es;
        ig__gemm(a->dt, false, true, r, w, D, a->scale, qb, q.ld, k.p, k.ld, 0, p, w);
        if (a->dt == IG_F64) exp_rows_f64(p, r, w, i0, a->causal, (const double *)l);
        else exp_rows_f32(p, r, w, i0, a->causal, (const float *)l);
        ig__gemm(a->dt, true, false, w, D, r, 1, p, w, gb, g.ld, 1, dv.p, dv.ld);
        ig__gemm(a->dt, false, true, r, w, D, 1, gb, g.ld, v.p, v.ld, 0, dp, w);
        if (a->dt == IG_F64)
            ds_rows_f64(dp, p, r, w, (const double *)gb, g.ld, (const double *)ob, out.ld, D);
        else ds_rows_f32(dp, p, r, w, (const float *)gb, g.ld, (const float *)ob, out.ld, D);
        ig__gemm(a->dt, false, false, r, D, w, a->scale, dp, w, k.p, k.ld, 0, row(a, dq, i0), dq.ld);
        ig__gemm(a->dt, true, false, w, D, r, a->scale, dp, w, qb, q.ld, 1, dk.p, dk.ld);
    }
}

static attn geometry(const ig_kt *q, bool causal, double scale) {
    attn a = {q->dtype, ig_dtype_size(q->dtype), q->shape[2], q->shape[3], q->shape[1], causal,
              scale};
    return a;
}

ig_status ig_cpu_attention_forward(const ig_kt *out, const ig_kt *lse, const ig_kt *q,
                                   const ig_kt *k, const ig_kt *v, bool causal, double scale) {
    attn g = geometry(q, causal, scale), *a = &g;
    int64_t heads = q->shape[0] * q->shape[1];
    bool ok = true;
    int blas = heads > 1 ? ig__blas_serial_begin() : 1;
    #pragma omp parallel if (heads > 1)
    {
        void *s = malloc(a->es * ROWS * (size_t)a->T);
        if (!s) {
            #pragma omp atomic write
            ok = false;
        }
        #pragma omp for schedule(dynamic)
        for (int64_t h = 0; h < heads; h++)
            if (s)
                forward_head(a, head(a, q, h), head(a, k, h), head(a, v, h), head(a, out, h),
                             lse->data + (size_t)(h * a->T) * a->es, s);
        free(s);
    }
    ig__blas_serial_end(blas);
    return ok ? IG_OK : IG_ERR_NOMEM;
}

ig_status ig_cpu_attention_backward(const ig_kt *dq, const ig_kt *dk, const ig_kt *dv,
                                    const ig_kt *dout, const ig_kt *q, const ig_kt *k,
                                    const ig_kt *v, const ig_kt *out, const ig_kt *lse,
                                    bool causal, double scale) {
    attn g = geometry(q, causal, scale), *a = &g;
    int64_t heads = q->shape[0] * q->shape[1];
    bool ok = true;
    int blas = heads > 1 ? ig__blas_serial_begin() : 1;
    #pragma omp parallel if (heads > 1)
    {
        char *p = malloc(a->es * 2 * ROWS * (size_t)a->T);
        if (!p) {
            #pragma omp atomic write
            ok = false;
        }
        #pragma omp for schedule(dynamic)
        for (int64_t h = 0; h < heads; h++)
            if (p)
                backward_head(a, head(a, q, h), head(a, k, h), head(a, v, h), head(a, out, h),
                              lse->data + (size_t)(h * a->T) * a->es, head(a, dout, h),
                              head(a, dq, h), head(a, dk, h), head(a, dv, h), p,
                              p + a->es * ROWS * (size_t)a->T);
        free(p);
    }
    ig__blas_serial_end(blas);
    return ok ? IG_OK : IG_ERR_NOMEM;
}

/* kernels/cpu/conv.c: 2-D convolution on the CPU by im2col + GEMM.
 * x (N, Cin, H, W), w (Cout, Cg, kH, kW) with Cg = Cin / groups, bias (Cout),
 * out (N, Cout, Ho, Wo), all contiguous, one float dtype; every output is
 * written (=).
 *
 * For each (image n, group g), col (Cg kH kW, Ho Wo) holds the input patch
 * behind each output pixel (zeros where it falls in the padding), so
 *   out[n, g] = w[g] @ col,  dcol = w[g]^T @ gout[n, g],  dw[g] += gout[n, g] @ col^T
 * and col2im adds dcol back onto dx. With at least as many (n, g) pairs as
 * threads, the pairs run in parallel (single-threaded GEMMs, a col per
 * thread, dw summed from per-thread partials in a fixed order, so results do
 * not depend on scheduling); otherwise they run in turn, each GEMM split in
 * column blocks among the threads and im2col / col2im parallel over
 * channels. OpenBLAS stays single-threaded throughout. */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "kernels/cpu/cpu_conv_attn.h"

typedef struct geom {
    ig_dtype dt;
    size_t es;
    int64_t n, cin, h, w, cout, cg, coutg, kh, kw, ho, wo, k, p;
    int sh, sw, ph, pw, dh, dw, groups;
} geom;

static geom make_geom(const ig_kt *x, const ig_kt *w, const ig_kt *out, const ig_conv2d_geom *g) {
    geom r = {x->dtype, ig_dtype_size(x->dtype), x->shape[0], x->shape[1], x->shape[2],
              x->shape[3], w->shape[0], w->shape[1], w->shape[0] / g->groups, w->shape[2],
              w->shape[3], out->shape[2], out->shape[3], 0, 0, g->stride[0], g->stride[1],
              g->padding[0], g->padding[1], g->dilation[0], g->dilation[1], g->groups};
    r.k = r.cg * r.kh * r.kw;
    r.p = r.ho * r.wo;
    return r;
}

/* The outputs o in [lo, hi) of n_out whose input o * stride + off lies in
 * [0, n_in): the rest fall in the padding. */
static void valid_range(int64_t off, int64_t n_in, int64_t stride, int64_t n_out, int64_t *lo,
                        int64_t *hi) {
    *lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    *hi = off >= n_in ? 0 : (n_in - off + stride - 1) / stride;
    if (*hi > n_out) *hi = n_out;
    if (*lo > *hi) *lo = *hi;
}

/* For channel c of x (Cg, H, W) and col (Cg kH kW, Ho Wo):
 * im2col: col's rows of c <- patches of x, 0 in the padding;
 * col2im: plane c of x += col's rows of c folded back.
 * add_bias: o (rows, p) += b[row].
 * Each (channel, kernel row i, kernel column j) is one row of col; output row
 * oh of it reads input row ih, columns [lo, hi) of the outputs in range. */
#define IM2COL(real, sfx)                                                                      \
    static void im2col_##sfx(const geom *g, const real *x, real *col, int64_t c) {             \
        for (int64_t i = 0; i < g->kh; i++)                                                    \
            for (int64_t j = 0; j < g->kw; j++) {                                              \
                real *dst = col + ((c * g->kh + i) * g->kw + j) * g->p;                        \
                int64_t lo, hi, off = j * g->dw - g->pw;                                       \
                valid_range(off, g->w, g->sw, g->wo, &lo, &hi);                                \
                for (int64_t oh = 0; oh < g->ho; oh++, dst += g->wo) {                         \
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;                               \
                    if (ih < 0 || ih >= g->h) {                                                \
                        memset(dst, 0, sizeof(real) * (size_t)g->wo);                          \
                        continue;                                                              \
                    }                                                                          \
                    const real *src = x + (c * g->h + ih) * g->w + off;                        \
                    for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0;                           \
                    for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * g->sw];            \
                    for (int64_t ow = hi; ow < g->wo; ow++) dst[ow] = 0;                       \
                }                                                                              \
            }                                                                                  \
    }                                                                                          \
    static void col2im_##sfx(const geom *g, const real *col, real *x, int64_t c) {             \
        for (int64_t i = 0; i < g->kh; i++)                                                    \
            for (int64_t j = 0; j < g->kw; j++) {                                              \
                const real *src = col + ((c * g->kh + i) * g->kw + j) * g->p;                  \
                int64_t lo, hi, off = j * g->dw - g->pw;                                       \
                valid_range(off, g->w, g->sw, g->wo, &lo, &hi);                                \
                for (int64_t oh = 0; oh < g->ho; oh++, src += g->wo) {                         \
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;                               \
                    if (ih < 0 || ih >= g->h) continue;                                        \
                    real *dst = x + (c * g->h + ih) * g->w + off;                              \
                    for (int64_t ow = lo; ow < hi; ow++) dst[ow * g->sw] += src[ow];           \
                }                                                                              \
            }                                                                                  \
    }                                                                                          \
    static void add_bias_##sfx(real *o, const real *b, int64_t rows, int64_t p) {              \
        for (int64_t r = 0; r < rows; r++)                                                     \
            for (int64_t i = 0; i < p; i++) o[r * p + i] += b[r];                              \
    }

IM2COL(float, f32)
IM2COL(double, f64)

/* Over every channel, in parallel when par. */
static void im2col(const geom *g, const char *x, void *col, bool par) {
    #pragma omp parallel for if (par && g->cg > 1)
    for (int64_t c = 0; c < g->cg; c++) {
        if (g->dt == IG_F64) im2col_f64(g, (const double *)x, col, c);
        else im2col_f32(g, (const float *)x, col, c);
    }
}

static void col2im(const geom *g, const void *col, char *x, bool par) {
    #pragma omp parallel for if (par && g->cg > 1)
    for (int64_t c = 0; c < g->cg; c++) {
        if (g->dt == IG_F64) col2im_f64(g, col, (double *)x, c);
        else col2im_f32(g, col, (float *)x, c);
    }
}

/* Element i of p. */
static char *at(const geom *g, const void *p, int64_t i) { return (char *)p + (size_t)i * g->es; }

/* C = op(A) op(B) + beta C (ig__gemm); when par, split into column blocks of
 * C, one per thread. */
static void pgemm(const geom *g, bool par, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                  const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                  int64_t ldc) {
    int64_t parts = par ? omp_get_max_threads() : 1, step = ((n + parts - 1) / parts + 15) / 16 * 16;
    #pragma omp parallel for if (par && n > step)
    for (int64_t j0 = 0; j0 < n; j0 += step)
        ig__gemm(g->dt, ta, tb, m, n - j0 < step ? n - j0 : step, k, 1, a, lda,
                 at(g, b, tb ? j0 * ldb : j0), ldb, beta, at(g, c, j0), ldc);
}

/* The operands of one call; NULL for gradients not wanted. */
typedef struct conv_io {
    geom g;
    char *out, *gx, *gw, *gb;
    const char *x, *w, *bias, *gout;
} conv_io;

/* The work of pair t = (n, group); col: scratch; dw: this worker's partial of
 * gw (+=); par: split the work among the threads. */
typedef void (*pair_fn)(const conv_io *io, int64_t t, void *col, char *dw, bool par);

static void forward_pair(const conv_io *io, int64_t t, void *col, char *dw, bool par) {
    (void)dw;
    const geom *g = &io->g;
    int64_t n = t / g->groups, gr = t % g->groups;
    char *o = at(g, io->out, (n * g->cout + gr * g->coutg) * g->p);
    im2col(g, at(g, io->x, (n * g->cin + gr * g->cg) * g->h * g->w), col, par);
    pgemm(g, par, false, false, g->coutg, g->p, g->k, at(g, io->w, gr * g->coutg * g->k), g->k,
          col, g->p, 0, o, g->p);
    if (io->bias && g->dt == IG_F64)
        add_bias_f64((double *)o, (const double *)io->bias + gr * g->coutg, g->coutg, g->p);
    else if (io->bias)
        add_bias_f32((float *)o, (const float *)io->bias + gr * g->coutg, g->coutg, g->p);
}

static void backward_pair(const conv_io *io, int64_t t, void *col, char *dw, bool par) {
    const geom *g = &io->g;
    int64_t n = t / g->groups, gr = t % g->groups, xo = (n * g->cin + gr * g->cg) * g->h * g->w;
    const char *go = at(g, io->gout, (n * g->cout + gr * g->coutg) * g->p);
    if (io->gw) {
        im2col(g, at(g, io->x, xo), col, par);
        pgemm(g, par, false, true, g->coutg, g->k, g->p, go, g->p, col, g->p, 1,
              at(g, dw, gr * g->coutg * g->k), g->k);
    }
    if (io->gx) {
        pgemm(g, par, true, false, g->k, g->p, g->coutg, at(g, io->w, gr * g->coutg * g->k), g->k,
              go, g->p, 0, col, g->p);
        memset(at(g, io->gx, xo), 0, g->es * (size_t)(g->cg * g->h * g->w));
        col2im(g, col, at(g, io->gx, xo), par);
    }
}

/* Threads that take whole pairs: all of them when there are enough pairs,
 * else 1 (the pairs then run in turn, each split among the threads). */
static int pair_threads(const geom *g) {
    int nt = omp_get_max_threads();
    return g->n * g->groups >= nt ? nt : 1;
}

/* Runs fn on every pair with OpenBLAS single-threaded; worker i (of
 * pair_threads) accumulates into dw partial i of parts (NULL: none). The
 * split work of a lone worker runs in top-level parallel regions: nested in
 * another one, GCC's OpenMP would start fresh threads for each. */
static bool run_pairs(const conv_io *io, pair_fn fn, char *parts) {
    const geom *g = &io->g;
    int nt = pair_threads(g), blas = ig__blas_serial_begin();
    size_t cols = g->es * (size_t)(g->k * g->p), wbytes = g->es * (size_t)(g->cout * g->k);
    bool ok = true;
    if (nt == 1) {
        void *col = malloc(cols);
        for (int64_t t = 0; col && t < g->n * g->groups; t++) fn(io, t, col, parts, true);
        ok = col != NULL;
        free(col);
    } else {
        #pragma omp parallel num_threads(nt)
        {
            void *col = malloc(cols);
            char *dw = parts ? parts + omp_get_thread_num() * wbytes : NULL;
            if (!col) {
                #pragma omp atomic write
                ok = false;
            }
            #pragma omp for schedule(static)
            for (int64_t t = 0; t < g->n * g->groups; t++)
                if (col) fn(io, t, col, dw, false);
            free(col);
        }
    }
    ig__blas_serial_end(blas);
    return ok;
}

static conv_io make_io(const ig_kt *x, const ig_kt *w, const ig_kt *out, const ig_conv2d_geom *cg) {
    conv_io io = {make_geom(x, w, out, cg), NULL, NULL, NULL, NULL, x->data, w->data, NULL, NULL};
    return io;
}

ig_status ig_cpu_conv2d_forward(const ig_kt *out, const ig_kt *x, const ig_kt *w,
                                const ig_kt *bias, const ig_conv2d_geom *cg) {
    conv_io io = make_io(x, w, out, cg);
    io.out = out->data;
    io.bias = bias ? bias->data : NULL;
    return run_pairs(&io, forward_pair, NULL) ? IG_OK : IG_ERR_NOMEM;
}

/* gw[e] = sum over threads of part[t][e]; gb[c] = sum over n, pixels of gout. */
#define REDUCE(real, sfx)                                                                      \
    static void reduce_##sfx(const geom *g, real *gw, const real *part, int nt, real *gb,      \
                             const real *gout) {                                               \
        int64_t wsize = g->cout * g->k;                                                        \
        _Pragma("omp parallel for if (gw && wsize > 4096)")                                    \
        for (int64_t e = 0; e < (gw ? wsize : 0); e++) {                                       \
            real s = 0;                                                                        \
            for (int t = 0; t < nt; t++) s += part[t * wsize + e];                             \
            gw[e] = s;                                                                         \
        }                                                                                      \
        _Pragma("omp parallel for if (gb && g->n * g->cout * g->p > 65536)")                   \
        for (int64_t c = 0; c < (gb ? g->cout : 0); c++) {                                     \
            double s = 0;                                                                      \
            for (int64_t n = 0; n < g->n; n++)                                                 \
                for (int64_t i = 0; i < g->p; i++) s += gout[(n * g->cout + c) * g->p + i];    \
            gb[c] = (real)s;                                                                   \
        }                                                                                      \
    }

REDUCE(float, f32)
REDUCE(double, f64)

ig_status ig_cpu_conv2d_backward(const ig_kt *gx, const ig_kt *gw, const ig_kt *gbias,
                                 const ig_kt *gout, const ig_kt *x, const ig_kt *w,
                                 const ig_conv2d_geom *cg) {
    conv_io io = make_io(x, w, gout, cg);
    const geom *g = &io.g;
    io.gout = gout->data;
    io.gx = gx ? gx->data : NULL;
    io.gw = gw ? gw->data : NULL;
    int nt = pair_threads(g);
    char *parts = gw ? calloc((size_t)(nt * g->cout * g->k), g->es) : NULL; /* dw per worker */
    bool ok = (parts || !gw) && run_pairs(&io, backward_pair, parts);
    if (ok && g->dt == IG_F64)
        reduce_f64(g, (double *)io.gw, (double *)parts, nt, gbias ? (double *)gbias->data : NULL,
                   (const double *)io.gout);
    else if (ok)
        reduce_f32(g, (float *)io.gw, (float *)parts, nt, gbias ? (float *)gbias->data : NULL,
                   (const float *)io.gout);
    free(parts);
    return ok ? IG_OK : IG_ERR_NOMEM;
}

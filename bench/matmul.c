/* bench/matmul.c: CPU matmul GFLOP/s through ignis (ig_matmul / ig_linear,
 * with its dispatch, output allocation and autograd bookkeeping) against
 * OpenBLAS's cblas_sgemm called directly on the same buffers, side by side.
 * Shapes: 1024^3 and the GEMMs of a GPT step with B*T = 2048 tokens, C = 256
 * (forward and both backward products of each linear layer). */
#include <cblas.h>
#include <stdio.h>
#include <time.h>

#include "ignis/ignis.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
    const char *what;
    int m, k, n;
    bool ta, tb; /* A stored (k, m) / B stored (n, k) */
} shape;

static double best_of(int reps, double (*fn)(void *), void *u) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = fn(u);
        if (t < best) best = t;
    }
    return best;
}

typedef struct ctx {
    const shape *s;
    ig_tensor *a, *b; /* stored layouts */
    float *c;
} ctx;

static double run_blas(void *u) {
    ctx *x = u;
    const shape *s = x->s;
    double t0 = now();
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                s->m, s->n, s->k, 1.0f, ig_tensor_data(x->a), s->ta ? s->m : s->k,
                ig_tensor_data(x->b), s->tb ? s->k : s->n, 0.0f, x->c, s->n);
    return now() - t0;
}

static double run_ignis(void *u) {
    ctx *x = u;
    const shape *s = x->s;
    ig_scope *sc = ig_scope_begin();
    double t0 = now();
    ig_tensor *a = s->ta ? ig_transpose(x->a, 0, 1) : x->a;
    ig_tensor *b = s->tb ? ig_transpose(x->b, 0, 1) : x->b;
    ig_tensor *c = ig_matmul(a, b);
    double t = now() - t0;
    if (!c) fprintf(stderr, "matmul failed: %s\n", ig_last_error());
    ig_scope_end(sc);
    return t;
}

int main(void) {
    const shape shapes[] = {
        {"square 1024^3", 1024, 1024, 1024, false, false},
        {"qkv fwd  x@W^T", 2048, 256, 768, false, true},
        {"qkv dX   g@W", 2048, 768, 256, false, false},
        {"qkv dW   g^T@x", 768, 2048, 256, true, false},
        {"fc fwd   x@W^T", 2048, 256, 1024, false, true},
        {"fc2 fwd  h@W^T", 2048, 1024, 256, false, true},
        {"fc2 dX   g@W", 2048, 256, 1024, false, false},
        {"fc2 dW   g^T@h", 256, 2048, 1024, true, false},
        {"lm head  x@E^T", 2048, 256, 256, false, true},
    };
    printf("%-16s %6s %6s %6s  %10s %10s  %6s\n", "gemm", "m", "k", "n", "openblas", "ignis",
           "ratio");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        ctx x = {s, NULL, NULL, NULL};
        x.a = s->ta ? ig_randn(IG_SHAPE(s->k, s->m), IG_F32, IG_CPU, NULL)
                    : ig_randn(IG_SHAPE(s->m, s->k), IG_F32, IG_CPU, NULL);
        x.b = s->tb ? ig_randn(IG_SHAPE(s->n, s->k), IG_F32, IG_CPU, NULL)
                    : ig_randn(IG_SHAPE(s->k, s->n), IG_F32, IG_CPU, NULL);
        ig_tensor *c = ig_empty(IG_SHAPE(s->m, s->n), IG_F32, IG_CPU);
        x.c = ig_tensor_data(c);
        double flop = 2.0 * s->m * s->n * s->k;
        int reps = flop > 1e9 ? 10 : 30;
        run_blas(&x), run_ignis(&x); /* warm up */
        /* interleave to share machine noise */
        double tb = 1e30, ti = 1e30;
        for (int r = 0; r < 3; r++) {
            double b = best_of(reps, run_blas, &x), g = best_of(reps, run_ignis, &x);
            if (b < tb) tb = b;
            if (g < ti) ti = g;
        }
        printf("%-16s %6d %6d %6d  %8.1f GF %8.1f GF  %5.1f%%\n", s->what, s->m, s->k, s->n,
               flop / tb * 1e-9, flop / ti * 1e-9, 100.0 * tb / ti);
        ig_tensor_free(x.a);
        ig_tensor_free(x.b);
        ig_tensor_free(c);
    }
    return 0;
}

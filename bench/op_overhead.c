/* bench/op_overhead.c: the cost of one tiny op (dispatch, a recorded autograd
 * node, the output's allocation from the caches) — it must not dominate small
 * models. Prints ns per op for: add of two 1-element tensors without grad,
 * with grad recording, and recording + its share of backward. */
#include <stdio.h>
#include <time.h>

#include "ignis/ignis.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* chain of n adds inside one scope; returns seconds */
static double run(ig_tensor *x, ig_tensor *c, int n, bool backward) {
    double t0 = now();
    ig_scope *s = ig_scope_begin();
    ig_tensor *y = x;
    for (int i = 0; i < n; i++) y = ig_add(y, c);
    if (backward) ig_backward(y);
    ig_scope_end(s);
    return now() - t0;
}

int main(void) {
    ig_tensor *x = ig_ones(IG_SHAPE(1), IG_F32, IG_CPU);
    ig_tensor *c = ig_ones(IG_SHAPE(1), IG_F32, IG_CPU);
    ig_tensor *w = ig_requires_grad_(ig_ones(IG_SHAPE(1), IG_F32, IG_CPU), true);
    const int n = 1000, reps = 300;
    double best[3] = {1e9, 1e9, 1e9};
    for (int r = 0; r < reps; r++) {
        double a = run(x, c, n, false), b = run(w, c, n, false), d = run(w, c, n, true);
        if (a < best[0]) best[0] = a;
        if (b < best[1]) best[1] = b;
        if (d < best[2]) best[2] = d;
    }
    printf("tiny op (add of 1-element f32 tensors), best of %d chains of %d ops:\n", reps, n);
    printf("  no grad                    %7.1f ns/op\n", best[0] / n * 1e9);
    printf("  recording autograd         %7.1f ns/op\n", best[1] / n * 1e9);
    printf("  recording + backward       %7.1f ns/op\n", best[2] / n * 1e9);
    ig_tensor_free(x);
    ig_tensor_free(c);
    ig_tensor_free(w);
    return 0;
}

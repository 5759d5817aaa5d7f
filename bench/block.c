/* bench/block.c: forward + backward time of one GPT-2 transformer block on
 * the CPU (pre-LayerNorm, fused causal attention, tanh GELU MLP), at the
 * shape of the small GPT of the trainer issue: B=8, T=256, C=256, H=8, f32.
 * bench/block_torch.py runs the same block in PyTorch for the comparison.
 *     ./build-rel/bench/bench_block [B T C H] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ignis/ignis.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct block {
    ig_tensor *ln1w, *ln1b, *wqkv, *bqkv, *wproj, *bproj, *ln2w, *ln2b, *wfc, *bfc, *wfc2, *bfc2;
} block;

static ig_tensor *param(int ndim, const int64_t *shape, double std, double fill) {
    ig_tensor *t = std > 0 ? ig_normal_(ig_empty(ndim, shape, IG_F32, IG_CPU), 0, std, NULL)
                           : ig_full(ndim, shape, fill, IG_F32, IG_CPU);
    return ig_requires_grad_(t, true);
}

static ig_tensor *forward(block *p, ig_tensor *x, int64_t B, int64_t T, int64_t C, int64_t H) {
    int64_t D = C / H;
    ig_tensor *qkv = ig_linear(ig_layer_norm(x, p->ln1w, p->ln1b, 1e-5), p->wqkv, p->bqkv);
    ig_tensor *part[3];
    ig_split(qkv, 2, 3, (int64_t[]){C, C, C}, part);
    for (int i = 0; i < 3; i++) part[i] = ig_transpose(ig_view(part[i], IG_SHAPE(B, T, H, D)), 1, 2);
    ig_tensor *a = ig_attention(part[0], part[1], part[2], true, 0);
    ig_tensor *y = ig_reshape(ig_transpose(a, 1, 2), IG_SHAPE(B, T, C));
    x = ig_add(x, ig_linear(y, p->wproj, p->bproj));
    ig_tensor *h = ig_gelu_tanh(ig_linear(ig_layer_norm(x, p->ln2w, p->ln2b, 1e-5), p->wfc, p->bfc));
    return ig_add(x, ig_linear(h, p->wfc2, p->bfc2));
}

int main(int argc, char **argv) {
    int64_t B = 8, T = 256, C = 256, H = 8;
    if (argc == 5) B = atoll(argv[1]), T = atoll(argv[2]), C = atoll(argv[3]), H = atoll(argv[4]);
    ig_manual_seed(0);
    block p = {
        param(IG_SHAPE(C), 0, 1), param(IG_SHAPE(C), 0, 0),
        param(IG_SHAPE(3 * C, C), 0.02, 0), param(IG_SHAPE(3 * C), 0, 0),
        param(IG_SHAPE(C, C), 0.02, 0), param(IG_SHAPE(C), 0, 0),
        param(IG_SHAPE(C), 0, 1), param(IG_SHAPE(C), 0, 0),
        param(IG_SHAPE(4 * C, C), 0.02, 0), param(IG_SHAPE(4 * C), 0, 0),
        param(IG_SHAPE(C, 4 * C), 0.02, 0), param(IG_SHAPE(C), 0, 0),
    };
    ig_tensor *x = ig_requires_grad_(ig_randn(IG_SHAPE(B, T, C), IG_F32, IG_CPU, NULL), true);
    ig_tensor *g = ig_randn(IG_SHAPE(B, T, C), IG_F32, IG_CPU, NULL);
    double best_f = 1e30, best_fb = 1e30;
    for (int it = 0; it < 12; it++) {
        ig_scope *s = ig_scope_begin();
        double t0 = now();
        ig_tensor *out = forward(&p, x, B, T, C, H);
        double t1 = now();
        ig_backward_opts o = {g, false};
        if (ig_backward_ex(out, &o) != IG_OK) {
            fprintf(stderr, "backward: %s\n", ig_last_error());
            return 1;
        }
        double t2 = now();
        ig_scope_end(s);
        if (it >= 2) {
            if (t1 - t0 < best_f) best_f = t1 - t0;
            if (t2 - t0 < best_fb) best_fb = t2 - t0;
        }
    }
    printf("ignis block B=%lld T=%lld C=%lld H=%lld: forward %.1f ms, forward+backward %.1f ms\n",
           (long long)B, (long long)T, (long long)C, (long long)H, best_f * 1e3, best_fb * 1e3);
    return 0;
}

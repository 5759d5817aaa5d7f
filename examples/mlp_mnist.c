/* examples/mlp_mnist.c: an MLP classifier on MNIST-format idx files, written
 * against the public API: load the data, build the model, train with AdamW,
 * report test accuracy. Works with the real MNIST files or with the synthetic
 * set of tests/fixtures/make_mnist.
 *
 *     ./build/tests/make_mnist /tmp/mnist
 *     ./build/examples/mlp_mnist /tmp/mnist */
#include <stdio.h>

#include "ignis/data.h"
#include "ignis/ignis.h"
#include "ignis/nn.h"
#include "ignis/optim.h"

static double accuracy(ig_model *m, ig_tensor *x, ig_tensor *y) {
    ig_scope *s = ig_scope_begin();
    bool prev = ig_grad_set_enabled(false);
    ig_tensor *pred = NULL;
    ig_max(ig_mlp_forward(m, x), 1, false, &pred);
    double acc = ig_tensor_item(ig_mean_all(ig_to(ig_eq(pred, y), IG_F32, IG_CPU)));
    ig_grad_set_enabled(prev);
    ig_scope_end(s);
    return acc;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp/mnist";
    char ti[1024], tl[1024], vi[1024], vl[1024];
    snprintf(ti, sizeof ti, "%s/train-images-idx3-ubyte", dir);
    snprintf(tl, sizeof tl, "%s/train-labels-idx1-ubyte", dir);
    snprintf(vi, sizeof vi, "%s/t10k-images-idx3-ubyte", dir);
    snprintf(vl, sizeof vl, "%s/t10k-labels-idx1-ubyte", dir);
    ig_tensor *x, *y, *tx, *ty;
    if (ig_mnist_load(ti, tl, &x, &y) != IG_OK || ig_mnist_load(vi, vl, &tx, &ty) != IG_OK) {
        fprintf(stderr, "mlp_mnist: %s\n", ig_last_error());
        return 1;
    }
    ig_mlp_config cfg = {784, 256, 1, 10, 0.0};
    ig_model *m = ig_mlp_new(&cfg, IG_CPU, NULL);
    ig_optim_config oc = IG_OPTIM_CONFIG_INIT;
    oc.lr = 2e-3;
    ig_optim *opt = ig_optim_new(ig_model_params(m), &oc);
    int64_t n = ig_tensor_size(x, 0), batch = 64;
    ig_generator g = {1, 0};
    for (int step = 0; step < 1500; step++) {
        ig_scope *s = ig_scope_begin();
        /* a random batch of examples */
        ig_tensor *idx = ig_to(ig_mul_scalar(ig_rand(IG_SHAPE(batch), IG_F64, IG_CPU, &g), (double)n),
                               IG_I64, IG_CPU);
        ig_tensor *logits = ig_mlp_forward(m, ig_index_select(x, 0, idx));
        ig_tensor *loss = ig_cross_entropy(logits, ig_index_select(y, 0, idx), IG_IGNORE_INDEX_NONE, 0);
        ig_backward(loss);
        ig_optim_step(opt);
        ig_optim_zero_grad(opt, true);
        if (step % 300 == 0) printf("step %4d  loss %.4f\n", step, ig_tensor_item(loss));
        ig_scope_end(s);
    }
    printf("test accuracy %.2f%%\n", 100 * accuracy(m, tx, ty));
    ig_optim_free(opt);
    ig_model_free(m);
    ig_tensor_free(x), ig_tensor_free(y), ig_tensor_free(tx), ig_tensor_free(ty);
    return 0;
}

/* core/model_mlp_cnn.c: the small classifiers. MLP: Linear+ReLU(+dropout
 * when training) n_hidden_layers times, then a Linear to the classes (names
 * layers.0.*, layers.1.*, ...). CNN: conv3x3(pad 1)+ReLU+maxpool2 twice
 * (width, then 2 width channels), flattened into a Linear (conv1.*, conv2.*,
 * fc.*). Initial values as PyTorch's Linear and Conv2d. */
#include <stdio.h>

#include "core/impl.h"
#include "core/nn_impl.h"

ig_model *ig_mlp_new(const ig_mlp_config *cfg, ig_device dev, ig_generator *gen) {
    IG_CHECK(cfg->in >= 1 && cfg->classes >= 1 && cfg->n_hidden_layers >= 0 &&
                 (cfg->hidden >= 1 || cfg->n_hidden_layers == 0) && cfg->dropout >= 0 &&
                 cfg->dropout < 1,
             "mlp_new: bad config: in %d, hidden %d x %d layers, classes %d, dropout %g",
             cfg->in, cfg->hidden, cfg->n_hidden_layers, cfg->classes, cfg->dropout);
    ig_model *m = ig__model_alloc(IG__MODEL_MLP, dev);
    if (!m) return NULL;
    int n = cfg->n_hidden_layers + 1;
    m->mlp.cfg = *cfg;
    m->mlp.layers = calloc((size_t)n, sizeof *m->mlp.layers);
    if (!m->mlp.layers) {
        ig__error(IG_ERR_NOMEM, "mlp_new: out of host memory");
        ig_model_free(m);
        return NULL;
    }
    for (int l = 0; l < n; l++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "layers.%d", l);
        ig_nn_linear_init(&m->mlp.layers[l], &m->params, prefix, l ? cfg->hidden : cfg->in,
                          l < n - 1 ? cfg->hidden : cfg->classes, true, dev, gen);
    }
    return ig__model_check(m);
}

ig_tensor *ig_mlp_forward(ig_model *m, ig_tensor *x) {
    IG_CHECK(m->kind == IG__MODEL_MLP, "mlp_forward: the model is not an MLP");
    int n = m->mlp.cfg.n_hidden_layers + 1;
    for (int l = 0; l < n - 1; l++)
        x = ig_dropout(ig_relu(ig_nn_linear_forward(&m->mlp.layers[l], x)), m->mlp.cfg.dropout,
                       m->training, NULL);
    return ig_nn_linear_forward(&m->mlp.layers[n - 1], x);
}

ig_model *ig_cnn_new(const ig_cnn_config *cfg, ig_device dev, ig_generator *gen) {
    IG_CHECK(cfg->channels >= 1 && cfg->height >= 4 && cfg->width_px >= 4 && cfg->width >= 1 &&
                 cfg->classes >= 1,
             "cnn_new: bad config: %d channels, %dx%d pixels, width %d, classes %d",
             cfg->channels, cfg->height, cfg->width_px, cfg->width, cfg->classes);
    ig_model *m = ig__model_alloc(IG__MODEL_CNN, dev);
    if (!m) return NULL;
    m->cnn.cfg = *cfg;
    ig_conv2d_opts pad1 = IG_CONV2D_OPTS_INIT;
    pad1.padding[0] = pad1.padding[1] = 1;
    ig_nn_conv2d_init(&m->cnn.conv1, &m->params, "conv1", cfg->channels, cfg->width, 3, &pad1,
                      true, dev, gen);
    ig_nn_conv2d_init(&m->cnn.conv2, &m->params, "conv2", cfg->width, 2 * cfg->width, 3, &pad1,
                      true, dev, gen);
    int flat = 2 * cfg->width * (cfg->height / 4) * (cfg->width_px / 4);
    ig_nn_linear_init(&m->cnn.fc, &m->params, "fc", flat, cfg->classes, true, dev, gen);
    return ig__model_check(m);
}

ig_tensor *ig_cnn_forward(ig_model *m, ig_tensor *x) {
    IG_CHECK(m->kind == IG__MODEL_CNN, "cnn_forward: the model is not a CNN");
    x = ig_max_pool2d(ig_relu(ig_nn_conv2d_forward(&m->cnn.conv1, x)), 2, 2, 0);
    x = ig_max_pool2d(ig_relu(ig_nn_conv2d_forward(&m->cnn.conv2, x)), 2, 2, 0);
    if (!x) return NULL;
    return ig_nn_linear_forward(&m->cnn.fc, ig_reshape(x, IG_SHAPE(ig_tensor_size(x, 0), -1)));
}

/* core/nn_modules.c: the modules (Linear, Embedding, LayerNorm, RMSNorm,
 * Conv2d, GPT-2's Conv1D, causal self-attention, MLP and block): init makes
 * and registers the parameters, forward composes ops.
 *
 * Invariants: parameters are kept tensors requiring grad, registered in the
 * order PyTorch lists them (weight before bias, submodules in declaration
 * order); initial values come from the generator in that order. Forwards
 * make no copies beyond what the ops need: the GPT's q, k, v are strided
 * views of the fused projection. */
#include <math.h>
#include <stdio.h>

#include "core/impl.h"
#include "core/nn_impl.h"

/* prefix.name into buf (name alone for an empty prefix). */
static const char *join(char *buf, size_t cap, const char *prefix, const char *name) {
    int n = prefix && *prefix ? snprintf(buf, cap, "%s.%s", prefix, name)
                              : snprintf(buf, cap, "%s", name);
    IG_CHECK(n >= 0 && (size_t)n < cap, "nn: parameter name %s.%s is too long", prefix, name);
    return buf;
}

ig_tensor *ig__nn_param(ig_param_list *reg, const char *prefix, const char *name, int ndim,
                        const int64_t *shape, ig_device dev) {
    char full[256];
    ig_tensor *t = ig_keep(ig_empty(ndim, shape, IG_F32, dev));
    if (t) ig_requires_grad_(t, true);
    ig_param_list_add(reg, join(full, sizeof full, prefix, name), t);
    return t;
}

static ig_tensor *filled(ig_tensor *t, double v) {
    return t && ig_fill_(t, v) == IG_OK ? t : NULL;
}

void ig_nn_linear_init(ig_nn_linear *m, ig_param_list *reg, const char *prefix, int in, int out,
                       bool bias, ig_device dev, ig_generator *gen) {
    double bound = in > 0 ? 1.0 / sqrt(in) : 0; /* PyTorch: kaiming_uniform(a=sqrt(5)) */
    m->weight = ig_uniform_(ig__nn_param(reg, prefix, "weight", IG_SHAPE(out, in), dev), -bound,
                            bound, gen);
    m->bias = bias ? ig_uniform_(ig__nn_param(reg, prefix, "bias", IG_SHAPE(out), dev), -bound,
                                 bound, gen)
                   : NULL;
}

ig_tensor *ig_nn_linear_forward(const ig_nn_linear *m, ig_tensor *x) {
    return ig_linear(x, m->weight, m->bias);
}

void ig_nn_embedding_init(ig_nn_embedding *m, ig_param_list *reg, const char *prefix, int num,
                          int dim, ig_device dev, ig_generator *gen) {
    m->weight = ig_normal_(ig__nn_param(reg, prefix, "weight", IG_SHAPE(num, dim), dev), 0, 1,
                           gen);
}

ig_tensor *ig_nn_embedding_forward(const ig_nn_embedding *m, ig_tensor *idx) {
    return ig_embedding(m->weight, idx);
}

void ig_nn_layer_norm_init(ig_nn_layer_norm *m, ig_param_list *reg, const char *prefix, int dim,
                           ig_device dev) {
    m->weight = filled(ig__nn_param(reg, prefix, "weight", IG_SHAPE(dim), dev), 1);
    m->bias = filled(ig__nn_param(reg, prefix, "bias", IG_SHAPE(dim), dev), 0);
    m->eps = 1e-5;
}

ig_tensor *ig_nn_layer_norm_forward(const ig_nn_layer_norm *m, ig_tensor *x) {
    return ig_layer_norm(x, m->weight, m->bias, m->eps);
}

void ig_nn_rms_norm_init(ig_nn_rms_norm *m, ig_param_list *reg, const char *prefix, int dim,
                         ig_device dev) {
    m->weight = filled(ig__nn_param(reg, prefix, "weight", IG_SHAPE(dim), dev), 1);
    m->eps = 1e-6;
}

ig_tensor *ig_nn_rms_norm_forward(const ig_nn_rms_norm *m, ig_tensor *x) {
    return ig_rms_norm(x, m->weight, m->eps);
}

void ig_nn_conv2d_init(ig_nn_conv2d *m, ig_param_list *reg, const char *prefix, int in, int out,
                       int kernel, const ig_conv2d_opts *opts, bool bias, ig_device dev,
                       ig_generator *gen) {
    m->opts = opts ? *opts : (ig_conv2d_opts)IG_CONV2D_OPTS_INIT;
    int groups = m->opts.groups;
    IG_CHECK(groups >= 1 && in % groups == 0 && out % groups == 0,
             "conv2d init %s: %d in and %d out channels do not split into %d groups", prefix,
             in, out, groups);
    int fan_in = in / groups * kernel * kernel;
    double bound = fan_in > 0 ? 1.0 / sqrt(fan_in) : 0;
    m->weight = ig_uniform_(ig__nn_param(reg, prefix, "weight",
                                         IG_SHAPE(out, in / groups, kernel, kernel), dev),
                            -bound, bound, gen);
    m->bias = bias ? ig_uniform_(ig__nn_param(reg, prefix, "bias", IG_SHAPE(out), dev), -bound,
                                 bound, gen)
                   : NULL;
}

ig_tensor *ig_nn_conv2d_forward(const ig_nn_conv2d *m, ig_tensor *x) {
    return ig_conv2d(x, m->weight, m->bias, &m->opts);
}

/* ---- GPT-2 ---- */

void ig_nn_conv1d_init(ig_nn_conv1d *m, ig_param_list *reg, const char *prefix, int in, int out,
                       double std, ig_device dev, ig_generator *gen) {
    m->weight = ig_normal_(ig__nn_param(reg, prefix, "weight", IG_SHAPE(in, out), dev), 0, std,
                           gen);
    m->bias = filled(ig__nn_param(reg, prefix, "bias", IG_SHAPE(out), dev), 0);
}

ig_tensor *ig_nn_conv1d_forward(const ig_nn_conv1d *m, ig_tensor *x) {
    return ig_linear(x, ig_transpose(m->weight, 0, 1), m->bias);
}

void ig_nn_causal_self_attention_init(ig_nn_causal_self_attention *m, ig_param_list *reg,
                                      const char *prefix, int n_embd, int n_head,
                                      double proj_std, ig_device dev, ig_generator *gen) {
    IG_CHECK(n_head >= 1 && n_embd % n_head == 0,
             "causal self-attention %s: n_embd %d is not a multiple of n_head %d", prefix, n_embd,
             n_head);
    char buf[256];
    ig_nn_conv1d_init(&m->c_attn, reg, join(buf, sizeof buf, prefix, "c_attn"), n_embd,
                      3 * n_embd, 0.02, dev, gen);
    ig_nn_conv1d_init(&m->c_proj, reg, join(buf, sizeof buf, prefix, "c_proj"), n_embd, n_embd,
                      proj_std, dev, gen);
    m->n_head = n_head;
}

ig_tensor *ig_nn_causal_self_attention_forward(const ig_nn_causal_self_attention *m,
                                               ig_tensor *x, double dropout, bool training) {
    if (!x) return NULL;
    IG_CHECK(ig_tensor_ndim(x) == 3, "causal self-attention: input %s is not (B, T, C)",
             ig__describe(x));
    int64_t B = ig_tensor_size(x, 0), T = ig_tensor_size(x, 1), C = ig_tensor_size(x, 2);
    int64_t H = m->n_head, D = C / H;
    ig_tensor *part[3];
    if (ig_split(ig_nn_conv1d_forward(&m->c_attn, x), 2, 3, (const int64_t[]){C, C, C}, part) !=
        IG_OK)
        return NULL;
    for (int i = 0; i < 3; i++) /* (B, T, C) slices -> (B, H, T, D) views */
        part[i] = ig_transpose(ig_view(part[i], IG_SHAPE(B, T, H, D)), 1, 2);
    ig_tensor *y = ig_attention(part[0], part[1], part[2], true, 0);
    /* y lies in memory as (B, T, H, D): the reshape is a view */
    y = ig_reshape(ig_transpose(y, 1, 2), IG_SHAPE(B, T, C));
    return ig_dropout(ig_nn_conv1d_forward(&m->c_proj, y), dropout, training, NULL);
}

void ig_nn_gpt_mlp_init(ig_nn_gpt_mlp *m, ig_param_list *reg, const char *prefix, int n_embd,
                        double proj_std, ig_device dev, ig_generator *gen) {
    char buf[256];
    ig_nn_conv1d_init(&m->c_fc, reg, join(buf, sizeof buf, prefix, "c_fc"), n_embd, 4 * n_embd,
                      0.02, dev, gen);
    ig_nn_conv1d_init(&m->c_proj, reg, join(buf, sizeof buf, prefix, "c_proj"), 4 * n_embd,
                      n_embd, proj_std, dev, gen);
}

ig_tensor *ig_nn_gpt_mlp_forward(const ig_nn_gpt_mlp *m, ig_tensor *x, double dropout,
                                 bool training) {
    ig_tensor *h = ig_gelu_tanh(ig_nn_conv1d_forward(&m->c_fc, x));
    return ig_dropout(ig_nn_conv1d_forward(&m->c_proj, h), dropout, training, NULL);
}

void ig_nn_gpt_block_init(ig_nn_gpt_block *m, ig_param_list *reg, const char *prefix,
                          int n_embd, int n_head, double proj_std, ig_device dev,
                          ig_generator *gen) {
    char buf[256];
    ig_nn_layer_norm_init(&m->ln_1, reg, join(buf, sizeof buf, prefix, "ln_1"), n_embd, dev);
    ig_nn_causal_self_attention_init(&m->attn, reg, join(buf, sizeof buf, prefix, "attn"),
                                     n_embd, n_head, proj_std, dev, gen);
    ig_nn_layer_norm_init(&m->ln_2, reg, join(buf, sizeof buf, prefix, "ln_2"), n_embd, dev);
    ig_nn_gpt_mlp_init(&m->mlp, reg, join(buf, sizeof buf, prefix, "mlp"), n_embd, proj_std,
                       dev, gen);
}

ig_tensor *ig_nn_gpt_block_forward(const ig_nn_gpt_block *m, ig_tensor *x, double dropout,
                                   bool training) {
    x = ig_add(x, ig_nn_causal_self_attention_forward(&m->attn, ig_nn_layer_norm_forward(&m->ln_1, x),
                                                      dropout, training));
    return ig_add(x, ig_nn_gpt_mlp_forward(&m->mlp, ig_nn_layer_norm_forward(&m->ln_2, x), dropout,
                                           training));
}

/* ignis/nn.h: modules, parameter registries (state dicts) and ready models.
 *
 * A module is a plain C struct holding its parameters; `_init` creates them
 * (kept tensors, outside every scope, requiring grad) and registers each under
 * a dotted name in an ig_param_list, in a fixed order: that order and those
 * names are the model's state dict. `_forward` makes temporaries in the
 * current scope. Names follow PyTorch / Hugging Face so safetensors files
 * interoperate; the GPT uses GPT2LMHeadModel's names and layouts.
 *
 * A model (ig_model) owns its modules and its parameter list; free it with
 * ig_model_free. Models are not thread safe. */
#ifndef IGNIS_NN_H
#define IGNIS_NN_H

#include "ignis/autograd.h"
#include "ignis/ops.h"
#include "ignis/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameter registries ---- */
typedef struct ig_param_list {
    int n, cap;
    char **names;        /* owned copies */
    ig_tensor **tensors; /* owned (kept) unless borrowed */
    bool *decay;         /* weight decay applies (by default: tensors of 2+ dims) */
} ig_param_list;

void ig_param_list_init(ig_param_list *l);
/* Appends t under `name` (copied); the list takes ownership of t. */
void ig_param_list_add(ig_param_list *l, const char *name, ig_tensor *t);
/* Frees the names and the tensors. */
void ig_param_list_destroy(ig_param_list *l);
/* The tensor registered as name, or NULL. */
ig_tensor *ig_param_list_find(const ig_param_list *l, const char *name);
int64_t ig_param_list_numel(const ig_param_list *l);

/* ---- modules ----
 * Every init takes the registry, the dotted name prefix, the sizes, the device
 * and a generator for the initial values (NULL: the default generator). */
typedef struct ig_nn_linear {
    ig_tensor *weight, *bias; /* (out, in) and (out) or NULL */
} ig_nn_linear;
void ig_nn_linear_init(ig_nn_linear *m, ig_param_list *reg, const char *prefix, int in, int out,
                       bool bias, ig_device dev, ig_generator *gen);
ig_tensor *ig_nn_linear_forward(const ig_nn_linear *m, ig_tensor *x);

typedef struct ig_nn_embedding {
    ig_tensor *weight; /* (num, dim) */
} ig_nn_embedding;
void ig_nn_embedding_init(ig_nn_embedding *m, ig_param_list *reg, const char *prefix, int num,
                          int dim, ig_device dev, ig_generator *gen);
ig_tensor *ig_nn_embedding_forward(const ig_nn_embedding *m, ig_tensor *idx);

/* Norms start with weight 1 and bias 0, eps 1e-5 (LayerNorm) or 1e-6
 * (RMSNorm); set eps after init to change it. */
typedef struct ig_nn_layer_norm {
    ig_tensor *weight, *bias;
    double eps;
} ig_nn_layer_norm;
void ig_nn_layer_norm_init(ig_nn_layer_norm *m, ig_param_list *reg, const char *prefix, int dim,
                           ig_device dev);
ig_tensor *ig_nn_layer_norm_forward(const ig_nn_layer_norm *m, ig_tensor *x);

typedef struct ig_nn_rms_norm {
    ig_tensor *weight;
    double eps;
} ig_nn_rms_norm;
void ig_nn_rms_norm_init(ig_nn_rms_norm *m, ig_param_list *reg, const char *prefix, int dim,
                         ig_device dev);
ig_tensor *ig_nn_rms_norm_forward(const ig_nn_rms_norm *m, ig_tensor *x);

typedef struct ig_nn_conv2d {
    ig_tensor *weight, *bias;
    ig_conv2d_opts opts;
} ig_nn_conv2d;
void ig_nn_conv2d_init(ig_nn_conv2d *m, ig_param_list *reg, const char *prefix, int in, int out,
                       int kernel, const ig_conv2d_opts *opts, bool bias, ig_device dev,
                       ig_generator *gen);
ig_tensor *ig_nn_conv2d_forward(const ig_nn_conv2d *m, ig_tensor *x);

/* Conv1D as Hugging Face's GPT-2 has it: a linear layer whose weight is stored
 * (in, out); forward is x @ weight + bias, run as ig_linear on the transposed
 * view (a BLAS flag, no copy). Weight normal(0, std), bias 0. */
typedef struct ig_nn_conv1d {
    ig_tensor *weight, *bias; /* (in, out) and (out) */
} ig_nn_conv1d;
void ig_nn_conv1d_init(ig_nn_conv1d *m, ig_param_list *reg, const char *prefix, int in, int out,
                       double std, ig_device dev, ig_generator *gen);
ig_tensor *ig_nn_conv1d_forward(const ig_nn_conv1d *m, ig_tensor *x);

/* GPT-2's building blocks; `dropout` applies (after the output projections)
 * only when training. No dropout on the attention probabilities (the fused
 * attention has none). proj_std is the std of the residual projections. */
typedef struct ig_nn_causal_self_attention {
    ig_nn_conv1d c_attn, c_proj; /* (C, 3C) and (C, C) */
    int n_head;
} ig_nn_causal_self_attention;
void ig_nn_causal_self_attention_init(ig_nn_causal_self_attention *m, ig_param_list *reg,
                                      const char *prefix, int n_embd, int n_head,
                                      double proj_std, ig_device dev, ig_generator *gen);
/* x (B, T, C) -> (B, T, C): causal multi-head attention. */
ig_tensor *ig_nn_causal_self_attention_forward(const ig_nn_causal_self_attention *m,
                                               ig_tensor *x, double dropout, bool training);

typedef struct ig_nn_gpt_mlp {
    ig_nn_conv1d c_fc, c_proj; /* (C, 4C) and (4C, C) */
} ig_nn_gpt_mlp;
void ig_nn_gpt_mlp_init(ig_nn_gpt_mlp *m, ig_param_list *reg, const char *prefix, int n_embd,
                        double proj_std, ig_device dev, ig_generator *gen);
/* c_proj(gelu_tanh(c_fc(x))), then dropout. */
ig_tensor *ig_nn_gpt_mlp_forward(const ig_nn_gpt_mlp *m, ig_tensor *x, double dropout,
                                 bool training);

/* Pre-LayerNorm block: x + attn(ln_1(x)), then + mlp(ln_2(x)). Names:
 * prefix.ln_1.*, prefix.attn.c_attn.*, prefix.attn.c_proj.*, prefix.ln_2.*,
 * prefix.mlp.c_fc.*, prefix.mlp.c_proj.* in that order. */
typedef struct ig_nn_gpt_block {
    ig_nn_layer_norm ln_1, ln_2;
    ig_nn_causal_self_attention attn;
    ig_nn_gpt_mlp mlp;
} ig_nn_gpt_block;
void ig_nn_gpt_block_init(ig_nn_gpt_block *m, ig_param_list *reg, const char *prefix,
                          int n_embd, int n_head, double proj_std, ig_device dev,
                          ig_generator *gen);
ig_tensor *ig_nn_gpt_block_forward(const ig_nn_gpt_block *m, ig_tensor *x, double dropout,
                                   bool training);

/* ---- models ---- */
typedef struct ig_model ig_model;

const ig_param_list *ig_model_params(const ig_model *m);
/* Dropout on (training) or off (eval). Models start in training mode. */
void ig_model_train(ig_model *m, bool training);
ig_device ig_model_device(const ig_model *m);
void ig_model_free(ig_model *m);
/* Converts every parameter in place (same handles, new storage) to dtype on
 * dev, dropping gradients; as torch's module.to(). Call it before making an
 * optimizer. Returns a failure (memory, CUDA) with the parameter untouched. */
ig_status ig_model_to(ig_model *m, ig_dtype dtype, ig_device dev);
/* Copies every state-dict entry from a safetensors file, by name, converting
 * dtypes. A name missing from the file, or stored with another shape, fails
 * (IG_ERR_INVALID) naming the tensor and the file; the file may hold more. A
 * name under "transformer." is also looked up without that prefix (files
 * saved from Hugging Face's GPT2Model). After a failure the parameters
 * read so far keep their new values. */
ig_status ig_model_load_safetensors(ig_model *m, const char *path);
/* Writes the state dict (names in order, as stored). */
ig_status ig_model_save_safetensors(const ig_model *m, const char *path);

/* GPT: the GPT-2 architecture (learned positions, pre-LayerNorm, tanh GELU,
 * tied embeddings). State dict names are GPT2LMHeadModel's:
 * transformer.wte.weight, transformer.wpe.weight, transformer.h.N.ln_1.{weight,bias},
 * transformer.h.N.attn.c_attn.{weight,bias} (weight stored (in, out) as Conv1D),
 * transformer.h.N.attn.c_proj.*, transformer.h.N.ln_2.*, transformer.h.N.mlp.c_fc.*,
 * transformer.h.N.mlp.c_proj.*, transformer.ln_f.{weight,bias}; lm_head.weight is
 * tied to wte and not listed. Initialization as GPT-2 (normal 0.02, residual
 * projections scaled by 1/sqrt(2 n_layer), zero biases). */
typedef struct ig_gpt_config {
    int n_layer, n_head, n_embd, block_size, vocab_size;
    double dropout;
} ig_gpt_config;
#define IG_GPT_CONFIG_INIT {12, 12, 768, 1024, 50257, 0.0}

ig_model *ig_gpt_new(const ig_gpt_config *cfg, ig_device dev, ig_generator *gen);
const ig_gpt_config *ig_gpt_config_of(const ig_model *gpt);
/* idx (B, T) i64 -> logits (B, T, vocab). */
ig_tensor *ig_gpt_forward(ig_model *gpt, ig_tensor *idx);
/* Mean cross-entropy of the next-token predictions against targets (B, T);
 * targets of -1 are ignored (as nanoGPT). */
ig_tensor *ig_gpt_loss(ig_model *gpt, ig_tensor *idx, ig_tensor *targets);
/* Appends n_new tokens to the prompt (cropped to block_size as context),
 * sampling with temperature (0: greedy) among the top_k (0: all). out holds
 * n_prompt + n_new tokens. Runs without recording. */
ig_status ig_gpt_generate(ig_model *gpt, const int64_t *prompt, int n_prompt, int n_new,
                          double temperature, int top_k, ig_generator *gen, int64_t *out);

/* MLP classifier: in -> hidden (ReLU) x n_hidden_layers -> classes.
 * Names: layers.0.weight, layers.0.bias, layers.1.weight, ... */
typedef struct ig_mlp_config {
    int in, hidden, n_hidden_layers, classes;
    double dropout;
} ig_mlp_config;
ig_model *ig_mlp_new(const ig_mlp_config *cfg, ig_device dev, ig_generator *gen);
/* x (N, in) -> logits (N, classes) */
ig_tensor *ig_mlp_forward(ig_model *m, ig_tensor *x);

/* Small CNN for (N, channels, H, W) images: two conv(3x3, pad 1)+ReLU+maxpool(2)
 * stages (width, 2 width channels), then a linear classifier. */
typedef struct ig_cnn_config {
    int channels, height, width_px, width, classes;
} ig_cnn_config;
ig_model *ig_cnn_new(const ig_cnn_config *cfg, ig_device dev, ig_generator *gen);
ig_tensor *ig_cnn_forward(ig_model *m, ig_tensor *x);

#ifdef __cplusplus
}
#endif
#endif

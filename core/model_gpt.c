/* core/model_gpt.c: GPT-2 (GPT2LMHeadModel's architecture, names and
 * layouts): token + learned position embeddings, pre-LayerNorm blocks,
 * final LayerNorm, logits through the tied token embedding.
 *
 * Invariants: the state dict is transformer.wte, transformer.wpe, the blocks
 * in order, transformer.ln_f (lm_head is wte, not listed); initial values as
 * GPT-2/nanoGPT (normal 0.02, residual projections 0.02/sqrt(2 n_layer),
 * biases 0, LayerNorms 1/0), drawn in that order from the generator.
 * Generation runs without recording, in eval mode, and draws one uniform per
 * sampled token from the generator (none when greedy). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/impl.h"
#include "core/nn_impl.h"

static void check_gpt(const ig_model *m, const char *op) {
    IG_CHECK(m && m->kind == IG__MODEL_GPT, "%s: the model is not a GPT", op);
}

ig_model *ig_gpt_new(const ig_gpt_config *cfg, ig_device dev, ig_generator *gen) {
    IG_CHECK(cfg->n_layer >= 0 && cfg->n_head >= 1 && cfg->n_embd % cfg->n_head == 0 &&
                 cfg->block_size >= 1 && cfg->vocab_size >= 1 && cfg->dropout >= 0 &&
                 cfg->dropout < 1,
             "gpt_new: bad config: n_layer %d, n_head %d, n_embd %d, block_size %d, "
             "vocab_size %d, dropout %g",
             cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->block_size, cfg->vocab_size,
             cfg->dropout);
    ig_model *m = ig__model_alloc(IG__MODEL_GPT, dev);
    if (!m) return NULL;
    m->gpt.cfg = *cfg;
    m->gpt.h = calloc(cfg->n_layer ? (size_t)cfg->n_layer : 1, sizeof *m->gpt.h);
    if (!m->gpt.h) {
        ig__error(IG_ERR_NOMEM, "gpt_new: out of host memory");
        ig_model_free(m);
        return NULL;
    }
    ig_param_list *reg = &m->params;
    int C = cfg->n_embd;
    m->gpt.wte.weight = ig_normal_(
        ig__nn_param(reg, "transformer.wte", "weight", IG_SHAPE(cfg->vocab_size, C), dev), 0,
        0.02, gen);
    m->gpt.wpe.weight = ig_normal_(
        ig__nn_param(reg, "transformer.wpe", "weight", IG_SHAPE(cfg->block_size, C), dev), 0,
        0.02, gen);
    double proj_std = 0.02 / sqrt(2.0 * (cfg->n_layer ? cfg->n_layer : 1));
    for (int l = 0; l < cfg->n_layer; l++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "transformer.h.%d", l);
        ig_nn_gpt_block_init(&m->gpt.h[l], reg, prefix, C, cfg->n_head, proj_std, dev, gen);
    }
    ig_nn_layer_norm_init(&m->gpt.ln_f, reg, "transformer.ln_f", C, dev);
    return ig__model_check(m);
}

const ig_gpt_config *ig_gpt_config_of(const ig_model *gpt) {
    check_gpt(gpt, "gpt_config_of");
    return &gpt->gpt.cfg;
}

ig_tensor *ig_gpt_forward(ig_model *gpt, ig_tensor *idx) {
    check_gpt(gpt, "gpt_forward");
    if (!idx) return NULL;
    const ig_gpt_config *cfg = &gpt->gpt.cfg;
    IG_CHECK(ig_tensor_ndim(idx) == 2 && ig_tensor_size(idx, 1) <= cfg->block_size,
             "gpt_forward: idx %s is not (B, T) with T <= block_size %d", ig__describe(idx),
             cfg->block_size);
    int64_t T = ig_tensor_size(idx, 1);
    double p = cfg->dropout;
    bool tr = gpt->training;
    /* positions 0..T-1 are the first T rows of wpe: a view, broadcast over B */
    ig_tensor *x = ig_add(ig_nn_embedding_forward(&gpt->gpt.wte, idx),
                          ig_narrow(gpt->gpt.wpe.weight, 0, 0, T));
    x = ig_dropout(x, p, tr, NULL);
    for (int l = 0; l < cfg->n_layer; l++) x = ig_nn_gpt_block_forward(&gpt->gpt.h[l], x, p, tr);
    return ig_linear(ig_nn_layer_norm_forward(&gpt->gpt.ln_f, x), gpt->gpt.wte.weight, NULL);
}

ig_tensor *ig_gpt_loss(ig_model *gpt, ig_tensor *idx, ig_tensor *targets) {
    return ig_cross_entropy(ig_gpt_forward(gpt, idx), targets, -1, 0);
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Picks a token from the logits z (V, modified): argmax when temperature is
 * 0, else a draw from softmax(z / temperature) over the top_k largest. */
static ig_status pick(double *z, double *scratch, int64_t V, double temperature, int top_k,
                      ig_generator *gen, int64_t *token) {
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (z[i] > z[best]) best = i;
    if (temperature <= 0) {
        *token = best;
        return IG_OK;
    }
    double cut = -INFINITY;
    if (top_k > 0 && top_k < V) { /* keep the values >= the k-th largest (ties stay) */
        memcpy(scratch, z, sizeof *z * (size_t)V);
        qsort(scratch, (size_t)V, sizeof *scratch, cmp_desc);
        cut = scratch[top_k - 1];
    }
    double sum = 0, zmax = z[best]; /* z[best] itself is overwritten below */
    for (int64_t i = 0; i < V; i++) {
        z[i] = z[i] >= cut ? exp((z[i] - zmax) / temperature) : 0;
        sum += z[i];
    }
    ig_tensor *u = ig_rand(IG_SHAPE(1), IG_F64, IG_CPU, gen);
    if (!u) return ig_last_status();
    double r = ig_tensor_item(u) * sum;
    *token = best; /* rounding can leave r past the last bucket */
    for (int64_t i = 0; i < V; i++) {
        if (z[i] > 0 && r < z[i]) {
            *token = i;
            break;
        }
        r -= z[i];
    }
    return IG_OK;
}

ig_status ig_gpt_generate(ig_model *gpt, const int64_t *prompt, int n_prompt, int n_new,
                          double temperature, int top_k, ig_generator *gen, int64_t *out) {
    check_gpt(gpt, "gpt_generate");
    IG_CHECK(n_prompt >= 1 && n_new >= 0 && top_k >= 0,
             "gpt_generate: %d prompt tokens, %d new, top_k %d", n_prompt, n_new, top_k);
    int64_t V = gpt->gpt.cfg.vocab_size, block = gpt->gpt.cfg.block_size;
    double *z = malloc(sizeof *z * 2 * (size_t)V);
    if (!z) return ig__error(IG_ERR_NOMEM, "gpt_generate: out of host memory");
    memcpy(out, prompt, sizeof *out * (size_t)n_prompt);
    bool prev = ig_grad_set_enabled(false), training = gpt->training;
    gpt->training = false;
    ig_status st = IG_OK;
    for (int64_t n = n_prompt; n < (int64_t)n_prompt + n_new && st == IG_OK; n++) {
        int64_t T = n < block ? n : block;
        ig_scope *s = ig_scope_begin();
        ig_tensor *idx = ig_from_data(out + n - T, IG_SHAPE(1, T), IG_I64, gpt->dev);
        ig_tensor *last = ig_to(ig_narrow(ig_gpt_forward(gpt, idx), 1, T - 1, 1), IG_F64, IG_CPU);
        st = last ? ig_tensor_to_host(last, z) : ig_last_status();
        if (st == IG_OK) st = pick(z, z + V, V, temperature, top_k, gen, &out[n]);
        ig_scope_end(s);
    }
    gpt->training = training;
    ig_grad_set_enabled(prev);
    free(z);
    return st;
}

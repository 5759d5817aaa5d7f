/* tests/test_nn_modules.c: the modules against the op compositions they
 * stand for, the parameter registry, the ready models (GPT state dict names,
 * order and shapes as Hugging Face's GPT2LMHeadModel, GPT-2 124M's parameter
 * count, initialization, loss at init, learning, generation), the MLP and
 * CNN (shapes, an f64 gradcheck), dropout by mode, and that freeing a model
 * releases every tensor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis/nn.h"
#include "tests/testutil.h"

/* The logical values of t as doubles; free() them. */
static double *host(ig_tensor *t) {
    double *d = malloc(sizeof(double) * (size_t)(ig_tensor_numel(t) + 1));
    assert_non_null(d);
    ig_scope *s = ig_scope_begin();
    assert_int_equal(ig_tensor_to_host(ig_to(ig_detach(t), IG_F64, IG_CPU), d), IG_OK);
    ig_scope_end(s);
    return d;
}

static void moments(ig_tensor *t, double *mean, double *std) {
    int64_t n = ig_tensor_numel(t);
    double *v = host(t), s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) s += v[i], ss += v[i] * v[i];
    *mean = s / (double)n;
    *std = sqrt(ss / (double)n - *mean * *mean);
    free(v);
}

static double max_abs(ig_tensor *t) {
    int64_t n = ig_tensor_numel(t);
    double *v = host(t), m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    free(v);
    return m;
}

static ig_tensor *randn(int ndim, const int64_t *shape) {
    return tu_randn(ndim, shape, IG_F32, false);
}

/* Random tokens in [0, V) of shape (B, T), i64. */
static ig_tensor *tokens(int64_t B, int64_t T, int64_t V) {
    int64_t *v = malloc(sizeof *v * (size_t)(B * T));
    ig_tensor *u = ig_rand(IG_SHAPE(B * T), IG_F64, IG_CPU, NULL);
    double *h = host(u);
    for (int64_t i = 0; i < B * T; i++) v[i] = (int64_t)(h[i] * (double)V);
    ig_tensor *t = ig_from_data(v, IG_SHAPE(B, T), IG_I64, IG_CPU);
    free(v);
    free(h);
    return t;
}

static int64_t live_tensors(void) {
    ig_memory_stats st;
    ig_memory_stats_get(&st);
    return st.live_tensors;
}

/* ---- the registry ---- */

static void param_list_copies_names_sets_decay_and_frees_tensors(void **state) {
    (void)state;
    int64_t before = live_tensors();
    ig_param_list l;
    ig_param_list_init(&l);
    char name[16] = "a.weight";
    ig_scope *s = ig_scope_begin();
    ig_param_list_add(&l, name, ig_keep(ig_zeros(IG_SHAPE(3, 4), IG_F32, IG_CPU)));
    strcpy(name, "a.bias");
    ig_param_list_add(&l, name, ig_keep(ig_zeros(IG_SHAPE(4), IG_F32, IG_CPU)));
    strcpy(name, "overwritten");
    for (int i = 0; i < 40; i++) /* grows past the first capacity */
        ig_param_list_add(&l, "more", ig_keep(ig_zeros(IG_SHAPE(1, 1, 2), IG_F32, IG_CPU)));
    ig_scope_end(s);
    assert_int_equal(l.n, 42);
    assert_string_equal(l.names[0], "a.weight");
    assert_string_equal(l.names[1], "a.bias");
    assert_true(l.decay[0]);
    assert_false(l.decay[1]);
    assert_true(l.decay[2]);
    assert_ptr_equal(ig_param_list_find(&l, "a.bias"), l.tensors[1]);
    assert_null(ig_param_list_find(&l, "a"));
    assert_int_equal(ig_param_list_numel(&l), 12 + 4 + 40 * 2);
    ig_param_list_destroy(&l);
    assert_int_equal(l.n, 0);
    assert_int_equal(live_tensors(), before);
}

/* ---- modules ---- */

static void linear_embedding_and_norms_equal_their_ops_and_init_as_pytorch(void **state) {
    (void)state;
    ig_param_list reg;
    ig_param_list_init(&reg);
    ig_nn_linear lin;
    ig_nn_embedding emb;
    ig_nn_layer_norm ln;
    ig_nn_rms_norm rms;
    ig_nn_linear_init(&lin, &reg, "fc", 64, 32, true, IG_CPU, NULL);
    ig_nn_embedding_init(&emb, &reg, "emb", 100, 40, IG_CPU, NULL);
    ig_nn_layer_norm_init(&ln, &reg, "ln", 32, IG_CPU);
    ig_nn_rms_norm_init(&rms, &reg, "", 32, IG_CPU);
    const char *names[] = {"fc.weight", "fc.bias", "emb.weight", "ln.weight", "ln.bias", "weight"};
    assert_int_equal(reg.n, 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(reg.names[i], names[i]);
        assert_true(ig_tensor_requires_grad(reg.tensors[i]));
    }
    /* PyTorch: Linear uniform within 1/sqrt(in), Embedding normal(0, 1), norms 1 and 0 */
    double mean, std;
    assert_true(max_abs(lin.weight) <= 1 / sqrt(64.0) && max_abs(lin.weight) > 0.9 / sqrt(64.0));
    assert_true(max_abs(lin.bias) <= 1 / sqrt(64.0));
    moments(lin.weight, &mean, &std);
    assert_true(fabs(std - 1 / sqrt(3 * 64.0)) < 0.01);
    moments(emb.weight, &mean, &std);
    assert_true(fabs(mean) < 0.05 && fabs(std - 1) < 0.05);
    moments(ln.weight, &mean, &std);
    assert_true(mean == 1 && std == 0);
    assert_true(max_abs(ln.bias) == 0);
    assert_true(ln.eps == 1e-5);

    ig_scope *s = ig_scope_begin();
    ig_tensor *x = randn(IG_SHAPE(2, 5, 64));
    tu_assert_close(ig_nn_linear_forward(&lin, x),
                    ig_add(ig_matmul(x, ig_transpose(lin.weight, 0, 1)), lin.bias), 1e-6, 1e-5,
                    "linear");
    ig_tensor *idx = tokens(3, 7, 100);
    tu_assert_close(ig_nn_embedding_forward(&emb, idx),
                    ig_view(ig_index_select(emb.weight, 0, ig_flatten(idx)), IG_SHAPE(3, 7, 40)),
                    0, 0, "embedding");
    ig_normal_(ln.weight, 1, 0.5, NULL);
    ig_normal_(ln.bias, 0, 0.5, NULL);
    ig_normal_(rms.weight, 1, 0.5, NULL);
    ig_tensor *h = randn(IG_SHAPE(4, 32));
    int last[] = {-1};
    ig_tensor *centered = ig_sub(h, ig_mean(h, 1, last, true));
    ig_tensor *ref_ln = ig_add(ig_mul(ig_div(centered, ig_sqrt(ig_add_scalar(
                                                      ig_var(h, 1, last, 0, true), 1e-5))),
                                      ln.weight),
                               ln.bias);
    tu_assert_close(ig_nn_layer_norm_forward(&ln, h), ref_ln, 1e-5, 1e-5, "layer_norm");
    ig_tensor *ref_rms = ig_mul(ig_mul(h, ig_rsqrt(ig_add_scalar(
                                              ig_mean(ig_mul(h, h), 1, last, true), rms.eps))),
                                rms.weight);
    tu_assert_close(ig_nn_rms_norm_forward(&rms, h), ref_rms, 1e-5, 1e-5, "rms_norm");
    ig_scope_end(s);
    ig_param_list_destroy(&reg);
}

static void conv2d_equals_the_op_with_its_options_and_fan_in_bounds(void **state) {
    (void)state;
    ig_param_list reg;
    ig_param_list_init(&reg);
    ig_conv2d_opts o = {{2, 1}, {1, 0}, {1, 1}, 2};
    ig_nn_conv2d conv;
    ig_nn_conv2d_init(&conv, &reg, "conv", 4, 6, 3, &o, true, IG_CPU, NULL);
    assert_int_equal(reg.n, 2);
    assert_string_equal(reg.names[0], "conv.weight");
    const int64_t want[] = {6, 2, 3, 3};
    for (int d = 0; d < 4; d++) assert_int_equal(ig_tensor_size(conv.weight, d), want[d]);
    double bound = 1 / sqrt(2 * 3 * 3.0); /* fan_in = in/groups * k * k */
    assert_true(max_abs(conv.weight) <= bound && max_abs(conv.weight) > 0.8 * bound);
    assert_true(max_abs(conv.bias) <= bound);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = randn(IG_SHAPE(2, 4, 9, 8));
    tu_assert_close(ig_nn_conv2d_forward(&conv, x), ig_conv2d(x, conv.weight, conv.bias, &o), 0,
                    0, "conv2d");
    ig_scope_end(s);
    ig_param_list_destroy(&reg);
}

/* The GPT-2 block written with plain ops: dense (B, H, T, D) copies, explicit
 * scores, causal mask and softmax. */
static ig_tensor *conv1d_ref(const ig_nn_conv1d *m, ig_tensor *x) {
    return ig_add(ig_matmul(x, m->weight), m->bias);
}

static ig_tensor *heads(ig_tensor *qkv, int i, int64_t B, int64_t T, int64_t H, int64_t D) {
    ig_tensor *p = ig_contiguous(ig_narrow(qkv, 2, i * H * D, H * D));
    return ig_contiguous(ig_permute(ig_view(p, IG_SHAPE(B, T, H, D)), (int[]){0, 2, 1, 3}));
}

static ig_tensor *attention_ref(const ig_nn_causal_self_attention *m, ig_tensor *x) {
    int64_t B = ig_tensor_size(x, 0), T = ig_tensor_size(x, 1), C = ig_tensor_size(x, 2);
    int64_t H = m->n_head, D = C / H;
    ig_tensor *qkv = conv1d_ref(&m->c_attn, x);
    ig_tensor *q = heads(qkv, 0, B, T, H, D), *k = heads(qkv, 1, B, T, H, D),
              *v = heads(qkv, 2, B, T, H, D);
    uint8_t *mask = malloc((size_t)(T * T));
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) mask[i * T + j] = j > i;
    ig_tensor *mk = ig_from_data(mask, IG_SHAPE(T, T), IG_U8, IG_CPU);
    free(mask);
    ig_tensor *att = ig_mul_scalar(ig_matmul(q, ig_transpose(k, 2, 3)), 1 / sqrt((double)D));
    ig_tensor *y = ig_matmul(ig_softmax(ig_masked_fill(att, mk, -INFINITY), -1), v);
    y = ig_reshape(ig_permute(y, (int[]){0, 2, 1, 3}), IG_SHAPE(B, T, C));
    return conv1d_ref(&m->c_proj, y);
}

static ig_tensor *block_ref(const ig_nn_gpt_block *b, ig_tensor *x) {
    x = ig_add(x, attention_ref(&b->attn, ig_layer_norm(x, b->ln_1.weight, b->ln_1.bias, 1e-5)));
    ig_tensor *h = ig_layer_norm(x, b->ln_2.weight, b->ln_2.bias, 1e-5);
    return ig_add(x, conv1d_ref(&b->mlp.c_proj, ig_gelu_tanh(conv1d_ref(&b->mlp.c_fc, h))));
}

static void gpt_block_modules_equal_the_op_composition(void **state) {
    (void)state;
    ig_param_list reg;
    ig_param_list_init(&reg);
    ig_nn_gpt_block blk;
    ig_nn_gpt_block_init(&blk, &reg, "h.3", 32, 4, 0.01, IG_CPU, NULL);
    const char *names[] = {"h.3.ln_1.weight",        "h.3.ln_1.bias",
                           "h.3.attn.c_attn.weight", "h.3.attn.c_attn.bias",
                           "h.3.attn.c_proj.weight", "h.3.attn.c_proj.bias",
                           "h.3.ln_2.weight",        "h.3.ln_2.bias",
                           "h.3.mlp.c_fc.weight",    "h.3.mlp.c_fc.bias",
                           "h.3.mlp.c_proj.weight",  "h.3.mlp.c_proj.bias"};
    assert_int_equal(reg.n, 12);
    for (int i = 0; i < 12; i++) assert_string_equal(reg.names[i], names[i]);
    /* non-trivial values everywhere (init has zero biases and unit norms) */
    for (int i = 0; i < reg.n; i++)
        if (!reg.decay[i]) ig_normal_(reg.tensors[i], i % 4 == 0 ? 1 : 0, 0.3, NULL);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = randn(IG_SHAPE(2, 9, 32));
    tu_assert_close(ig_nn_conv1d_forward(&blk.mlp.c_fc, x), conv1d_ref(&blk.mlp.c_fc, x), 1e-6,
                    1e-5, "conv1d");
    tu_assert_close(ig_nn_causal_self_attention_forward(&blk.attn, x, 0, true),
                    attention_ref(&blk.attn, x), 1e-6, 1e-5, "causal self-attention");
    ig_tensor *h = ig_nn_gpt_mlp_forward(&blk.mlp, x, 0, true);
    tu_assert_close(h, conv1d_ref(&blk.mlp.c_proj, ig_gelu_tanh(conv1d_ref(&blk.mlp.c_fc, x))),
                    1e-6, 1e-5, "mlp");
    tu_assert_close(ig_nn_gpt_block_forward(&blk, x, 0, true), block_ref(&blk, x), 1e-5, 1e-5,
                    "block");
    ig_scope_end(s);
    ig_param_list_destroy(&reg);
}

/* ---- GPT ---- */

static const ig_gpt_config tiny = {2, 4, 32, 16, 50, 0.0};

static void gpt_state_dict_has_hugging_face_names_order_and_shapes(void **state) {
    (void)state;
    ig_model *m = ig_gpt_new(&tiny, IG_CPU, NULL);
    assert_non_null(m);
    const ig_param_list *p = ig_model_params(m);
    const int64_t C = 32, V = 50, block = 16;
    typedef struct { const char *name; int64_t d0, d1; } entry;
    entry want[2 + 12 * 2 + 2];
    int n = 0;
    char names[32][64];
    want[n++] = (entry){"transformer.wte.weight", V, C};
    want[n++] = (entry){"transformer.wpe.weight", block, C};
    const struct { const char *suffix; int64_t d0, d1; } layer[12] = {
        {"ln_1.weight", C, 0},        {"ln_1.bias", C, 0},
        {"attn.c_attn.weight", C, 3 * C}, {"attn.c_attn.bias", 3 * C, 0},
        {"attn.c_proj.weight", C, C}, {"attn.c_proj.bias", C, 0},
        {"ln_2.weight", C, 0},        {"ln_2.bias", C, 0},
        {"mlp.c_fc.weight", C, 4 * C}, {"mlp.c_fc.bias", 4 * C, 0},
        {"mlp.c_proj.weight", 4 * C, C}, {"mlp.c_proj.bias", C, 0},
    };
    for (int l = 0; l < 2; l++)
        for (int j = 0; j < 12; j++) {
            snprintf(names[l * 12 + j], sizeof names[0], "transformer.h.%d.%s", l,
                     layer[j].suffix);
            want[n++] = (entry){names[l * 12 + j], layer[j].d0, layer[j].d1};
        }
    want[n++] = (entry){"transformer.ln_f.weight", C, 0};
    want[n++] = (entry){"transformer.ln_f.bias", C, 0};
    assert_int_equal(p->n, n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(p->names[i], want[i].name);
        ig_tensor *t = p->tensors[i];
        assert_int_equal(ig_tensor_ndim(t), want[i].d1 ? 2 : 1);
        assert_int_equal(ig_tensor_size(t, 0), want[i].d0);
        if (want[i].d1) assert_int_equal(ig_tensor_size(t, 1), want[i].d1);
        assert_true(ig_tensor_requires_grad(t));
        assert_int_equal(p->decay[i], want[i].d1 != 0);
    }
    assert_null(ig_param_list_find(p, "lm_head.weight")); /* tied to wte */
    ig_model_free(m);
}

static void gpt2_124m_has_124439808_parameters(void **state) {
    (void)state;
    ig_gpt_config cfg = IG_GPT_CONFIG_INIT;
    ig_model *m = ig_gpt_new(&cfg, IG_CPU, NULL);
    assert_non_null(m);
    assert_int_equal(ig_param_list_numel(ig_model_params(m)), 124439808);
    assert_int_equal(ig_model_params(m)->n, 2 + 12 * 12 + 2);
    ig_model_free(m);
    ig_memory_release_cached();
}

static void gpt_initializes_as_gpt2(void **state) {
    (void)state;
    ig_gpt_config cfg = {4, 4, 128, 64, 300, 0.0};
    ig_model *m = ig_gpt_new(&cfg, IG_CPU, NULL);
    const ig_param_list *p = ig_model_params(m);
    double proj = 0.02 / sqrt(2.0 * 4);
    for (int i = 0; i < p->n; i++) {
        double mean, std;
        moments(p->tensors[i], &mean, &std);
        const char *name = p->names[i];
        if (strstr(name, "ln_") && strstr(name, ".weight")) {
            assert_true(mean == 1 && std == 0);
        } else if (!p->decay[i]) {
            assert_true(max_abs(p->tensors[i]) == 0); /* biases */
        } else {
            double want = strstr(name, "c_proj.weight") ? proj : 0.02;
            if (fabs(std - want) > 0.05 * want || fabs(mean) > 0.05 * want) {
                print_error("%s: mean %g std %g, want std %g\n", name, mean, std, want);
                fail();
            }
        }
    }
    /* the same generator state gives the same model */
    ig_generator g1 = {7, 0}, g2 = {7, 0};
    ig_model *a = ig_gpt_new(&tiny, IG_CPU, &g1), *b = ig_gpt_new(&tiny, IG_CPU, &g2);
    ig_scope *s = ig_scope_begin();
    for (int i = 0; i < ig_model_params(a)->n; i++)
        tu_assert_close(ig_model_params(a)->tensors[i], ig_model_params(b)->tensors[i], 0, 0,
                        "same seed");
    ig_scope_end(s);
    ig_model_free(a);
    ig_model_free(b);
    ig_model_free(m);
}

static void gpt_loss_at_init_is_close_to_log_vocab(void **state) {
    (void)state;
    ig_gpt_config cfg = {2, 4, 64, 32, 200, 0.0};
    ig_model *m = ig_gpt_new(&cfg, IG_CPU, NULL);
    ig_scope *s = ig_scope_begin();
    ig_tensor *idx = tokens(4, 32, 200), *tgt = tokens(4, 32, 200);
    ig_tensor *logits = ig_gpt_forward(m, idx);
    assert_int_equal(ig_tensor_ndim(logits), 3);
    assert_int_equal(ig_tensor_size(logits, 0), 4);
    assert_int_equal(ig_tensor_size(logits, 1), 32);
    assert_int_equal(ig_tensor_size(logits, 2), 200);
    double loss = ig_tensor_item(ig_gpt_loss(m, idx, tgt));
    print_message("gpt loss at init %.4f, ln(V) %.4f\n", loss, log(200.0));
    assert_true(fabs(loss - log(200.0)) < 0.1);
    ig_scope_end(s);
    ig_model_free(m);
}

static void gpt_sgd_steps_drive_the_loss_down_on_a_repeated_sequence(void **state) {
    (void)state;
    ig_model *m = ig_gpt_new(&tiny, IG_CPU, NULL);
    const ig_param_list *p = ig_model_params(m);
    int64_t seq[2][17];
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 17; t++) seq[b][t] = (3 * b + 7 * t) % 11;
    int64_t in[2][16], out[2][16];
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 16; t++) in[b][t] = seq[b][t], out[b][t] = seq[b][t + 1];
    double first = 0, last = 0;
    for (int step = 0; step < 50; step++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *idx = ig_from_data(in, IG_SHAPE(2, 16), IG_I64, IG_CPU);
        ig_tensor *tgt = ig_from_data(out, IG_SHAPE(2, 16), IG_I64, IG_CPU);
        ig_tensor *loss = ig_gpt_loss(m, idx, tgt);
        last = ig_tensor_item(loss);
        if (step == 0) first = last;
        assert_int_equal(ig_backward(loss), IG_OK);
        bool prev = ig_grad_set_enabled(false);
        for (int i = 0; i < p->n; i++) {
            ig_tensor *w = p->tensors[i];
            ig_copy_(w, ig_sub(w, ig_mul_scalar(ig_tensor_grad(w), 0.2)));
            ig_tensor_zero_grad(w, true);
        }
        ig_grad_set_enabled(prev);
        ig_scope_end(s);
    }
    print_message("gpt sgd: loss %.4f -> %.4f\n", first, last);
    assert_true(last < first / 10);
    ig_model_free(m);
}

static void gpt_generate_is_deterministic_and_top_k_1_is_greedy(void **state) {
    (void)state;
    ig_model *m = ig_gpt_new(&tiny, IG_CPU, NULL);
    int64_t prompt[3] = {1, 2, 3}, a[3 + 20], b[3 + 20], greedy[3 + 20], top1[3 + 20];
    ig_generator g1 = {42, 0}, g2 = {42, 0}, g3 = {5, 0};
    /* 23 tokens > block_size 16: the context is cropped */
    assert_int_equal(ig_gpt_generate(m, prompt, 3, 20, 1.0, 0, &g1, a), IG_OK);
    assert_int_equal(ig_gpt_generate(m, prompt, 3, 20, 1.0, 0, &g2, b), IG_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(a, prompt, sizeof prompt);
    for (int i = 0; i < 23; i++) assert_true(a[i] >= 0 && a[i] < tiny.vocab_size);
    assert_int_equal(ig_gpt_generate(m, prompt, 3, 20, 0.0, 0, &g3, greedy), IG_OK);
    assert_int_equal(ig_gpt_generate(m, prompt, 3, 20, 1.0, 1, &g3, top1), IG_OK);
    assert_memory_equal(greedy, top1, sizeof greedy);
    /* greedy: the argmax of the last position's logits */
    ig_scope *s = ig_scope_begin();
    ig_tensor *idx = ig_from_data(prompt, IG_SHAPE(1, 3), IG_I64, IG_CPU);
    ig_tensor *ix;
    ig_max(ig_narrow(ig_gpt_forward(m, idx), 1, 2, 1), -1, false, &ix);
    assert_int_equal((int64_t)ig_tensor_item(ix), greedy[3]);
    ig_scope_end(s);
    ig_model_free(m);
}

/* ---- MLP and CNN ---- */

static void mlp_and_cnn_have_their_names_and_output_shapes(void **state) {
    (void)state;
    ig_mlp_config mc = {20, 16, 2, 5, 0.0};
    ig_model *mlp = ig_mlp_new(&mc, IG_CPU, NULL);
    const ig_param_list *p = ig_model_params(mlp);
    const char *mn[] = {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                        "layers.2.weight", "layers.2.bias"};
    assert_int_equal(p->n, 6);
    for (int i = 0; i < 6; i++) assert_string_equal(p->names[i], mn[i]);
    assert_int_equal(ig_param_list_numel(p), 20 * 16 + 16 + 16 * 16 + 16 + 16 * 5 + 5);
    ig_cnn_config cc = {3, 12, 8, 4, 7};
    ig_model *cnn = ig_cnn_new(&cc, IG_CPU, NULL);
    p = ig_model_params(cnn);
    const char *cn[] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight",
                        "fc.bias"};
    assert_int_equal(p->n, 6);
    for (int i = 0; i < 6; i++) assert_string_equal(p->names[i], cn[i]);
    assert_int_equal(ig_tensor_size(p->tensors[2], 0), 8);
    assert_int_equal(ig_tensor_size(p->tensors[4], 1), 8 * 3 * 2);
    ig_scope *s = ig_scope_begin();
    ig_tensor *y = ig_mlp_forward(mlp, randn(IG_SHAPE(9, 20)));
    assert_int_equal(ig_tensor_size(y, 0), 9);
    assert_int_equal(ig_tensor_size(y, 1), 5);
    ig_tensor *z = ig_cnn_forward(cnn, randn(IG_SHAPE(2, 3, 12, 8)));
    assert_int_equal(ig_tensor_ndim(z), 2);
    assert_int_equal(ig_tensor_size(z, 0), 2);
    assert_int_equal(ig_tensor_size(z, 1), 7);
    assert_int_equal(ig_backward(ig_sum_all(z)), IG_OK);
    for (int i = 0; i < p->n; i++) assert_non_null(ig_tensor_grad(p->tensors[i]));
    ig_scope_end(s);
    ig_model_free(mlp);
    ig_model_free(cnn);
}

static ig_tensor *mlp_fn(void *user, ig_tensor **in) { return ig_mlp_forward(user, in[0]); }
static ig_tensor *cnn_fn(void *user, ig_tensor **in) { return ig_cnn_forward(user, in[0]); }

static void mlp_and_cnn_converted_to_f64_pass_gradcheck(void **state) {
    (void)state;
    ig_mlp_config mc = {5, 6, 2, 3, 0.0};
    ig_model *mlp = ig_mlp_new(&mc, IG_CPU, NULL);
    assert_int_equal(ig_model_to(mlp, IG_F64, IG_CPU), IG_OK);
    const ig_param_list *p = ig_model_params(mlp);
    ig_tensor *in[16];
    ig_scope *s = ig_scope_begin();
    in[0] = tu_randn(IG_SHAPE(4, 5), IG_F64, true);
    for (int i = 0; i < p->n; i++) {
        assert_int_equal(ig_tensor_dtype(p->tensors[i]), IG_F64);
        assert_true(ig_tensor_requires_grad(p->tensors[i]));
        in[1 + i] = p->tensors[i];
    }
    tu_gradcheck("mlp", mlp_fn, mlp, 1 + p->n, in);
    ig_cnn_config cc = {2, 4, 4, 2, 3};
    ig_model *cnn = ig_cnn_new(&cc, IG_CPU, NULL);
    assert_int_equal(ig_model_to(cnn, IG_F64, IG_CPU), IG_OK);
    p = ig_model_params(cnn);
    in[0] = tu_randn(IG_SHAPE(2, 2, 4, 4), IG_F64, true);
    for (int i = 0; i < p->n; i++) in[1 + i] = p->tensors[i];
    tu_gradcheck("cnn", cnn_fn, cnn, 1 + p->n, in);
    ig_scope_end(s);
    ig_model_free(mlp);
    ig_model_free(cnn);
}

static void dropout_acts_in_train_mode_and_not_in_eval_mode(void **state) {
    (void)state;
    ig_gpt_config cfg = tiny;
    cfg.dropout = 0.5;
    ig_generator g1 = {3, 0}, g2 = {3, 0};
    ig_model *drop = ig_gpt_new(&cfg, IG_CPU, &g1), *plain = ig_gpt_new(&tiny, IG_CPU, &g2);
    ig_mlp_config mc = {8, 32, 1, 4, 0.5};
    ig_model *mlp = ig_mlp_new(&mc, IG_CPU, NULL);
    ig_scope *s = ig_scope_begin();
    ig_tensor *idx = tokens(2, 16, tiny.vocab_size), *x = randn(IG_SHAPE(6, 8));
    ig_tensor *ref = ig_gpt_forward(plain, idx);
    assert_true(tu_close_ratio(ig_gpt_forward(drop, idx), ref, 1e-4, 1e-4) > 1);
    ig_tensor *m1 = ig_mlp_forward(mlp, x);
    assert_true(tu_close_ratio(ig_mlp_forward(mlp, x), m1, 1e-4, 1e-4) > 1);
    ig_model_train(drop, false);
    ig_model_train(mlp, false);
    tu_assert_close(ig_gpt_forward(drop, idx), ref, 0, 0, "gpt in eval mode");
    ig_tensor *e1 = ig_mlp_forward(mlp, x);
    tu_assert_close(ig_mlp_forward(mlp, x), e1, 0, 0, "mlp in eval mode");
    ig_scope_end(s);
    ig_model_free(drop);
    ig_model_free(plain);
    ig_model_free(mlp);
}

static void freeing_a_trained_model_releases_every_tensor(void **state) {
    (void)state;
    int64_t before = live_tensors();
    ig_model *m = ig_gpt_new(&tiny, IG_CPU, NULL);
    ig_scope *s = ig_scope_begin();
    ig_tensor *idx = tokens(2, 8, tiny.vocab_size);
    assert_int_equal(ig_backward(ig_gpt_loss(m, idx, idx)), IG_OK);
    ig_scope_end(s);
    assert_int_equal(ig_model_to(m, IG_F64, IG_CPU), IG_OK);
    ig_model_free(m);
    assert_int_equal(live_tensors(), before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(param_list_copies_names_sets_decay_and_frees_tensors),
        cmocka_unit_test(linear_embedding_and_norms_equal_their_ops_and_init_as_pytorch),
        cmocka_unit_test(conv2d_equals_the_op_with_its_options_and_fan_in_bounds),
        cmocka_unit_test(gpt_block_modules_equal_the_op_composition),
        cmocka_unit_test(gpt_state_dict_has_hugging_face_names_order_and_shapes),
        cmocka_unit_test(gpt2_124m_has_124439808_parameters),
        cmocka_unit_test(gpt_initializes_as_gpt2),
        cmocka_unit_test(gpt_loss_at_init_is_close_to_log_vocab),
        cmocka_unit_test(gpt_sgd_steps_drive_the_loss_down_on_a_repeated_sequence),
        cmocka_unit_test(gpt_generate_is_deterministic_and_top_k_1_is_greedy),
        cmocka_unit_test(mlp_and_cnn_have_their_names_and_output_shapes),
        cmocka_unit_test(mlp_and_cnn_converted_to_f64_pass_gradcheck),
        cmocka_unit_test(dropout_acts_in_train_mode_and_not_in_eval_mode),
        cmocka_unit_test(freeing_a_trained_model_releases_every_tensor),
    };
    return TU_RUN(tests);
}

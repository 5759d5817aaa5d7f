/* tests/test_gpt_hf.c: Hugging Face interop of the GPT. Random weights for a
 * tiny GPT-2, under GPT2LMHeadModel's names with Conv1D (in, out) layouts,
 * are written to a safetensors file and loaded by name into ig_gpt_new's
 * model; its logits must equal an independent GPT-2 forward written here in
 * double over raw arrays. Also: files saved from GPT2Model (no
 * "transformer." prefix, extra buffers) load the same, the model's own save
 * round-trips, and a missing tensor or a wrong shape fails naming the
 * tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ignis/ckpt.h"
#include "ignis/nn.h"
#include "tests/testutil.h"

enum { L = 2, H = 2, C = 16, BLOCK = 12, V = 23, B = 2, MAXT = 64 };

typedef struct hf_tensor {
    char name[64];
    int ndim;
    int64_t shape[2];
    double *v; /* values exactly representable in f32 */
} hf_tensor;

typedef struct hf_weights {
    int n;
    hf_tensor t[MAXT];
} hf_weights;

static void add(hf_weights *w, const char *name, int64_t d0, int64_t d1, double mean, double std,
                ig_generator *gen) {
    hf_tensor *t = &w->t[w->n++];
    snprintf(t->name, sizeof t->name, "transformer.%s", name);
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    int64_t n = d0 * (d1 ? d1 : 1);
    t->v = malloc(sizeof *t->v * (size_t)n);
    ig_scope *s = ig_scope_begin();
    ig_tensor *r = ig_randn(IG_SHAPE(n), IG_F32, IG_CPU, gen);
    const float *f = ig_tensor_data(r);
    for (int64_t i = 0; i < n; i++) t->v[i] = (double)(float)(mean + std * f[i]);
    ig_scope_end(s);
}

/* GPT-2's tensors in GPT2LMHeadModel's order, Conv1D weights (in, out). */
static void make_weights(hf_weights *w, uint64_t seed) {
    ig_generator gen = {seed, 0};
    w->n = 0;
    add(w, "wte.weight", V, C, 0, 0.3, &gen);
    add(w, "wpe.weight", BLOCK, C, 0, 0.1, &gen);
    for (int l = 0; l < L; l++) {
        char n[64];
#define LAYER(suffix, d0, d1, mean, std)                   \
    snprintf(n, sizeof n, "h.%d.%s", l, suffix);           \
    add(w, n, d0, d1, mean, std, &gen)
        LAYER("ln_1.weight", C, 0, 1, 0.2);
        LAYER("ln_1.bias", C, 0, 0, 0.1);
        LAYER("attn.c_attn.weight", C, 3 * C, 0, 0.3);
        LAYER("attn.c_attn.bias", 3 * C, 0, 0, 0.1);
        LAYER("attn.c_proj.weight", C, C, 0, 0.2);
        LAYER("attn.c_proj.bias", C, 0, 0, 0.1);
        LAYER("ln_2.weight", C, 0, 1, 0.2);
        LAYER("ln_2.bias", C, 0, 0, 0.1);
        LAYER("mlp.c_fc.weight", C, 4 * C, 0, 0.2);
        LAYER("mlp.c_fc.bias", 4 * C, 0, 0, 0.1);
        LAYER("mlp.c_proj.weight", 4 * C, C, 0, 0.1);
        LAYER("mlp.c_proj.bias", C, 0, 0, 0.1);
#undef LAYER
    }
    add(w, "ln_f.weight", C, 0, 1, 0.2, &gen);
    add(w, "ln_f.bias", C, 0, 0, 0.1, &gen);
}

static void free_weights(hf_weights *w) {
    for (int i = 0; i < w->n; i++) free(w->t[i].v);
    w->n = 0;
}

static const double *W(const hf_weights *w, const char *fmt, int l) {
    char name[64], full[80];
    snprintf(name, sizeof name, fmt, l);
    snprintf(full, sizeof full, "transformer.%s", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, full) == 0) return w->t[i].v;
    fail_msg("no weight %s", full);
    return NULL;
}

/* ---- the naive GPT-2 forward, in double ---- */

static void layer_norm(double *out, const double *x, const double *g, const double *b, int T) {
    for (int t = 0; t < T; t++) {
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += x[t * C + c] / C;
        for (int c = 0; c < C; c++) var += (x[t * C + c] - mean) * (x[t * C + c] - mean) / C;
        for (int c = 0; c < C; c++)
            out[t * C + c] = (x[t * C + c] - mean) / sqrt(var + 1e-5) * g[c] + b[c];
    }
}

/* out (T, n) = x (T, k) @ w (k, n) + b: HF's Conv1D */
static void conv1d(double *out, const double *x, const double *w, const double *b, int T, int k,
                   int n) {
    for (int t = 0; t < T; t++)
        for (int j = 0; j < n; j++) {
            double acc = b[j];
            for (int i = 0; i < k; i++) acc += x[t * k + i] * w[i * n + j];
            out[t * n + j] = acc;
        }
}

/* logits (B, T, V) of tokens idx (B, T) */
static void reference_forward(const hf_weights *w, const int64_t *idx, int T, double *logits) {
    enum { D = C / H };
    static double x[BLOCK * C], h[BLOCK * C], qkv[BLOCK * 3 * C], y[BLOCK * C], f[BLOCK * 4 * C],
        p[BLOCK * C];
    const double *wte = W(w, "wte.weight", 0), *wpe = W(w, "wpe.weight", 0);
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) x[t * C + c] = wte[idx[b * T + t] * C + c] + wpe[t * C + c];
        for (int l = 0; l < L; l++) {
            layer_norm(h, x, W(w, "h.%d.ln_1.weight", l), W(w, "h.%d.ln_1.bias", l), T);
            conv1d(qkv, h, W(w, "h.%d.attn.c_attn.weight", l), W(w, "h.%d.attn.c_attn.bias", l),
                   T, C, 3 * C);
            for (int hd = 0; hd < H; hd++)
                for (int t = 0; t < T; t++) {
                    double s[BLOCK], mx = -INFINITY, sum = 0;
                    for (int u = 0; u <= t; u++) { /* causal: keys up to t */
                        s[u] = 0;
                        for (int d = 0; d < D; d++)
                            s[u] += qkv[t * 3 * C + hd * D + d] * qkv[u * 3 * C + C + hd * D + d];
                        s[u] /= sqrt((double)D);
                        mx = fmax(mx, s[u]);
                    }
                    for (int u = 0; u <= t; u++) sum += s[u] = exp(s[u] - mx);
                    for (int d = 0; d < D; d++) {
                        double acc = 0;
                        for (int u = 0; u <= t; u++)
                            acc += s[u] / sum * qkv[u * 3 * C + 2 * C + hd * D + d];
                        y[t * C + hd * D + d] = acc;
                    }
                }
            conv1d(p, y, W(w, "h.%d.attn.c_proj.weight", l), W(w, "h.%d.attn.c_proj.bias", l), T,
                   C, C);
            for (int i = 0; i < T * C; i++) x[i] += p[i];
            layer_norm(h, x, W(w, "h.%d.ln_2.weight", l), W(w, "h.%d.ln_2.bias", l), T);
            conv1d(f, h, W(w, "h.%d.mlp.c_fc.weight", l), W(w, "h.%d.mlp.c_fc.bias", l), T, C,
                   4 * C);
            for (int i = 0; i < T * 4 * C; i++) {
                double v = f[i];
                f[i] = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            }
            conv1d(p, f, W(w, "h.%d.mlp.c_proj.weight", l), W(w, "h.%d.mlp.c_proj.bias", l), T,
                   4 * C, C);
            for (int i = 0; i < T * C; i++) x[i] += p[i];
        }
        layer_norm(h, x, W(w, "ln_f.weight", 0), W(w, "ln_f.bias", 0), T);
        for (int t = 0; t < T; t++) /* tied lm head: h @ wte^T */
            for (int v = 0; v < V; v++) {
                double acc = 0;
                for (int c = 0; c < C; c++) acc += h[t * C + c] * wte[v * C + c];
                logits[(b * T + t) * V + v] = acc;
            }
    }
}

/* ---- files ---- */

static char dir[] = "/tmp/ignis_test_gpt_hf_XXXXXX";

static const char *path_in(const char *name) {
    static char p[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

typedef struct save_opts {
    const char *skip;       /* leave this tensor out */
    const char *transpose;  /* store this one with its dims swapped */
    bool strip_prefix;      /* GPT2Model's names, without "transformer." */
    bool extra;             /* add tensors the model lacks (attn.bias buffers, lm_head) */
} save_opts;

static void save(const hf_weights *w, const char *path, save_opts o) {
    const char *names[MAXT + 4];
    ig_tensor *ts[MAXT + 4];
    int n = 0;
    ig_scope *s = ig_scope_begin();
    for (int i = 0; i < w->n; i++) {
        const hf_tensor *t = &w->t[i];
        if (o.skip && strcmp(t->name, o.skip) == 0) continue;
        int64_t shape[2] = {t->shape[0], t->shape[1]};
        if (o.transpose && strcmp(t->name, o.transpose) == 0) shape[0] = t->shape[1], shape[1] = t->shape[0];
        ig_tensor *d = ig_from_data(t->v, t->ndim, shape, IG_F64, IG_CPU);
        ts[n] = ig_to(d, IG_F32, IG_CPU);
        names[n++] = o.strip_prefix ? t->name + strlen("transformer.") : t->name;
    }
    if (o.extra) {
        names[n] = "h.0.attn.bias";
        ts[n++] = ig_ones(IG_SHAPE(1, 1, BLOCK, BLOCK), IG_F32, IG_CPU);
        names[n] = "lm_head.weight";
        ts[n++] = ig_zeros(IG_SHAPE(V, C), IG_F32, IG_CPU);
    }
    assert_int_equal(ig_safetensors_save(path, n, names, ts, NULL), IG_OK);
    ig_scope_end(s);
}

static const ig_gpt_config cfg = {L, H, C, BLOCK, V, 0.0};

static ig_tensor *tokens(int T, uint64_t seed, int64_t *idx) {
    ig_generator g = {seed, 0};
    ig_tensor *u = ig_rand(IG_SHAPE(B * T), IG_F64, IG_CPU, &g);
    const double *h = ig_tensor_data(u);
    for (int i = 0; i < B * T; i++) idx[i] = (int64_t)(h[i] * V);
    return ig_from_data(idx, IG_SHAPE(B, T), IG_I64, IG_CPU);
}

/* Asserts m's logits equal the naive forward of w on random tokens. */
static void assert_matches_reference(ig_model *m, const hf_weights *w, int T, const char *what) {
    int64_t idx[B * BLOCK];
    static double ref[B * BLOCK * V];
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = tokens(T, (uint64_t)T, idx);
    reference_forward(w, idx, T, ref);
    ig_tensor *r = ig_from_data(ref, IG_SHAPE(B, T, V), IG_F64, IG_CPU);
    tu_assert_close(ig_gpt_forward(m, x), r, 1e-5, 1e-5, what);
    ig_scope_end(s);
}

static void gpt_loaded_from_hf_safetensors_equals_a_naive_gpt2_forward(void **state) {
    (void)state;
    hf_weights w;
    make_weights(&w, 11);
    save(&w, path_in("gpt2.safetensors"), (save_opts){0});
    ig_model *m = ig_gpt_new(&cfg, IG_CPU, NULL);
    assert_int_equal(ig_model_load_safetensors(m, path_in("gpt2.safetensors")), IG_OK);
    assert_matches_reference(m, &w, BLOCK, "logits, T = block_size");
    assert_matches_reference(m, &w, 5, "logits, T = 5");

    /* GPT2Model's names (no prefix) and tensors the model does not have */
    save(&w, path_in("base.safetensors"), (save_opts){.strip_prefix = true, .extra = true});
    ig_model *b = ig_gpt_new(&cfg, IG_CPU, NULL);
    assert_int_equal(ig_model_load_safetensors(b, path_in("base.safetensors")), IG_OK);
    assert_matches_reference(b, &w, 7, "logits, GPT2Model file");

    /* the model's own file: its state dict, in order, loading back the same */
    assert_int_equal(ig_model_save_safetensors(m, path_in("own.safetensors")), IG_OK);
    ig_safetensors *f;
    assert_int_equal(ig_safetensors_open(path_in("own.safetensors"), &f), IG_OK);
    const ig_param_list *p = ig_model_params(m);
    assert_int_equal(ig_safetensors_count(f), p->n);
    for (int i = 0; i < p->n; i++) assert_int_equal(ig_safetensors_find(f, p->names[i]), i);
    ig_safetensors_close(f);
    ig_model *c = ig_gpt_new(&cfg, IG_CPU, NULL);
    assert_int_equal(ig_model_load_safetensors(c, path_in("own.safetensors")), IG_OK);
    ig_scope *s = ig_scope_begin();
    for (int i = 0; i < p->n; i++)
        tu_assert_close(ig_model_params(c)->tensors[i], p->tensors[i], 0, 0, p->names[i]);
    ig_scope_end(s);
    ig_model_free(m);
    ig_model_free(b);
    ig_model_free(c);
    free_weights(&w);
}

static void loading_fails_naming_a_missing_or_misshapen_tensor(void **state) {
    (void)state;
    hf_weights w;
    make_weights(&w, 12);
    ig_model *m = ig_gpt_new(&cfg, IG_CPU, NULL);
    const char *missing = "transformer.h.1.mlp.c_fc.bias";
    save(&w, path_in("missing.safetensors"), (save_opts){.skip = missing});
    assert_int_not_equal(ig_model_load_safetensors(m, path_in("missing.safetensors")), IG_OK);
    print_message("missing: %s\n", ig_last_error());
    assert_non_null(strstr(ig_last_error(), missing));
    /* PyTorch Linear's (out, in) instead of Conv1D's (in, out) */
    const char *wrong = "transformer.h.0.attn.c_attn.weight";
    save(&w, path_in("shape.safetensors"), (save_opts){.transpose = wrong});
    assert_int_not_equal(ig_model_load_safetensors(m, path_in("shape.safetensors")), IG_OK);
    print_message("wrong shape: %s\n", ig_last_error());
    assert_non_null(strstr(ig_last_error(), wrong));
    assert_int_not_equal(ig_model_load_safetensors(m, path_in("absent.safetensors")), IG_OK);
    ig_model_free(m);
    free_weights(&w);
}

static int setup(void **state) {
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    const char *files[] = {"gpt2", "base", "own", "missing", "shape"};
    char name[64];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(name, sizeof name, "%s.safetensors", files[i]);
        unlink(path_in(name));
    }
    return rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpt_loaded_from_hf_safetensors_equals_a_naive_gpt2_forward),
        cmocka_unit_test(loading_fails_naming_a_missing_or_misshapen_tensor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* tests/test_optim.c: SGD, Adam and AdamW against plain double loops of
 * PyTorch's update formulas and against numbers PyTorch computed; weight
 * decay flags; learning-rate schedules; gradient clipping; resuming from the
 * optimizer's state; no allocation once the state exists. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis/nn.h"
#include "ignis/optim.h"
#include "tests/testutil.h"

/* ---- parameters and gradients ---- */

/* The test model: a matrix, a bias (not decayed: 1 dim), a 3-D tensor and one
 * large enough for the kernels' parallel path. */
enum { NP = 4 };
static const int nd[NP] = {2, 1, 3, 2};
static const int64_t shp[NP][3] = {{4, 5}, {5}, {3, 2, 2}, {300, 128}};
static const char *const pname[NP] = {"w", "b", "e", "big"};

/* Random parameters of `dtype` with zero gradients, kept (owned by the list
 * whatever scope is open); transposed: the 2-D ones are transposed views
 * (strided, so the optimizer composes ops for them). */
static void make_params(ig_param_list *l, ig_dtype dtype, bool transposed, uint64_t seed) {
    ig_param_list_init(l);
    ig_generator gen = {seed, 0};
    for (int i = 0; i < NP; i++) {
        ig_tensor *p;
        if (transposed && nd[i] == 2) {
            int64_t s[2] = {shp[i][1], shp[i][0]};
            ig_tensor *base = ig_keep(ig_randn(2, s, dtype, IG_CPU, &gen));
            p = ig_keep(ig_transpose(base, 0, 1));
            ig_tensor_free(base);
            assert_false(ig_tensor_is_contiguous(p));
        } else {
            p = ig_keep(ig_randn(nd[i], shp[i], dtype, IG_CPU, &gen));
        }
        ig_requires_grad_(p, true);
        ig_tensor *g = ig_keep(ig_zeros(nd[i], shp[i], dtype, IG_CPU));
        ig_tensor_set_grad(p, g);
        ig_tensor_free(g);
        ig_param_list_add(l, pname[i], p);
    }
}

/* The gradients of `step`, drawn in place (no allocation). */
static void fill_grads(ig_param_list *l, int step) {
    for (int i = 0; i < l->n; i++) {
        ig_generator gen = {1234, ((uint64_t)step * NP + (uint64_t)i) << 20};
        ig_normal_(ig_tensor_grad(l->tensors[i]), 0, 1, &gen);
    }
}

/* t's elements as f64 in row-major order, into a malloc'd buffer. */
static double *host(ig_tensor *t) {
    double *d = malloc(sizeof(double) * (size_t)ig_tensor_numel(t));
    assert_non_null(d);
    ig_scope *s = ig_scope_begin();
    assert_int_equal(ig_tensor_to_host(ig_to(ig_detach(t), IG_F64, IG_CPU), d), IG_OK);
    ig_scope_end(s);
    return d;
}

static void assert_matches(ig_tensor *t, const double *want, double atol, double rtol,
                           const char *what) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *w = ig_from_data(want, ig_tensor_ndim(t), ig_tensor_shape(t), IG_F64, IG_CPU);
    tu_assert_close(t, w, atol, rtol, what);
    ig_scope_end(s);
}

/* ---- the reference: PyTorch's formulas as plain double loops ---- */

/* One step t (1-based) of one parameter of n elements; s1 is the momentum
 * buffer or exp_avg, s2 exp_avg_sq. */
static void ref_step(const ig_optim_config *c, int64_t t, double lr, bool decay, int64_t n,
                     double *p, const double *g, double *s1, double *s2) {
    double wd = decay || c->decay_all ? c->weight_decay : 0;
    for (int64_t i = 0; i < n; i++) {
        if (c->kind == IG_OPTIM_SGD) {
            double d = g[i] + wd * p[i];
            if (c->momentum != 0) {
                s1[i] = t == 1 ? d : c->momentum * s1[i] + (1 - c->dampening) * d;
                d = c->nesterov ? d + c->momentum * s1[i] : s1[i];
            }
            p[i] -= lr * d;
            continue;
        }
        double d = g[i];
        if (c->kind == IG_OPTIM_ADAM) d += wd * p[i];
        else p[i] *= 1 - lr * wd;
        s1[i] = c->beta1 * s1[i] + (1 - c->beta1) * d;
        s2[i] = c->beta2 * s2[i] + (1 - c->beta2) * d * d;
        double bc1 = 1 - pow(c->beta1, (double)t), bc2 = 1 - pow(c->beta2, (double)t);
        p[i] -= lr / bc1 * s1[i] / (sqrt(s2[i]) / sqrt(bc2) + c->eps);
    }
}

static ig_optim_config config(ig_optim_kind kind, double lr, double wd, bool decay_all) {
    ig_optim_config c = IG_OPTIM_CONFIG_INIT;
    c.kind = kind;
    c.lr = lr;
    c.weight_decay = wd;
    c.decay_all = decay_all;
    return c;
}

/* 20 steps under a warmup + cosine schedule (ig_optim_set_lr each step),
 * every step compared with the reference. */
static void run_against_reference(const ig_optim_config *c, ig_dtype dtype, bool transposed,
                                  double atol, double rtol, const char *what) {
    enum { STEPS = 20 };
    ig_param_list l;
    make_params(&l, dtype, transposed, 7);
    ig_optim *o = ig_optim_new(&l, c);
    assert_non_null(o);
    double *p[NP], *s1[NP], *s2[NP];
    for (int i = 0; i < NP; i++) {
        int64_t n = ig_tensor_numel(l.tensors[i]);
        p[i] = host(l.tensors[i]);
        s1[i] = calloc((size_t)n, sizeof(double));
        s2[i] = calloc((size_t)n, sizeof(double));
    }
    ig_lr_schedule sched = {IG_LR_COSINE, c->lr, 3, STEPS, 0.1 * c->lr};
    for (int step = 0; step < STEPS; step++) {
        double lr = ig_lr_at(&sched, step);
        ig_optim_set_lr(o, lr);
        fill_grads(&l, step);
        assert_int_equal(ig_optim_step(o), IG_OK);
        assert_int_equal(ig_optim_step_count(o), step + 1);
        for (int i = 0; i < NP; i++) {
            double *g = host(ig_tensor_grad(l.tensors[i]));
            ref_step(c, step + 1, lr, l.decay[i], ig_tensor_numel(l.tensors[i]), p[i], g, s1[i],
                     s2[i]);
            free(g);
            char msg[128];
            snprintf(msg, sizeof msg, "%s: %s after step %d", what, pname[i], step + 1);
            assert_matches(l.tensors[i], p[i], atol, rtol, msg);
        }
    }
    for (int i = 0; i < NP; i++) free(p[i]), free(s1[i]), free(s2[i]);
    ig_optim_free(o);
    ig_param_list_destroy(&l);
}

static ig_optim_config sgd(double lr, double momentum, double dampening, bool nesterov,
                           double wd, bool decay_all) {
    ig_optim_config c = config(IG_OPTIM_SGD, lr, wd, decay_all);
    c.momentum = momentum;
    c.dampening = dampening;
    c.nesterov = nesterov;
    return c;
}

static ig_optim_config adam(ig_optim_kind kind, double lr, double wd, bool decay_all) {
    ig_optim_config c = config(kind, lr, wd, decay_all);
    c.beta1 = 0.8;
    c.beta2 = 0.95;
    c.eps = 1e-6;
    return c;
}

#define N_CASES 7
static void cases(ig_optim_config out[N_CASES], const char *names[N_CASES]) {
    out[0] = sgd(0.1, 0, 0, false, 0, false), names[0] = "sgd";
    out[1] = sgd(0.1, 0.9, 0.1, false, 0.01, false), names[1] = "sgd momentum dampening wd";
    out[2] = sgd(0.05, 0.9, 0, true, 0.05, true), names[2] = "sgd nesterov wd decay_all";
    out[3] = adam(IG_OPTIM_ADAM, 1e-2, 0, false), names[3] = "adam";
    out[4] = adam(IG_OPTIM_ADAM, 1e-2, 0.02, true), names[4] = "adam l2 decay_all";
    out[5] = adam(IG_OPTIM_ADAMW, 1e-2, 0.1, false), names[5] = "adamw";
    out[6] = adam(IG_OPTIM_ADAMW, 1e-2, 0.1, true), names[6] = "adamw decay_all";
}

static void optimizers_match_pytorch_formulas_in_f64(void **state) {
    (void)state;
    ig_optim_config c[N_CASES];
    const char *names[N_CASES];
    cases(c, names);
    for (int k = 0; k < N_CASES; k++)
        run_against_reference(&c[k], IG_F64, false, 1e-12, 1e-9, names[k]);
}

/* Strided parameters take the path that composes ops (the one CUDA takes). */
static void optimizers_match_pytorch_formulas_on_strided_params(void **state) {
    (void)state;
    ig_optim_config c[N_CASES];
    const char *names[N_CASES];
    cases(c, names);
    for (int k = 0; k < N_CASES; k++)
        run_against_reference(&c[k], IG_F64, true, 1e-12, 1e-9, names[k]);
}

static void optimizers_in_f32_stay_close_to_the_f64_reference(void **state) {
    (void)state;
    ig_optim_config c[N_CASES];
    const char *names[N_CASES];
    cases(c, names);
    for (int k = 0; k < N_CASES; k++)
        run_against_reference(&c[k], IG_F32, false, 1e-5, 1e-5, names[k]);
}

/* ---- PyTorch itself ----
 * Numbers printed by torch 1.13 (float64) from this script:
 *   w (2, 3) and b (3) start at sin(j + 1), j = 0..8 (w then b); at step t
 *   (0-based) the gradient of element j is cos(0.7 t + 0.3 j + 1); 5 steps of
 *   AdamW([{w, wd 0.1}, {b, wd 0}], lr 1e-2, betas (0.9, 0.95), eps 1e-8),
 *   Adam([w, b], lr 1e-2, betas (0.8, 0.99), eps 1e-6, weight_decay 0.05),
 *   SGD([w, b], lr 0.1, momentum 0.9, dampening 0.1, weight_decay 0.01),
 *   SGD([w, b], lr 0.1, momentum 0.9, nesterov, weight_decay 0.01);
 *   clip_grad_norm_([w, b], 1.0) of the step-0 gradients.
 * Values are w (row-major) then b. */
static const double torch_adamw_bias_not_decayed[9] = {
    0.83800717321574991, 0.91976060600736065, 0.18408083773664091, -0.70665187417095165,
    -0.90827206214791356, -0.23474224873494146, 0.69616350116811754, 1.022844525576144,
    0.43830160974305976};
static const double torch_adam_l2[9] = {
    0.84367428687169788, 0.92512396297745181, 0.18658529502722504, -0.70956432812452708,
    -0.91335449047688888, -0.23776857780615793, 0.69263269927527371, 1.0179395139756555,
    0.43371761309360668};
static const double torch_sgd_momentum_dampening[9] = {
    1.0721358227174167, 1.3547629536765158, 0.77081189888393775, 0.0022978283831402214,
    -0.14589559239664029, 0.50519524779553981, 1.3402599598992522, 1.5169194921325566,
    0.74687152135913437};
static const double torch_sgd_nesterov[9] = {
    1.3020670725386085, 1.6200481254443757, 1.0511871402539479, 0.27325088828415001,
    0.088574357304420342, 0.6786169243456216, 1.4360871176807815, 1.5290727952810121,
    0.67800092329790662};
static const double torch_clip_norm = 2.0682766623136808;
static const double torch_clip_grads[9] = {
    0.2612329648543078, 0.12933409933236406, -0.014117796093501653, -0.15630859084067811,
    -0.28453680469430709, -0.38734819320667691, -0.45555892124012021, -0.48307592760809298,
    -0.46744120008430168};

/* w (2, 3) and b (3) as in the script above. */
static void make_torch_params(ig_param_list *l) {
    double v[9];
    for (int j = 0; j < 9; j++) v[j] = sin(j + 1);
    ig_param_list_init(l);
    ig_tensor *w = ig_keep(ig_from_data(v, IG_SHAPE(2, 3), IG_F64, IG_CPU));
    ig_tensor *b = ig_keep(ig_from_data(v + 6, IG_SHAPE(3), IG_F64, IG_CPU));
    ig_param_list_add(l, "w", ig_requires_grad_(w, true));
    ig_param_list_add(l, "b", ig_requires_grad_(b, true));
}

static void set_torch_grads(ig_param_list *l, int t) {
    double g[9];
    for (int j = 0; j < 9; j++) g[j] = cos(0.7 * t + 0.3 * j + 1);
    ig_scope *s = ig_scope_begin();
    ig_tensor_set_grad(l->tensors[0], ig_from_data(g, IG_SHAPE(2, 3), IG_F64, IG_CPU));
    ig_tensor_set_grad(l->tensors[1], ig_from_data(g + 6, IG_SHAPE(3), IG_F64, IG_CPU));
    ig_scope_end(s);
}

static void assert_list_matches(ig_param_list *l, const double want[9], double rtol,
                                const char *what) {
    assert_matches(l->tensors[0], want, 1e-14, rtol, what);
    assert_matches(l->tensors[1], want + 6, 1e-14, rtol, what);
}

static void optimizers_match_numbers_from_pytorch(void **state) {
    (void)state;
    ig_optim_config adamw = config(IG_OPTIM_ADAMW, 1e-2, 0.1, false);
    adamw.beta1 = 0.9, adamw.beta2 = 0.95, adamw.eps = 1e-8;
    ig_optim_config adam_l2 = config(IG_OPTIM_ADAM, 1e-2, 0.05, true);
    adam_l2.beta1 = 0.8, adam_l2.beta2 = 0.99, adam_l2.eps = 1e-6;
    const struct {
        ig_optim_config c;
        const double *want;
        const char *name;
    } k[] = {
        {adamw, torch_adamw_bias_not_decayed, "adamw, bias not decayed"},
        {adam_l2, torch_adam_l2, "adam l2"},
        {sgd(0.1, 0.9, 0.1, false, 0.01, true), torch_sgd_momentum_dampening, "sgd dampening"},
        {sgd(0.1, 0.9, 0, true, 0.01, true), torch_sgd_nesterov, "sgd nesterov"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        ig_param_list l;
        make_torch_params(&l);
        assert_false(l.decay[1]); /* the bias */
        ig_optim *o = ig_optim_new(&l, &k[i].c);
        /* a trainer takes the state at start to register it for checkpoints:
         * that must not change the first step */
        const char *const *names;
        ig_tensor *const *ts;
        assert_true(ig_optim_state(o, &names, &ts) > 0);
        for (int t = 0; t < 5; t++) {
            set_torch_grads(&l, t);
            assert_int_equal(ig_optim_step(o), IG_OK);
        }
        assert_list_matches(&l, k[i].want, 1e-12, k[i].name);
        ig_optim_free(o);
        ig_param_list_destroy(&l);
    }
}

static void clip_grad_norm_matches_pytorch(void **state) {
    (void)state;
    ig_param_list l;
    make_torch_params(&l);
    set_torch_grads(&l, 0);
    double norm = ig_clip_grad_norm(&l, 1.0);
    assert_true(fabs(norm - torch_clip_norm) <= 1e-14 * torch_clip_norm);
    assert_matches(ig_tensor_grad(l.tensors[0]), torch_clip_grads, 1e-15, 1e-13, "w.grad");
    assert_matches(ig_tensor_grad(l.tensors[1]), torch_clip_grads + 6, 1e-15, 1e-13, "b.grad");
    ig_param_list_destroy(&l);
}

/* ---- weight decay flags, skipping, zeroing ---- */

/* With zero gradients only weight decay moves a parameter. */
static void bias_is_not_decayed_unless_decay_all(void **state) {
    (void)state;
    const ig_optim_kind kinds[] = {IG_OPTIM_SGD, IG_OPTIM_ADAM, IG_OPTIM_ADAMW};
    for (int k = 0; k < 3; k++) {
        for (int all = 0; all < 2; all++) {
            ig_param_list l;
            make_torch_params(&l);
            double *w0 = host(l.tensors[0]), *b0 = host(l.tensors[1]);
            ig_scope *s = ig_scope_begin();
            for (int i = 0; i < 2; i++)
                ig_tensor_set_grad(l.tensors[i], ig_zeros_like(l.tensors[i]));
            ig_scope_end(s);
            ig_optim_config c = config(kinds[k], 0.1, 0.5, all);
            ig_optim *o = ig_optim_new(&l, &c);
            for (int t = 0; t < 3; t++) assert_int_equal(ig_optim_step(o), IG_OK);
            double *w = host(l.tensors[0]), *b = host(l.tensors[1]);
            assert_true(fabs(w[0]) < fabs(w0[0])); /* the matrix always decays */
            if (all) assert_true(fabs(b[0]) < fabs(b0[0]));
            else assert_memory_equal(b, b0, 3 * sizeof(double));
            if (kinds[k] == IG_OPTIM_ADAMW) /* decoupled: p (1 - lr wd) per step */
                assert_true(fabs(w[1] - w0[1] * pow(1 - 0.05, 3)) < 1e-15);
            free(w0), free(b0), free(w), free(b);
            ig_optim_free(o);
            ig_param_list_destroy(&l);
        }
    }
}

static void params_without_gradient_are_skipped_but_the_step_counts(void **state) {
    (void)state;
    ig_param_list l;
    make_torch_params(&l);
    double *b0 = host(l.tensors[1]);
    ig_optim_config c = config(IG_OPTIM_ADAMW, 0.1, 0.1, true);
    ig_optim *o = ig_optim_new(&l, &c);
    ig_scope *s = ig_scope_begin();
    for (int t = 0; t < 3; t++) {
        set_torch_grads(&l, t);
        ig_tensor_zero_grad(l.tensors[1], true);
        assert_int_equal(ig_optim_step(o), IG_OK);
    }
    assert_int_equal(ig_optim_step_count(o), 3);
    double *b = host(l.tensors[1]);
    assert_memory_equal(b, b0, 3 * sizeof(double));
    /* the state of the skipped bias exists for checkpoints: zeros */
    const char *const *names;
    ig_tensor *const *ts;
    assert_int_equal(ig_optim_state(o, &names, &ts), 4);
    assert_string_equal(names[0], "w.exp_avg");
    assert_string_equal(names[1], "w.exp_avg_sq");
    assert_string_equal(names[2], "b.exp_avg");
    assert_string_equal(names[3], "b.exp_avg_sq");
    assert_true(ig_tensor_item(ig_sum_all(ig_abs(ts[0]))) > 0);
    assert_true(ig_tensor_item(ig_sum_all(ig_abs(ts[2]))) == 0);
    assert_int_equal(ig_tensor_numel(ts[3]), 3);
    ig_scope_end(s);
    free(b0), free(b);
    ig_optim_free(o);
    ig_param_list_destroy(&l);
}

/* PyTorch starts a momentum buffer at the parameter's first gradient (as the
 * update itself, without dampening), even when that comes late. */
static void momentum_buffer_starts_at_a_late_first_gradient(void **state) {
    (void)state;
    ig_param_list l;
    make_torch_params(&l);
    double *b0 = host(l.tensors[1]);
    ig_optim_config c = sgd(0.1, 0.9, 0.5, false, 0, false);
    ig_optim *o = ig_optim_new(&l, &c);
    set_torch_grads(&l, 0);
    ig_tensor_zero_grad(l.tensors[1], true);
    assert_int_equal(ig_optim_step(o), IG_OK);
    set_torch_grads(&l, 1);
    assert_int_equal(ig_optim_step(o), IG_OK);
    double want[3];
    for (int j = 0; j < 3; j++) want[j] = b0[j] - 0.1 * cos(0.7 + 0.3 * (j + 6) + 1);
    assert_matches(l.tensors[1], want, 1e-15, 1e-15, "b after its first gradient");
    free(b0);
    ig_optim_free(o);
    ig_param_list_destroy(&l);
}

static void zero_grad_zeroes_or_drops_and_plain_sgd_has_no_state(void **state) {
    (void)state;
    ig_param_list l;
    make_torch_params(&l);
    set_torch_grads(&l, 0);
    ig_optim_config c = sgd(0.1, 0, 0, false, 0, false);
    ig_optim *o = ig_optim_new(&l, &c);
    const char *const *names;
    ig_tensor *const *ts;
    assert_int_equal(ig_optim_state(o, &names, &ts), 0);
    ig_optim_zero_grad(o, false);
    assert_non_null(ig_tensor_grad(l.tensors[0]));
    ig_scope *s = ig_scope_begin();
    assert_true(ig_tensor_item(ig_sum_all(ig_abs(ig_tensor_grad(l.tensors[0])))) == 0);
    ig_scope_end(s);
    ig_optim_zero_grad(o, true);
    assert_null(ig_tensor_grad(l.tensors[0]));
    assert_null(ig_tensor_grad(l.tensors[1]));
    ig_optim_free(o);
    ig_param_list_destroy(&l);
}

/* ---- learning-rate schedules ---- */

static void lr_schedules_give_the_expected_values(void **state) {
    (void)state;
    const double eps = 1e-12;
    ig_lr_schedule k = {IG_LR_CONSTANT, 0.5, 0, 100, 0.1};
    assert_true(fabs(ig_lr_at(&k, 0) - 0.5) < eps);
    assert_true(fabs(ig_lr_at(&k, 1000) - 0.5) < eps);
    k.warmup = 10; /* warmup applies to every kind */
    assert_true(fabs(ig_lr_at(&k, 0) - 0.05) < eps);
    assert_true(fabs(ig_lr_at(&k, 9) - 0.5) < eps);
    assert_true(fabs(ig_lr_at(&k, 500) - 0.5) < eps);

    ig_lr_schedule c = {IG_LR_COSINE, 1.0, 10, 110, 0.1};
    assert_true(fabs(ig_lr_at(&c, 0) - 0.1) < eps);   /* lr (0 + 1) / 10 */
    assert_true(fabs(ig_lr_at(&c, 4) - 0.5) < eps);
    assert_true(fabs(ig_lr_at(&c, 9) - 1.0) < eps);
    assert_true(fabs(ig_lr_at(&c, 10) - 1.0) < eps);  /* decay starts at the peak */
    assert_true(fabs(ig_lr_at(&c, 35) - (0.1 + 0.9 * 0.5 * (1 + cos(M_PI / 4)))) < eps);
    assert_true(fabs(ig_lr_at(&c, 60) - 0.55) < eps); /* half way */
    assert_true(fabs(ig_lr_at(&c, 85) - (0.1 + 0.9 * 0.5 * (1 + cos(3 * M_PI / 4)))) < eps);
    assert_true(fabs(ig_lr_at(&c, 110) - 0.1) < eps);
    assert_true(fabs(ig_lr_at(&c, 5000) - 0.1) < eps);
    for (int64_t s = 11; s < 110; s++) assert_true(ig_lr_at(&c, s) < ig_lr_at(&c, s - 1));

    ig_lr_schedule lin = {IG_LR_LINEAR, 1.0, 10, 110, 0.1};
    assert_true(fabs(ig_lr_at(&lin, 0) - 0.1) < eps);
    assert_true(fabs(ig_lr_at(&lin, 10) - 1.0) < eps);
    assert_true(fabs(ig_lr_at(&lin, 35) - 0.775) < eps);
    assert_true(fabs(ig_lr_at(&lin, 60) - 0.55) < eps);
    assert_true(fabs(ig_lr_at(&lin, 110) - 0.1) < eps);
    assert_true(fabs(ig_lr_at(&lin, 111) - 0.1) < eps);

    ig_lr_schedule no_warm = {IG_LR_COSINE, 1.0, 0, 100, 0.0};
    assert_true(fabs(ig_lr_at(&no_warm, 0) - 1.0) < eps);
    assert_true(fabs(ig_lr_at(&no_warm, 50) - 0.5) < eps);
}

/* ---- gradient clipping ---- */

/* Gradients [3, 4] and [12]: global norm 13. */
static void make_clip_params(ig_param_list *l) {
    ig_param_list_init(l);
    const double a[2] = {3, 4}, b[1] = {12};
    const double *v[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        int64_t n = 2 - i;
        ig_tensor *p = ig_requires_grad_(ig_keep(ig_zeros(1, &n, IG_F64, IG_CPU)), true);
        ig_tensor *g = ig_keep(ig_from_data(v[i], 1, &n, IG_F64, IG_CPU));
        ig_tensor_set_grad(p, g);
        ig_tensor_free(g);
        ig_param_list_add(l, i ? "b" : "a", p);
    }
    /* a third parameter without gradient counts for nothing */
    ig_tensor *none = ig_keep(ig_ones(IG_SHAPE(3), IG_F64, IG_CPU));
    ig_param_list_add(l, "none", ig_requires_grad_(none, true));
}

static void clip_grad_norm_scales_large_gradients_to_max_norm(void **state) {
    (void)state;
    ig_param_list l;
    make_clip_params(&l);
    double norm = ig_clip_grad_norm(&l, 6.5);
    assert_true(fabs(norm - 13) < 1e-12);
    double k = 6.5 / (13 + 1e-6);
    const double want_a[2] = {3 * k, 4 * k}, want_b[1] = {12 * k};
    assert_matches(ig_tensor_grad(l.tensors[0]), want_a, 0, 1e-15, "a.grad");
    assert_matches(ig_tensor_grad(l.tensors[1]), want_b, 0, 1e-15, "b.grad");
    /* now within a bound of 7: a second clip reports ~6.5 and changes nothing */
    double *a = host(ig_tensor_grad(l.tensors[0]));
    assert_true(fabs(ig_clip_grad_norm(&l, 7) - 6.5) < 1e-5);
    double *a2 = host(ig_tensor_grad(l.tensors[0]));
    assert_memory_equal(a, a2, 2 * sizeof(double));
    free(a), free(a2);
    ig_param_list_destroy(&l);
}

static void clip_grad_norm_leaves_small_gradients_alone(void **state) {
    (void)state;
    ig_param_list l;
    make_clip_params(&l);
    assert_true(fabs(ig_clip_grad_norm(&l, 100) - 13) < 1e-12);
    const double want_a[2] = {3, 4}, want_b[1] = {12};
    assert_matches(ig_tensor_grad(l.tensors[0]), want_a, 0, 0, "a.grad");
    assert_matches(ig_tensor_grad(l.tensors[1]), want_b, 0, 0, "b.grad");
    /* a non-finite norm is reported, nothing is scaled */
    double *g = ig_tensor_data(ig_tensor_grad(l.tensors[1]));
    g[0] = NAN;
    assert_true(isnan(ig_clip_grad_norm(&l, 1)));
    assert_matches(ig_tensor_grad(l.tensors[0]), want_a, 0, 0, "a.grad after NaN");
    ig_param_list_destroy(&l);
}

static void clip_grad_norm_of_a_large_f32_gradient_sums_in_double(void **state) {
    (void)state;
    ig_param_list l;
    make_params(&l, IG_F32, false, 3);
    fill_grads(&l, 0);
    double ss = 0;
    for (int i = 0; i < NP; i++) {
        ig_tensor *g = ig_tensor_grad(l.tensors[i]);
        const float *x = ig_tensor_data(g);
        for (int64_t j = 0; j < ig_tensor_numel(g); j++) ss += (double)x[j] * x[j];
    }
    double norm = ig_clip_grad_norm(&l, 1e9);
    assert_true(fabs(norm - sqrt(ss)) <= 1e-13 * sqrt(ss));
    ig_param_list_destroy(&l);
}

/* ---- resuming ---- */

/* Parameters and gradients in f32 (rounding makes any difference visible):
 * 20 steps straight, against 10 steps, a save of the parameters and optimizer
 * state, a fresh process-like restart (new parameters and optimizer), the
 * load, and 10 more steps. */
static void resuming_from_saved_state_is_bit_exact(void **state) {
    (void)state;
    enum { STEPS = 20, SAVE = 10 };
    ig_optim_config cs[3] = {adam(IG_OPTIM_ADAMW, 1e-2, 0.1, false),
                             adam(IG_OPTIM_ADAM, 1e-2, 0.01, true),
                             sgd(0.05, 0.9, 0.1, false, 0.01, false)};
    for (int k = 0; k < 3; k++) {
        ig_scope *s = ig_scope_begin(); /* holds the saved copies */
        ig_param_list a;
        make_params(&a, IG_F32, false, 11);
        ig_optim *oa = ig_optim_new(&a, &cs[k]);
        for (int t = 0; t < STEPS; t++) {
            fill_grads(&a, t);
            assert_int_equal(ig_optim_step(oa), IG_OK);
        }

        ig_param_list b;
        make_params(&b, IG_F32, false, 11);
        ig_optim *ob = ig_optim_new(&b, &cs[k]);
        for (int t = 0; t < SAVE; t++) {
            fill_grads(&b, t);
            assert_int_equal(ig_optim_step(ob), IG_OK);
        }
        /* save */
        const char *const *names;
        ig_tensor *const *ts;
        int n = ig_optim_state(ob, &names, &ts);
        assert_int_equal(n, cs[k].kind == IG_OPTIM_SGD ? NP : 2 * NP);
        if (cs[k].kind == IG_OPTIM_SGD) assert_string_equal(names[1], "b.momentum_buffer");
        ig_tensor *saved_p[NP], *saved_s[2 * NP];
        for (int i = 0; i < NP; i++) saved_p[i] = ig_clone(ig_detach(b.tensors[i]));
        for (int i = 0; i < n; i++) saved_s[i] = ig_clone(ts[i]);
        int64_t saved_step = ig_optim_step_count(ob);
        ig_optim_free(ob);
        ig_param_list_destroy(&b);
        /* restart and load */
        make_params(&b, IG_F32, false, 99);
        for (int i = 0; i < NP; i++) assert_int_equal(ig_copy_(b.tensors[i], saved_p[i]), IG_OK);
        ob = ig_optim_new(&b, &cs[k]);
        assert_int_equal(ig_optim_state(ob, &names, &ts), n);
        for (int i = 0; i < n; i++) assert_int_equal(ig_copy_(ts[i], saved_s[i]), IG_OK);
        ig_optim_set_step_count(ob, saved_step);
        for (int t = SAVE; t < STEPS; t++) {
            fill_grads(&b, t);
            assert_int_equal(ig_optim_step(ob), IG_OK);
        }
        for (int i = 0; i < NP; i++) {
            size_t bytes = (size_t)ig_tensor_numel(a.tensors[i]) * sizeof(float);
            assert_memory_equal(ig_tensor_data(a.tensors[i]), ig_tensor_data(b.tensors[i]), bytes);
        }
        ig_scope_end(s);
        ig_optim_free(oa);
        ig_optim_free(ob);
        ig_param_list_destroy(&a);
        ig_param_list_destroy(&b);
    }
}

/* ---- memory ---- */

static void steps_after_the_first_allocate_nothing(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        ig_param_list l;
        make_params(&l, IG_F32, false, 5);
        ig_optim_config c = k ? sgd(0.1, 0.9, 0, true, 0.01, false)
                              : adam(IG_OPTIM_ADAMW, 1e-3, 0.1, false);
        ig_optim *o = ig_optim_new(&l, &c);
        fill_grads(&l, 0);
        ig_clip_grad_norm(&l, 1.0);
        assert_int_equal(ig_optim_step(o), IG_OK);
        ig_optim_zero_grad(o, false);
        ig_memory_stats before, after;
        ig_memory_stats_get(&before);
        for (int t = 1; t < 20; t++) {
            fill_grads(&l, t);
            ig_clip_grad_norm(&l, 1.0);
            assert_int_equal(ig_optim_step(o), IG_OK);
            ig_optim_zero_grad(o, false);
        }
        ig_memory_stats_get(&after);
        assert_int_equal(after.system_allocs[IG_DEV_CPU], before.system_allocs[IG_DEV_CPU]);
        assert_int_equal(after.live_bytes[IG_DEV_CPU], before.live_bytes[IG_DEV_CPU]);
        assert_int_equal(after.live_tensors, before.live_tensors);
        ig_optim_free(o);
        ig_param_list_destroy(&l);
    }
}

/* ---- CUDA: the composed-ops path on the GPU against the CPU kernels ---- */

static void optimizers_on_cuda_match_the_cpu(void **state) {
    (void)state;
    if (ig_cuda_device_count() == 0) skip();
    ig_optim_config cs[3] = {adam(IG_OPTIM_ADAMW, 1e-2, 0.1, false),
                             adam(IG_OPTIM_ADAM, 1e-2, 0.01, true),
                             sgd(0.05, 0.9, 0, true, 0.01, false)};
    for (int k = 0; k < 3; k++) {
        ig_param_list cpu, gpu;
        make_params(&cpu, IG_F32, false, 21);
        ig_param_list_init(&gpu);
        for (int i = 0; i < NP; i++) {
            ig_tensor *p = ig_keep(ig_to(ig_detach(cpu.tensors[i]), IG_F32, IG_CUDA(0)));
            ig_requires_grad_(p, true);
            ig_tensor *g = ig_keep(ig_zeros(nd[i], shp[i], IG_F32, IG_CUDA(0)));
            ig_tensor_set_grad(p, g);
            ig_tensor_free(g);
            ig_param_list_add(&gpu, pname[i], p);
        }
        ig_optim *oc = ig_optim_new(&cpu, &cs[k]), *og = ig_optim_new(&gpu, &cs[k]);
        for (int t = 0; t < 10; t++) {
            fill_grads(&cpu, t);
            for (int i = 0; i < NP; i++) {
                ig_tensor *gg = ig_tensor_grad(gpu.tensors[i]);
                ig_tensor *gc = ig_tensor_grad(cpu.tensors[i]);
                assert_int_equal(ig_copy_(gg, gc), IG_OK);
            }
            double nc = ig_clip_grad_norm(&cpu, 50), ng = ig_clip_grad_norm(&gpu, 50);
            assert_true(fabs(nc - ng) <= 1e-5 * nc);
            assert_int_equal(ig_optim_step(oc), IG_OK);
            assert_int_equal(ig_optim_step(og), IG_OK);
        }
        for (int i = 0; i < NP; i++) {
            ig_scope *s = ig_scope_begin();
            tu_assert_close(ig_to(gpu.tensors[i], IG_F32, IG_CPU), cpu.tensors[i], 1e-5, 1e-4,
                            pname[i]);
            ig_scope_end(s);
        }
        ig_optim_free(oc);
        ig_optim_free(og);
        ig_param_list_destroy(&cpu);
        ig_param_list_destroy(&gpu);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(optimizers_match_pytorch_formulas_in_f64),
        cmocka_unit_test(optimizers_match_pytorch_formulas_on_strided_params),
        cmocka_unit_test(optimizers_in_f32_stay_close_to_the_f64_reference),
        cmocka_unit_test(optimizers_match_numbers_from_pytorch),
        cmocka_unit_test(clip_grad_norm_matches_pytorch),
        cmocka_unit_test(bias_is_not_decayed_unless_decay_all),
        cmocka_unit_test(params_without_gradient_are_skipped_but_the_step_counts),
        cmocka_unit_test(momentum_buffer_starts_at_a_late_first_gradient),
        cmocka_unit_test(zero_grad_zeroes_or_drops_and_plain_sgd_has_no_state),
        cmocka_unit_test(lr_schedules_give_the_expected_values),
        cmocka_unit_test(clip_grad_norm_scales_large_gradients_to_max_norm),
        cmocka_unit_test(clip_grad_norm_leaves_small_gradients_alone),
        cmocka_unit_test(clip_grad_norm_of_a_large_f32_gradient_sums_in_double),
        cmocka_unit_test(resuming_from_saved_state_is_bit_exact),
        cmocka_unit_test(steps_after_the_first_allocate_nothing),
        cmocka_unit_test(optimizers_on_cuda_match_the_cpu),
    };
    return TU_RUN(tests);
}

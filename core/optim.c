/* core/optim.c: SGD, Adam and AdamW over an ig_param_list, and gradient
 * clipping by global norm.
 *
 * Invariants:
 *  - state tensors (SGD with momentum: a momentum buffer; Adam/AdamW: exp_avg
 *    and exp_avg_sq) are kept (outside every scope), contiguous, of their
 *    parameter's shape, dtype and device; each is made, zeroed, at the first
 *    step that updates its parameter or by ig_optim_state, then reused;
 *  - on the CPU (f32/f64, contiguous) a step is one fused kernel pass per
 *    parameter and allocates nothing once the state exists; elsewhere (CUDA,
 *    other dtypes, strided parameters) it composes ops in a scope, grad off;
 *  - one step count serves all parameters (PyTorch keeps one per parameter):
 *    it grows on every ig_optim_step, whether or not a parameter had a
 *    gradient, and Adam's bias correction uses it. An SGD momentum buffer
 *    starts as the first update direction (PyTorch's "buffer is None") on the
 *    optimizer's first step or when the step itself made it; a buffer made by
 *    ig_optim_state holds history (zeros, or what a checkpoint loaded). */
#include <math.h>
#include <string.h>

#include "core/impl.h"
#include "core/ops_impl.h"
#include "ignis/optim.h"
#include "kernels/cpu/cpu_optim.h"

struct ig_optim {
    const ig_param_list *params;
    ig_optim_config cfg;
    int64_t step;
    int n_params;
    int per_param;     /* state tensors per parameter: 2 (Adam), 1 (SGD with momentum) or 0 */
    ig_tensor **state; /* n_params * per_param, NULL until made */
    char **names;      /* likewise, made by the first ig_optim_state */
};

ig_optim *ig_optim_new(const ig_param_list *params, const ig_optim_config *cfg) {
    IG_CHECK(params && cfg, "optim_new: NULL parameter list or config");
    IG_CHECK(cfg->kind >= 0 && cfg->kind < IG_OPTIM_KIND_COUNT, "optim_new: unknown kind %d",
             (int)cfg->kind);
    IG_CHECK(cfg->lr >= 0 && cfg->weight_decay >= 0 && cfg->momentum >= 0,
             "optim_new: lr %g, weight_decay %g and momentum %g must be >= 0", cfg->lr,
             cfg->weight_decay, cfg->momentum);
    IG_CHECK(!cfg->nesterov || (cfg->momentum > 0 && cfg->dampening == 0),
             "optim_new: nesterov needs momentum > 0 and dampening 0 (momentum %g, dampening %g)",
             cfg->momentum, cfg->dampening);
    IG_CHECK(cfg->kind == IG_OPTIM_SGD ||
                 (cfg->beta1 >= 0 && cfg->beta1 < 1 && cfg->beta2 >= 0 && cfg->beta2 < 1),
             "optim_new: betas (%g, %g) must be in [0, 1)", cfg->beta1, cfg->beta2);
    ig_optim *o = calloc(1, sizeof *o);
    int per = cfg->kind == IG_OPTIM_SGD ? cfg->momentum != 0 : 2;
    size_t n = (size_t)params->n * (size_t)per;
    if (o && n) {
        o->state = calloc(n, sizeof *o->state);
        o->names = calloc(n, sizeof *o->names);
    }
    if (!o || (n && (!o->state || !o->names))) {
        if (o) free(o->state), free(o->names);
        free(o);
        ig__error(IG_ERR_NOMEM, "optim_new: out of host memory");
        return NULL;
    }
    o->params = params;
    o->cfg = *cfg;
    o->n_params = params->n;
    o->per_param = per;
    return o;
}

void ig_optim_free(ig_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n_params * o->per_param; i++) {
        ig_tensor_free(o->state[i]);
        free(o->names[i]);
    }
    free(o->state);
    free(o->names);
    free(o);
}

void ig_optim_set_lr(ig_optim *o, double lr) { o->cfg.lr = lr; }
double ig_optim_lr(const ig_optim *o) { return o->cfg.lr; }
int64_t ig_optim_step_count(const ig_optim *o) { return o->step; }
void ig_optim_set_step_count(ig_optim *o, int64_t step) {
    IG_CHECK(step >= 0, "optim_set_step_count: negative step %lld", (long long)step);
    o->step = step;
}

void ig_optim_zero_grad(ig_optim *o, bool set_to_none) {
    for (int i = 0; i < o->params->n; i++) ig_tensor_zero_grad(o->params->tensors[i], set_to_none);
}

static void check_list(const ig_optim *o, const char *op) {
    IG_CHECK(o->params->n == o->n_params,
             "%s: the parameter list has %d tensors, %d when the optimizer was made", op,
             o->params->n, o->n_params);
}

/* Makes parameter i's missing state tensors (zeros); *made tells if any was. */
static ig_status make_state(ig_optim *o, int i, bool *made) {
    const ig_tensor *p = o->params->tensors[i];
    *made = false;
    for (int k = 0; k < o->per_param; k++) {
        ig_tensor **s = &o->state[i * o->per_param + k];
        if (*s) continue;
        *s = ig_keep(ig_zeros(p->ndim, p->shape, p->dtype, p->device));
        if (!*s) return ig_last_status();
        *made = true;
    }
    return IG_OK;
}

/* ---- the same updates composed from ops (any device, dtype or layout) ---- */

static ig_status sgd_ops(ig_tensor *p, ig_tensor *g, ig_tensor *buf, const ig_cpu_sgd_args *a) {
    ig_tensor *d = a->l2 != 0 ? ig_add(g, ig_mul_scalar(p, a->l2)) : g;
    if (buf) {
        ig_tensor *nb = a->first ? d
                                 : ig_add(ig_mul_scalar(buf, a->momentum),
                                          ig_mul_scalar(d, 1 - a->dampening));
        ig_status st = ig_copy_(buf, nb);
        if (st != IG_OK) return st;
        d = a->nesterov ? ig_add(d, ig_mul_scalar(buf, a->momentum)) : buf;
    }
    return ig_copy_(p, ig_sub(p, ig_mul_scalar(d, a->lr)));
}

static ig_status adam_ops(ig_tensor *p, ig_tensor *g, ig_tensor *m, ig_tensor *v,
                          const ig_cpu_adam_args *a) {
    ig_tensor *d = a->l2 != 0 ? ig_add(g, ig_mul_scalar(p, a->l2)) : g;
    ig_status st = ig_copy_(m, ig_add(ig_mul_scalar(m, a->beta1), ig_mul_scalar(d, 1 - a->beta1)));
    if (st == IG_OK)
        st = ig_copy_(v, ig_add(ig_mul_scalar(v, a->beta2),
                                ig_mul_scalar(ig_mul(d, d), 1 - a->beta2)));
    if (st != IG_OK) return st;
    ig_tensor *denom = ig_add_scalar(ig_div_scalar(ig_sqrt(v), a->bc2_sqrt), a->eps);
    ig_tensor *kept = a->decay != 1 ? ig_mul_scalar(p, a->decay) : p;
    return ig_copy_(p, ig_sub(kept, ig_mul_scalar(ig_div(m, denom), a->step_size)));
}

static bool fused(const ig_tensor *p, const ig_tensor *g) {
    return p->device.kind == IG_DEV_CPU && (p->dtype == IG_F32 || p->dtype == IG_F64) &&
           ig_tensor_is_contiguous(p) && ig_tensor_is_contiguous(g);
}

static ig_status update(ig_optim *o, int i, bool first_step) {
    const ig_optim_config *c = &o->cfg;
    ig_tensor *p = o->params->tensors[i], *g = p->grad;
    double wd = c->decay_all || o->params->decay[i] ? c->weight_decay : 0;
    bool made;
    ig_status st = make_state(o, i, &made);
    if (st != IG_OK) return st;
    ig_tensor **s = o->state + i * o->per_param;
    bool fast = fused(p, g);
    if (c->kind == IG_OPTIM_SGD) {
        ig_cpu_sgd_args a = {c->lr, wd, c->momentum, c->dampening, c->nesterov, first_step || made};
        ig_tensor *buf = o->per_param ? s[0] : NULL;
        if (!fast) return sgd_ops(p, g, buf, &a);
        ig_cpu_sgd_step(p->dtype, p->numel, ig__ptr(p), ig__ptr(g), buf ? ig__ptr(buf) : NULL, &a);
        return IG_OK;
    }
    double t = (double)o->step; /* already counts this step */
    bool adamw = c->kind == IG_OPTIM_ADAMW;
    ig_cpu_adam_args a = {.l2 = adamw ? 0 : wd,
                          .decay = adamw ? 1 - c->lr * wd : 1,
                          .beta1 = c->beta1,
                          .beta2 = c->beta2,
                          .eps = c->eps,
                          .step_size = c->lr / (1 - pow(c->beta1, t)),
                          .bc2_sqrt = sqrt(1 - pow(c->beta2, t))};
    if (!fast) return adam_ops(p, g, s[0], s[1], &a);
    ig_cpu_adam_step(p->dtype, p->numel, ig__ptr(p), ig__ptr(g), ig__ptr(s[0]), ig__ptr(s[1]), &a);
    return IG_OK;
}

ig_status ig_optim_step(ig_optim *o) {
    check_list(o, "optim_step");
    bool first_step = o->step == 0;
    o->step++;
    ig_scope *scope = ig_scope_begin();
    bool prev = ig_grad_set_enabled(false);
    ig_status st = IG_OK;
    for (int i = 0; i < o->n_params && st == IG_OK; i++)
        if (o->params->tensors[i]->grad) st = update(o, i, first_step);
    ig_grad_set_enabled(prev);
    ig_scope_end(scope);
    return st;
}

int ig_optim_state(ig_optim *o, const char *const **names, ig_tensor *const **tensors) {
    check_list(o, "optim_state");
    for (int i = 0; i < o->n_params; i++) {
        bool made;
        if (make_state(o, i, &made) != IG_OK) return -1;
        for (int k = 0; k < o->per_param; k++) {
            char **name = &o->names[i * o->per_param + k];
            if (*name) continue;
            const char *suffix = o->per_param == 1 ? "momentum_buffer"
                                 : k                ? "exp_avg_sq"
                                                    : "exp_avg";
            size_t len = strlen(o->params->names[i]) + strlen(suffix) + 2;
            if (!(*name = malloc(len))) {
                ig__error(IG_ERR_NOMEM, "optim_state: out of host memory");
                return -1;
            }
            snprintf(*name, len, "%s.%s", o->params->names[i], suffix);
        }
    }
    *names = (const char *const *)o->names;
    *tensors = o->state;
    return o->n_params * o->per_param;
}

/* ---- gradient clipping ---- */

double ig_clip_grad_norm(const ig_param_list *params, double max_norm) {
    ig_scope *scope = ig_scope_begin();
    bool prev = ig_grad_set_enabled(false);
    double ss = 0;
    for (int i = 0; i < params->n; i++) {
        ig_tensor *g = params->tensors[i]->grad;
        if (!g) continue;
        if (fused(g, g)) {
            ss += ig_cpu_sum_squares(g->dtype, g->numel, ig__ptr(g));
            continue;
        }
        ig_tensor *x = g->dtype == IG_F32 || g->dtype == IG_F64 ? g : ig_to(g, IG_F32, g->device);
        ig_tensor *sq = ig_sum_all(ig_mul(x, x));
        ss += sq ? ig_tensor_item(sq) : NAN; /* a failed device call: NaN, nothing clipped */
    }
    double norm = sqrt(ss), coef = max_norm / (norm + 1e-6);
    /* torch multiplies by min(coef, 1): only coef < 1 changes anything */
    for (int i = 0; i < params->n && isfinite(norm) && coef < 1; i++) {
        ig_tensor *g = params->tensors[i]->grad;
        ig_tensor *k = g ? ig_full(0, NULL, coef, g->dtype, g->device) : NULL;
        if (k) ig__binary_apply(IG_BIN_MUL, g, g, k);
    }
    ig_grad_set_enabled(prev);
    ig_scope_end(scope);
    return norm;
}

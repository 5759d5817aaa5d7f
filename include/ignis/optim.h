/* ignis/optim.h: optimizers, learning-rate schedules and gradient clipping.
 *
 * An optimizer steps the parameters of an ig_param_list in place from their
 * .grad (parameters without a gradient are skipped), with fused kernels and
 * no allocation per step after the first (its state is made lazily). Its
 * state (step count, moment buffers) is exposed by name for checkpoints.
 *
 * The updates are torch.optim's: SGD (momentum, dampening, nesterov; weight
 * decay as L2 added to the gradient), Adam (L2 added to the gradient) and
 * AdamW (decoupled: p -= lr wd p before the Adam update), with bias
 * correction. With decay_all false, parameters the list marks decay = false
 * get no weight decay (nanoGPT, llm.c).
 *
 * Step count: one for the whole optimizer (PyTorch keeps one per parameter).
 * It grows on every ig_optim_step, also for parameters skipped for want of a
 * gradient, and Adam's bias correction uses it; so a parameter whose first
 * gradient comes late is corrected as if it had been there from step 1.
 *
 * Gradient accumulation: step neither reads nor resets anything but .grad,
 * and backward adds into .grad, so gradients of several backward calls sum
 * until ig_optim_zero_grad; scale the loss by 1/micro_steps for a mean. */
#ifndef IGNIS_OPTIM_H
#define IGNIS_OPTIM_H

#include "ignis/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ig_optim_kind { IG_OPTIM_SGD, IG_OPTIM_ADAM, IG_OPTIM_ADAMW, IG_OPTIM_KIND_COUNT } ig_optim_kind;

typedef struct ig_optim_config {
    ig_optim_kind kind;
    double lr;
    double weight_decay; /* SGD, Adam: L2 added to the gradient; AdamW: decoupled */
    double momentum;     /* SGD */
    double dampening;    /* SGD */
    bool nesterov;       /* SGD */
    double beta1, beta2, eps; /* Adam, AdamW */
    bool decay_all;      /* false: no decay where the param list says decay = false
                            (biases and norm weights: tensors of fewer than 2 dims) */
} ig_optim_config;
#define IG_OPTIM_CONFIG_INIT {IG_OPTIM_ADAMW, 1e-3, 0.01, 0.0, 0.0, false, 0.9, 0.999, 1e-8, false}

typedef struct ig_optim ig_optim;

/* The list must outlive the optimizer. */
ig_optim *ig_optim_new(const ig_param_list *params, const ig_optim_config *cfg);
void ig_optim_free(ig_optim *o);
/* One update of every parameter that has a gradient, at the current lr. */
ig_status ig_optim_step(ig_optim *o);
/* Zeroes (or drops, set_to_none) every parameter's gradient. */
void ig_optim_zero_grad(ig_optim *o, bool set_to_none);
void ig_optim_set_lr(ig_optim *o, double lr);
double ig_optim_lr(const ig_optim *o);
int64_t ig_optim_step_count(const ig_optim *o);

/* State for checkpoints: tensors named "<param>.exp_avg", "<param>.exp_avg_sq"
 * (Adam/AdamW) or "<param>.momentum_buffer" (SGD with momentum; plain SGD has
 * none), in parameter order, made now if still missing (zeros); plus the step
 * count. Returns how many (-1 when memory runs out). Pointers stay valid
 * until the optimizer is freed; loading writes into them with ig_copy_.
 * Restoring these tensors and the step count resumes bit-exactly. A momentum
 * buffer made here counts as history: the next step does not restart it
 * from the gradient (PyTorch's first-step rule) unless it is step 1. */
int ig_optim_state(ig_optim *o, const char *const **names, ig_tensor *const **tensors);
void ig_optim_set_step_count(ig_optim *o, int64_t step);

/* ---- learning-rate schedules ---- */
typedef enum ig_lr_kind { IG_LR_CONSTANT, IG_LR_COSINE, IG_LR_LINEAR, IG_LR_KIND_COUNT } ig_lr_kind;
typedef struct ig_lr_schedule {
    ig_lr_kind kind;
    double lr;           /* peak */
    int64_t warmup;      /* linear warmup from lr/warmup to lr over these steps
                            (every kind, constant included; 0: none) */
    int64_t total;       /* steps of the whole run (decay ends there) */
    double min_lr;       /* floor of the decay */
} ig_lr_schedule;
/* The lr of step `step` (0-based). */
double ig_lr_at(const ig_lr_schedule *s, int64_t step);

/* Scales all gradients so that their global 2-norm is at most max_norm, as
 * torch.nn.utils.clip_grad_norm_: the norm (summed in double) is computed,
 * and when max_norm / (norm + 1e-6) < 1 every gradient is multiplied by it.
 * Returns the norm before clipping (NaN/inf are returned, not clipped). */
double ig_clip_grad_norm(const ig_param_list *params, double max_norm);

#ifdef __cplusplus
}
#endif
#endif

/* ignis/autograd.h: define-by-run reverse-mode differentiation, and the op
 * registration through which every op (built-in or the user's) runs.
 *
 * An op whose inputs require grad (and grad mode is on) records a node: its
 * backward function, the tensors it saved, and an edge to each input.
 * ig_backward walks the nodes in reverse topological order; gradients of
 * leaves accumulate (+=) into their .grad, which the leaf owns. Saved tensors
 * are released as soon as their node has run, unless retain_graph is asked. */
#ifndef IGNIS_AUTOGRAD_H
#define IGNIS_AUTOGRAD_H

#include "ignis/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a leaf as a parameter whose gradient is wanted. Returns t. */
ig_tensor *ig_requires_grad_(ig_tensor *t, bool requires_grad);
bool ig_tensor_requires_grad(const ig_tensor *t);
/* The accumulated gradient of a leaf (owned by the leaf), or NULL. */
ig_tensor *ig_tensor_grad(const ig_tensor *t);
/* Drops the leaf's gradient (set_to_none) or zeroes it in place. */
void ig_tensor_zero_grad(ig_tensor *t, bool set_to_none);
/* Replaces the leaf's gradient buffer; the leaf takes a reference (DDP makes
 * gradients views into bucket memory this way). */
void ig_tensor_set_grad(ig_tensor *t, ig_tensor *grad);
/* A tensor sharing t's storage but cut from the graph. */
ig_tensor *ig_detach(ig_tensor *t);
/* True for tensors made by a recorded op (not leaves). */
bool ig_tensor_has_grad_fn(const ig_tensor *t);
/* Name of the op that made t ("add", ...) or NULL for a leaf. */
const char *ig_tensor_grad_fn_name(const ig_tensor *t);

typedef struct ig_backward_opts {
    ig_tensor *grad_output; /* NULL: t must have one element, seeded with 1 */
    bool retain_graph;      /* keep saved tensors for another backward */
} ig_backward_opts;
#define IG_BACKWARD_OPTS_INIT {NULL, false}

/* Fills the gradients of the leaves that t depends on. */
ig_status ig_backward(ig_tensor *t);
ig_status ig_backward_ex(ig_tensor *t, const ig_backward_opts *opts);

/* Grad mode, per thread. Returns the previous mode:
 *     bool prev = ig_grad_set_enabled(false); ...; ig_grad_set_enabled(prev); */
bool ig_grad_set_enabled(bool enabled);
bool ig_grad_is_enabled(void);

/* Called once per backward when the leaf's gradient is final for this pass
 * (every path from the root to the leaf has contributed). Runs on the thread
 * that runs backward. Returns a handle for ig_hook_remove. */
typedef void (*ig_grad_ready_fn)(ig_tensor *leaf, void *user);
int ig_tensor_add_grad_ready_hook(ig_tensor *leaf, ig_grad_ready_fn fn, void *user);
void ig_tensor_remove_hook(ig_tensor *leaf, int handle);

/* Activation checkpointing: runs fn without recording, saves only its inputs,
 * and in backward runs fn again with recording to get the gradients. fn must
 * be deterministic (dropout: seed its generator from `user`). Leaves that fn
 * uses (parameters) receive their gradients during that recomputation. */
typedef ig_tensor *(*ig_checkpoint_fn)(void *user, int n, ig_tensor *const *inputs);
ig_tensor *ig_checkpoint(ig_checkpoint_fn fn, void *user, int n, ig_tensor *const *inputs);

/* ---- custom operators ----
 * An op is a static ig_op_def: a name, a forward per device kind and one
 * backward. Call it with ig_op_call; it records like any built-in (the
 * built-ins are registered the same way).
 *
 * forward: runs with grad mode off. Makes the outputs (n_out of them) with the
 *   ordinary creation functions and ops. May save tensors for backward with
 *   ig_op_ctx_save and read the attributes passed to ig_op_call.
 * backward: runs with grad mode off. grad_out[j] is the gradient of output j
 *   (never NULL: zeros when the output was unused). Sets grad_in[i] to the
 *   gradient of input i for each i where ig_op_ctx_needs_grad(ctx, i); the
 *   engine reduces broadcast gradients itself, so grad_in[i] may have the
 *   shape of the output that broadcast input i. */
typedef struct ig_op_ctx ig_op_ctx;

typedef ig_status (*ig_op_forward_fn)(ig_op_ctx *ctx, int n_in, ig_tensor *const *in,
                                      int n_out, ig_tensor **out);
typedef void (*ig_op_backward_fn)(ig_op_ctx *ctx, int n_out, ig_tensor *const *grad_out,
                                  int n_in, ig_tensor **grad_in);

typedef struct ig_op_def {
    const char *name;
    ig_op_forward_fn forward[IG_DEVICE_KIND_COUNT]; /* NULL: not on that device */
    ig_op_backward_fn backward;                     /* NULL: not differentiable */
} ig_op_def;

#define IG_OP_MAX_ATTRS 256 /* bytes of attributes an op call may pass */

/* Runs def on inputs (all on one device), recording when needed. attrs (may
 * be NULL) is copied. Returns the single output, or NULL on failure. */
ig_tensor *ig_op_call(const ig_op_def *def, int n_in, ig_tensor *const *in,
                      const void *attrs, size_t attrs_size);
/* The same for ops with several outputs; fills out[0..n_out). */
ig_status ig_op_call_multi(const ig_op_def *def, int n_in, ig_tensor *const *in,
                           const void *attrs, size_t attrs_size, int n_out, ig_tensor **out);

const void *ig_op_ctx_attrs(const ig_op_ctx *ctx);
/* Keeps t (a detached alias) for backward. No-op when not recording. */
void ig_op_ctx_save(ig_op_ctx *ctx, ig_tensor *t);
/* The i-th saved tensor, in the order saved. */
ig_tensor *ig_op_ctx_saved(const ig_op_ctx *ctx, int i);
bool ig_op_ctx_needs_grad(const ig_op_ctx *ctx, int input);
/* Shape, dtype and device of input i as it was at forward. */
int ig_op_ctx_input_ndim(const ig_op_ctx *ctx, int input);
const int64_t *ig_op_ctx_input_shape(const ig_op_ctx *ctx, int input);
ig_dtype ig_op_ctx_input_dtype(const ig_op_ctx *ctx, int input);
ig_device ig_op_ctx_input_device(const ig_op_ctx *ctx, int input);

#ifdef __cplusplus
}
#endif
#endif

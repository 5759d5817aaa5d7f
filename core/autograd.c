/* core/autograd.c: the backward engine. From the root it counts, for every
 * record and leaf, how many edges of this graph lead to it; then it runs
 * records whose gradients are complete (a ready stack: reverse topological
 * order), each inside a scope of its own so temporaries die at once. A leaf's
 * grad-ready hooks fire when its last contribution has arrived.
 *
 * Gradient ownership: the gradients waiting at a record are references held
 * by the record (grads[]); a leaf's .grad is a contiguous buffer it owns, made
 * on the first contribution and accumulated into in place afterwards. */
#include <string.h>

#include "core/impl.h"

static _Thread_local bool grad_enabled = true;
static _Thread_local uint32_t pass_counter;
static _Thread_local int depth; /* nested backward (checkpoint recomputation) */

bool ig_grad_set_enabled(bool enabled) {
    bool prev = grad_enabled;
    grad_enabled = enabled;
    return prev;
}

bool ig_grad_is_enabled(void) { return grad_enabled; }

/* ---- leaves ---- */

struct ig__hook {
    ig__hook *next;
    int id;
    ig_grad_ready_fn fn;
    void *user;
};

ig_tensor *ig_requires_grad_(ig_tensor *t, bool requires_grad) {
    IG_CHECK(!t->grad_fn, "requires_grad_: %s is not a leaf (made by %s); detach it first",
             ig__describe(t), t->grad_fn->ctx.def->name);
    IG_CHECK(!requires_grad || ig_dtype_is_float(t->dtype),
             "requires_grad_: %s is not of a floating dtype", ig__describe(t));
    t->requires_grad = requires_grad;
    return t;
}

bool ig_tensor_requires_grad(const ig_tensor *t) { return t->requires_grad; }
ig_tensor *ig_tensor_grad(const ig_tensor *t) { return t->grad; }
bool ig_tensor_has_grad_fn(const ig_tensor *t) { return t->grad_fn != NULL; }
const char *ig_tensor_grad_fn_name(const ig_tensor *t) {
    return t->grad_fn ? t->grad_fn->ctx.def->name : NULL;
}

void ig_tensor_zero_grad(ig_tensor *t, bool set_to_none) {
    if (!t->grad) return;
    if (set_to_none) {
        ig__tensor_release(t->grad);
        t->grad = NULL;
    } else {
        ig_fill_(t->grad, 0.0);
    }
}

void ig_tensor_set_grad(ig_tensor *t, ig_tensor *grad) {
    if (grad) {
        IG_CHECK(ig__same_shape(t, grad) && grad->dtype == t->dtype &&
                     ig_device_eq(grad->device, t->device),
                 "set_grad: gradient %s does not match %s", ig__describe(grad), ig__describe(t));
        ig__tensor_retain(grad);
    }
    if (t->grad) ig__tensor_release(t->grad);
    t->grad = grad;
}

ig_tensor *ig_detach(ig_tensor *t) {
    if (!t) return NULL;
    return ig__tensor_alias(t, t->ndim, t->shape, t->strides, t->offset);
}

int ig_tensor_add_grad_ready_hook(ig_tensor *leaf, ig_grad_ready_fn fn, void *user) {
    IG_CHECK(!leaf->grad_fn, "add_grad_ready_hook: %s is not a leaf", ig__describe(leaf));
    ig__hook *h = malloc(sizeof *h);
    IG_CHECK(h, "add_grad_ready_hook: out of host memory");
    h->id = ++leaf->next_hook_id;
    h->fn = fn;
    h->user = user;
    h->next = leaf->hooks;
    leaf->hooks = h;
    return h->id;
}

void ig_tensor_remove_hook(ig_tensor *leaf, int id) {
    for (ig__hook **p = &leaf->hooks; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            ig__hook *h = *p;
            *p = h->next;
            free(h);
            return;
        }
    }
}

void ig__hooks_free(ig_tensor *t) {
    while (t->hooks) {
        ig__hook *h = t->hooks;
        t->hooks = h->next;
        free(h);
    }
}

static void fire_hooks(ig_tensor *leaf) {
    /* registration order: the list is newest first, so walk it reversed */
    ig__hook *stack[64];
    int n = 0;
    for (ig__hook *h = leaf->hooks; h && n < 64; h = h->next) stack[n++] = h;
    while (n > 0) {
        ig__hook *h = stack[--n];
        h->fn(leaf, h->user);
    }
}

void ig__accumulate_grad(ig_tensor *leaf, ig_tensor *g) {
    if (g->dtype != leaf->dtype) g = ig_to(g, leaf->dtype, leaf->device);
    if (!leaf->grad) {
        ig_tensor *c = ig_empty(leaf->ndim, leaf->shape, leaf->dtype, leaf->device);
        IG_CHECK(c, "backward: out of memory for the gradient of %s: %s", ig__describe(leaf),
                 ig_last_error());
        ig__scope_remove(c);
        IG_CHECK(ig_copy_(c, g) == IG_OK, "backward: %s", ig_last_error());
        leaf->grad = c;
    } else {
        IG_CHECK(ig__add_inplace(leaf->grad, g) == IG_OK, "backward: %s", ig_last_error());
    }
}

/* ---- the engine ---- */

typedef struct vec {
    void **items;
    int n, cap;
} vec;

static void push(vec *v, void *x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->items = realloc(v->items, sizeof(void *) * (size_t)v->cap);
        IG_CHECK(v->items, "backward: out of host memory");
    }
    v->items[v->n++] = x;
}

static _Thread_local vec deferred_leaves;

/* The slots for a record's output gradients: inline for one or two outputs. */
static void grads_open(ig__node *n) {
    int k = n->ctx.n_out;
    if (k <= 2) {
        n->grads = n->grads_inline;
        n->grads[0] = n->grads[1] = NULL;
    } else {
        n->grads = calloc((size_t)k, sizeof(ig_tensor *));
        IG_CHECK(n->grads, "backward: out of host memory");
    }
}

static void grads_close(ig__node *n) {
    for (int j = 0; j < n->ctx.n_out; j++)
        if (n->grads[j]) ig__tensor_release(n->grads[j]);
    if (n->grads != n->grads_inline) free(n->grads);
    n->grads = NULL;
} /* leaves reached by nested passes */

ig_tensor *ig__reduce_grad(const ig_op_ctx *ctx, int i, ig_tensor *g) {
    const ig__edge *e = &ctx->edges[i];
    bool same = g->ndim == e->ndim;
    for (int d = 0; same && d < e->ndim; d++) same = g->shape[d] == e->shape[d];
    if (!same) g = ig_sum_to(g, e->ndim, e->shape);
    if (g && (g->dtype != e->dtype || !ig_device_eq(g->device, e->device)))
        g = ig_to(g, e->dtype, e->device);
    return g;
}

static void leaf_contribution(ig_tensor *leaf, ig_tensor *g, uint32_t pass) {
    if (g) ig__accumulate_grad(leaf, g);
    if (depth > 1) {
        if (leaf->hooks && leaf->pass != pass) {
            leaf->pass = pass;
            push(&deferred_leaves, leaf);
            ig__tensor_retain(leaf);
        }
        return;
    }
    if (--leaf->pending == 0 && leaf->hooks) fire_hooks(leaf);
}

static ig_status run(ig_tensor *root, ig_tensor *seed, bool retain) {
    uint32_t pass = ++pass_counter;
    if (pass == 0) pass = ++pass_counter;
    ig__node *rn = root->grad_fn;

    /* 1. count incoming edges per record and per leaf (iterative DFS) */
    vec stack = {0}, ready = {0};
    rn->pass = pass;
    rn->pending = 0;
    push(&stack, rn);
    while (stack.n) {
        ig__node *n = stack.items[--stack.n];
        for (int i = 0; i < n->ctx.n_in; i++) {
            ig__edge *e = &n->ctx.edges[i];
            if (e->node) {
                if (e->node->pass != pass) {
                    e->node->pass = pass;
                    e->node->pending = 0;
                    push(&stack, e->node);
                }
                e->node->pending++;
            } else if (e->leaf && depth == 1) {
                if (e->leaf->pass != pass) {
                    e->leaf->pass = pass;
                    e->leaf->pending = 0;
                }
                e->leaf->pending++;
            }
        }
    }

    /* 2. run records whose output gradients are complete */
    grads_open(rn);
    rn->grads[root->out_index] = seed;
    ig__tensor_retain(seed);
    push(&ready, rn);
    ig_status st = IG_OK;
    while (ready.n) {
        ig__node *n = ready.items[--ready.n];
        ig_op_ctx *ctx = &n->ctx;
        ig_scope *s = ig_scope_begin();
        bool any = false;
        for (int j = 0; j < ctx->n_out; j++) any |= n->grads[j] != NULL;
        ig_tensor *gin_inline[8], **gin = gin_inline;
        if (ctx->n_in > 8) gin = malloc(sizeof(ig_tensor *) * (size_t)ctx->n_in);
        IG_CHECK(gin, "backward: out of host memory");
        for (int i = 0; i < ctx->n_in; i++) gin[i] = NULL;
        if (any) {
            IG_CHECK(!ctx->released || retain, "%s: backward through a graph a second time; "
                     "pass retain_graph to the first backward", ctx->def->name);
            for (int j = 0; j < ctx->n_out; j++) {
                if (n->grads[j]) continue;
                const ig__edge *m = &n->out_meta[j]; /* only multi-output records lack one */
                n->grads[j] = ig_zeros(m->ndim, m->shape, m->dtype, m->device);
                if (!n->grads[j]) { st = ig_last_status(); break; }
                ig__scope_remove(n->grads[j]);
            }
            if (st == IG_OK) ctx->def->backward(ctx, ctx->n_out, n->grads, ctx->n_in, gin);
        }
        for (int i = 0; i < ctx->n_in && st == IG_OK; i++) {
            ig__edge *e = &ctx->edges[i];
            if (!e->needs_grad) continue;
            ig_tensor *g = gin[i] ? ig__reduce_grad(ctx, i, gin[i]) : NULL;
            if (gin[i] && !g) { st = ig_last_status(); break; }
            if (e->node) {
                ig__node *p = e->node;
                if (g) {
                    if (!p->grads) grads_open(p);
                    ig_tensor **slot = &p->grads[e->out_index];
                    if (*slot) {
                        ig_tensor *sum = ig_add(*slot, g);
                        if (!sum) { st = ig_last_status(); break; }
                        ig__tensor_release(*slot);
                        g = sum;
                    }
                    ig__tensor_retain(g);
                    *slot = g;
                }
                if (--p->pending == 0) {
                    /* even when no gradient reached it, it runs to release its inputs' counts */
                    if (!p->grads) grads_open(p);
                    push(&ready, p);
                }
            } else if (e->leaf) {
                leaf_contribution(e->leaf, g, pass);
            }
        }
        if (gin != gin_inline) free(gin);
        grads_close(n);
        if (!retain) ig__node_release_saved(n);
        ig_scope_end(s);
        if (st != IG_OK) break;
    }
    /* on failure, drop what is still waiting */
    for (int k = 0; k < ready.n; k++) grads_close(ready.items[k]);
    free(stack.items);
    free(ready.items);
    return st;
}

ig_status ig_backward_ex(ig_tensor *t, const ig_backward_opts *opts) {
    if (!t) return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_INVALID;
    IG_CHECK(t->requires_grad, "backward: %s does not require grad (no input of it does)",
             ig__describe(t));
    ig_backward_opts o = IG_BACKWARD_OPTS_INIT;
    if (opts) o = *opts;
    ig_tensor *seed = o.grad_output;
    bool prev = ig_grad_set_enabled(false);
    ig_scope *s = ig_scope_begin();
    if (!seed) {
        IG_CHECK(t->numel == 1, "backward: %s has %lld elements; pass grad_output",
                 ig__describe(t), (long long)t->numel);
        seed = ig_ones(t->ndim, t->shape, t->dtype, t->device);
    } else {
        IG_CHECK(ig__same_shape(seed, t), "backward: grad_output %s does not match %s",
                 ig__describe(seed), ig__describe(t));
    }
    ig_status st = seed ? IG_OK : ig_last_status();
    depth++;
    if (st == IG_OK) {
        if (!t->grad_fn) {
            ig__accumulate_grad(t, seed);
            if (depth == 1 && t->hooks) fire_hooks(t);
        } else {
            st = run(t, seed, o.retain_graph);
        }
    }
    depth--;
    if (depth == 0) {
        for (int i = 0; i < deferred_leaves.n; i++) {
            ig_tensor *leaf = deferred_leaves.items[i];
            fire_hooks(leaf);
            ig__tensor_release(leaf);
        }
        deferred_leaves.n = 0;
    }
    ig_scope_end(s);
    ig_grad_set_enabled(prev);
    return st;
}

ig_status ig_backward(ig_tensor *t) { return ig_backward_ex(t, NULL); }

/* ---- activation checkpointing ---- */

typedef struct ckpt_attrs {
    ig_checkpoint_fn fn;
    void *user;
} ckpt_attrs;

static ig_status ckpt_forward(ig_op_ctx *ctx, int n_in, ig_tensor *const *in, int n_out,
                              ig_tensor **out) {
    (void)n_out;
    const ckpt_attrs *a = IG_ATTRS(ctx, ckpt_attrs);
    for (int i = 0; i < n_in; i++) ig_op_ctx_save(ctx, in[i]);
    ig_tensor *r = a->fn(a->user, n_in, in);
    if (!r) return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_INVALID;
    /* the output must be a fresh handle even if fn returned an input */
    out[0] = ig__tensor_alias(r, r->ndim, r->shape, r->strides, r->offset);
    return out[0] ? IG_OK : ig_last_status();
}

static void ckpt_backward(ig_op_ctx *ctx, int n_out, ig_tensor *const *gout, int n_in,
                          ig_tensor **gin) {
    (void)n_out;
    const ckpt_attrs *a = IG_ATTRS(ctx, ckpt_attrs);
    ig_tensor *x[64];
    IG_CHECK(n_in <= 64, "checkpoint: at most 64 inputs");
    for (int i = 0; i < n_in; i++) {
        x[i] = ig_detach(ig_op_ctx_saved(ctx, i));
        if (ig_op_ctx_needs_grad(ctx, i)) ig_requires_grad_(x[i], true);
    }
    bool prev = ig_grad_set_enabled(true);
    ig_tensor *r = a->fn(a->user, n_in, x);
    ig_grad_set_enabled(prev);
    IG_CHECK(r, "checkpoint: recomputation failed: %s", ig_last_error());
    if (!r->requires_grad) return;
    ig_backward_opts o = {gout[0], false};
    IG_CHECK(ig_backward_ex(r, &o) == IG_OK, "checkpoint: %s", ig_last_error());
    for (int i = 0; i < n_in; i++)
        if (ig_op_ctx_needs_grad(ctx, i)) gin[i] = x[i]->grad;
}

static const ig_op_def checkpoint_op = {
    "checkpoint", {ckpt_forward, ckpt_forward}, ckpt_backward};

ig_tensor *ig_checkpoint(ig_checkpoint_fn fn, void *user, int n, ig_tensor *const *inputs) {
    ckpt_attrs a = {fn, user};
    return ig_op_call(&checkpoint_op, n, inputs, &a, sizeof a);
}

/* ---- memory accounting ---- */

void ig_memory_stats_get(ig_memory_stats *out) {
    memset(out, 0, sizeof *out);
    out->live_tensors = ig__live_tensors();
    out->live_nodes = ig__live_nodes();
    for (int k = 0; k < IG_DEVICE_KIND_COUNT; k++) {
        out->live_bytes[k] = ig__stat_live_bytes[k];
        out->cached_bytes[k] = ig__stat_cached_bytes[k];
        out->system_allocs[k] = ig__stat_system_allocs[k];
    }
}

void ig_memory_release_cached(void) {
    ig__cpu_release_cached();
    ig__cuda_release_cached();
    ig__tensor_pool_drain();
    ig__storage_pool_drain();
    ig__scope_pool_drain();
    ig__node_pool_drain();
    free(deferred_leaves.items);
    deferred_leaves.items = NULL;
    deferred_leaves.cap = 0;
}

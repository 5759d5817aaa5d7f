/* core/op.c: ig_op_call, the one path every op takes, built-in or custom:
 * checks the operands, picks the forward for the device, runs it with grad
 * mode off, and, when an input requires grad, records a node (pooled) that
 * links the outputs to the inputs for backward. */
#include <string.h>

#include "core/impl.h"
#include "core/pool.h"

static _Thread_local ig__pool pool = IG__POOL_INIT(ig__node);
static int64_t live_nodes;

void ig__node_pool_drain(void) { ig__pool_drain(&pool); }
int64_t ig__live_nodes(void) { return __atomic_load_n(&live_nodes, __ATOMIC_RELAXED); }

static void release_saved(ig_op_ctx *ctx) {
    for (int i = 0; i < ctx->n_saved; i++) ig__tensor_release(ctx->saved[i]);
    if (ctx->saved != ctx->saved_inline) free(ctx->saved);
    ctx->saved = ctx->saved_inline;
    ctx->n_saved = 0;
    ctx->cap_saved = IG__INLINE_SAVED;
}

void ig__node_release_saved(ig__node *n) {
    release_saved(&n->ctx);
    n->ctx.released = true;
}

void ig__node_retain(ig__node *n) { n->refcount++; }

void ig__node_release(ig__node *n) {
    if (!n || --n->refcount > 0) return;
    ig_op_ctx *ctx = &n->ctx;
    release_saved(ctx);
    for (int i = 0; i < ctx->n_in; i++) {
        if (ctx->edges[i].node) ig__node_release(ctx->edges[i].node);
        if (ctx->edges[i].leaf) ig__tensor_release(ctx->edges[i].leaf);
    }
    if (ctx->edges != ctx->edges_inline) free(ctx->edges);
    free(n->out_meta);
    __atomic_sub_fetch(&live_nodes, 1, __ATOMIC_RELAXED);
    ig__pool_put(&pool, n);
}

static void set_meta(ig__edge *e, const ig_tensor *t) {
    e->ndim = (int8_t)t->ndim;
    e->dtype = t->dtype;
    e->device = t->device;
    memcpy(e->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
}

ig_status ig_op_call_multi(const ig_op_def *def, int n_in, ig_tensor *const *in,
                           const void *attrs, size_t attrs_size, int n_out, ig_tensor **out) {
    IG_CHECK(def && n_in >= 1 && n_out >= 1, "op_call: bad arguments");
    IG_CHECK(attrs_size <= IG_OP_MAX_ATTRS, "%s: %zu bytes of attributes (at most %d)",
             def->name, attrs_size, IG_OP_MAX_ATTRS);
    for (int j = 0; j < n_out; j++) out[j] = NULL;
    bool needs = false;
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_INVALID;
        needs |= in[i]->requires_grad;
    }
    ig_device dev = in[0]->device;
    for (int i = 1; i < n_in; i++)
        IG_CHECK(ig_device_eq(in[i]->device, dev), "%s: operands on different devices: %s and %s",
                 def->name, ig__describe(in[0]), ig__describe(in[i]));
    ig_op_forward_fn fwd = def->forward[dev.kind];
    if (!fwd)
        return ig__error(IG_ERR_UNSUPPORTED, "%s: no kernel for device %s", def->name,
                         ig_device_name(dev));

    bool record = needs && def->backward && ig_grad_is_enabled();
    ig__node *node = NULL;
    ig_op_ctx local, *ctx;
    if (record) {
        node = ig__pool_get(&pool);
        IG_CHECK(node, "op_call: out of host memory");
        __atomic_add_fetch(&live_nodes, 1, __ATOMIC_RELAXED);
        node->refcount = 0;
        node->pending = 0;
        node->pass = 0;
        node->grads = NULL;
        node->out_meta = NULL;
        ctx = &node->ctx;
    } else {
        ctx = &local;
    }
    ctx->def = def;
    ctx->recording = record;
    ctx->n_in = n_in;
    ctx->n_out = n_out;
    ctx->n_saved = 0;
    ctx->cap_saved = IG__INLINE_SAVED;
    ctx->saved = ctx->saved_inline;
    ctx->released = false;
    ctx->edges = ctx->edges_inline;
    if (attrs_size) memcpy(ctx->attrs, attrs, attrs_size);
    if (record) {
        if (n_in > IG__INLINE_EDGES) {
            ctx->edges = malloc(sizeof(ig__edge) * (size_t)n_in);
            IG_CHECK(ctx->edges, "op_call: out of host memory");
        }
        for (int i = 0; i < n_in; i++) {
            ig__edge *e = &ctx->edges[i];
            e->node = NULL;
            e->leaf = NULL;
            e->out_index = 0;
            e->needs_grad = in[i]->requires_grad;
            set_meta(e, in[i]);
        }
    } else if (n_in <= IG__INLINE_EDGES) {
        /* input metadata is cheap to keep and lets forwards use the ctx getters */
        for (int i = 0; i < n_in; i++) {
            ctx->edges[i].needs_grad = false;
            set_meta(&ctx->edges[i], in[i]);
        }
    }

    bool prev = ig_grad_set_enabled(false);
    ig_status st = fwd(ctx, n_in, in, n_out, out);
    ig_grad_set_enabled(prev);

    if (st != IG_OK) {
        if (record) {
            node->refcount = 1;
            ig__node_release(node);
        } else {
            release_saved(ctx);
        }
        return st;
    }
    for (int j = 0; j < n_out; j++) {
        IG_CHECK(out[j], "%s: forward returned IG_OK without output %d", def->name, j);
        for (int i = 0; i < n_in; i++)
            IG_CHECK(out[j] != in[i], "%s: forward returned its input; return a view instead",
                     def->name);
    }
    if (!record) {
        release_saved(ctx);
        return IG_OK;
    }
    for (int i = 0; i < n_in; i++) {
        ig__edge *e = &ctx->edges[i];
        if (!e->needs_grad) continue;
        if (in[i]->grad_fn) {
            e->node = in[i]->grad_fn;
            e->out_index = in[i]->out_index;
            ig__node_retain(e->node);
        } else {
            e->leaf = in[i];
            ig__tensor_retain(in[i]);
        }
    }
    if (n_out > 1) {
        node->out_meta = malloc(sizeof(ig__edge) * (size_t)n_out);
        IG_CHECK(node->out_meta, "op_call: out of host memory");
    }
    for (int j = 0; j < n_out; j++) {
        if (n_out > 1) set_meta(&node->out_meta[j], out[j]);
        out[j]->grad_fn = node;
        out[j]->out_index = j;
        out[j]->requires_grad = true;
        node->refcount++;
    }
    return IG_OK;
}

ig_tensor *ig_op_call(const ig_op_def *def, int n_in, ig_tensor *const *in, const void *attrs,
                      size_t attrs_size) {
    ig_tensor *out = NULL;
    return ig_op_call_multi(def, n_in, in, attrs, attrs_size, 1, &out) == IG_OK ? out : NULL;
}

/* ---- the context seen by forward and backward functions ---- */

const void *ig_op_ctx_attrs(const ig_op_ctx *ctx) { return ctx->attrs; }

void ig_op_ctx_save(ig_op_ctx *ctx, ig_tensor *t) {
    if (!ctx->recording || !t) return;
    if (ctx->n_saved == ctx->cap_saved) {
        int cap = ctx->cap_saved * 2;
        ig_tensor **s = malloc(sizeof *s * (size_t)cap);
        IG_CHECK(s, "op_ctx_save: out of host memory");
        memcpy(s, ctx->saved, sizeof *s * (size_t)ctx->n_saved);
        if (ctx->saved != ctx->saved_inline) free(ctx->saved);
        ctx->saved = s;
        ctx->cap_saved = cap;
    }
    /* A detached alias owned by the record, outside every scope. */
    ig_tensor *a = ig__tensor_alias(t, t->ndim, t->shape, t->strides, t->offset);
    IG_CHECK(a, "op_ctx_save: out of host memory");
    ig__scope_remove(a);
    ctx->saved[ctx->n_saved++] = a;
}

ig_tensor *ig_op_ctx_saved(const ig_op_ctx *ctx, int i) {
    IG_CHECK(!ctx->released, "%s: backward through a graph whose saved tensors were freed; "
             "pass retain_graph to the first backward", ctx->def->name);
    IG_CHECK(i >= 0 && i < ctx->n_saved, "%s: saved tensor %d of %d", ctx->def->name, i,
             ctx->n_saved);
    return ctx->saved[i];
}

bool ig_op_ctx_needs_grad(const ig_op_ctx *ctx, int i) {
    return ctx->recording && i < ctx->n_in && ctx->edges[i].needs_grad;
}

static const ig__edge *edge(const ig_op_ctx *ctx, int i) {
    IG_CHECK(i >= 0 && i < ctx->n_in && (ctx->recording || ctx->n_in <= IG__INLINE_EDGES),
             "%s: no metadata for input %d", ctx->def->name, i);
    return &ctx->edges[i];
}

int ig_op_ctx_input_ndim(const ig_op_ctx *ctx, int i) { return edge(ctx, i)->ndim; }
const int64_t *ig_op_ctx_input_shape(const ig_op_ctx *ctx, int i) { return edge(ctx, i)->shape; }
ig_dtype ig_op_ctx_input_dtype(const ig_op_ctx *ctx, int i) { return edge(ctx, i)->dtype; }
ig_device ig_op_ctx_input_device(const ig_op_ctx *ctx, int i) { return edge(ctx, i)->device; }

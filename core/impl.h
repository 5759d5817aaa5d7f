/* core/impl.h: the engine's internal structures, shared by the files of core/.
 * Not installed. Everything here is ig__-prefixed.
 *
 * Invariants:
 *  - a tensor's refcount counts its owner (a scope or the user) plus every
 *    autograd record that holds it; at zero it returns to the pool;
 *  - a storage's refcount counts the tensors viewing it;
 *  - saved tensors are detached aliases, so no record reaches itself (no
 *    reference cycles through grad_fn). */
#ifndef IGNIS_CORE_IMPL_H
#define IGNIS_CORE_IMPL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ignis/autograd.h"
#include "ignis/ops.h"
#include "ignis/tensor.h"

/* ---- assertions: never compiled out ---- */
_Noreturn void ig__fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define IG_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (__builtin_expect(!(cond), 0)) ig__fail(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

/* Sets the thread's last error and returns s (ig_set_error, status.h). */
#define ig__error ig_set_error

/* "[2, 3] f32 cuda:0" into a per-thread ring of buffers (valid for a few calls). */
const char *ig__describe(const ig_tensor *t);
/* Asserts a and b share dtype and device, naming op and both operands. */
void ig__check_same(const char *op, const ig_tensor *a, const ig_tensor *b);
/* Normalizes a possibly negative dim; asserts it is in range. */
int ig__dim(const char *op, const ig_tensor *t, int d);

/* ---- storage ---- */
typedef struct ig__storage {
    void *data;
    size_t nbytes;
    ig_device device;
    int refcount;
    bool borrowed; /* memory not ours (a view of user memory): never freed */
} ig__storage;

ig__storage *ig__storage_new(size_t nbytes, ig_device dev);
void ig__storage_retain(ig__storage *s);
void ig__storage_release(ig__storage *s);

/* Caching allocators, one per device kind. Sizes round up to size classes so
 * that a steady training step reuses the same blocks (and addresses). */
void *ig__cpu_alloc(size_t nbytes);
void ig__cpu_free(void *p, size_t nbytes);
void ig__cpu_release_cached(void);
/* CUDA side lives in core/cuda_runtime.c (stubs without CUDA). */
void *ig__cuda_alloc(size_t nbytes, int device);
void ig__cuda_free(void *p, size_t nbytes, int device);
void ig__cuda_release_cached(void);
/* Copies between host and device (kind of each side given); synchronous. */
ig_status ig__cuda_memcpy(void *dst, ig_device ddev, const void *src, ig_device sdev,
                          size_t nbytes);

extern int64_t ig__stat_live_bytes[IG_DEVICE_KIND_COUNT];
extern int64_t ig__stat_cached_bytes[IG_DEVICE_KIND_COUNT];
extern int64_t ig__stat_system_allocs[IG_DEVICE_KIND_COUNT];

/* ---- tensor ---- */
typedef struct ig__node ig__node;
typedef struct ig__hook ig__hook;

struct ig_tensor {
    ig__storage *storage;
    int64_t offset; /* in elements */
    int ndim;
    ig_dtype dtype;
    ig_device device;
    int64_t shape[IG_MAX_DIMS];
    int64_t strides[IG_MAX_DIMS];
    int64_t numel;

    int refcount;
    ig_scope *scope;           /* owning scope, NULL when kept by the user */
    ig_tensor *scope_prev, *scope_next;

    bool requires_grad;
    ig_tensor *grad;           /* leaves only; owned */
    ig__node *grad_fn;         /* producing record, or NULL for leaves */
    int out_index;             /* which output of grad_fn */
    ig__hook *hooks;
    int next_hook_id;
    /* backward bookkeeping for leaves, valid during one ig_backward */
    int pending;
    uint32_t pass;
};

/* A new tensor handle (no storage) owned by the current scope or, with no
 * scope open, by the caller. */
ig_tensor *ig__tensor_alloc(void);
/* Allocates a contiguous tensor; NULL + last error on OOM. */
ig_tensor *ig__tensor_new(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev);
/* A new handle viewing t's storage with the given geometry (no autograd). */
ig_tensor *ig__tensor_alias(const ig_tensor *t, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset);
void ig__tensor_retain(ig_tensor *t);
void ig__tensor_release(ig_tensor *t);
/* Fills strides for a contiguous layout; returns numel. */
int64_t ig__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Byte address of element 0 of t. */
static inline char *ig__ptr(const ig_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)ig_dtype_size(t->dtype);
}
/* Computes the broadcast shape of a and b; asserts they are compatible. */
int ig__broadcast_shape(const char *op, const ig_tensor *a, const ig_tensor *b, int64_t *out);
/* Strides of t seen with shape `shape` (ndim >= t->ndim): 0 on broadcast dims. */
void ig__broadcast_strides(const ig_tensor *t, int ndim, const int64_t *shape, int64_t *strides);
bool ig__same_shape(const ig_tensor *a, const ig_tensor *b);

/* Scope bookkeeping (core/scope.c). */
void ig__scope_adopt(ig_tensor *t);  /* into the current scope, if any */
void ig__scope_remove(ig_tensor *t); /* out of its scope (stays alive) */

/* ---- autograd records ---- */
typedef struct ig__edge {
    ig__node *node;  /* producer of the input, or NULL */
    ig_tensor *leaf; /* the input itself when it is a leaf requiring grad */
    int out_index;
    bool needs_grad;
    int8_t ndim;
    ig_dtype dtype;
    ig_device device;
    int64_t shape[IG_MAX_DIMS];
} ig__edge;

#define IG__INLINE_EDGES 3
#define IG__INLINE_SAVED 4

struct ig_op_ctx {
    const ig_op_def *def;
    bool recording;
    int n_in, n_out;
    ig__edge *edges;
    ig__edge edges_inline[IG__INLINE_EDGES];
    int n_saved, cap_saved;
    ig_tensor **saved;
    ig_tensor *saved_inline[IG__INLINE_SAVED];
    bool released; /* saved tensors dropped after backward */
    _Alignas(16) unsigned char attrs[IG_OP_MAX_ATTRS];
};

struct ig__node {
    ig_op_ctx ctx; /* first: a node is its context */
    int refcount;
    /* backward bookkeeping, valid during one ig_backward */
    int pending;
    uint32_t pass;
    ig_tensor **grads;  /* accumulated output gradients, n_out of them */
    ig_tensor *grads_inline[2];
    ig__edge *out_meta; /* shapes of the outputs, when n_out > 1 */
};

void ig__node_retain(ig__node *n);
void ig__node_release(ig__node *n);
void ig__node_release_saved(ig__node *n);

/* Object pools and counters (core/tensor.c, core/op.c, ...). */
void ig__tensor_pool_drain(void);
void ig__storage_pool_drain(void);
void ig__scope_pool_drain(void);
void ig__node_pool_drain(void);
int64_t ig__live_tensors(void);
int64_t ig__live_nodes(void);

/* Gradients flowing into a leaf (core/autograd.c). */
void ig__accumulate_grad(ig_tensor *leaf, ig_tensor *g);

/* ---- internal op helpers ---- */
/* A broadcast gradient reduced back to an input's recorded shape. */
ig_tensor *ig__reduce_grad(const ig_op_ctx *ctx, int input, ig_tensor *g);
/* In-place a += b (same shape), no recording; used for gradient accumulation. */
ig_status ig__add_inplace(ig_tensor *a, const ig_tensor *b);
/* dst <- src elementwise with dtype conversion and broadcasting; dst/src on one
 * device (kernels). */
ig_status ig__copy_strided(ig_tensor *dst, const ig_tensor *src);

/* Op attribute helper: the calling op struct cast. */
#define IG_ATTRS(ctx, type) ((const type *)ig_op_ctx_attrs(ctx))

#endif

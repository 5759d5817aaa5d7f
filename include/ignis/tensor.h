/* ignis/tensor.h: n-dimensional tensors on a device, their views, and the scopes
 * that own temporaries.
 *
 * Ownership. A tensor made while a scope is open (ig_scope_begin) belongs to the
 * innermost open scope and is released when that scope ends: inside a training
 * step nothing is freed by hand. A tensor made while no scope is open, or taken
 * out of its scope with ig_keep, belongs to the caller, who releases it with
 * ig_tensor_free. Views share their base's storage; storage lives as long as
 * any tensor (or autograd record) that uses it.
 *
 * Errors. Shape, dtype and device mismatches are programmer errors: an
 * assertion that names the op and both operands. Failures of the world (no
 * memory, a CUDA error) make the call return NULL and set ig_last_error(); an
 * op given a NULL input returns NULL, so a whole step can be checked once.
 *
 * Threads. Scopes and the grad mode are per thread; a tensor must not be used
 * by two threads at once. */
#ifndef IGNIS_TENSOR_H
#define IGNIS_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ignis/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IG_MAX_DIMS 8

/* Element types. Grow only at the end. */
typedef enum ig_dtype {
    IG_F32,
    IG_F64,
    IG_BF16,
    IG_F16,
    IG_I32,
    IG_I64,
    IG_U8,
    IG_U16,
    IG_DTYPE_COUNT
} ig_dtype;

typedef enum ig_device_kind { IG_DEV_CPU, IG_DEV_CUDA, IG_DEVICE_KIND_COUNT } ig_device_kind;

typedef struct ig_device {
    ig_device_kind kind;
    int index; /* 0 for the CPU; the CUDA ordinal otherwise */
} ig_device;

#define IG_CPU ((ig_device){IG_DEV_CPU, 0})
#define IG_CUDA(i) ((ig_device){IG_DEV_CUDA, (i)})

/* "cpu", "cuda", "cuda:1". Asserts on anything else. */
ig_device ig_device_parse(const char *name);
/* Writes "cpu" or "cuda:N" into a static per-thread buffer. */
const char *ig_device_name(ig_device d);
bool ig_device_eq(ig_device a, ig_device b);
/* Number of CUDA devices usable by this build (0 without CUDA or GPU). */
int ig_cuda_device_count(void);

size_t ig_dtype_size(ig_dtype t);
const char *ig_dtype_name(ig_dtype t);
bool ig_dtype_is_float(ig_dtype t);

/* Scalar conversions, round to nearest even. */
uint16_t ig_f32_to_bf16(float x);
float ig_bf16_to_f32(uint16_t x);
uint16_t ig_f32_to_f16(float x);
float ig_f16_to_f32(uint16_t x);

typedef struct ig_tensor ig_tensor;

/* IG_SHAPE(2, 3) expands to the two arguments `ndim, shape`. */
#define IG_SHAPE(...)                                                        \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),        \
        (const int64_t[]) { __VA_ARGS__ }

/* ---- creation (NULL and ig_last_error() when memory runs out) ---- */
ig_tensor *ig_empty(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev);
ig_tensor *ig_zeros(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev);
ig_tensor *ig_ones(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev);
ig_tensor *ig_full(int ndim, const int64_t *shape, double value, ig_dtype dtype, ig_device dev);
/* [start, end) by step, 1-D. */
ig_tensor *ig_arange(double start, double end, double step, ig_dtype dtype, ig_device dev);
/* Copies numel elements of `dtype` from a host buffer. */
ig_tensor *ig_from_data(const void *data, int ndim, const int64_t *shape, ig_dtype dtype,
                        ig_device dev);
ig_tensor *ig_zeros_like(const ig_tensor *t);
ig_tensor *ig_ones_like(const ig_tensor *t);
ig_tensor *ig_empty_like(const ig_tensor *t);

/* ---- random numbers: Philox4x32-10, counter based ----
 * Element i of a tensor filled from (seed, offset) takes counter offset + i, so
 * the CPU and CUDA give the same numbers for the same seed and offset. The
 * generator's offset advances by the numbers drawn. */
typedef struct ig_generator {
    uint64_t seed;
    uint64_t offset;
} ig_generator;

/* The per-thread default generator, seeded with 0 until ig_manual_seed. */
ig_generator *ig_default_generator(void);
void ig_manual_seed(uint64_t seed);
/* gen may be NULL for the default generator. */
ig_tensor *ig_randn(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev,
                    ig_generator *gen);
ig_tensor *ig_rand(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev,
                   ig_generator *gen); /* uniform in [0, 1) */
/* In place: normal(mean, std) or uniform [lo, hi). Not recorded by autograd. */
ig_tensor *ig_normal_(ig_tensor *t, double mean, double std, ig_generator *gen);
ig_tensor *ig_uniform_(ig_tensor *t, double lo, double hi, ig_generator *gen);

/* ---- properties ---- */
int ig_tensor_ndim(const ig_tensor *t);
/* Size of dimension d; negative d counts from the end. */
int64_t ig_tensor_size(const ig_tensor *t, int d);
const int64_t *ig_tensor_shape(const ig_tensor *t);
const int64_t *ig_tensor_strides(const ig_tensor *t); /* in elements */
int64_t ig_tensor_numel(const ig_tensor *t);
ig_dtype ig_tensor_dtype(const ig_tensor *t);
ig_device ig_tensor_device(const ig_tensor *t);
bool ig_tensor_is_contiguous(const ig_tensor *t);
/* Address of the first element (host or device memory). */
void *ig_tensor_data(const ig_tensor *t);
/* Value of a one-element tensor as double (copies from the device). */
double ig_tensor_item(const ig_tensor *t);
/* Copies the elements, in logical row-major order, to a host buffer of
 * numel * dtype_size bytes. Returns IG_OK or a CUDA failure. */
ig_status ig_tensor_to_host(const ig_tensor *t, void *dst);
/* Writes "tensor(shape=[2, 3], dtype=f32, device=cpu)\n[[...]]" to f;
 * long dimensions are summarized with "...". */
void ig_tensor_print(const ig_tensor *t, FILE *f);
/* The same text into buf (truncated to cap); returns the full length. */
size_t ig_tensor_format(const ig_tensor *t, char *buf, size_t cap);

/* ---- views: share storage, recorded by autograd ---- */
/* One dimension may be -1. view asserts the strides allow it; reshape copies
 * when they do not. */
ig_tensor *ig_view(ig_tensor *t, int ndim, const int64_t *shape);
ig_tensor *ig_reshape(ig_tensor *t, int ndim, const int64_t *shape);
ig_tensor *ig_flatten(ig_tensor *t);
ig_tensor *ig_permute(ig_tensor *t, const int *dims);
ig_tensor *ig_transpose(ig_tensor *t, int d0, int d1);
ig_tensor *ig_narrow(ig_tensor *t, int dim, int64_t start, int64_t length);
/* Elements start, start+step, ... below end (step >= 1). */
ig_tensor *ig_slice(ig_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
/* Broadcast to shape: size-1 dims grow (stride 0); -1 keeps a dim. */
ig_tensor *ig_expand(ig_tensor *t, int ndim, const int64_t *shape);
ig_tensor *ig_squeeze(ig_tensor *t, int dim);
ig_tensor *ig_unsqueeze(ig_tensor *t, int dim);
/* t itself when already contiguous, else a contiguous copy (differentiable). */
ig_tensor *ig_contiguous(ig_tensor *t);

/* ---- copies ---- */
ig_tensor *ig_clone(ig_tensor *t);
/* Converts dtype and/or moves between devices; differentiable. */
ig_tensor *ig_to(ig_tensor *t, ig_dtype dtype, ig_device dev);
/* dst <- src, broadcasting src; converts dtype, crosses devices. Not recorded. */
ig_status ig_copy_(ig_tensor *dst, const ig_tensor *src);
/* Fills every element of t with v. Not recorded. */
ig_status ig_fill_(ig_tensor *t, double v);

/* ---- ownership ---- */
typedef struct ig_scope ig_scope;

/* Opens a scope; every tensor made until it ends belongs to it. Scopes nest. */
ig_scope *ig_scope_begin(void);
/* Ends s (the innermost scope), releasing what it owns. */
void ig_scope_end(ig_scope *s);
/* Ends s but moves `result` into the enclosing scope (or to the caller when
 * none is open) and returns it. For functions that build their result inside
 * a scope of their own. */
ig_tensor *ig_scope_end_with(ig_scope *s, ig_tensor *result);
/* Takes t out of its scope: the caller now owns it (ig_tensor_free). */
ig_tensor *ig_keep(ig_tensor *t);
/* Releases a kept tensor. NULL is allowed. */
void ig_tensor_free(ig_tensor *t);

/* ---- memory accounting (for leak checks and benchmarks) ---- */
typedef struct ig_memory_stats {
    int64_t live_tensors;    /* tensor handles alive */
    int64_t live_nodes;      /* autograd records alive */
    int64_t live_bytes[IG_DEVICE_KIND_COUNT];   /* bytes handed out to tensors */
    int64_t cached_bytes[IG_DEVICE_KIND_COUNT]; /* held by the caching allocators */
    int64_t system_allocs[IG_DEVICE_KIND_COUNT]; /* malloc/cudaMalloc calls so far */
} ig_memory_stats;

void ig_memory_stats_get(ig_memory_stats *out);
/* Returns cached blocks to the system. */
void ig_memory_release_cached(void);

#ifdef __cplusplus
}
#endif
#endif

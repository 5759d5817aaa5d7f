/* core/dispatch.h: how the core reaches the kernels of a device. A tensor is
 * handed to kernels as an ig_kt; CUDA launchers are called through IG__CUDA,
 * which turns into an IG_ERR_UNSUPPORTED status in a build without CUDA. */
#ifndef IGNIS_CORE_DISPATCH_H
#define IGNIS_CORE_DISPATCH_H

#include "core/impl.h"
#include "kernels/cpu/cpu.h"
#include "kernels/kernels.h"
#ifdef IG_HAVE_CUDA
#include "kernels/cuda/cuda.h"
#define IG__CUDA(name, ...) ig_cuda_##name(__VA_ARGS__)
#else
static inline void ig__unused(int dummy, ...) { (void)dummy; }
#define IG__CUDA(name, ...) \
    (ig__unused(0, __VA_ARGS__), \
     ig__error(IG_ERR_UNSUPPORTED, "%s: this build of ignis has no CUDA", #name))
#endif

static inline ig_kt ig__kt(const ig_tensor *t) {
    ig_kt k;
    k.data = ig__ptr(t);
    k.dtype = t->dtype;
    k.ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) {
        k.shape[d] = t->shape[d];
        k.strides[d] = t->strides[d];
    }
    return k;
}

/* The kernel view of t with strides broadcast to out's shape. */
static inline ig_kt ig__kt_bcast(const ig_tensor *t, int ndim, const int64_t *shape) {
    ig_kt k;
    k.data = ig__ptr(t);
    k.dtype = t->dtype;
    k.ndim = ndim;
    for (int d = 0; d < ndim; d++) k.shape[d] = shape[d];
    ig__broadcast_strides(t, ndim, shape, k.strides);
    return k;
}

#endif

/* core/cuda_runtime.c: the CUDA runtime of ignis: device count, the current
 * device and stream of each thread, the caching allocator of device memory,
 * and copies between host and device.
 *
 * Streams. Each thread has, per device, a current stream: its own
 * non-blocking stream (made on first use) unless ig_cuda_stream_set_current
 * names another. Launchers and copies enqueue there, so the work of a thread
 * runs in program order.
 *
 * Allocator. Requests round up to the size classes of core/size_class.h; a
 * freed block waits in its class's free list, tagged with the stream that was
 * current where it was freed, and serves a later request of that class on that
 * stream only: the kernels still queued on the block come first in stream
 * order, so freeing memory that queued kernels use is safe. Blocks of a
 * destroyed stream are untagged (idle: any stream may take them) after the
 * stream is synchronized. A steady training step therefore makes no cudaMalloc
 * and gets the same addresses back. When cudaMalloc runs out, the idle cache
 * of the device is returned (cudaFree synchronizes the device) and the request
 * tried once more. Streams of a thread that exits are not destroyed; blocks
 * tagged with them wait until ig_memory_release_cached.
 *
 * ig__cuda_alloc and ig__cuda_memcpy make their device current on the calling
 * thread, so the kernels an op launches next go to the device of its output. */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <string.h>

#include "core/impl.h"
#include "core/size_class.h"
#include "ignis/cuda.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda.h"

#define MAX_DEVICES 16

/* ---- devices ---- */

static pthread_once_t count_once = PTHREAD_ONCE_INIT;
static int n_devices;

static void count_devices(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver or no GPU: zero devices */
        n = 0;
    }
    n_devices = n < MAX_DEVICES ? n : MAX_DEVICES;
}

int ig_cuda_device_count(void) {
    pthread_once(&count_once, count_devices);
    return n_devices;
}

static ig_status check_device(int device) {
    if (device >= 0 && device < ig_cuda_device_count()) return IG_OK;
    return ig__error(IG_ERR_NO_DEVICE, "cuda:%d: no such device (%d CUDA devices)", device,
                     ig_cuda_device_count());
}

ig_status ig_cuda_set_device(int device) {
    ig_status st = check_device(device);
    if (st != IG_OK) return st;
    int cur;
    IG__TRY(cudaGetDevice(&cur));
    if (cur != device) IG__TRY(cudaSetDevice(device));
    return IG_OK;
}

/* Makes `device` current for a moment; *prev receives the caller's device,
 * which leave_device restores. */
static ig_status enter_device(int device, int *prev) {
    ig_status st = check_device(device);
    if (st != IG_OK) return st;
    IG__TRY(cudaGetDevice(prev));
    if (*prev != device) IG__TRY(cudaSetDevice(device));
    return IG_OK;
}

static void leave_device(int prev) { (void)IG__CK(cudaSetDevice(prev)); }

/* ---- streams ---- */

struct ig_cuda_stream {
    cudaStream_t s;
    int device;
};

static _Thread_local ig_cuda_stream own[MAX_DEVICES];  /* the thread's own streams */
static _Thread_local ig_cuda_stream *cur[MAX_DEVICES]; /* current; NULL: own */

static ig_status create_stream(int device, cudaStream_t *s) {
    int prev;
    ig_status st = enter_device(device, &prev);
    if (st != IG_OK) return st;
    st = IG__CK(cudaStreamCreateWithFlags(s, cudaStreamNonBlocking));
    leave_device(prev);
    return st;
}

ig_cuda_stream *ig_cuda_stream_current(int device) {
    if (check_device(device) != IG_OK) return NULL;
    if (!cur[device]) {
        if (!own[device].s && create_stream(device, &own[device].s) != IG_OK) return NULL;
        own[device].device = device;
        cur[device] = &own[device];
    }
    return cur[device];
}

void *ig_cuda_current_stream(void) {
    int d;
    if (IG__CK(cudaGetDevice(&d)) != IG_OK) return NULL;
    ig_cuda_stream *s = ig_cuda_stream_current(d);
    return s ? s->s : NULL;
}

ig_cuda_stream *ig_cuda_stream_new(int device) {
    ig_cuda_stream *s = malloc(sizeof *s);
    if (!s) {
        ig__error(IG_ERR_NOMEM, "cuda stream: out of host memory");
        return NULL;
    }
    s->device = device;
    if (create_stream(device, &s->s) != IG_OK) {
        free(s);
        return NULL;
    }
    return s;
}

ig_status ig_cuda_stream_set_current(ig_cuda_stream *s) {
    IG_CHECK(s, "cuda stream_set_current: NULL stream");
    cur[s->device] = s;
    return IG_OK;
}

ig_status ig_cuda_stream_wait(ig_cuda_stream *waiter, ig_cuda_stream *on) {
    IG_CHECK(waiter && on, "cuda stream_wait: NULL stream");
    int prev;
    ig_status st = enter_device(on->device, &prev);
    if (st != IG_OK) return st;
    cudaEvent_t e;
    st = IG__CK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    if (st == IG_OK) {
        st = IG__CK(cudaEventRecord(e, on->s));
        if (st == IG_OK) st = IG__CK(cudaStreamWaitEvent(waiter->s, e, 0));
        ig_status st2 = IG__CK(cudaEventDestroy(e)); /* released once it has fired */
        if (st == IG_OK) st = st2;
    }
    leave_device(prev);
    return st;
}

ig_status ig_cuda_stream_synchronize(ig_cuda_stream *s) {
    IG_CHECK(s, "cuda stream_synchronize: NULL stream");
    IG__TRY(cudaStreamSynchronize(s->s));
    return IG_OK;
}

void *ig_cuda_stream_handle(const ig_cuda_stream *s) { return s ? s->s : NULL; }

ig_status ig_cuda_synchronize(ig_device dev) {
    if (dev.kind == IG_DEV_CPU) return IG_OK;
    int prev;
    ig_status st = enter_device(dev.index, &prev);
    if (st != IG_OK) return st;
    st = IG__CK(cudaDeviceSynchronize());
    leave_device(prev);
    return st;
}

/* ---- the caching allocator ---- */

typedef struct block {
    void *p;
    size_t bytes;        /* the class size */
    cudaStream_t stream; /* where it was freed; NULL: idle, any stream may take it */
} block;

typedef struct free_list {
    block *v;
    int n, cap;
} free_list;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static free_list cache[MAX_DEVICES][IG__SIZE_CLASSES];

static void untag_stream(int device, cudaStream_t s) {
    pthread_mutex_lock(&lock);
    for (int c = 0; c < IG__SIZE_CLASSES; c++) {
        free_list *l = &cache[device][c];
        for (int i = 0; i < l->n; i++)
            if (l->v[i].stream == s) l->v[i].stream = NULL;
    }
    pthread_mutex_unlock(&lock);
}

/* Returns the cached blocks of one device to the driver. */
static void release_device(int device) {
    int prev;
    if (enter_device(device, &prev) != IG_OK) return;
    pthread_mutex_lock(&lock);
    for (int c = 0; c < IG__SIZE_CLASSES; c++) {
        free_list *l = &cache[device][c];
        for (int i = 0; i < l->n; i++) {
            (void)IG__CK(cudaFree(l->v[i].p));
            ig__stat_cached_bytes[IG_DEV_CUDA] -= (int64_t)l->v[i].bytes;
        }
        l->n = 0;
    }
    pthread_mutex_unlock(&lock);
    leave_device(prev);
}

void ig__cuda_release_cached(void) {
    for (int d = 0; d < ig_cuda_device_count(); d++) release_device(d);
}

void *ig__cuda_alloc(size_t nbytes, int device) {
    if (ig_cuda_set_device(device) != IG_OK) return NULL;
    ig_cuda_stream *s = ig_cuda_stream_current(device);
    if (!s) return NULL;
    size_t rounded;
    int c = ig__size_class(nbytes, &rounded);
    void *p = NULL;
    pthread_mutex_lock(&lock);
    free_list *l = &cache[device][c];
    for (int i = l->n - 1; i >= 0; i--) {
        if (l->v[i].stream == s->s || !l->v[i].stream) {
            p = l->v[i].p;
            l->v[i] = l->v[--l->n];
            ig__stat_cached_bytes[IG_DEV_CUDA] -= (int64_t)rounded;
            break;
        }
    }
    if (p) ig__stat_live_bytes[IG_DEV_CUDA] += (int64_t)rounded;
    pthread_mutex_unlock(&lock);
    if (p) return p;

    cudaError_t e = cudaMalloc(&p, rounded);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        release_device(device); /* the cache back to the driver, then once more */
        e = cudaMalloc(&p, rounded);
    }
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        ig__error(IG_ERR_NOMEM, "cuda:%d: out of device memory allocating %zu bytes (%s)",
                  device, nbytes, cudaGetErrorString(e));
        return NULL;
    }
    if (ig__ck(e, __FILE__, __LINE__, "cudaMalloc") != IG_OK) return NULL;
    pthread_mutex_lock(&lock);
    ig__stat_live_bytes[IG_DEV_CUDA] += (int64_t)rounded;
    ig__stat_system_allocs[IG_DEV_CUDA]++;
    pthread_mutex_unlock(&lock);
    return p;
}

void ig__cuda_free(void *p, size_t nbytes, int device) {
    if (!p) return;
    size_t rounded;
    int c = ig__size_class(nbytes, &rounded);
    ig_cuda_stream *s = ig_cuda_stream_current(device);
    pthread_mutex_lock(&lock);
    free_list *l = &cache[device][c];
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        block *v = realloc(l->v, sizeof *v * (size_t)cap);
        if (v) {
            l->v = v;
            l->cap = cap;
        }
    }
    ig__stat_live_bytes[IG_DEV_CUDA] -= (int64_t)rounded;
    if (l->n < l->cap && s) {
        l->v[l->n++] = (block){p, rounded, s->s};
        ig__stat_cached_bytes[IG_DEV_CUDA] += (int64_t)rounded;
        p = NULL;
    }
    pthread_mutex_unlock(&lock);
    if (p) (void)IG__CK(cudaFree(p)); /* no room to cache it: cudaFree waits for its users */
}

void ig_cuda_stream_free(ig_cuda_stream *s) {
    if (!s) return;
    IG_CHECK(s != &own[s->device], "cuda stream_free: a thread's own stream is not to be freed");
    if (cur[s->device] == s) cur[s->device] = NULL;
    (void)IG__CK(cudaStreamSynchronize(s->s));
    untag_stream(s->device, s->s);
    (void)IG__CK(cudaStreamDestroy(s->s));
    free(s);
}

/* ---- copies ---- */

ig_status ig__cuda_memcpy(void *dst, ig_device ddev, const void *src, ig_device sdev,
                          size_t nbytes) {
    if (nbytes == 0) return IG_OK;
    if (ddev.kind == IG_DEV_CPU && sdev.kind == IG_DEV_CPU) {
        memcpy(dst, src, nbytes);
        return IG_OK;
    }
    if (ddev.kind == IG_DEV_CUDA && sdev.kind == IG_DEV_CUDA && ddev.index != sdev.index) {
        /* across devices: after both streams' earlier work, and done on return */
        ig_cuda_stream *ds = ig_cuda_stream_current(ddev.index);
        ig_cuda_stream *ss = ig_cuda_stream_current(sdev.index);
        if (!ds || !ss) return ig_last_status();
        IG__TRY(cudaStreamSynchronize(ds->s));
        IG__TRY(cudaMemcpyPeerAsync(dst, ddev.index, src, sdev.index, nbytes, ss->s));
        IG__TRY(cudaStreamSynchronize(ss->s));
        return IG_OK;
    }
    int dev = ddev.kind == IG_DEV_CUDA ? ddev.index : sdev.index;
    ig_status st = ig_cuda_set_device(dev);
    if (st != IG_OK) return st;
    ig_cuda_stream *s = ig_cuda_stream_current(dev);
    if (!s) return ig_last_status();
    IG__TRY(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, s->s));
    /* a host buffer may be read or freed as soon as we return */
    if (ddev.kind == IG_DEV_CPU || sdev.kind == IG_DEV_CPU) IG__TRY(cudaStreamSynchronize(s->s));
    return IG_OK;
}

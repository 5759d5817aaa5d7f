/* core/cuda_none.c: the CUDA entry points of a build without CUDA: no device,
 * no streams, and every request for device memory fails with a clear status. */
#include "core/impl.h"
#include "ignis/cuda.h"

int ig_cuda_device_count(void) { return 0; }

static ig_status no_cuda(void) {
    return ig__error(IG_ERR_NO_DEVICE, "this build of ignis has no CUDA");
}

void *ig__cuda_alloc(size_t nbytes, int device) {
    (void)nbytes;
    ig__error(IG_ERR_NO_DEVICE, "cuda:%d: this build of ignis has no CUDA", device);
    return NULL;
}

void ig__cuda_free(void *p, size_t nbytes, int device) { (void)p, (void)nbytes, (void)device; }
void ig__cuda_release_cached(void) {}

ig_status ig__cuda_memcpy(void *dst, ig_device ddev, const void *src, ig_device sdev,
                          size_t nbytes) {
    (void)dst, (void)ddev, (void)src, (void)sdev, (void)nbytes;
    return no_cuda();
}

ig_cuda_stream *ig_cuda_stream_new(int device) {
    (void)device;
    no_cuda();
    return NULL;
}
ig_cuda_stream *ig_cuda_stream_current(int device) { return ig_cuda_stream_new(device); }
void ig_cuda_stream_free(ig_cuda_stream *s) { (void)s; }
ig_status ig_cuda_stream_set_current(ig_cuda_stream *s) { (void)s; return no_cuda(); }
ig_status ig_cuda_stream_wait(ig_cuda_stream *waiter, ig_cuda_stream *on) {
    (void)waiter, (void)on;
    return no_cuda();
}
ig_status ig_cuda_stream_synchronize(ig_cuda_stream *s) { (void)s; return no_cuda(); }
void *ig_cuda_stream_handle(const ig_cuda_stream *s) { (void)s; return NULL; }
ig_status ig_cuda_synchronize(ig_device dev) { return dev.kind == IG_DEV_CPU ? IG_OK : no_cuda(); }

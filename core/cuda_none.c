/* core/cuda_none.c: the CUDA entry points of a build without CUDA: no device,
 * and every request for device memory fails with a clear status. */
#include "core/impl.h"

int ig_cuda_device_count(void) { return 0; }

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
    return ig__error(IG_ERR_NO_DEVICE, "this build of ignis has no CUDA");
}

/* core/storage.c: refcounted blocks of device or host memory that tensors
 * view. Memory comes from the device's caching allocator. */
#include "core/impl.h"
#include "core/pool.h"

static _Thread_local ig__pool pool = IG__POOL_INIT(ig__storage);

void ig__storage_pool_drain(void) { ig__pool_drain(&pool); }

ig__storage *ig__storage_new(size_t nbytes, ig_device dev) {
    ig__storage *s = ig__pool_get(&pool);
    if (!s) {
        ig__error(IG_ERR_NOMEM, "out of host memory");
        return NULL;
    }
    size_t n = nbytes ? nbytes : 1;
    s->data = dev.kind == IG_DEV_CPU ? ig__cpu_alloc(n) : ig__cuda_alloc(n, dev.index);
    if (!s->data) {
        ig__pool_put(&pool, s);
        return NULL;
    }
    s->nbytes = nbytes;
    s->device = dev;
    s->refcount = 1;
    s->borrowed = false;
    return s;
}

void ig__storage_retain(ig__storage *s) { s->refcount++; }

void ig__storage_release(ig__storage *s) {
    if (!s || --s->refcount > 0) return;
    if (!s->borrowed) {
        size_t n = s->nbytes ? s->nbytes : 1;
        if (s->device.kind == IG_DEV_CPU) ig__cpu_free(s->data, n);
        else ig__cuda_free(s->data, n, s->device.index);
    }
    ig__pool_put(&pool, s);
}

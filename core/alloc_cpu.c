/* core/alloc_cpu.c: the CPU caching allocator. Freed blocks wait in a free list
 * per size class and serve the next request of that class, so the steady state
 * of a training loop makes no malloc. Blocks are 64-byte aligned. Thread safe
 * (a background checkpoint writer may allocate). */
#include <pthread.h>
#include <stdlib.h>

#include "core/impl.h"
#include "core/size_class.h"

int64_t ig__stat_live_bytes[IG_DEVICE_KIND_COUNT];
int64_t ig__stat_cached_bytes[IG_DEVICE_KIND_COUNT];
int64_t ig__stat_system_allocs[IG_DEVICE_KIND_COUNT];

typedef struct block {
    struct block *next;
} block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static block *free_lists[IG__SIZE_CLASSES];

void *ig__cpu_alloc(size_t nbytes) {
    size_t rounded;
    int c = ig__size_class(nbytes, &rounded);
    pthread_mutex_lock(&lock);
    block *b = free_lists[c];
    if (b) {
        free_lists[c] = b->next;
        ig__stat_cached_bytes[IG_DEV_CPU] -= (int64_t)rounded;
    }
    ig__stat_live_bytes[IG_DEV_CPU] += (int64_t)rounded;
    pthread_mutex_unlock(&lock);
    if (b) return b;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        pthread_mutex_lock(&lock);
        ig__stat_live_bytes[IG_DEV_CPU] -= (int64_t)rounded;
        pthread_mutex_unlock(&lock);
        ig__error(IG_ERR_NOMEM, "out of host memory allocating %zu bytes", nbytes);
        return NULL;
    }
    __atomic_add_fetch(&ig__stat_system_allocs[IG_DEV_CPU], 1, __ATOMIC_RELAXED);
    return p;
}

void ig__cpu_free(void *p, size_t nbytes) {
    if (!p) return;
    size_t rounded;
    int c = ig__size_class(nbytes, &rounded);
    pthread_mutex_lock(&lock);
    block *b = p;
    b->next = free_lists[c];
    free_lists[c] = b;
    ig__stat_live_bytes[IG_DEV_CPU] -= (int64_t)rounded;
    ig__stat_cached_bytes[IG_DEV_CPU] += (int64_t)rounded;
    pthread_mutex_unlock(&lock);
}

void ig__cpu_release_cached(void) {
    pthread_mutex_lock(&lock);
    for (int c = 0; c < IG__SIZE_CLASSES; c++) {
        while (free_lists[c]) {
            block *b = free_lists[c];
            free_lists[c] = b->next;
            free(b);
        }
    }
    ig__stat_cached_bytes[IG_DEV_CPU] = 0;
    pthread_mutex_unlock(&lock);
}

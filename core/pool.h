/* core/pool.h: per-thread free lists for the engine's small fixed-size objects
 * (tensor handles, storages, autograd records), so that recording an op costs
 * no malloc in steady state. An object freed on another thread joins that
 * thread's list; nothing is lost. */
#ifndef IGNIS_CORE_POOL_H
#define IGNIS_CORE_POOL_H

#include <stdlib.h>

typedef struct ig__pool {
    void *head;
    size_t size;
} ig__pool;

#define IG__POOL_INIT(type) {NULL, sizeof(type) > sizeof(void *) ? sizeof(type) : sizeof(void *)}

static inline void *ig__pool_get(ig__pool *p) {
    void *x = p->head;
    if (x) {
        p->head = *(void **)x;
        return x;
    }
    return malloc(p->size);
}

static inline void ig__pool_put(ig__pool *p, void *x) {
    *(void **)x = p->head;
    p->head = x;
}

static inline void ig__pool_drain(ig__pool *p) {
    while (p->head) {
        void *x = p->head;
        p->head = *(void **)x;
        free(x);
    }
}

#endif

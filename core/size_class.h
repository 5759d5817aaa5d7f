/* core/size_class.h: the size classes of the caching allocators (CPU and
 * CUDA). A request rounds up to the next of four steps per power of two, so a
 * block is at most 25% larger than asked and a repeating training step asks
 * for, and gets back, the same blocks. */
#ifndef IGNIS_CORE_SIZE_CLASS_H
#define IGNIS_CORE_SIZE_CLASS_H

#include <stddef.h>

#define IG__SIZE_CLASSES (64 * 4)

/* Rounds n up to its class size and returns the class index. */
static inline int ig__size_class(size_t n, size_t *rounded) {
    if (n <= 256) {
        *rounded = 256;
        return 0;
    }
    int k = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^k < n <= 2^(k+1) */
    size_t hp = (size_t)1 << k, step = hp / 4;
    size_t sub = (n - hp + step - 1) / step; /* 1..4 */
    *rounded = hp + sub * step;
    return k * 4 + (int)(sub - 1);
}

#endif

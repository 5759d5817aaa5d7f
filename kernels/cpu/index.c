/* kernels/cpu/index.c: the selecting kernels: masked copy (where,
 * masked_fill), gather and its transpose scatter-add (gather, index_select,
 * max and their backwards), and the index range check. Copies move elements
 * by size, so they serve every dtype; scatter-add is f32/f64.
 *
 * Gather and scatter walk the shape of the small operand (gather's out,
 * scatter's src) together with the index and the big operand (gather's a,
 * scatter's out) whose stride along dim is zeroed: the index value, times
 * that stride, supplies the position along dim. */
#include <string.h>

#include "kernels/cpu/cpu_index.h"
#include "kernels/cpu/iter.h"

/* The merged walk of a kernel: rows of `inner` elements, cut into `tasks`
 * (kernels/cpu/iter.h); st[k] = operand k's stride along the inner loop. */
typedef struct walk {
    ig_iter it;
    int64_t rows, inner, tasks, st[3];
    bool big; /* worth the OpenMP threads */
} walk;

static void walk_init(walk *w, const ig_kt *shape_of, int nops, const int64_t *const *strides) {
    ig_iter_init(&w->it, shape_of->ndim, shape_of->shape, nops, strides);
    int last = w->it.ndim - 1;
    w->rows = ig_iter_rows(&w->it);
    w->inner = w->it.shape[last];
    w->tasks = ig_iter_tasks(&w->it);
    w->big = w->tasks > 1 && w->rows * w->inner > IG_PARALLEL_MIN;
    for (int k = 0; k < nops; k++) w->st[k] = w->it.strides[k][last];
}

/* small, index, and big with its dim stride zeroed, over small's shape */
static void along_dim(walk *w, const ig_kt *small, const ig_kt *index, const ig_kt *big, int dim) {
    int64_t bs[IG_MAX_DIMS];
    memcpy(bs, big->strides, sizeof bs);
    bs[dim] = 0;
    const int64_t *st[3] = {small->strides, index->strides, bs};
    walk_init(w, small, 3, st);
}

#define MASKED_RUN(T)                                                          \
    for (int64_t i = 0; i < n; i++)                                            \
        if (m[i * w.st[1]]) ((T *)o)[i * w.st[0]] = ((const T *)s)[i * w.st[2]];

void ig_cpu_masked_copy(const ig_kt *out, const ig_kt *mask, const ig_kt *src) {
    const int64_t *st[3] = {out->strides, mask->strides, src->strides};
    walk w;
    walk_init(&w, out, 3, st);
    int64_t esz = (int64_t)ig_dtype_size(out->dtype);
    IG_PARALLEL_FOR(t, w.tasks, w.big,
        int64_t off[3];
        int64_t n = ig_iter_task(&w.it, t, off);
        char *o = out->data + off[0] * esz;
        const uint8_t *m = (const uint8_t *)mask->data + off[1];
        const char *s = src->data + off[2] * esz;
        switch (esz) {
        case 8: MASKED_RUN(uint64_t) break;
        case 4: MASKED_RUN(uint32_t) break;
        case 2: MASKED_RUN(uint16_t) break;
        default: MASKED_RUN(uint8_t) break;
        });
}

int64_t ig_cpu_index_find_bad(const ig_kt *index, int64_t size) {
    const int64_t *st[1] = {index->strides};
    walk w;
    walk_init(&w, index, 1, st);
    for (int64_t r = 0; r < w.rows; r++) {
        int64_t off[1];
        ig_iter_row_offsets(&w.it, r, off);
        const int64_t *ix = (const int64_t *)index->data + off[0];
        for (int64_t i = 0; i < w.inner; i++)
            if (ix[i * w.st[0]] < 0 || ix[i * w.st[0]] >= size) return r * w.inner + i;
    }
    return -1;
}

#define GATHER_RUN(T)                                                          \
    for (int64_t i = 0; i < n; i++)                                            \
        ((T *)o)[i * w.st[0]] = ((const T *)b)[i * w.st[2] + ix[i * w.st[1]] * step];

void ig_cpu_gather(const ig_kt *out, const ig_kt *a, const ig_kt *index, int dim) {
    walk w;
    along_dim(&w, out, index, a, dim);
    int64_t esz = (int64_t)ig_dtype_size(out->dtype), step = a->strides[dim];
    IG_PARALLEL_FOR(t, w.tasks, w.big,
        int64_t off[3];
        int64_t n = ig_iter_task(&w.it, t, off);
        char *o = out->data + off[0] * esz;
        const int64_t *ix = (const int64_t *)index->data + off[1];
        const char *b = a->data + off[2] * esz;
        switch (esz) {
        case 8: GATHER_RUN(uint64_t) break;
        case 4: GATHER_RUN(uint32_t) break;
        case 2: GATHER_RUN(uint16_t) break;
        default: GATHER_RUN(uint8_t) break;
        });
}

/* serial: two rows may hit the same element of out */
#define SCATTER_ADD(T)                                                         \
    for (int64_t r = 0; r < w.rows; r++) {                                     \
        int64_t off[3];                                                        \
        ig_iter_row_offsets(&w.it, r, off);                                    \
        const T *s = (const T *)src->data + off[0];                            \
        const int64_t *ix = (const int64_t *)index->data + off[1];             \
        T *b = (T *)out->data + off[2];                                        \
        for (int64_t i = 0; i < w.inner; i++)                                  \
            b[i * w.st[2] + ix[i * w.st[1]] * step] += s[i * w.st[0]];         \
    }

void ig_cpu_scatter_add(const ig_kt *out, const ig_kt *src, const ig_kt *index, int dim) {
    walk w;
    along_dim(&w, src, index, out, dim);
    int64_t step = out->strides[dim];
    if (out->dtype == IG_F32) SCATTER_ADD(float)
    else SCATTER_ADD(double)
}

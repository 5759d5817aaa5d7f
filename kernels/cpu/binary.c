/* kernels/cpu/binary.c: out = a OP b with broadcasting, the CPU reference for
 * every binary elementwise op. Large outputs split into tasks (chunks of
 * rows) across OpenMP threads; small ones run serially. */
#include <math.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/iter.h"

#define APPLY(T, OP, EXPR)                                                    \
    case OP:                                                                  \
        for (int64_t i = 0; i < n; i++) {                                     \
            T x = pa[i * sa], y = pb[i * sb];                                 \
            po[i * so] = (T)(EXPR);                                           \
        }                                                                     \
        break;

#define BINARY_LOOP(T)                                                        \
    IG_PARALLEL_FOR(t, tasks, tasks > 1 && out_n > IG_PARALLEL_MIN,           \
        int64_t off[3];                                                       \
        int64_t n = ig_iter_task(&it, t, off);                                \
        T *po = (T *)out->data + off[0];                                      \
        const T *pa = (const T *)a->data + off[1];                            \
        const T *pb = (const T *)b->data + off[2];                            \
        switch (op) {                                                         \
            APPLY(T, IG_BIN_ADD, x + y)                                       \
            APPLY(T, IG_BIN_SUB, x - y)                                       \
            APPLY(T, IG_BIN_MUL, x * y)                                       \
            APPLY(T, IG_BIN_DIV, x / y)                                       \
            APPLY(T, IG_BIN_POW, pow((double)x, (double)y))                   \
            APPLY(T, IG_BIN_MAX, x > y ? x : y)                               \
            APPLY(T, IG_BIN_MIN, x < y ? x : y)                               \
            APPLY(T, IG_BIN_EQ, x == y)                                       \
            APPLY(T, IG_BIN_GT, x > y)                                        \
            APPLY(T, IG_BIN_LT, x < y)                                        \
        default: break;                                                       \
        })

void ig_cpu_binary(ig_binop op, const ig_kt *out, const ig_kt *a, const ig_kt *b) {
    const int64_t *st[3] = {out->strides, a->strides, b->strides};
    ig_iter it;
    ig_iter_init(&it, out->ndim, out->shape, 3, st);
    int64_t tasks = ig_iter_tasks(&it), out_n = ig_iter_rows(&it) * it.shape[it.ndim - 1];
    int64_t so = it.strides[0][it.ndim - 1], sa = it.strides[1][it.ndim - 1],
            sb = it.strides[2][it.ndim - 1];
    switch (out->dtype) {
    case IG_F32: BINARY_LOOP(float); break;
    case IG_F64: BINARY_LOOP(double); break;
    case IG_I32: BINARY_LOOP(int32_t); break;
    case IG_I64: BINARY_LOOP(int64_t); break;
    case IG_U8: BINARY_LOOP(uint8_t); break;
    default: break;
    }
}

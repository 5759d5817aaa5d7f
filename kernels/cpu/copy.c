/* kernels/cpu/copy.c: strided copies with dtype conversion, and fills. The
 * same-dtype contiguous case is a memcpy; everything else walks the merged
 * iteration of kernels/cpu/iter.h. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/iter.h"

static inline double load(const char *p, ig_dtype t) {
    switch (t) {
    case IG_F32: return *(const float *)p;
    case IG_F64: return *(const double *)p;
    case IG_BF16: return ig_bf16_to_f32(*(const uint16_t *)p);
    case IG_F16: return ig_f16_to_f32(*(const uint16_t *)p);
    case IG_I32: return *(const int32_t *)p;
    case IG_I64: return (double)*(const int64_t *)p;
    case IG_U8: return *(const uint8_t *)p;
    case IG_U16: return *(const uint16_t *)p;
    default: return 0;
    }
}

static inline void store(char *p, ig_dtype t, double v) {
    switch (t) {
    case IG_F32: *(float *)p = (float)v; break;
    case IG_F64: *(double *)p = v; break;
    case IG_BF16: *(uint16_t *)p = ig_f32_to_bf16((float)v); break;
    case IG_F16: *(uint16_t *)p = ig_f32_to_f16((float)v); break;
    case IG_I32: *(int32_t *)p = (int32_t)v; break;
    case IG_I64: *(int64_t *)p = (int64_t)v; break;
    case IG_U8: *(uint8_t *)p = (uint8_t)v; break;
    case IG_U16: *(uint16_t *)p = (uint16_t)v; break;
    default: break;
    }
}

static bool is_int(ig_dtype t) { return t == IG_I32 || t == IG_I64 || t == IG_U8 || t == IG_U16; }

#define COPY_LOOP(T)                                                          \
    for (int64_t r = 0; r < rows; r++) {                                      \
        int64_t off[2];                                                       \
        ig_iter_row_offsets(&it, r, off);                                     \
        T *d = (T *)dst->data + off[0];                                       \
        const T *s = (const T *)src->data + off[1];                           \
        for (int64_t i = 0; i < inner; i++) d[i * ds] = s[i * ss];            \
    }

void ig_cpu_copy(const ig_kt *dst, const ig_kt *src) {
    const int64_t *st[2] = {dst->strides, src->strides};
    ig_iter it;
    ig_iter_init(&it, dst->ndim, dst->shape, 2, st);
    int64_t rows = ig_iter_rows(&it), inner = it.shape[it.ndim - 1];
    int64_t ds = it.strides[0][it.ndim - 1], ss = it.strides[1][it.ndim - 1];
    size_t esz = ig_dtype_size(dst->dtype);
    if (dst->dtype == src->dtype) {
        if (rows == 1 && ds == 1 && ss == 1) {
            memcpy(dst->data, src->data, (size_t)inner * esz);
            return;
        }
        switch (esz) {
        case 8: COPY_LOOP(uint64_t); return;
        case 4: COPY_LOOP(uint32_t); return;
        case 2: COPY_LOOP(uint16_t); return;
        default: COPY_LOOP(uint8_t); return;
        }
    }
    size_t ssz = ig_dtype_size(src->dtype);
    bool ints = is_int(dst->dtype) && is_int(src->dtype);
    for (int64_t r = 0; r < rows; r++) {
        int64_t off[2];
        ig_iter_row_offsets(&it, r, off);
        char *d = dst->data + off[0] * (int64_t)esz;
        const char *s = src->data + off[1] * (int64_t)ssz;
        if (ints && dst->dtype == IG_I64 && src->dtype == IG_I32) {
            for (int64_t i = 0; i < inner; i++)
                ((int64_t *)d)[i * ds] = ((const int32_t *)s)[i * ss];
            continue;
        }
        for (int64_t i = 0; i < inner; i++)
            store(d + i * ds * (int64_t)esz, dst->dtype, load(s + i * ss * (int64_t)ssz, src->dtype));
    }
}

void ig_cpu_fill(const ig_kt *dst, double v) {
    char one[8];
    store(one, dst->dtype, v);
    ig_kt src = *dst;
    src.data = one;
    for (int d = 0; d < src.ndim; d++) src.strides[d] = 0;
    ig_cpu_copy(dst, &src);
}

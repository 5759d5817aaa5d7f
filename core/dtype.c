/* core/dtype.c: element sizes and names, and the scalar bf16/f16 conversions
 * (round to nearest even; NaN stays NaN). */
#include <math.h>
#include <string.h>

#include "core/impl.h"

static const size_t sizes[IG_DTYPE_COUNT] = {4, 8, 2, 2, 4, 8, 1, 2};
static const char *names[IG_DTYPE_COUNT] = {"f32", "f64", "bf16", "f16",
                                            "i32", "i64", "u8",   "u16"};

size_t ig_dtype_size(ig_dtype t) {
    IG_CHECK((unsigned)t < IG_DTYPE_COUNT, "bad dtype %d", (int)t);
    return sizes[t];
}

const char *ig_dtype_name(ig_dtype t) {
    return (unsigned)t < IG_DTYPE_COUNT ? names[t] : "?";
}

bool ig_dtype_is_float(ig_dtype t) {
    return t == IG_F32 || t == IG_F64 || t == IG_BF16 || t == IG_F16;
}

uint16_t ig_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float ig_bf16_to_f32(uint16_t x) {
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t ig_f32_to_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t ax = u & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u); /* NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow to inf */
    if (ax < 0x38800000u) {
        /* subnormal or zero in f16: scale by 2^24 and round to nearest even */
        float a;
        memcpy(&a, &ax, 4);
        float scaled = a * 16777216.0f; /* exact */
        uint32_t m = (uint32_t)nearbyintf(scaled); /* ties to even in the default mode */
        return (uint16_t)(sign | m);
    }
    uint32_t exp = ((ax >> 23) - 127 + 15) << 10;
    uint32_t mant = ax & 0x7fffffu;
    uint32_t h = exp | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++; /* may carry into exp: correct */
    return (uint16_t)(sign | h);
}

float ig_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, u;
    if (exp == 0) {
        float f = ldexpf((float)mant, -24);
        return sign ? -f : f;
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

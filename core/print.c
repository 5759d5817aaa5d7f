/* core/print.c: a readable text form of a tensor: a header line with shape,
 * dtype and device, then the values nested by dimension, long dimensions
 * summarized as "first 3, ..., last 3" (as PyTorch does past 1000 elements). */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "core/impl.h"

typedef struct out {
    char *buf;
    size_t cap, len;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[128];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, tmp, (size_t)n < room ? (size_t)n : room);
    }
    o->len += (size_t)n;
}

static void value(out *o, const double *v, ig_dtype t) {
    if (ig_dtype_is_float(t)) put(o, "%.4g", *v);
    else put(o, "%" PRId64, (int64_t)*v);
}

static void rec(out *o, const ig_tensor *t, const double *vals, int d, int64_t base, bool summarize) {
    if (d == t->ndim) {
        value(o, vals + base, t->dtype);
        return;
    }
    int64_t n = t->shape[d], inner = 1;
    for (int k = d + 1; k < t->ndim; k++) inner *= t->shape[k];
    put(o, "[");
    for (int64_t i = 0; i < n; i++) {
        if (summarize && n > 6 && i == 3) {
            put(o, d == t->ndim - 1 ? "..., " : "...,\n");
            i = n - 3;
        }
        rec(o, t, vals, d + 1, base + i * inner, summarize);
        if (i + 1 < n) put(o, d == t->ndim - 1 ? ", " : ",\n");
    }
    put(o, "]");
}

size_t ig_tensor_format(const ig_tensor *t, char *buf, size_t cap) {
    out o = {buf, cap, 0};
    if (!t) {
        put(&o, "tensor(NULL)");
    } else {
        put(&o, "tensor(shape=[");
        for (int d = 0; d < t->ndim; d++) put(&o, d ? ", %" PRId64 : "%" PRId64, t->shape[d]);
        put(&o, "], dtype=%s, device=%s%s)\n", ig_dtype_name(t->dtype), ig_device_name(t->device),
            t->requires_grad ? ", requires_grad" : "");
        ig_tensor *h = ig_to((ig_tensor *)t, IG_F64, IG_CPU);
        bool prev = ig_grad_set_enabled(false);
        if (h) {
            rec(&o, t, (const double *)ig_tensor_data(h), 0, 0, t->numel > 1000);
            ig__scope_remove(h);
            ig__tensor_release(h);
        } else {
            put(&o, "<%s>", ig_last_error());
        }
        ig_grad_set_enabled(prev);
    }
    if (cap) buf[o.len < cap ? o.len : cap - 1] = 0;
    return o.len;
}

void ig_tensor_print(const ig_tensor *t, FILE *f) {
    size_t n = ig_tensor_format(t, NULL, 0);
    char *b = malloc(n + 1);
    if (!b) return;
    ig_tensor_format(t, b, n + 1);
    fputs(b, f);
    fputc('\n', f);
    free(b);
}

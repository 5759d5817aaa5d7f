/* core/tensor.c: tensor handles (pooled), creation, properties, broadcasting
 * helpers and the operand descriptions used in error messages. */
#include <math.h>
#include <string.h>

#include "core/dispatch.h"
#include "core/impl.h"
#include "core/pool.h"

static _Thread_local ig__pool pool = IG__POOL_INIT(ig_tensor);
static int64_t live_tensors;

void ig__tensor_pool_drain(void) { ig__pool_drain(&pool); }
int64_t ig__live_tensors(void) { return __atomic_load_n(&live_tensors, __ATOMIC_RELAXED); }

ig_tensor *ig__tensor_alloc(void) {
    ig_tensor *t = ig__pool_get(&pool);
    if (!t) {
        ig__error(IG_ERR_NOMEM, "out of host memory");
        return NULL;
    }
    memset(t, 0, offsetof(ig_tensor, shape));
    t->refcount = 1;
    t->scope = NULL;
    t->scope_prev = t->scope_next = NULL;
    t->requires_grad = false;
    t->grad = NULL;
    t->grad_fn = NULL;
    t->out_index = 0;
    t->hooks = NULL;
    t->next_hook_id = 0;
    t->pending = 0;
    t->pass = 0;
    __atomic_add_fetch(&live_tensors, 1, __ATOMIC_RELAXED);
    ig__scope_adopt(t);
    return t;
}

void ig__tensor_retain(ig_tensor *t) { t->refcount++; }

void ig__hooks_free(ig_tensor *t); /* core/autograd.c */

void ig__tensor_release(ig_tensor *t) {
    if (!t || --t->refcount > 0) return;
    ig__storage_release(t->storage);
    if (t->grad) ig__tensor_release(t->grad);
    if (t->grad_fn) ig__node_release(t->grad_fn);
    if (t->hooks) ig__hooks_free(t);
    __atomic_sub_fetch(&live_tensors, 1, __ATOMIC_RELAXED);
    ig__pool_put(&pool, t);
}

int64_t ig__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t n = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = n;
        n *= shape[d];
    }
    return n;
}

static void set_geometry(ig_tensor *t, int ndim, const int64_t *shape, const int64_t *strides) {
    t->ndim = ndim;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->strides[d] = strides[d];
        n *= shape[d];
    }
    t->numel = n;
}

ig_tensor *ig__tensor_new(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev) {
    IG_CHECK(ndim >= 0 && ndim <= IG_MAX_DIMS, "tensor: %d dims (at most %d)", ndim, IG_MAX_DIMS);
    IG_CHECK((unsigned)dtype < IG_DTYPE_COUNT, "tensor: bad dtype %d", (int)dtype);
    int64_t strides[IG_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        IG_CHECK(shape[d] >= 0, "tensor: negative size %lld in dim %d", (long long)shape[d], d);
    int64_t n = ig__contiguous_strides(ndim, shape, strides);
    ig__storage *s = ig__storage_new((size_t)n * ig_dtype_size(dtype), dev);
    if (!s) return NULL;
    ig_tensor *t = ig__tensor_alloc();
    if (!t) {
        ig__storage_release(s);
        return NULL;
    }
    t->storage = s;
    t->offset = 0;
    t->dtype = dtype;
    t->device = dev;
    set_geometry(t, ndim, shape, strides);
    return t;
}

ig_tensor *ig__tensor_alias(const ig_tensor *src, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset) {
    ig_tensor *t = ig__tensor_alloc();
    if (!t) return NULL;
    t->storage = src->storage;
    ig__storage_retain(src->storage);
    t->offset = offset;
    t->dtype = src->dtype;
    t->device = src->device;
    set_geometry(t, ndim, shape, strides);
    return t;
}

/* ---- creation ---- */

ig_tensor *ig_empty(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev) {
    return ig__tensor_new(ndim, shape, dtype, dev);
}

ig_tensor *ig_full(int ndim, const int64_t *shape, double value, ig_dtype dtype, ig_device dev) {
    ig_tensor *t = ig__tensor_new(ndim, shape, dtype, dev);
    if (t && ig_fill_(t, value) != IG_OK) return NULL;
    return t;
}

ig_tensor *ig_zeros(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev) {
    return ig_full(ndim, shape, 0.0, dtype, dev);
}

ig_tensor *ig_ones(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev) {
    return ig_full(ndim, shape, 1.0, dtype, dev);
}

ig_tensor *ig_empty_like(const ig_tensor *t) {
    return t ? ig_empty(t->ndim, t->shape, t->dtype, t->device) : NULL;
}
ig_tensor *ig_zeros_like(const ig_tensor *t) {
    return t ? ig_zeros(t->ndim, t->shape, t->dtype, t->device) : NULL;
}
ig_tensor *ig_ones_like(const ig_tensor *t) {
    return t ? ig_ones(t->ndim, t->shape, t->dtype, t->device) : NULL;
}

ig_tensor *ig_from_data(const void *data, int ndim, const int64_t *shape, ig_dtype dtype,
                        ig_device dev) {
    ig_tensor *t = ig__tensor_new(ndim, shape, dtype, dev);
    if (!t) return NULL;
    size_t nbytes = (size_t)t->numel * ig_dtype_size(dtype);
    if (dev.kind == IG_DEV_CPU) {
        if (nbytes) memcpy(t->storage->data, data, nbytes);
    } else if (ig__cuda_memcpy(t->storage->data, dev, data, IG_CPU, nbytes) != IG_OK) {
        return NULL;
    }
    return t;
}

ig_tensor *ig_arange(double start, double end, double step, ig_dtype dtype, ig_device dev) {
    IG_CHECK(step != 0, "arange: step is 0");
    int64_t n = (int64_t)ceil((end - start) / step);
    if (n < 0) n = 0;
    ig_tensor *h = ig__tensor_new(1, &n, IG_F64, IG_CPU);
    if (!h) return NULL;
    double *p = h->storage->data;
    for (int64_t i = 0; i < n; i++) p[i] = start + (double)i * step;
    return ig_to(h, dtype, dev);
}

/* ---- properties ---- */

int ig_tensor_ndim(const ig_tensor *t) { return t->ndim; }
int64_t ig_tensor_size(const ig_tensor *t, int d) { return t->shape[ig__dim("size", t, d)]; }
const int64_t *ig_tensor_shape(const ig_tensor *t) { return t->shape; }
const int64_t *ig_tensor_strides(const ig_tensor *t) { return t->strides; }
int64_t ig_tensor_numel(const ig_tensor *t) { return t->numel; }
ig_dtype ig_tensor_dtype(const ig_tensor *t) { return t->dtype; }
ig_device ig_tensor_device(const ig_tensor *t) { return t->device; }
void *ig_tensor_data(const ig_tensor *t) { return ig__ptr(t); }

bool ig_tensor_is_contiguous(const ig_tensor *t) {
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->strides[d] != expect) return false;
        expect *= t->shape[d];
    }
    return true;
}

ig_status ig_tensor_to_host(const ig_tensor *t, void *dst) {
    int64_t strides[IG_MAX_DIMS];
    ig__contiguous_strides(t->ndim, t->shape, strides);
    size_t nbytes = (size_t)t->numel * ig_dtype_size(t->dtype);
    if (t->device.kind == IG_DEV_CPU) {
        ig_kt d = ig__kt(t), s = ig__kt(t);
        d.data = dst;
        memcpy(d.strides, strides, sizeof strides);
        if (t->numel) ig_cpu_copy(&d, &s);
        return IG_OK;
    }
    ig_tensor *c = ig_contiguous((ig_tensor *)t);
    if (!c) return ig_last_status();
    ig_status st = ig__cuda_memcpy(dst, IG_CPU, ig__ptr(c), c->device, nbytes);
    if (c != t) ig__tensor_release(ig_keep(c));
    return st;
}

double ig_tensor_item(const ig_tensor *t) {
    IG_CHECK(t->numel == 1, "item: tensor %s has %lld elements, not 1", ig__describe(t),
             (long long)t->numel);
    double v = NAN;
    ig_tensor tmp = *t;
    char buf[8];
    if (ig_tensor_to_host(&tmp, buf) != IG_OK) return NAN;
    ig_kt s = {buf, t->dtype, 0, {0}, {0}}, d = {(char *)&v, IG_F64, 0, {0}, {0}};
    ig_cpu_copy(&d, &s);
    return v;
}

/* ---- broadcasting and checks ---- */

int ig__broadcast_shape(const char *op, const ig_tensor *a, const ig_tensor *b, int64_t *out) {
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int da = a->ndim - n + i, db = b->ndim - n + i;
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        IG_CHECK(sa == sb || sa == 1 || sb == 1,
                 "%s: shapes of %s and %s do not broadcast (dim %d: %lld vs %lld)", op,
                 ig__describe(a), ig__describe(b), i, (long long)sa, (long long)sb);
        out[i] = sa == 1 ? sb : sa;
    }
    return n;
}

void ig__broadcast_strides(const ig_tensor *t, int ndim, const int64_t *shape, int64_t *strides) {
    for (int i = 0; i < ndim; i++) {
        int d = t->ndim - ndim + i;
        strides[i] = (d < 0 || (t->shape[d] == 1 && shape[i] != 1)) ? 0 : t->strides[d];
    }
}

bool ig__same_shape(const ig_tensor *a, const ig_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

const char *ig__describe(const ig_tensor *t) {
    static _Thread_local char ring[8][160];
    static _Thread_local int next;
    char *b = ring[next++ & 7];
    if (!t) return "NULL";
    int n = snprintf(b, 160, "[");
    for (int d = 0; d < t->ndim && n < 120; d++)
        n += snprintf(b + n, 160 - n, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    snprintf(b + n, 160 - n, "] %s %s", ig_dtype_name(t->dtype), ig_device_name(t->device));
    return b;
}

void ig__check_same(const char *op, const ig_tensor *a, const ig_tensor *b) {
    IG_CHECK(a->dtype == b->dtype && ig_device_eq(a->device, b->device),
             "%s: operands differ in dtype or device: %s and %s", op, ig__describe(a),
             ig__describe(b));
}

int ig__dim(const char *op, const ig_tensor *t, int d) {
    int n = t->ndim;
    int r = d < 0 ? d + n : d;
    IG_CHECK(r >= 0 && r < (n ? n : 1), "%s: dim %d out of range for %s", op, d, ig__describe(t));
    return r;
}

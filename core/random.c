/* core/random.c: the counter-based generators. A fill draws numel numbers
 * from (seed, offset) and advances the offset, so a seed and an offset name
 * the same numbers on every device. */
#include "core/dispatch.h"
#include "core/impl.h"

static _Thread_local ig_generator default_gen;

ig_generator *ig_default_generator(void) { return &default_gen; }

void ig_manual_seed(uint64_t seed) {
    default_gen.seed = seed;
    default_gen.offset = 0;
}

static ig_tensor *fill_random(ig_tensor *t, double a, double b, ig_generator *gen, bool normal) {
    if (!t) return NULL;
    IG_CHECK(ig_dtype_is_float(t->dtype), "random fill: %s is not floating", ig__describe(t));
    if (!gen) gen = &default_gen;
    uint64_t off = gen->offset;
    gen->offset += (uint64_t)t->numel;
    /* draw into a contiguous f32/f64 buffer, then copy into t's geometry */
    ig_dtype wt = t->dtype == IG_F64 ? IG_F64 : IG_F32;
    bool direct = wt == t->dtype && ig_tensor_is_contiguous(t);
    ig_tensor *buf = direct ? t : ig__tensor_new(t->ndim, t->shape, wt, t->device);
    if (!buf) return NULL;
    ig_kt k = ig__kt(buf);
    ig_status st = IG_OK;
    if (t->device.kind == IG_DEV_CPU) {
        if (normal) ig_cpu_randn(&k, gen->seed, off, a, b);
        else ig_cpu_rand(&k, gen->seed, off, a, b);
    } else {
        st = normal ? IG__CUDA(randn, &k, gen->seed, off, a, b)
                    : IG__CUDA(rand, &k, gen->seed, off, a, b);
    }
    if (st == IG_OK && !direct) st = ig__copy_strided(t, buf);
    if (!direct) ig__tensor_release(ig_keep(buf));
    return st == IG_OK ? t : NULL;
}

ig_tensor *ig_normal_(ig_tensor *t, double mean, double std, ig_generator *gen) {
    return fill_random(t, mean, std, gen, true);
}

ig_tensor *ig_uniform_(ig_tensor *t, double lo, double hi, ig_generator *gen) {
    return fill_random(t, lo, hi, gen, false);
}

ig_tensor *ig_randn(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev,
                    ig_generator *gen) {
    return fill_random(ig__tensor_new(ndim, shape, dtype, dev), 0.0, 1.0, gen, true);
}

ig_tensor *ig_rand(int ndim, const int64_t *shape, ig_dtype dtype, ig_device dev,
                   ig_generator *gen) {
    return fill_random(ig__tensor_new(ndim, shape, dtype, dev), 0.0, 1.0, gen, false);
}

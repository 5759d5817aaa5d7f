/* sharding/ddp.c: distributed data parallel (include/ignis/ddp.h).
 *
 * Layout. The parameters that require grad, walked in reverse registration
 * order, fill buckets (one dtype each, closed once they reach bucket_bytes);
 * buckets are numbered in the order they were opened, so bucket 0 holds the
 * last parameters, whose gradients backward makes first. A bucket is one
 * contiguous kept 1-D tensor on the parameters' device; each parameter's
 * .grad is a view of its slice (a slot), so backward accumulates straight
 * into bucket memory.
 *
 * A synchronized step. A slot's grad-ready hook marks it ready; a bucket whose
 * slots are all ready is ready; buckets are issued (async all-reduce SUM)
 * strictly in index order, so every rank issues the same collectives in the
 * same order whatever order its hooks fire in. ig_ddp_finish issues the rest
 * (slices of parameters without a gradient this step go as they are: zero
 * after an in-place zero_grad), waits in order and divides by the world size.
 *
 * Invariants: between steps no work is in flight, no slot is ready and every
 * bucket's pending count is its slot count; during a step buckets
 * [0, next_issue) are issued. A parameter whose .grad is found not to be its
 * slot's view (set to none, or replaced) is re-attached: its gradient, or
 * zero, is copied into the slice and .grad set back to the view. */
#include <string.h>
#include <time.h>

#include "core/ops_impl.h"
#include "ignis/ddp.h"

typedef struct slot {
    ig_ddp *d;
    int param;       /* index in the list */
    int bucket;
    ig_tensor *view; /* kept: the parameter's slice of its bucket, shaped as it */
    int hook;
    bool ready;      /* its gradient is final in this synchronized step */
} slot;

typedef struct bucket {
    ig_tensor *buf;   /* kept, 1-D, contiguous */
    ig_tensor *world; /* kept, one element: the group size (the divisor) */
    int first, n;     /* its slots: slots[first, first + n) */
    int pending;      /* slots not ready yet this step */
    ig_work *work;    /* in flight, or NULL */
} bucket;

struct ig_ddp {
    const ig_param_list *params;
    ig_pg *pg;
    ig_ddp_opts opts;
    bool sync;
    bool active; /* a hook counted in this step */
    int n_slots, n_buckets, next_issue;
    int next_done; /* with trace: buckets [0, next_done) were seen complete */
    slot *slots;
    bucket *buckets;
    ig_status err; /* the first failure in a hook, reported by finish */
    char err_msg[512];
    ig_ddp_event *cur, *last; /* per bucket: this step's and the last step's */
    int n_last;
    double backward_end;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Keeps the first failure of the step (st != IG_OK; the message is the
 * thread's last error). */
static void fail(ig_ddp *d, ig_status st) {
    if (st == IG_OK || d->err != IG_OK) return;
    d->err = st;
    snprintf(d->err_msg, sizeof d->err_msg, "%s", ig_last_error());
}

/* ---- creation: the ranks agree on the parameters ---- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

/* Digest of what must match across ranks: name, shape, dtype, requires_grad. */
static int64_t param_hash(const ig_param_list *l, int i) {
    const ig_tensor *t = l->tensors[i];
    int meta[3] = {ig_tensor_ndim(t), (int)ig_tensor_dtype(t), ig_tensor_requires_grad(t)};
    uint64_t h = fnv1a(14695981039346656037ull, l->names[i], strlen(l->names[i]) + 1);
    h = fnv1a(h, meta, sizeof meta);
    h = fnv1a(h, ig_tensor_shape(t), sizeof(int64_t) * (size_t)meta[0]);
    return (int64_t)h;
}

/* out[r * n + i] <- rank r's vals[i]. Call inside a scope. */
static ig_status gather_i64(ig_pg *pg, ig_device dev, const int64_t *vals, int64_t n,
                            int64_t *out) {
    int64_t total = n * ig_pg_size(pg);
    ig_tensor *in = ig_from_data(vals, 1, &n, IG_I64, dev);
    ig_tensor *all = ig_empty(1, &total, IG_I64, dev);
    if (!in || !all) return ig_last_status();
    ig_status st = ig_pg_all_gather(pg, all, in, NULL);
    return st != IG_OK ? st : ig_tensor_to_host(all, out);
}

/* IG_ERR_INVALID on every rank (all decide from the same gathered data) when
 * the lists differ, naming the first differing parameter. */
static ig_status check_same(const ig_param_list *l, ig_pg *pg, ig_device dev) {
    int w = ig_pg_size(pg), me = ig_pg_rank(pg);
    int64_t count = l->n, m = l->n;
    int64_t *counts = malloc(sizeof(int64_t) * (size_t)w);
    int64_t *mine = malloc(sizeof(int64_t) * (size_t)(l->n + 1));
    int64_t *all = malloc(sizeof(int64_t) * (size_t)w * (size_t)(l->n + 1));
    ig_status st = counts && mine && all ? IG_OK : ig_set_error(IG_ERR_NOMEM, "ddp: out of host memory");
    if (st == IG_OK) st = gather_i64(pg, dev, &count, 1, counts);
    for (int r = 0; st == IG_OK && r < w; r++) m = counts[r] < m ? counts[r] : m;
    for (int64_t i = 0; i < m; i++) mine[i] = param_hash(l, (int)i);
    if (st == IG_OK && m > 0) st = gather_i64(pg, dev, mine, m, all);
    for (int64_t i = 0; st == IG_OK && i < m; i++) {
        for (int r = 1; r < w; r++) {
            if (all[(int64_t)r * m + i] == all[i]) continue;
            st = ig_set_error(IG_ERR_INVALID,
                              "ddp: the ranks' parameters differ at index %lld: '%s' %s "
                              "(requires_grad %d) on this rank (%d); rank %d differs from rank 0 "
                              "in name, shape, dtype or requires_grad",
                              (long long)i, l->names[i], ig__describe(l->tensors[i]),
                              ig_tensor_requires_grad(l->tensors[i]), me, r);
            break;
        }
    }
    for (int r = 1; st == IG_OK && r < w; r++) {
        if (counts[r] == counts[0]) continue;
        st = ig_set_error(IG_ERR_INVALID,
                          "ddp: rank %d has %lld parameters, rank 0 has %lld (the first %lld "
                          "agree); this rank (%d) has %d%s%s%s",
                          r, (long long)counts[r], (long long)counts[0], (long long)m, me, l->n,
                          l->n > m ? ", the first extra one is '" : "",
                          l->n > m ? l->names[m] : "", l->n > m ? "'" : "");
    }
    free(counts);
    free(mine);
    free(all);
    return st;
}

/* Every parameter takes rank 0's values. Call inside a scope. */
static ig_status broadcast_params(const ig_param_list *l, ig_pg *pg) {
    for (int i = 0; i < l->n; i++) {
        ig_tensor *t = l->tensors[i];
        if (ig_tensor_is_contiguous(t)) {
            ig_status st = ig_pg_broadcast(pg, t, 0, NULL);
            if (st != IG_OK) return st;
        } else {
            ig_tensor *c = ig_clone(ig_detach(t));
            ig_status st = c ? ig_pg_broadcast(pg, c, 0, NULL) : ig_last_status();
            if (st == IG_OK) st = ig_copy_(t, c);
            if (st != IG_OK) return st;
        }
    }
    return IG_OK;
}

/* ---- a step ---- */

/* Points the parameter's .grad back at its slice when it is not. */
static ig_status attach(ig_ddp *d, slot *s) {
    ig_tensor *p = d->params->tensors[s->param], *g = ig_tensor_grad(p);
    if (g == s->view) return IG_OK;
    ig_status st = g ? ig_copy_(s->view, g) : ig_fill_(s->view, 0.0);
    ig_tensor_set_grad(p, s->view);
    return st;
}

/* Issues the ready buckets that follow the issued ones, in index order. */
static void issue_ready(ig_ddp *d) {
    while (d->next_issue < d->n_buckets && d->buckets[d->next_issue].pending == 0) {
        int b = d->next_issue++;
        d->cur[b] = (ig_ddp_event){b, now(), 0.0};
        fail(d, ig_pg_all_reduce(d->pg, d->buckets[b].buf, IG_REDUCE_SUM, &d->buckets[b].work));
    }
}

/* With trace: records when issued all-reduces are first seen complete. */
static void poll_done(ig_ddp *d) {
    while (d->next_done < d->next_issue && (!d->buckets[d->next_done].work ||
                                            ig_work_test(d->buckets[d->next_done].work)))
        d->cur[d->next_done++].done = now();
}

static void on_grad_ready(ig_tensor *leaf, void *user) {
    slot *s = user;
    ig_ddp *d = s->d;
    if (!d->sync) return;
    d->active = true;
    if (s->ready) {
        fail(d, ig_set_error(IG_ERR_STATE,
                             "ddp: parameter '%s' got a second gradient in one synchronized "
                             "step (its all-reduce may have been in flight): call "
                             "ig_ddp_finish after each backward, or ig_ddp_set_sync(false) "
                             "for the micro-batches before the last",
                             d->params->names[s->param]));
        return;
    }
    fail(d, attach(d, s));
    s->ready = true;
    if (--d->buckets[s->bucket].pending == 0) issue_ready(d);
    if (d->opts.trace) poll_done(d);
}

ig_status ig_ddp_finish(ig_ddp *d) {
    if (!d->sync && !d->active) return IG_OK;
    double t_end = now();
    for (int b = d->next_issue; b < d->n_buckets; b++) {
        bucket *k = &d->buckets[b];
        for (int i = k->first; i < k->first + k->n; i++)
            if (!d->slots[i].ready) fail(d, attach(d, &d->slots[i]));
        k->pending = 0;
    }
    issue_ready(d);
    for (int b = 0; b < d->n_buckets; b++) {
        bucket *k = &d->buckets[b];
        if (k->work) fail(d, ig_work_wait(k->work));
        k->work = NULL;
        if (b >= d->next_done) d->cur[b].done = now();
    }
    for (int b = 0; d->err == IG_OK && b < d->n_buckets && ig_pg_size(d->pg) > 1; b++) {
        bucket *k = &d->buckets[b];
        fail(d, ig__binary_apply(IG_BIN_DIV, k->buf, k->buf, k->world));
    }
    for (int i = 0; i < d->n_slots; i++) d->slots[i].ready = false;
    for (int b = 0; b < d->n_buckets; b++) d->buckets[b].pending = d->buckets[b].n;
    d->next_issue = d->next_done = 0;
    d->active = false;
    if (d->opts.trace) {
        memcpy(d->last, d->cur, sizeof(ig_ddp_event) * (size_t)d->n_buckets);
        d->n_last = d->n_buckets;
        d->backward_end = t_end;
    }
    ig_status st = d->err;
    d->err = IG_OK;
    return st == IG_OK ? IG_OK : ig_set_error(st, "%s", d->err_msg);
}

/* ---- the object ---- */

/* Assigns the parameters requiring grad to buckets and makes the buckets, the
 * views and the hooks. */
static ig_status build(ig_ddp *d, ig_device dev) {
    const ig_param_list *l = d->params;
    int n = l->n, open[IG_DTYPE_COUNT];
    for (int t = 0; t < IG_DTYPE_COUNT; t++) open[t] = -1;
    int *bucket_of = malloc(sizeof(int) * (size_t)(n + 1));
    int64_t *offset = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t *numel = calloc((size_t)n + 1, sizeof(int64_t));
    int *filled = calloc((size_t)n + 1, sizeof(int));
    d->slots = calloc((size_t)n + 1, sizeof(slot));
    d->buckets = calloc((size_t)n + 1, sizeof(bucket));
    d->cur = calloc((size_t)n + 1, sizeof(ig_ddp_event));
    d->last = calloc((size_t)n + 1, sizeof(ig_ddp_event));
    ig_status st = IG_OK;
    if (!bucket_of || !offset || !numel || !filled || !d->slots || !d->buckets || !d->cur || !d->last)
        st = ig_set_error(IG_ERR_NOMEM, "ddp: out of host memory");
    for (int i = n - 1; st == IG_OK && i >= 0; i--) {
        ig_tensor *t = l->tensors[i];
        bucket_of[i] = -1;
        if (!ig_tensor_requires_grad(t)) continue;
        ig_dtype dt = ig_tensor_dtype(t);
        if (open[dt] < 0) open[dt] = d->n_buckets++;
        int b = bucket_of[i] = open[dt];
        offset[i] = numel[b];
        numel[b] += ig_tensor_numel(t);
        d->buckets[b].n++;
        d->n_slots++;
        if ((size_t)numel[b] * ig_dtype_size(dt) >= d->opts.bucket_bytes) open[dt] = -1;
    }
    for (int b = 1; st == IG_OK && b < d->n_buckets; b++)
        d->buckets[b].first = d->buckets[b - 1].first + d->buckets[b - 1].n;
    for (int i = n - 1; st == IG_OK && i >= 0; i--) {
        int b = bucket_of[i];
        if (b < 0) continue;
        bucket *k = &d->buckets[b];
        ig_tensor *t = l->tensors[i];
        if (!k->buf) {
            k->buf = ig_zeros(1, &numel[b], ig_tensor_dtype(t), dev);
            k->world = ig_full(IG_SHAPE(1), ig_pg_size(d->pg), ig_tensor_dtype(t), dev);
            if (k->buf) ig_keep(k->buf);
            if (k->world) ig_keep(k->world);
            if (!k->buf || !k->world) {
                st = ig_last_status();
                break;
            }
            k->pending = k->n;
        }
        int64_t strides[IG_MAX_DIMS];
        ig__contiguous_strides(t->ndim, t->shape, strides);
        slot *s = &d->slots[k->first + filled[b]++];
        *s = (slot){d, i, b, ig_keep(ig__tensor_alias(k->buf, t->ndim, t->shape, strides, offset[i])),
                    0, false};
        ig_tensor_set_grad(t, s->view);
        s->hook = ig_tensor_add_grad_ready_hook(t, on_grad_ready, s);
    }
    free(bucket_of);
    free(offset);
    free(numel);
    free(filled);
    return st;
}

ig_status ig_ddp_new(const ig_param_list *params, ig_pg *pg, const ig_ddp_opts *opts,
                     ig_ddp **out) {
    *out = NULL;
    ig_ddp_opts o = IG_DDP_OPTS_INIT;
    if (opts) o = *opts;
    ig_device dev = params->n > 0 ? ig_tensor_device(params->tensors[0]) : IG_CPU;
    for (int i = 1; i < params->n; i++)
        IG_CHECK(ig_device_eq(ig_tensor_device(params->tensors[i]), dev),
                 "ddp_new: parameter '%s' %s is not on %s as '%s' %s", params->names[i],
                 ig__describe(params->tensors[i]), ig_device_name(dev), params->names[0],
                 ig__describe(params->tensors[0]));
    ig_scope *s = ig_scope_begin();
    ig_status st = check_same(params, pg, dev);
    if (st == IG_OK && o.broadcast_params) st = broadcast_params(params, pg);
    ig_scope_end(s);
    if (st != IG_OK) return st;

    ig_ddp *d = calloc(1, sizeof *d);
    if (!d) return ig_set_error(IG_ERR_NOMEM, "ddp: out of host memory");
    d->params = params;
    d->pg = pg;
    d->opts = o;
    d->sync = true;
    st = build(d, dev);
    if (st != IG_OK) {
        ig_ddp_free(d);
        return st;
    }
    *out = d;
    return IG_OK;
}

void ig_ddp_free(ig_ddp *d) {
    if (!d) return;
    for (int b = 0; d->buckets && b < d->n_buckets; b++) {
        bucket *k = &d->buckets[b];
        if (k->work) ig_work_wait(k->work);
        ig_tensor_free(k->buf);
        ig_tensor_free(k->world);
    }
    for (int i = 0; d->slots && i < d->n_slots; i++) {
        slot *s = &d->slots[i];
        if (!s->view) continue;
        ig_tensor_remove_hook(d->params->tensors[s->param], s->hook);
        ig_tensor_free(s->view);
    }
    free(d->slots);
    free(d->buckets);
    free(d->cur);
    free(d->last);
    free(d);
}

void ig_ddp_set_sync(ig_ddp *d, bool sync) { d->sync = sync; }
int ig_ddp_bucket_count(const ig_ddp *d) { return d->n_buckets; }
ig_tensor *ig_ddp_bucket(const ig_ddp *d, int i) {
    IG_CHECK(i >= 0 && i < d->n_buckets, "ddp_bucket: bucket %d of %d", i, d->n_buckets);
    return d->buckets[i].buf;
}

void ig_ddp_trace(const ig_ddp *d, ig_ddp_trace_info *out) {
    out->n = d->n_last;
    out->events = d->last;
    out->backward_end = d->backward_end;
}

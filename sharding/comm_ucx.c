/* sharding/comm_ucx.c: the UCX backend of process groups: CPU tensors of
 * ranks started without mpirun (by ignis workers), over whatever UCX finds
 * (shared memory, TCP on loopback or the network). Bootstrap is the caller's:
 * ig_pg_ucx_address gives this process's worker address to publish, and
 * ig_pg_init_ucx (comm.c) connects to every peer's address.
 *
 * Algorithms (bandwidth-optimal rings): all_reduce = ring reduce-scatter +
 * ring all-gather over `size` chunks; reduce_scatter and all_gather are those
 * halves (a step's message goes in segments, each received one reduced while
 * the next arrive); broadcast a segmented ring pipeline from the root;
 * barrier a dissemination barrier of zero-byte messages.
 *
 * Invariants:
 *  - the worker, its endpoints and its requests are used by the group's
 *    communication thread only (by the creating / freeing thread before it
 *    starts and after it is joined);
 *  - a message's 64-bit tag is (collective sequence number, step, sender) or
 *    (p2p, user tag, sender), matched exactly: the messages of consecutive
 *    collectives, and of different senders, never mix;
 *  - every wait polls the worker against the op's deadline (the group's
 *    timeout from the op's start) and the group's abort; on either, the op's
 *    receives are cancelled and the op fails (a timeout aborts the group,
 *    never the process);
 *  - bf16/f16 reduce through an f32 copy; AVG divides each rank's own reduced
 *    chunk before it is gathered, so every rank ends with the same values;
 *  - a send goes out from its private copy and completes at once; the copies
 *    are freed once UCX reports them sent (at each op and while idle),
 *    waited for by FLUSH. */
#include <sched.h>
#include <string.h>
#include <time.h>

#include "sharding/comm_impl.h"

#ifdef IG_HAVE_UCX
#include <ucp/api/ucp.h>

typedef struct pending_send {
    void *req;
    void *buf;
    struct pending_send *next;
} pending_send;

struct ig__ucx {
    ucp_context_h ctx;
    ucp_worker_h worker;
    ucp_ep_h *eps; /* by rank; NULL for this rank */
    int n_eps;
    uint64_t seq;  /* collectives run so far (the same on every rank) */
    double start, deadline; /* of the running op */
    pending_send *sends;
    void *scratch; /* recv and accumulation chunks of the rings (grow only) */
    size_t scratch_cap;
};

/* A worker made by ig_pg_ucx_address, waiting for ig_pg_init_ucx. */
static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static ig__ucx *pending;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- tags: bit 63 p2p; collectives: seq 24 bits | step 23 bits | sender 16
 * bits; p2p: user tag 15 bits | sender 16 bits. A rank is never a whole
 * collective ahead of its ring neighbours, so the sequence number may wrap. ---- */

#define TAG_P2P (UINT64_C(1) << 63)
#define TAG_FULL UINT64_MAX
#define MAX_STEPS (1 << 23)

static uint64_t coll_tag(uint64_t seq, int64_t step, int src) {
    return ((seq & 0xffffffu) << 39) | ((uint64_t)step << 16) | (uint64_t)src;
}

static uint64_t p2p_tag(int tag, int src) {
    return TAG_P2P | ((uint64_t)tag << 16) | (uint64_t)src;
}

/* ---- context and worker ---- */

static void ucx_destroy(ig__ucx *u) {
    if (u->worker) ucp_worker_destroy(u->worker);
    if (u->ctx) ucp_cleanup(u->ctx);
    free(u->eps);
    free(u->scratch);
    free(u);
}

static ig_status ucx_create(ig__ucx **out) {
    ig__ucx *u = calloc(1, sizeof *u);
    if (!u) return ig__error(IG_ERR_NOMEM, "pg_ucx_address: out of host memory");
    ucp_config_t *cfg;
    ucs_status_t s = ucp_config_read(NULL, NULL, &cfg);
    /* One rail per rendezvous unless told otherwise: on one host UCX would
     * otherwise split large messages between shared memory and TCP, at half
     * the bandwidth of shared memory alone. */
    if (s == UCS_OK && !getenv("UCX_MAX_RNDV_RAILS")) s = ucp_config_modify(cfg, "MAX_RNDV_RAILS", "1");
    if (s == UCS_OK) {
        ucp_params_t p = {.field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_TAG};
        s = ucp_init(&p, cfg, &u->ctx);
        ucp_config_release(cfg);
    }
    if (s == UCS_OK) {
        ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                                  .thread_mode = UCS_THREAD_MODE_SERIALIZED};
        s = ucp_worker_create(u->ctx, &wp, &u->worker);
    }
    if (s != UCS_OK) {
        ucx_destroy(u);
        return ig__error(IG_ERR_COMM, "pg_ucx_address: cannot start UCX: %s",
                         ucs_status_string(s));
    }
    *out = u;
    return IG_OK;
}

/* u's worker address, copied into malloc'd memory. */
static ig_status worker_address(ig__ucx *u, void **blob, size_t *len) {
    ucp_address_t *a;
    size_t n;
    ucs_status_t s = ucp_worker_get_address(u->worker, &a, &n);
    if (s != UCS_OK)
        return ig__error(IG_ERR_COMM, "pg_ucx_address: ucp_worker_get_address: %s",
                         ucs_status_string(s));
    *blob = malloc(n);
    if (*blob) memcpy(*blob, a, n);
    ucp_worker_release_address(u->worker, a);
    if (!*blob) return ig__error(IG_ERR_NOMEM, "pg_ucx_address: out of host memory");
    *len = n;
    return IG_OK;
}

ig_status ig_pg_ucx_address(void **blob, size_t *len) {
    IG_CHECK(blob && len, "pg_ucx_address: NULL argument");
    *blob = NULL;
    *len = 0;
    pthread_mutex_lock(&pending_mu);
    ig_status st = pending ? IG_OK : ucx_create(&pending);
    if (st == IG_OK) st = worker_address(pending, blob, len);
    pthread_mutex_unlock(&pending_mu);
    return st;
}

/* A peer's endpoint failed (it died or exited): its transfers fail with the
 * error, which is what the group reports. */
static void peer_failed(void *arg, ucp_ep_h ep, ucs_status_t status) { (void)arg, (void)ep, (void)status; }

ig_status ig__ucx_init(ig_pg *pg, const void *const *addrs, const size_t *lens) {
    pthread_mutex_lock(&pending_mu);
    ig__ucx *u = pending;
    pending = NULL;
    pthread_mutex_unlock(&pending_mu);
    if (!u)
        return ig__error(IG_ERR_STATE, "pg_init_ucx: no UCX worker: call ig_pg_ucx_address first "
                                       "and publish its address");
    void *own;
    size_t own_len;
    ig_status st = worker_address(u, &own, &own_len);
    if (st == IG_OK) {
        bool same = own_len == lens[pg->rank] && !memcmp(own, addrs[pg->rank], own_len);
        free(own);
        if (!same)
            st = ig__error(IG_ERR_STATE, "pg_init_ucx: address %d of %d is not this process's "
                                         "(from ig_pg_ucx_address): ranks mixed up",
                           pg->rank, pg->size);
    }
    u->eps = st == IG_OK ? calloc((size_t)pg->size, sizeof *u->eps) : NULL;
    if (st == IG_OK && !u->eps) st = ig__error(IG_ERR_NOMEM, "pg_init_ucx: out of host memory");
    for (int p = 0; st == IG_OK && p < pg->size; p++) {
        if (p == pg->rank) continue;
        /* PEER error handling: a peer that dies fails the transfers to it
         * (which abort the group) instead of taking this process down; the
         * handler has nothing more to do (a peer that exited at the end of
         * a job is no error). */
        ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                                            UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                                            UCP_EP_PARAM_FIELD_ERR_HANDLER,
                              .address = addrs[p],
                              .err_mode = UCP_ERR_HANDLING_MODE_PEER,
                              .err_handler = {.cb = peer_failed, .arg = NULL}};
        ucs_status_t s = ucp_ep_create(u->worker, &ep, &u->eps[p]);
        if (s != UCS_OK)
            st = ig__error(IG_ERR_COMM, "pg_init_ucx: rank %d: endpoint to rank %d: %s", pg->rank,
                           p, ucs_status_string(s));
        else u->n_eps++;
    }
    pg->ucx = u;
    if (st != IG_OK) ig__ucx_free(pg);
    return st;
}

/* ---- requests ---- */

/* One message in flight; req NULL once complete (status then says how). */
typedef struct xfer {
    void *req;
    ucs_status_t status;
    bool recv;
    size_t len; /* recv: the bytes expected */
    ucp_tag_recv_info_t info;
} xfer;

static const ucp_request_param_t bytes_param = {.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE,
                                                .datatype = ucp_dt_make_contig(1)};

/* Sets x from what a _nbx call returned. */
static void track(xfer *x, ucs_status_ptr_t p) {
    x->req = UCS_PTR_IS_PTR(p) ? p : NULL;
    x->status = UCS_PTR_IS_PTR(p) ? UCS_INPROGRESS : UCS_PTR_STATUS(p);
}

static void post_send(ig__ucx *u, xfer *x, int peer, const void *buf, size_t len, uint64_t tag) {
    *x = (xfer){.len = len};
    track(x, ucp_tag_send_nbx(u->eps[peer], buf, len, tag, &bytes_param));
}

static void post_recv(ig__ucx *u, xfer *x, void *buf, size_t len, uint64_t tag) {
    *x = (xfer){.recv = true, .len = len};
    ucp_request_param_t p = bytes_param;
    /* a request even when the message is there already: its test gives the length */
    p.op_attr_mask |= UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
    track(x, ucp_tag_recv_nbx(u->worker, buf, len, tag, TAG_FULL, &p));
}

/* True once x is complete (its request then freed). */
static bool xfer_done(xfer *x) {
    if (!x->req) return true;
    ucs_status_t s = x->recv ? ucp_tag_recv_request_test(x->req, &x->info)
                             : ucp_request_check_status(x->req);
    if (s == UCS_INPROGRESS) return false;
    x->status = s;
    ucp_request_free(x->req);
    x->req = NULL;
    return true;
}

/* A completed x's outcome. */
static ig_status xfer_status(const xfer *x, const ig__comm_op *op) {
    if (x->status != UCS_OK)
        return ig__error(IG_ERR_COMM, "%s: UCX %s failed: %s", op->what, x->recv ? "receive" : "send",
                         ucs_status_string(x->status));
    if (x->recv && x->info.length != x->len)
        return ig__error(IG_ERR_COMM, "%s: a message of %zu bytes, expected %zu (do all ranks "
                                      "pass the same count?)",
                         op->what, x->info.length, x->len);
    return IG_OK;
}

/* Cancels what of x[0..n) is in flight and waits (1 s at most) for UCX to let
 * go of it; a send or a receive under way that outlives that is left to UCX
 * (its request released when it ends). */
static void cancel_xfers(ig__ucx *u, xfer *x, int n) {
    for (int i = 0; i < n; i++)
        if (x[i].req) ucp_request_cancel(u->worker, x[i].req);
    for (double until = now_s() + 1.0; now_s() < until;) {
        bool all = true;
        for (int i = 0; i < n; i++) all &= xfer_done(&x[i]);
        if (all) return;
        ucp_worker_progress(u->worker);
    }
    for (int i = 0; i < n; i++)
        if (x[i].req) ucp_request_free(x[i].req), x[i].req = NULL;
}

/* One round of progress; when nothing moved, checks the op's deadline (a
 * timeout aborts the group) and the group's abort. */
static ig_status poll_once(ig_pg *pg, const ig__comm_op *op) {
    ig__ucx *u = pg->ucx;
    if (ucp_worker_progress(u->worker)) return IG_OK;
    double t = now_s();
    if (t > u->deadline) {
        ig__pg_timed_out(pg, op->what, t - u->start);
        return ig__error(IG_ERR_TIMEOUT, "%s on group %s (rank %d of %d): not complete after %.1f s; "
                                         "the group is aborted",
                         op->what, pg->name, pg->rank, pg->size, t - u->start);
    }
    pthread_mutex_lock(&pg->mu);
    ig_status aborted = pg->abort_status;
    pthread_mutex_unlock(&pg->mu);
    if (aborted != IG_OK)
        return ig__error(aborted, "%s: group %s was aborted: %s", op->what, pg->name,
                         pg->abort_why);
    sched_yield(); /* ranks may share cores */
    return IG_OK;
}

/* Waits for x[0..n); on a failure cancels the rest. */
static ig_status wait_xfers(ig_pg *pg, const ig__comm_op *op, xfer *x, int n) {
    for (;;) {
        bool all = true;
        for (int i = 0; i < n; i++) all &= xfer_done(&x[i]);
        if (all) break;
        ig_status st = poll_once(pg, op);
        if (st != IG_OK) {
            cancel_xfers(pg->ucx, x, n);
            return st;
        }
    }
    for (int i = 0; i < n; i++) {
        ig_status st = xfer_status(&x[i], op);
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

/* ---- posted sends (p2p) ---- */

/* Frees the sends UCX reports done; the first failure is returned. */
static ig_status reap_sends(ig__ucx *u) {
    ig_status st = IG_OK;
    for (pending_send **p = &u->sends; *p;) {
        pending_send *s = *p;
        ucs_status_t rs = ucp_request_check_status(s->req);
        if (rs == UCS_INPROGRESS) {
            p = &s->next;
            continue;
        }
        if (rs != UCS_OK && st == IG_OK)
            st = ig__error(IG_ERR_COMM, "send: UCX failed to deliver a message: %s",
                           ucs_status_string(rs));
        ucp_request_free(s->req);
        *p = s->next;
        free(s->buf);
        free(s);
    }
    return st;
}

static ig_status send_p2p(ig_pg *pg, ig__comm_op *op) {
    ig__ucx *u = pg->ucx;
    size_t len = (size_t)op->count * ig_dtype_size(op->dtype);
    xfer x;
    post_send(u, &x, op->peer, op->buf, len, p2p_tag(op->tag, pg->rank));
    if (!x.req) return xfer_status(&x, op);
    pending_send *s = malloc(sizeof *s);
    if (!s) {
        cancel_xfers(u, &x, 1);
        return ig__error(IG_ERR_NOMEM, "%s: out of host memory", op->what);
    }
    *s = (pending_send){.req = x.req, .buf = op->buf, .next = u->sends};
    op->buf = NULL; /* the posted send owns it now */
    u->sends = s;
    return IG_OK;
}

static ig_status flush_sends(ig_pg *pg, const ig__comm_op *op) {
    for (;;) {
        ig_status st = reap_sends(pg->ucx);
        if (st != IG_OK || !pg->ucx->sends) return st;
        if ((st = poll_once(pg, op)) != IG_OK) return st;
    }
}

double ig__ucx_idle(ig_pg *pg) {
    ig__ucx *u = pg->ucx;
    if (ig__pg_aborted(pg)) return 0;
    while (ucp_worker_progress(u->worker)) {
    }
    (void)reap_sends(u); /* a failure shows at the next FLUSH or not at all, as with MPI */
    return u->sends ? 1e-4 : 2e-3;
}

static ig_status recv_p2p(ig_pg *pg, ig__comm_op *op) {
    xfer x;
    post_recv(pg->ucx, &x, op->out, (size_t)op->count * ig_dtype_size(op->dtype),
              p2p_tag(op->tag, op->peer));
    return wait_xfers(pg, op, &x, 1);
}

/* ---- reductions ---- */

/* dst[i] = a[i] (sum or max) b[i], n elements of t (not bf16/f16). */
static void combine(void *dst, const void *a, const void *b, int64_t n, ig_dtype t, bool max) {
#define COMBINE(type)                                                     \
    {                                                                     \
        type *d = dst;                                                    \
        const type *x = a, *y = b;                                        \
        if (max)                                                          \
            for (int64_t i = 0; i < n; i++) d[i] = x[i] > y[i] ? x[i] : y[i]; \
        else                                                              \
            for (int64_t i = 0; i < n; i++) d[i] = (type)(x[i] + y[i]);   \
        break;                                                            \
    }
    switch (t) {
    case IG_F32: COMBINE(float)
    case IG_F64: COMBINE(double)
    case IG_I32: COMBINE(int32_t)
    case IG_I64: COMBINE(int64_t)
    case IG_U8: COMBINE(uint8_t)
    default: COMBINE(uint16_t)
    }
#undef COMBINE
}



/* ---- one ring step, in segments ---- */

/* A step's messages go in up to SEGS segments of at least SEG_BYTES (a
 * multiple of 8 bytes), so that each received segment is reduced while the
 * next ones arrive; segment k of step s has the tag step s * SEGS + k. */
#define SEGS 64
#define SEG_BYTES (1 << 20)

static size_t seg_bytes(size_t len) {
    size_t s = ((len + SEGS - 1) / SEGS + 7) & ~(size_t)7;
    return s > SEG_BYTES ? s : SEG_BYTES;
}

static int n_segs(size_t len) { return len ? (int)((len + seg_bytes(len) - 1) / seg_bytes(len)) : 1; }

/* What to do with each received segment: dst = a (sum or max) received
 * (byte offsets alike); dst NULL: nothing. */
typedef struct fold {
    char *dst;
    const char *a;
    ig_dtype t;
    bool max;
} fold;

/* Sends sbuf to `to` while receiving rbuf from `from` (step `step` of the
 * running collective), folding each received segment in as it lands. */
static ig_status exchange(ig_pg *pg, const ig__comm_op *op, int64_t step, int to, const void *sbuf,
                          size_t slen, int from, void *rbuf, size_t rlen, fold f) {
    ig__ucx *u = pg->ucx;
    xfer x[2 * SEGS], *rx = x, *sx = x + SEGS;
    int nr = n_segs(rlen), ns = n_segs(slen);
    size_t rseg = seg_bytes(rlen), sseg = seg_bytes(slen);
    for (int k = 0; k < nr; k++)
        post_recv(u, &rx[k], (char *)rbuf + k * rseg, k == nr - 1 ? rlen - k * rseg : rseg,
                  coll_tag(u->seq, step * SEGS + k, from));
    for (int k = 0; k < ns; k++)
        post_send(u, &sx[k], to, (const char *)sbuf + k * sseg, k == ns - 1 ? slen - k * sseg : sseg,
                  coll_tag(u->seq, step * SEGS + k, pg->rank));
    ig_status st = IG_OK;
    for (int got = 0; st == IG_OK;) {
        for (; got < nr && xfer_done(&rx[got]); got++) {
            if ((st = xfer_status(&rx[got], op)) != IG_OK) break;
            size_t off = got * rseg, es = ig_dtype_size(f.t);
            if (f.dst)
                combine(f.dst + off, f.a + off, (char *)rbuf + off, (int64_t)(rx[got].len / es), f.t,
                        f.max);
        }
        if (st != IG_OK || got == nr) break;
        st = poll_once(pg, op);
    }
    if (st == IG_OK) st = wait_xfers(pg, op, sx, ns);
    if (st != IG_OK) {
        cancel_xfers(u, rx, nr);
        cancel_xfers(u, sx, ns);
    }
    return st;
}

/* ---- rings over `size` chunks: chunk c of `total` elements is
 * [total * c / size, total * (c + 1) / size) ---- */

static int64_t lo(int64_t total, int size, int c) { return total * c / size; }
static int mod(int a, int n) { return ((a % n) + n) % n; }

static void *scratch(ig__ucx *u, size_t bytes) {
    if (bytes > u->scratch_cap) {
        void *p = realloc(u->scratch, bytes);
        if (!p) return NULL;
        u->scratch = p;
        u->scratch_cap = bytes;
    }
    return u->scratch;
}

/* Reduce-scatter of `in` (total elements of t): rank r ends with chunk r
 * reduced, at `out` (in == out: in place, every chunk's slot of in is
 * scratched; else `out` receives chunk r only and `in` is left as it was,
 * the partial sums alternating between two scratch chunks). Step s sends
 * chunk r-s-1 to the right and reduces chunk r-s-2 from the left. */
static ig_status ring_reduce_scatter(ig_pg *pg, const ig__comm_op *op, const char *in, char *out,
                                     int64_t total, ig_dtype t) {
    int r = pg->rank, n = pg->size;
    size_t es = ig_dtype_size(t);
    bool in_place = in == out;
    int64_t maxc = (total + n - 1) / n;
    size_t cb = (size_t)(maxc ? maxc : 1) * es;
    if (n == 1 && !in_place && total) memcpy(out, in, (size_t)total * es);
    char *tmp = scratch(pg->ucx, 3 * cb), *acc[2] = {tmp + cb, tmp + 2 * cb};
    if (!tmp) return ig__error(IG_ERR_NOMEM, "%s: out of host memory for its ring", op->what);
    for (int s = 0; s < n - 1; s++) {
        int cs = mod(r - s - 1, n), cr = mod(r - s - 2, n);
        int64_t s_lo = lo(total, n, cs), s_len = lo(total, n, cs + 1) - s_lo;
        int64_t r_lo = lo(total, n, cr), r_len = lo(total, n, cr + 1) - r_lo;
        const char *sb = in_place || s == 0 ? in + s_lo * (int64_t)es : acc[(s + 1) % 2];
        fold f = {.dst = in_place ? out + r_lo * (int64_t)es : s == n - 2 ? out : acc[s % 2],
                  .a = in + r_lo * (int64_t)es, .t = t, .max = op->red == IG_REDUCE_MAX};
        ig_status st = exchange(pg, op, s, mod(r + 1, n), sb, (size_t)s_len * es, mod(r - 1, n),
                                tmp, (size_t)r_len * es, f);
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

/* All-gather in place: rank r holds chunk r of buf; step s passes chunk
 * r-s to the right and receives chunk r-s-1 from the left. Steps are
 * numbered from first_step (after a reduce-scatter's). */
static ig_status ring_all_gather(ig_pg *pg, const ig__comm_op *op, char *buf, int64_t total,
                                 size_t es, int64_t first_step) {
    int r = pg->rank, n = pg->size;
    for (int s = 0; s < n - 1; s++) {
        int cs = mod(r - s, n), cr = mod(r - s - 1, n);
        int64_t s_lo = lo(total, n, cs), r_lo = lo(total, n, cr);
        ig_status st = exchange(pg, op, first_step + s, mod(r + 1, n), buf + s_lo * (int64_t)es,
                                (size_t)(lo(total, n, cs + 1) - s_lo) * es, mod(r - 1, n),
                                buf + r_lo * (int64_t)es, (size_t)(lo(total, n, cr + 1) - r_lo) * es,
                                (fold){0});
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

/* all_reduce (in place) or reduce_scatter (in: size * count; out: count). */
static ig_status reduce(ig_pg *pg, ig__comm_op *op) {
    bool rs = op->kind == IG__OP_REDUCE_SCATTER;
    int r = pg->rank, n = pg->size;
    int64_t total = rs ? op->count * n : op->count;
    ig_dtype t = op->dtype;
    char *in = op->in, *out = op->out;
    float *fin = NULL, *fout = NULL;
    if (ig__comm_staged(t)) {
        fin = ig__comm_to_f32(in, total, t);
        fout = rs ? malloc((size_t)(op->count ? op->count : 1) * sizeof *fout) : fin;
        if (!fin || !fout) {
            free(fin);
            if (rs) free(fout);
            return ig__error(IG_ERR_NOMEM, "%s: out of host memory for its f32 copy", op->what);
        }
        in = (char *)fin, out = (char *)fout, t = IG_F32;
    }
    size_t es = ig_dtype_size(t);
    ig_status st = ring_reduce_scatter(pg, op, in, out, total, t);
    char *mine = rs ? out : out + lo(total, n, r) * (int64_t)es;
    int64_t mine_len = lo(total, n, r + 1) - lo(total, n, r);
    if (st == IG_OK && op->red == IG_REDUCE_AVG) ig__comm_divide(mine, mine_len, t, n);
    if (st == IG_OK && !rs) st = ring_all_gather(pg, op, out, total, es, n - 1);
    if (st == IG_OK && fin) ig__comm_from_f32(op->out, fout, op->count, op->dtype);
    free(fin);
    if (rs) free(fout);
    return st;
}

static ig_status all_gather(ig_pg *pg, ig__comm_op *op) {
    size_t bytes = (size_t)op->count * ig_dtype_size(op->dtype);
    if (bytes) memcpy((char *)op->out + bytes * (size_t)pg->rank, op->in, bytes);
    return ring_all_gather(pg, op, op->out, op->count * pg->size, ig_dtype_size(op->dtype), 0);
}

/* Segmented ring pipeline from the root: each rank receives the segments
 * from its left and forwards each to its right as it arrives (the last rank
 * of the ring only receives). */
#define BCAST_SEG_BYTES (256 << 10)

static ig_status broadcast(ig_pg *pg, ig__comm_op *op) {
    ig__ucx *u = pg->ucx;
    int n = pg->size, rel = mod(pg->rank - op->peer, n);
    if (n == 1) return IG_OK;
    size_t bytes = (size_t)op->count * ig_dtype_size(op->dtype);
    size_t seg = bytes / MAX_STEPS + 1 > BCAST_SEG_BYTES ? bytes / MAX_STEPS + 1 : BCAST_SEG_BYTES;
    int nseg = bytes ? (int)((bytes + seg - 1) / seg) : 1;
    bool gets = rel != 0, gives = rel != n - 1;
    int left = mod(pg->rank - 1, n), right = mod(pg->rank + 1, n);
    xfer *x = calloc(2 * (size_t)nseg, sizeof *x), *rx = x, *sx = x + nseg;
    if (!x) return ig__error(IG_ERR_NOMEM, "%s: out of host memory", op->what);
    char *buf = op->out;
    size_t len_last = bytes - (size_t)(nseg - 1) * seg;
    for (int i = 0; i < nseg; i++) {
        size_t len = i == nseg - 1 ? len_last : seg;
        if (gets) post_recv(u, &rx[i], buf + (size_t)i * seg, len, coll_tag(u->seq, i, left));
        else post_send(u, &sx[i], right, buf + (size_t)i * seg, len, coll_tag(u->seq, i, pg->rank));
    }
    ig_status st = IG_OK;
    for (int fwd = gets ? 0 : nseg; st == IG_OK;) {
        while (fwd < nseg && xfer_done(&rx[fwd])) {
            if ((st = xfer_status(&rx[fwd], op)) != IG_OK) break;
            size_t len = fwd == nseg - 1 ? len_last : seg;
            if (gives) post_send(u, &sx[fwd], right, buf + (size_t)fwd * seg, len,
                                 coll_tag(u->seq, fwd, pg->rank));
            fwd++;
        }
        if (st != IG_OK || fwd == nseg) break;
        st = poll_once(pg, op);
    }
    if (st == IG_OK && gives) st = wait_xfers(pg, op, sx, nseg);
    if (st != IG_OK) cancel_xfers(u, x, 2 * nseg);
    free(x);
    return st;
}

/* Dissemination: round k sends to rank + 2^k, receives from rank - 2^k. */
static ig_status barrier(ig_pg *pg, const ig__comm_op *op) {
    int r = pg->rank, n = pg->size;
    char none;
    ig_status st = IG_OK;
    for (int k = 1, step = 0; st == IG_OK && k < n; k <<= 1, step++)
        st = exchange(pg, op, step, mod(r + k, n), &none, 0, mod(r - k, n), &none, 0, (fold){0});
    return st;
}

ig_status ig__ucx_exec(ig_pg *pg, ig__comm_op *op) {
    ig__ucx *u = pg->ucx;
    u->start = now_s();
    u->deadline = u->start + pg->opts.timeout_s;
    ig_status st = op->kind == IG__OP_FLUSH ? flush_sends(pg, op) : reap_sends(u);
    if (st != IG_OK) return st;
    switch (op->kind) {
    case IG__OP_SEND: return send_p2p(pg, op);
    case IG__OP_RECV: return recv_p2p(pg, op);
    case IG__OP_FLUSH: return IG_OK;
    default: break;
    }
    switch (op->kind) { /* collectives: one sequence number each */
    case IG__OP_ALL_REDUCE:
    case IG__OP_REDUCE_SCATTER: st = reduce(pg, op); break;
    case IG__OP_ALL_GATHER: st = all_gather(pg, op); break;
    case IG__OP_BROADCAST: st = broadcast(pg, op); break;
    case IG__OP_BARRIER: st = barrier(pg, op); break;
    default:
        st = ig__error(IG_ERR_UNSUPPORTED, "%s: not supported by UCX groups", op->what);
        break;
    }
    u->seq++;
    return st;
}

/* Closes the endpoints (flushing what they still hold, 2 s at most; an
 * aborted group's are closed at once), drops the posted sends and frees
 * the worker and context. */
void ig__ucx_free(ig_pg *pg) {
    ig__ucx *u = pg->ucx;
    if (!u) return;
    bool force = ig__pg_aborted(pg);
    ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                             .flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0};
    xfer *x = calloc((size_t)pg->size, sizeof *x);
    for (int i = 0; i < pg->size; i++) {
        if (!u->eps || !u->eps[i]) continue;
        ucs_status_ptr_t r = ucp_ep_close_nbx(u->eps[i], &p);
        if (x) track(&x[i], r);
        else if (UCS_PTR_IS_PTR(r)) ucp_request_free(r);
    }
    for (double until = now_s() + 2.0; x && now_s() < until;) {
        bool all = true;
        for (int i = 0; i < pg->size; i++) all &= xfer_done(&x[i]);
        if (all) break;
        ucp_worker_progress(u->worker);
    }
    for (int i = 0; x && i < pg->size; i++)
        if (x[i].req) ucp_request_free(x[i].req);
    free(x);
    for (pending_send *s = u->sends, *next; s; s = next) {
        next = s->next;
        ucp_request_cancel(u->worker, s->req);
        ucp_request_free(s->req);
        free(s->buf);
        free(s);
    }
    ucx_destroy(u);
    pg->ucx = NULL;
}

#else /* no UCX */

ig_status ig_pg_ucx_address(void **blob, size_t *len) {
    IG_CHECK(blob && len, "pg_ucx_address: NULL argument");
    *blob = NULL;
    *len = 0;
    return ig__error(IG_ERR_UNSUPPORTED, "pg_ucx_address: this build has no UCX");
}

ig_status ig__ucx_init(ig_pg *pg, const void *const *addrs, const size_t *lens) {
    (void)pg, (void)addrs, (void)lens;
    return ig__error(IG_ERR_UNSUPPORTED, "pg_init_ucx: this build has no UCX");
}

ig_status ig__ucx_exec(ig_pg *pg, ig__comm_op *op) {
    (void)pg;
    return ig__error(IG_ERR_UNSUPPORTED, "%s: this build has no UCX", op->what);
}

double ig__ucx_idle(ig_pg *pg) {
    (void)pg;
    return 0;
}

void ig__ucx_free(ig_pg *pg) { (void)pg; }

#endif

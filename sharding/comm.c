/* sharding/comm.c: process groups, the generic part: argument checks, the
 * work queue and the one communication thread of each group, work handles,
 * deadlines and abort, and ig_dist_env_detect. The backends (comm_mpi.c,
 * comm_nccl.c, comm_ucx.c) only run an op to completion on the communication
 * thread (UCX: also progresses its worker while the queue is empty).
 *
 * Invariants:
 *  - ops run on the communication thread one at a time, in issue order;
 *  - a work is freed by its waiter once done, or by the communication thread
 *    if the waiter gave up (timeout); it is never both;
 *  - once aborted, a group runs nothing more: queued and later work fail at
 *    once with the abort's status. A timeout is logged once. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "sharding/comm_impl.h"

static const char *red_name(ig_reduce_op r) {
    static const char *names[IG_REDUCE_OP_COUNT] = {"sum", "avg", "max"};
    return names[r];
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* An absolute time `seconds` from now on `clock`. */
static struct timespec deadline(clockid_t clock, double seconds) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    double whole = (double)(time_t)seconds;
    ts.tv_sec += (time_t)seconds;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return ts;
}

/* ---- works ---- */

/* Releases what an op holds that did not reach its backend. */
static void op_release(ig__comm_op *op) {
#ifdef IG_HAVE_NCCL
    if (op->device.kind == IG_DEV_CUDA) {
        ig__nccl_release(op);
        return;
    }
#endif
    free(op->buf);
    op->buf = NULL;
}

static void work_free(ig_work *w) {
    op_release(&w->op);
    free(w);
}

/* With pg->mu held: marks w done with (st, err) and frees it if abandoned. */
static void work_complete(ig_pg *pg, ig_work *w, ig_status st, const char *err) {
    w->status = st;
    snprintf(w->err, sizeof w->err, "%s", err);
    w->done = true;
    if (w->abandoned) work_free(w);
    pthread_cond_broadcast(&pg->done);
}

/* Works that run as one batch: CUDA ops of one family, 1 (collectives) or
 * 2 (sends and recvs), enqueued together on the group's stream and drained
 * once; 0: runs alone. */
static int family(const ig_work *w) {
    if (!w || w->op.device.kind != IG_DEV_CUDA) return 0;
    return w->op.kind == IG__OP_SEND || w->op.kind == IG__OP_RECV ? 2 : 1;
}

/* How long a CUDA send waits on the communication thread for the sends and
 * recvs issued after it, to go out in the same NCCL group: a send-then-recv
 * ring deadlocks when each rank's send must end before its recv starts. */
#define P2P_LINGER_S 0.01
#define MAX_BATCH 64

/* With pg->mu held: takes the next work off the queue into batch[0], and the
 * queued works of its family after it; returns the count (0: stopped with
 * nothing queued). */
static int take_batch(ig_pg *pg, ig_work **batch) {
    while (!pg->head && !pg->stop) {
        double poll = 0; /* UCX: progress its worker now and then meanwhile */
        if (pg->ucx) {
            pthread_mutex_unlock(&pg->mu);
            poll = ig__ucx_idle(pg);
            pthread_mutex_lock(&pg->mu);
            if (pg->head || pg->stop) break;
        }
        if (poll > 0) {
            struct timespec until = deadline(CLOCK_MONOTONIC, poll);
            (void)pthread_cond_timedwait(&pg->wake, &pg->mu, &until);
        } else {
            pthread_cond_wait(&pg->wake, &pg->mu);
        }
    }
    int n = 0;
    struct timespec dl = deadline(CLOCK_MONOTONIC, P2P_LINGER_S);
    while (n < MAX_BATCH && pg->head &&
           (n == 0 || (family(batch[0]) && family(pg->head) == family(batch[0])))) {
        ig_work *w = pg->head;
        pg->head = w->next;
        if (!pg->head) pg->tail = NULL;
        batch[n++] = w;
        if (!pg->head && family(w) == 2 && w->op.kind == IG__OP_SEND && !pg->stop)
            (void)pthread_cond_timedwait(&pg->wake, &pg->mu, &dl);
    }
    return n;
}

static ig_status run_batch(ig_pg *pg, ig_work **batch, int n) {
    ig__comm_op *ops[MAX_BATCH];
    for (int i = 0; i < n; i++) ops[i] = &batch[i]->op;
#ifdef IG_HAVE_NCCL
    if (family(batch[0])) return ig__nccl_exec(pg, ops, n);
    if (ops[0]->kind == IG__OP_FLUSH && pg->nccl) {
        ig_status st = ig__nccl_exec(pg, ops, 1);
        if (st != IG_OK) return st;
    }
    if (pg->nccl_only) return ig__nccl_exec_host(pg, ops[0]);
#endif
    if (pg->ucx) return ig__ucx_exec(pg, ops[0]);
    return ig__mpi_exec(pg, ops[0]);
}

static void *comm_main(void *arg) {
    ig_pg *pg = arg;
    ig_work *batch[MAX_BATCH];
    pthread_mutex_lock(&pg->mu);
    for (int n; (n = take_batch(pg, batch)) > 0;) {
        ig_status st = pg->abort_status;
        pthread_mutex_unlock(&pg->mu);
        char err[sizeof batch[0]->err] = "";
        if (st != IG_OK) {
            snprintf(err, sizeof err, "%s: group %s was aborted: %s", batch[0]->op.what, pg->name,
                     pg->abort_why);
        } else {
            ig_clear_error();
            st = run_batch(pg, batch, n);
            if (st != IG_OK) snprintf(err, sizeof err, "%s", ig_last_error());
        }
        pthread_mutex_lock(&pg->mu);
        for (int i = 0; i < n; i++) work_complete(pg, batch[i], st, err);
    }
    pthread_mutex_unlock(&pg->mu);
    return NULL;
}

/* ---- abort ---- */

bool ig__pg_aborted(ig_pg *pg) {
    pthread_mutex_lock(&pg->mu);
    bool a = pg->abort_status != IG_OK;
    pthread_mutex_unlock(&pg->mu);
    return a;
}

/* Marks the group aborted and fails its queued work; the first call logs
 * `why` and, unless told not to, ends the job. */
static void pg_fail(ig_pg *pg, ig_status st, const char *why) {
    pthread_mutex_lock(&pg->mu);
    bool first = pg->abort_status == IG_OK;
    if (first) {
        pg->abort_status = st;
        snprintf(pg->abort_why, sizeof pg->abort_why, "%s", why);
        while (pg->head) {
            ig_work *w = pg->head;
            pg->head = w->next;
            char err[sizeof w->err];
            snprintf(err, sizeof err, "%s: group %s was aborted: %s", w->op.what, pg->name, why);
            work_complete(pg, w, st, err);
        }
        pg->tail = NULL;
    }
    pthread_mutex_unlock(&pg->mu);
    if (!first) return;
    fprintf(stderr, "ignis: %s\n", why);
    fflush(stderr);
    if (!pg->opts.no_abort_on_timeout) ig__mpi_abort(pg);
}

void ig__pg_timed_out(ig_pg *pg, const char *what, double waited) {
    char why[256];
    snprintf(why, sizeof why,
             "%s on group %s (rank %d of %d) timed out after %.1f s; aborting the %s", what,
             pg->name, pg->rank, pg->size, waited,
             pg->opts.no_abort_on_timeout ? "group" : "job");
    pg_fail(pg, IG_ERR_TIMEOUT, why);
}

void ig_pg_abort(ig_pg *pg, const char *why) {
    IG_CHECK(pg, "pg_abort: NULL group");
    char msg[256];
    snprintf(msg, sizeof msg, "group %s (rank %d of %d) aborted: %s", pg->name, pg->rank,
             pg->size, why ? why : "");
    pg_fail(pg, IG_ERR_COMM, msg);
}

/* ---- issue and wait ---- */

ig_status ig_work_wait(ig_work *w) {
    IG_CHECK(w, "work_wait: NULL work");
    ig_pg *pg = w->pg;
    double t0 = now_s();
    struct timespec dl = deadline(CLOCK_MONOTONIC, pg->opts.timeout_s);
    pthread_mutex_lock(&pg->mu);
    int rc = 0;
    while (!w->done && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&pg->done, &pg->mu, &dl);
    if (!w->done) {
        w->abandoned = true;
        char what[sizeof w->op.what];
        memcpy(what, w->op.what, sizeof what);
        pthread_mutex_unlock(&pg->mu);
        double waited = now_s() - t0;
        ig__pg_timed_out(pg, what, waited);
        return ig__error(IG_ERR_TIMEOUT,
                         "%s on group %s (rank %d of %d): not complete after %.1f s; the group "
                         "is aborted",
                         what, pg->name, pg->rank, pg->size, waited);
    }
    pthread_mutex_unlock(&pg->mu); /* done: the communication thread is through with w */
    ig_status st = w->status;
    if (st != IG_OK) st = ig__error(st, "%s", w->err);
    work_free(w);
    return st;
}

/* Lets w complete on its own: whoever comes last (here or the communication
 * thread) frees it. */
static void work_detach(ig_work *w) {
    ig_pg *pg = w->pg;
    pthread_mutex_lock(&pg->mu);
    if (w->done) work_free(w);
    else w->abandoned = true;
    pthread_mutex_unlock(&pg->mu);
}

bool ig_work_test(ig_work *w) {
    IG_CHECK(w, "work_test: NULL work");
    pthread_mutex_lock(&w->pg->mu);
    bool done = w->done;
    pthread_mutex_unlock(&w->pg->mu);
    return done;
}

/* Queues op (taking what it holds); waits unless work is given. */
static ig_status issue(ig_pg *pg, ig__comm_op *op, ig_work **work) {
    if (work) *work = NULL;
    ig_status st = IG_OK;
#ifdef IG_HAVE_NCCL
    if (op->device.kind == IG_DEV_CUDA) st = ig__nccl_issue(pg, op);
#endif
    ig_work *w = st == IG_OK ? calloc(1, sizeof *w) : NULL;
    if (st == IG_OK && !w) st = ig__error(IG_ERR_NOMEM, "%s: out of host memory", op->what);
    if (st != IG_OK) {
        op_release(op);
        return st;
    }
    w->pg = pg;
    w->op = *op;
    pthread_mutex_lock(&pg->mu);
    if (pg->abort_status != IG_OK) {
        st = pg->abort_status;
        pthread_mutex_unlock(&pg->mu);
        work_free(w);
        return ig__error(st, "%s: group %s (rank %d of %d) was aborted: %s", op->what, pg->name,
                         pg->rank, pg->size, pg->abort_why);
    }
    if (pg->tail) pg->tail->next = w;
    else pg->head = w;
    pg->tail = w;
    pthread_cond_signal(&pg->wake);
    pthread_mutex_unlock(&pg->mu);
    if (work) {
        *work = w;
        return IG_OK;
    }
    return ig_work_wait(w);
}

/* Checks a tensor for `op` and fills the device fields of o. */
static ig_status check_tensor(ig_pg *pg, const char *op, const ig_tensor *t, ig__comm_op *o) {
    IG_CHECK(pg && t, "%s: NULL %s", op, pg ? "tensor" : "group");
    IG_CHECK(ig_tensor_is_contiguous(t), "%s: %s is not contiguous", op, ig__describe(t));
    if (t->device.kind == IG_DEV_CUDA) {
        if (!pg->nccl)
            return ig__error(IG_ERR_UNSUPPORTED,
                             "%s: %s is a CUDA tensor, and group %s has the %s backend (CPU "
                             "tensors; IG_BACKEND_NCCL takes CUDA tensors)",
                             op, ig__describe(t), pg->name, pg->ucx ? "UCX" : "MPI");
        IG_CHECK(t->device.index == ig_pg_device(pg), "%s: %s is not on cuda:%d, group %s's device",
                 op, ig__describe(t), ig_pg_device(pg), pg->name);
    }
    o->device = t->device;
    o->dtype = t->dtype;
    snprintf(o->what, sizeof o->what, "%s of %s", op, ig__describe(t));
    return IG_OK;
}

/* MPI counts are ints. */
static ig_status check_count(const char *op, const ig_tensor *t, int64_t total) {
    if (t->device.kind == IG_DEV_CUDA || total <= INT_MAX) return IG_OK;
    return ig__error(IG_ERR_UNSUPPORTED, "%s: %s: over %d elements in one MPI call", op,
                     ig__describe(t), INT_MAX);
}

ig_status ig_pg_all_reduce(ig_pg *pg, ig_tensor *t, ig_reduce_op op, ig_work **work) {
    IG_CHECK(op >= 0 && op < IG_REDUCE_OP_COUNT, "all_reduce: bad reduce op %d", (int)op);
    ig__comm_op o = {.kind = IG__OP_ALL_REDUCE, .red = op};
    char name[32];
    snprintf(name, sizeof name, "all_reduce(%s)", red_name(op));
    ig_status st = check_tensor(pg, name, t, &o);
    if (st == IG_OK) st = check_count(name, t, t->numel);
    if (st != IG_OK) return st;
    o.in = o.out = ig__ptr(t);
    o.count = t->numel;
    return issue(pg, &o, work);
}

ig_status ig_pg_broadcast(ig_pg *pg, ig_tensor *t, int root, ig_work **work) {
    ig__comm_op o = {.kind = IG__OP_BROADCAST, .peer = root};
    ig_status st = check_tensor(pg, "broadcast", t, &o);
    IG_CHECK(root >= 0 && root < pg->size, "broadcast: root %d outside group %s of %d ranks",
             root, pg->name, pg->size);
    if (st == IG_OK) st = check_count("broadcast", t, t->numel);
    if (st != IG_OK) return st;
    o.in = o.out = ig__ptr(t);
    o.count = t->numel;
    return issue(pg, &o, work);
}

/* The (big, small) pair of all_gather / reduce_scatter: same dtype and
 * device, big of size * numel(small) elements. */
static ig_status check_pair(ig_pg *pg, const char *op, ig_tensor *big, ig_tensor *small,
                            ig__comm_op *o) {
    ig_status st = check_tensor(pg, op, big, o);
    if (st != IG_OK) return st;
    st = check_tensor(pg, op, small, o);
    if (st != IG_OK) return st;
    ig__check_same(op, big, small);
    IG_CHECK(big->numel == small->numel * pg->size,
             "%s: %s must have %d (group size) times the elements of %s", op, ig__describe(big),
             pg->size, ig__describe(small));
    IG_CHECK(!big->numel || ig__ptr(big) != ig__ptr(small), "%s: %s and %s share memory", op,
             ig__describe(big), ig__describe(small));
    snprintf(o->what, sizeof o->what, "%s of %s", op, ig__describe(small));
    o->count = small->numel;
    return check_count(op, big, big->numel);
}

ig_status ig_pg_all_gather(ig_pg *pg, ig_tensor *out, ig_tensor *in, ig_work **work) {
    ig__comm_op o = {.kind = IG__OP_ALL_GATHER};
    ig_status st = check_pair(pg, "all_gather", out, in, &o);
    if (st != IG_OK) return st;
    o.in = ig__ptr(in);
    o.out = ig__ptr(out);
    return issue(pg, &o, work);
}

ig_status ig_pg_reduce_scatter(ig_pg *pg, ig_tensor *out, ig_tensor *in, ig_reduce_op op,
                               ig_work **work) {
    IG_CHECK(op >= 0 && op < IG_REDUCE_OP_COUNT, "reduce_scatter: bad reduce op %d", (int)op);
    ig__comm_op o = {.kind = IG__OP_REDUCE_SCATTER, .red = op};
    char name[32];
    snprintf(name, sizeof name, "reduce_scatter(%s)", red_name(op));
    ig_status st = check_pair(pg, name, in, out, &o);
    if (st != IG_OK) return st;
    o.in = ig__ptr(in);
    o.out = ig__ptr(out);
    return issue(pg, &o, work);
}

ig_status ig_pg_barrier(ig_pg *pg) {
    IG_CHECK(pg, "barrier: NULL group");
    ig__comm_op o = {.kind = IG__OP_BARRIER, .device = IG_CPU};
    snprintf(o.what, sizeof o.what, "barrier");
    return issue(pg, &o, NULL);
}

static ig_status p2p(ig_pg *pg, ig__comm_kind kind, ig_tensor *t, int peer, int tag) {
    const char *op = kind == IG__OP_SEND ? "send" : "recv";
    ig__comm_op o = {.kind = kind, .peer = peer, .tag = tag};
    ig_status st = check_tensor(pg, op, t, &o);
    IG_CHECK(peer >= 0 && peer < pg->size && peer != pg->rank,
             "%s: peer %d is not another rank of group %s (rank %d of %d)", op, peer, pg->name,
             pg->rank, pg->size);
    IG_CHECK(tag >= 0 && tag <= 32767, "%s: tag %d outside [0, 32767]", op, tag);
    if (st == IG_OK) st = check_count(op, t, t->numel);
    if (st == IG_OK && pg->nccl_only && t->device.kind == IG_DEV_CPU)
        st = ig__error(IG_ERR_UNSUPPORTED, "%s: %s is a CPU tensor, and group %s has no MPI (NCCL from "
                       "a unique id): its sends and receives take CUDA tensors", op, ig__describe(t),
                       pg->name);
    if (st != IG_OK) return st;
    snprintf(o.what, sizeof o.what, "%s %s rank %d of %s", op, kind == IG__OP_SEND ? "to" : "from",
             peer, ig__describe(t));
    o.in = o.out = ig__ptr(t);
    o.count = t->numel;
    if (kind == IG__OP_RECV) return issue(pg, &o, NULL);
    /* A send goes out from a private copy (NCCL: made by ig__nccl_issue), so
     * the caller need not wait for the receiver. */
    if (t->device.kind == IG_DEV_CPU && t->numel) {
        size_t bytes = (size_t)t->numel * ig_dtype_size(t->dtype);
        o.buf = malloc(bytes);
        if (!o.buf) return ig__error(IG_ERR_NOMEM, "%s: out of host memory", o.what);
        memcpy(o.buf, o.in, bytes);
    }
    ig_work *w;
    st = issue(pg, &o, &w);
    if (st == IG_OK) work_detach(w);
    return st;
}

ig_status ig_pg_send(ig_pg *pg, ig_tensor *t, int dst, int tag) {
    return p2p(pg, IG__OP_SEND, t, dst, tag);
}

ig_status ig_pg_recv(ig_pg *pg, ig_tensor *t, int src, int tag) {
    return p2p(pg, IG__OP_RECV, t, src, tag);
}

/* ---- groups ---- */

static ig_pg *pg_alloc(const ig_pg_opts *opts) {
    ig_pg *pg = calloc(1, sizeof *pg);
    if (!pg) {
        ig__error(IG_ERR_NOMEM, "process group: out of host memory");
        return NULL;
    }
    pg->opts = *opts;
    pthread_mutex_init(&pg->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pg->done, &ca);
    pthread_cond_init(&pg->wake, &ca);
    pthread_condattr_destroy(&ca);
    return pg;
}

/* Frees the struct of a group whose thread is not running. */
static void pg_dealloc(ig_pg *pg) {
    pthread_mutex_destroy(&pg->mu);
    pthread_cond_destroy(&pg->done);
    pthread_cond_destroy(&pg->wake);
    free(pg);
}

static ig_status pg_start(ig_pg *pg) {
    int rc = pthread_create(&pg->thread, NULL, comm_main, pg);
    if (rc != 0)
        return ig__error(IG_ERR_NOMEM, "process group %s: cannot start its thread: %s", pg->name,
                         strerror(rc));
    pg->thread_started = true;
    return IG_OK;
}

/* Backend teardown of a group whose thread is not running. */
static void pg_destroy(ig_pg *pg) {
#ifdef IG_HAVE_NCCL
    if (pg->nccl) ig__nccl_free(pg);
#endif
    if (pg->ucx) ig__ucx_free(pg);
    else if (!pg->nccl_only) ig__mpi_free(pg);
    pg_dealloc(pg);
}

ig_status ig_pg_init_world(const ig_pg_opts *opts, ig_pg **out) {
    IG_CHECK(out, "pg_init_world: NULL out");
    *out = NULL;
    ig_pg_opts def = IG_PG_OPTS_INIT;
    if (!opts) opts = &def;
    IG_CHECK(opts->backend >= 0 && opts->backend < IG_BACKEND_COUNT,
             "pg_init_world: bad backend %d", (int)opts->backend);
    IG_CHECK(opts->timeout_s > 0, "pg_init_world: timeout %g s is not positive", opts->timeout_s);
    if (opts->backend == IG_BACKEND_UCX)
        return ig__error(IG_ERR_UNSUPPORTED, "pg_init_world: UCX groups start with ig_pg_init_ucx "
                                             "(their ranks' addresses come from the launcher)");
#ifndef IG_HAVE_NCCL
    if (opts->backend == IG_BACKEND_NCCL)
        return ig__error(IG_ERR_UNSUPPORTED, "pg_init_world: this build has no NCCL");
#endif
    ig_pg *pg = pg_alloc(opts);
    if (!pg) return ig_last_status();
    snprintf(pg->name, sizeof pg->name, "world");
    ig_status st = ig__mpi_init_world(pg);
    if (st != IG_OK) {
        pg_dealloc(pg);
        return st;
    }
#ifdef IG_HAVE_NCCL
    if (st == IG_OK && opts->backend == IG_BACKEND_NCCL) st = ig__nccl_init(pg, -1);
#endif
    if (st == IG_OK) st = pg_start(pg);
    if (st != IG_OK) {
        pg_destroy(pg);
        return st;
    }
    *out = pg;
    return IG_OK;
}

ig_status ig_pg_init_ucx(int rank, int world, const void *const *addrs, const size_t *lens,
                         const ig_pg_opts *opts, ig_pg **out) {
    IG_CHECK(out && addrs && lens, "pg_init_ucx: NULL argument");
    IG_CHECK(world >= 1 && world <= 65536 && rank >= 0 && rank < world,
             "pg_init_ucx: rank %d of world %d (1 to 65536 ranks)", rank, world);
    for (int i = 0; i < world; i++)
        IG_CHECK(addrs[i] && lens[i], "pg_init_ucx: no address for rank %d", i);
    *out = NULL;
    ig_pg_opts o = IG_PG_OPTS_INIT;
    if (opts) o = *opts;
    IG_CHECK(o.timeout_s > 0, "pg_init_ucx: timeout %g s is not positive", o.timeout_s);
    o.backend = IG_BACKEND_UCX;
    o.no_abort_on_timeout = true; /* a timeout aborts the group only */
    ig_pg *pg = pg_alloc(&o);
    if (!pg) return ig_last_status();
    snprintf(pg->name, sizeof pg->name, "ucx");
    pg->rank = rank;
    pg->size = world;
    ig_status st = ig__ucx_init(pg, addrs, lens);
    if (st != IG_OK) {
        pg_dealloc(pg);
        return st;
    }
    st = pg_start(pg);
    if (st != IG_OK) {
        pg_destroy(pg);
        return st;
    }
    st = ig_pg_barrier(pg); /* every rank is there and reachable */
    if (st != IG_OK) {
        char err[512];
        snprintf(err, sizeof err, "%s", ig_last_error());
        ig_pg_free(pg);
        return ig__error(st, "pg_init_ucx: %s", err);
    }
    *out = pg;
    return IG_OK;
}

ig_status ig_pg_init_nccl_id(int rank, int world, const void *id, size_t len, int device,
                            const ig_pg_opts *opts, ig_pg **out) {
    IG_CHECK(out && id, "pg_init_nccl_id: NULL argument");
    IG_CHECK(world >= 1 && world <= 65536 && rank >= 0 && rank < world,
             "pg_init_nccl_id: rank %d of world %d (1 to 65536 ranks)", rank, world);
    *out = NULL;
    ig_pg_opts o = IG_PG_OPTS_INIT;
    if (opts) o = *opts;
    IG_CHECK(o.timeout_s > 0, "pg_init_nccl_id: timeout %g s is not positive", o.timeout_s);
#ifndef IG_HAVE_NCCL
    (void)len, (void)device;
    return ig__error(IG_ERR_UNSUPPORTED, "pg_init_nccl_id: this build has no NCCL");
#else
    o.backend = IG_BACKEND_NCCL;
    o.no_abort_on_timeout = true; /* no MPI to end the job: a timeout aborts the group only */
    ig_pg *pg = pg_alloc(&o);
    if (!pg) return ig_last_status();
    snprintf(pg->name, sizeof pg->name, "nccl");
    pg->rank = rank;
    pg->size = world;
    pg->nccl_only = true;
    ig_status st = ig__nccl_init_id(pg, device, id, len);
    if (st != IG_OK) {
        char err[512];
        snprintf(err, sizeof err, "%s", ig_last_error());
        pg_dealloc(pg);
        return ig__error(st, "pg_init_nccl_id: %s", err);
    }
    st = pg_start(pg);
    if (st != IG_OK) {
        pg_destroy(pg);
        return st;
    }
    *out = pg;
    return IG_OK;
#endif
}

#ifndef IG_HAVE_NCCL
ig_status ig_pg_nccl_unique_id(void *out, size_t cap, size_t *len) {
    IG_CHECK(out && len, "pg_nccl_unique_id: NULL argument");
    (void)cap;
    *len = 0;
    return ig__error(IG_ERR_UNSUPPORTED, "pg_nccl_unique_id: this build has no NCCL");
}
#endif

ig_status ig_pg_new_subgroup(ig_pg *parent, int n, const int *ranks, ig_pg **out) {
    IG_CHECK(parent && ranks && out, "pg_new_subgroup: NULL argument");
    IG_CHECK(n >= 1 && n <= parent->size, "pg_new_subgroup: %d ranks of group %s of %d", n,
             parent->name, parent->size);
    for (int i = 0; i < n; i++) {
        IG_CHECK(ranks[i] >= 0 && ranks[i] < parent->size,
                 "pg_new_subgroup: rank %d outside group %s of %d", ranks[i], parent->name,
                 parent->size);
        for (int j = 0; j < i; j++)
            IG_CHECK(ranks[j] != ranks[i], "pg_new_subgroup: rank %d listed twice", ranks[i]);
    }
    *out = NULL;
    if (parent->ucx || parent->nccl_only)
        return ig__error(IG_ERR_UNSUPPORTED, "pg_new_subgroup: group %s is a %s group, which has "
                                             "no subgroups",
                         parent->name, parent->ucx ? "UCX" : "unique-id NCCL");
    ig_pg *sub = pg_alloc(&parent->opts);
    if (!sub) return ig_last_status();
    int len = snprintf(sub->name, sizeof sub->name, "%s/[", parent->name);
    for (int i = 0; i < n && len < (int)sizeof sub->name; i++)
        len += snprintf(sub->name + len, sizeof sub->name - (size_t)len, "%s%d", i ? "," : "",
                        ranks[i]);
    if (len < (int)sizeof sub->name) snprintf(sub->name + len, sizeof sub->name - (size_t)len, "]");
    ig__comm_op o = {.kind = IG__OP_SUBGROUP, .device = IG_CPU, .n_ranks = n, .ranks = ranks,
                     .sub = sub};
    snprintf(o.what, sizeof o.what, "new_subgroup of %d ranks", n);
    ig_status st = issue(parent, &o, NULL);
    if (st != IG_OK || sub->size == 0) { /* failed, or not a member */
        if (st == IG_OK) pg_dealloc(sub);
        /* on failure the subgroup op may still be running: leave sub allocated */
        return st;
    }
#ifdef IG_HAVE_NCCL
    if (parent->nccl) st = ig__nccl_init(sub, ig__nccl_device(parent));
#endif
    if (st == IG_OK) st = pg_start(sub);
    if (st != IG_OK) {
        pg_destroy(sub);
        return st;
    }
    *out = sub;
    return IG_OK;
}

int ig_pg_rank(const ig_pg *pg) { return pg->rank; }
int ig_pg_size(const ig_pg *pg) { return pg->size; }
ig_backend ig_pg_backend(const ig_pg *pg) { return pg->opts.backend; }

int ig_pg_device(const ig_pg *pg) {
#ifdef IG_HAVE_NCCL
    if (pg->nccl) return ig__nccl_device(pg);
#endif
    return -1;
}

void ig_pg_free(ig_pg *pg) {
    if (!pg) return;
    if (!ig__pg_aborted(pg)) {
        ig__comm_op o = {.kind = IG__OP_FLUSH, .device = IG_CPU};
        snprintf(o.what, sizeof o.what, "free (completing posted sends)");
        ig_status st = issue(pg, &o, NULL);
        if (st != IG_OK) fprintf(stderr, "ignis: pg_free of group %s: %s\n", pg->name, ig_last_error());
    }
    pthread_mutex_lock(&pg->mu);
    pg->stop = true;
    pthread_cond_signal(&pg->wake);
    pthread_mutex_unlock(&pg->mu);
    /* An aborted group's thread may be stuck in a collective that never ends:
     * give it the timeout, then leave it (and the group) be. */
    struct timespec dl = deadline(CLOCK_REALTIME, pg->opts.timeout_s);
    if (pthread_timedjoin_np(pg->thread, NULL, &dl) != 0) {
        fprintf(stderr, "ignis: pg_free: group %s's communication thread is stuck; left running\n",
                pg->name);
        pthread_detach(pg->thread);
        return;
    }
    pg_destroy(pg);
}

/* ---- the launcher's environment ---- */

/* Parses the integer variable `name` into *v within [lo, hi]; false and the
 * last error naming it when missing or malformed. */
static bool env_int(const char *name, int lo, int hi, int *v) {
    const char *s = getenv(name);
    if (!s || !*s) {
        ig__error(IG_ERR_FORMAT, "dist_env_detect: %s is not set", name);
        return false;
    }
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *end || x < lo || x > hi) {
        ig__error(IG_ERR_FORMAT, "dist_env_detect: %s=\"%s\" is not an integer in [%d, %d]", name,
                  s, lo, hi);
        return false;
    }
    *v = (int)x;
    return true;
}

bool ig_dist_env_detect(ig_dist_env *env) {
    IG_CHECK(env, "dist_env_detect: NULL env");
    static const struct {
        const char *source, *rank, *world, *local;
    } launchers[] = {
        {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
        {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
        {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
    };
    *env = (ig_dist_env){.rank = 0, .world = 1, .local_rank = 0, .source = "none"};
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++) {
        if (!getenv(launchers[i].rank)) continue;
        ig_dist_env e = {.source = launchers[i].source};
        if (!env_int(launchers[i].world, 1, INT_MAX, &e.world) ||
            !env_int(launchers[i].rank, 0, e.world - 1, &e.rank) ||
            !env_int(launchers[i].local, 0, e.world - 1, &e.local_rank))
            return false;
        const char *addr = getenv("MASTER_ADDR");
        if (addr) {
            if (strlen(addr) >= sizeof e.master_addr) {
                ig__error(IG_ERR_FORMAT, "dist_env_detect: MASTER_ADDR is over %zu characters",
                          sizeof e.master_addr - 1);
                return false;
            }
            strcpy(e.master_addr, addr);
        }
        if (getenv("MASTER_PORT") && !env_int("MASTER_PORT", 1, 65535, &e.master_port))
            return false;
        *env = e;
        return true;
    }
    return false;
}

/* ---- bf16 / f16 through f32, for backends without a 16-bit float type ---- */

bool ig__comm_staged(ig_dtype t) { return t == IG_BF16 || t == IG_F16; }

float *ig__comm_to_f32(const void *src, int64_t n, ig_dtype t) {
    float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
    const uint16_t *h = src;
    for (int64_t i = 0; f && i < n; i++)
        f[i] = t == IG_BF16 ? ig_bf16_to_f32(h[i]) : ig_f16_to_f32(h[i]);
    return f;
}

void ig__comm_from_f32(void *dst, const float *f, int64_t n, ig_dtype t) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = t == IG_BF16 ? ig_f32_to_bf16(f[i]) : ig_f32_to_f16(f[i]);
}

/* p[0..n) /= k (integers truncate): AVG after a SUM, for the CPU backends. */
void ig__comm_divide(void *p, int64_t n, ig_dtype t, int k) {
#define DIV(type)                                                                 \
    for (int64_t i = 0; i < n; i++) ((type *)p)[i] = (type)(((type *)p)[i] / k); \
    break
    switch (t) {
    case IG_F32: DIV(float);
    case IG_F64: DIV(double);
    case IG_I32: DIV(int32_t);
    case IG_I64: DIV(int64_t);
    case IG_U8: DIV(uint8_t);
    default: DIV(uint16_t);
    }
#undef DIV
}

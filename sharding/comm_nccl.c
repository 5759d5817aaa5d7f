/* sharding/comm_nccl.c: the NCCL backend of process groups: the CUDA tensors
 * of a group made with IG_BACKEND_NCCL (its CPU tensors go through MPI), and
 * every tensor of a group bootstrapped from a caller's unique id
 * (ig_pg_init_nccl_id: ranks started by workers, no MPI). Built only with
 * CUDA and NCCL.
 *
 * Invariants:
 *  - the NCCL communicator comes from one unique id: rank 0's, broadcast over
 *    the group's MPI communicator (ig_pg_init_world), or the caller's
 *    (ig_pg_init_nccl_id); it is made on the issuing thread, before the
 *    communication thread starts; it lives on one device, that of its tensors;
 *  - the communicator is nonblocking: creation, launches and ncclGroupEnd may
 *    return ncclInProgress, and are then polled (settle) against the group's
 *    deadline, so a peer that never comes fails the group instead of hanging it;
 *  - every op runs on the group's own non-blocking stream, after an event
 *    recorded on the issuing thread's current stream at issue (so it sees the
 *    kernels that produced its data); it completes when the communication
 *    thread has seen that stream drain, polling against the group's deadline
 *    and NCCL's asynchronous error: the caller's later kernels and frees of
 *    the tensor are then safe;
 *  - a CPU op of a group without MPI goes through a device copy of its data
 *    on the group's stream; the copy back waits for the stream to drain first;
 *  - on a timeout or an abort the communicator is aborted (ncclCommAbort)
 *    and never used again;
 *  - NVLink multicast (NVLS) is never asked for: no cuMulticast calls, and
 *    NCCL_NVLS_ENABLE=0 in the environment is respected as given. */
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "ignis/cuda.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda.h"
#include "sharding/comm_impl.h"

struct ig__nccl {
    ncclComm_t comm; /* NULL once aborted */
    ig_cuda_stream *stream;
    cudaStream_t s;
    int device;
};

static ig_status nck(ncclResult_t r, ncclComm_t comm, const char *what, const char *call) {
    if (r == ncclSuccess) return IG_OK;
    return ig__error(IG_ERR_COMM, "%s: %s: %s (%s)", what, call, ncclGetErrorString(r),
                     comm ? ncclGetLastError(comm) : "");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ig__nccl_device(const ig_pg *pg) { return pg->nccl->device; }

static void abort_comm(ig__nccl *nc) {
    if (!nc->comm) return;
    ncclCommAbort(nc->comm);
    nc->comm = NULL;
}

/* Waits until the call that returned r on nc's (nonblocking) communicator is
 * through: polls NCCL's asynchronous state while it says ncclInProgress, up
 * to the group's timeout; on the timeout, or the group's abort, aborts the
 * communicator and the group. */
static ig_status settle(ig_pg *pg, ig__nccl *nc, ncclResult_t r, const char *what, const char *call) {
    double t0 = now_s();
    for (unsigned spin = 1; r == ncclInProgress && nc->comm; spin++) {
        sched_yield();
        ncclCommGetAsyncError(nc->comm, &r);
        if (spin % 64) continue;
        double waited = now_s() - t0;
        if (ig__pg_aborted(pg) || waited > pg->opts.timeout_s) {
            abort_comm(nc);
            ig__pg_timed_out(pg, what, waited); /* no-op once aborted */
            return ig__error(IG_ERR_TIMEOUT, "%s: %s: group %s aborted after %.1f s", what, call,
                             pg->name, waited);
        }
    }
    return nck(r, nc->comm, what, call);
}

ig_status ig_pg_nccl_unique_id(void *out, size_t cap, size_t *len) {
    IG_CHECK(out && len, "pg_nccl_unique_id: NULL argument");
    *len = 0;
    if (cap < sizeof(ncclUniqueId))
        return ig__error(IG_ERR_INVALID, "pg_nccl_unique_id: %zu bytes of room; an NCCL unique id takes %zu",
                         cap, sizeof(ncclUniqueId));
    ncclUniqueId id;
    ig_status st = nck(ncclGetUniqueId(&id), NULL, "pg_nccl_unique_id", "ncclGetUniqueId");
    if (st != IG_OK) return st;
    memcpy(out, &id, sizeof id);
    *len = sizeof id;
    return IG_OK;
}

ig_status ig__nccl_init_id(ig_pg *pg, int device, const void *id, size_t len) {
    if (len != sizeof(ncclUniqueId))
        return ig__error(IG_ERR_FORMAT, "group %s: an NCCL unique id of %zu bytes; expected %zu (from "
                         "ig_pg_nccl_unique_id)", pg->name, len, sizeof(ncclUniqueId));
    int count = ig_cuda_device_count();
    if (count == 0)
        return ig__error(IG_ERR_NO_DEVICE, "group %s: the NCCL backend needs a CUDA device",
                         pg->name);
    if (device < 0 || device >= count)
        return ig__error(IG_ERR_NO_DEVICE, "group %s: rank %d: no CUDA device %d (this process sees %d)",
                         pg->name, pg->rank, device, count);
    ig_status st = ig_cuda_set_device(device);
    if (st != IG_OK) return st;
    ig__nccl *nc = calloc(1, sizeof *nc);
    if (!nc) return ig__error(IG_ERR_NOMEM, "group %s: out of host memory", pg->name);
    nc->device = device;
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    char what[96];
    snprintf(what, sizeof what, "creating the NCCL communicator on cuda:%d", device);
    ncclResult_t r = ncclCommInitRankConfig(&nc->comm, pg->size, uid, pg->rank, &cfg);
    st = settle(pg, nc, r, what, "ncclCommInitRankConfig");
    if (st == IG_OK) {
        nc->stream = ig_cuda_stream_new(device);
        if (!nc->stream) st = ig_last_status();
    }
    if (st != IG_OK) {
        abort_comm(nc);
        free(nc);
        return st;
    }
    nc->s = ig_cuda_stream_handle(nc->stream);
    pg->nccl = nc;
    return IG_OK;
}

#ifdef IG_HAVE_MPI
ig_status ig__nccl_init(ig_pg *pg, int device) {
    int count = ig_cuda_device_count();
    if (count == 0)
        return ig__error(IG_ERR_NO_DEVICE, "group %s: the NCCL backend needs a CUDA device",
                         pg->name);
    if (device < 0) {
        MPI_Comm local;
        int local_rank = 0;
        if (MPI_Comm_split_type(pg->comm, MPI_COMM_TYPE_SHARED, pg->rank, MPI_INFO_NULL,
                                &local) != MPI_SUCCESS)
            return ig__error(IG_ERR_COMM, "group %s: MPI_Comm_split_type failed", pg->name);
        MPI_Comm_rank(local, &local_rank);
        MPI_Comm_free(&local);
        device = local_rank % count;
    }
    /* rank 0's unique id, and whether it got one (else every rank fails) */
    struct {
        ncclUniqueId id;
        int ok;
    } boot = {.ok = 1};
    size_t len = 0;
    ig_status st = IG_OK;
    if (pg->rank == 0) {
        st = ig_pg_nccl_unique_id(&boot.id, sizeof boot.id, &len);
        boot.ok = st == IG_OK;
    }
    if (MPI_Bcast(&boot, sizeof boot, MPI_BYTE, 0, pg->comm) != MPI_SUCCESS)
        st = ig__error(IG_ERR_COMM, "group %s: MPI_Bcast of the NCCL id failed", pg->name);
    else if (!boot.ok && st == IG_OK)
        st = ig__error(IG_ERR_COMM, "group %s: rank 0 could not make an NCCL id", pg->name);
    return st == IG_OK ? ig__nccl_init_id(pg, device, &boot.id, sizeof boot.id) : st;
}
#else
ig_status ig__nccl_init(ig_pg *pg, int device) {
    (void)device;
    return ig__error(IG_ERR_UNSUPPORTED, "group %s: this build has no MPI to bootstrap NCCL through "
                     "(ig_pg_init_nccl_id takes the unique id from the caller)", pg->name);
}
#endif

static bool nccl_type(ig_dtype t, ncclDataType_t *out) {
    switch (t) {
    case IG_F32: *out = ncclFloat32; return true;
    case IG_F64: *out = ncclFloat64; return true;
    case IG_BF16: *out = ncclBfloat16; return true;
    case IG_F16: *out = ncclFloat16; return true;
    case IG_I32: *out = ncclInt32; return true;
    case IG_I64: *out = ncclInt64; return true;
    case IG_U8: *out = ncclUint8; return true;
    default: return false;
    }
}

ig_status ig__nccl_issue(ig_pg *pg, ig__comm_op *op) {
    ncclDataType_t t;
    if (!nccl_type(op->dtype, &t))
        return ig__error(IG_ERR_UNSUPPORTED, "%s: NCCL has no %s type", op->what,
                         ig_dtype_name(op->dtype));
    ig_status st = ig_cuda_set_device(op->device.index);
    if (st != IG_OK) return st;
    ig_cuda_stream *cur = ig_cuda_stream_current(op->device.index);
    if (!cur) return ig_last_status();
    cudaStream_t s = ig_cuda_stream_handle(cur);
    size_t bytes = (size_t)op->count * ig_dtype_size(op->dtype);
    if (op->kind == IG__OP_SEND && bytes) {
        IG__TRY(cudaMallocAsync(&op->buf, bytes, s));
        st = IG__CK(cudaMemcpyAsync(op->buf, op->in, bytes, cudaMemcpyDeviceToDevice, s));
        if (st != IG_OK) {
            ig__nccl_release(op);
            return st;
        }
    }
    cudaEvent_t e;
    st = IG__CK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    if (st == IG_OK) {
        op->event = e;
        st = IG__CK(cudaEventRecord(e, s));
    }
    if (st != IG_OK) ig__nccl_release(op);
    return st;
}

void ig__nccl_release(ig__comm_op *op) {
    if (op->event) (void)IG__CK(cudaEventDestroy((cudaEvent_t)op->event));
    if (op->buf) (void)IG__CK(cudaFree(op->buf));
    op->event = op->buf = NULL;
}

/* Communication thread: the group's device current, and op's stream order:
 * after the issuing stream's event. */
static ig_status enter(ig_pg *pg, ig__comm_op *op) {
    ig__nccl *nc = pg->nccl;
    ig_status st = ig_cuda_set_device(nc->device);
    if (st != IG_OK) return st;
    if (op->event) {
        st = IG__CK(cudaStreamWaitEvent(nc->s, (cudaEvent_t)op->event, 0));
        (void)IG__CK(cudaEventDestroy((cudaEvent_t)op->event)); /* released once it fired */
        op->event = NULL;
        if (st != IG_OK) return st;
    }
    if (!nc->comm)
        return ig__error(IG_ERR_COMM, "%s: group %s's NCCL communicator was aborted", op->what,
                         pg->name);
    return IG_OK;
}

/* Polls the group's stream until it drains, NCCL reports an error, the group
 * is aborted, or the deadline passes (then the group and job are aborted). */
static ig_status drain(ig_pg *pg, const char *what) {
    ig__nccl *nc = pg->nccl;
    double t0 = now_s();
    for (unsigned spin = 1;; spin++) {
        cudaError_t e = cudaStreamQuery(nc->s);
        if (e == cudaSuccess) return IG_OK;
        if (e != cudaErrorNotReady) return IG__CK(e);
        if (spin % 64) continue;
        ncclResult_t async = ncclSuccess;
        if (nc->comm) ncclCommGetAsyncError(nc->comm, &async);
        if (async != ncclSuccess && async != ncclInProgress) {
            ig_status st = nck(async, nc->comm, what, "NCCL asynchronous error");
            abort_comm(nc);
            return st;
        }
        double waited = now_s() - t0;
        if (ig__pg_aborted(pg) || waited > pg->opts.timeout_s) {
            abort_comm(nc);
            ig__pg_timed_out(pg, what, waited); /* no-op once aborted */
            return ig__error(IG_ERR_TIMEOUT, "%s: group %s aborted after %.1f s", what, pg->name,
                             waited);
        }
        sched_yield();
    }
}

/* Enqueues one op on the group's stream (FLUSH: nothing). */
static ig_status launch(ig_pg *pg, ig__comm_op *op) {
    ig__nccl *nc = pg->nccl;
    ncclDataType_t t = ncclFloat32;
    nccl_type(op->dtype, &t);
    ncclRedOp_t r = op->red == IG_REDUCE_MAX ? ncclMax : op->red == IG_REDUCE_AVG ? ncclAvg : ncclSum;
    size_t n = (size_t)op->count;
    ncclComm_t c = nc->comm;
    ncclResult_t res;
    const char *call;
    switch (op->kind) {
    case IG__OP_ALL_REDUCE:
        res = ncclAllReduce(op->in, op->out, n, t, r, c, nc->s), call = "ncclAllReduce";
        break;
    case IG__OP_BROADCAST:
        res = ncclBroadcast(op->in, op->out, n, t, op->peer, c, nc->s), call = "ncclBroadcast";
        break;
    case IG__OP_ALL_GATHER:
        res = ncclAllGather(op->in, op->out, n, t, c, nc->s), call = "ncclAllGather";
        break;
    case IG__OP_REDUCE_SCATTER:
        res = ncclReduceScatter(op->in, op->out, n, t, r, c, nc->s), call = "ncclReduceScatter";
        break;
    case IG__OP_SEND: res = ncclSend(op->buf, n, t, op->peer, c, nc->s), call = "ncclSend"; break;
    case IG__OP_RECV: res = ncclRecv(op->out, n, t, op->peer, c, nc->s), call = "ncclRecv"; break;
    default: return IG_OK;
    }
    return settle(pg, nc, res, op->what, call);
}

ig_status ig__nccl_exec(ig_pg *pg, ig__comm_op *const *ops, int n) {
    ig__nccl *nc = pg->nccl;
    ig_status st = IG_OK;
    if (ops[0]->kind == IG__OP_SEND || ops[0]->kind == IG__OP_RECV) {
        for (int i = 0; i < n && st == IG_OK; i++) st = enter(pg, ops[i]);
        if (st != IG_OK) return st;
        ncclGroupStart();
        for (int i = 0; i < n && st == IG_OK; i++) st = launch(pg, ops[i]);
        ig_status st2 = settle(pg, nc, ncclGroupEnd(), ops[0]->what, "ncclGroupEnd");
        if (st == IG_OK) st = st2;
        for (int i = 0; i < n; i++) { /* stream-ordered after the sends that read them */
            if (ops[i]->buf) (void)IG__CK(cudaFreeAsync(ops[i]->buf, nc->s));
            ops[i]->buf = NULL;
        }
    } else {
        for (int i = 0; i < n && st == IG_OK; i++) {
            st = enter(pg, ops[i]);
            if (st == IG_OK) st = launch(pg, ops[i]);
        }
    }
    return st != IG_OK ? st : drain(pg, ops[n - 1]->what);
}

/* Bytes of the (in, out) data of a CPU op, per kind. */
static void host_sizes(const ig_pg *pg, const ig__comm_op *op, size_t *in, size_t *out) {
    size_t b = (size_t)op->count * ig_dtype_size(op->dtype);
    *in = *out = b;
    if (op->kind == IG__OP_ALL_GATHER) *out = b * (size_t)pg->size;
    if (op->kind == IG__OP_REDUCE_SCATTER) *in = b * (size_t)pg->size;
}

ig_status ig__nccl_exec_host(ig_pg *pg, ig__comm_op *op) {
    ig__nccl *nc = pg->nccl;
    if (op->kind == IG__OP_FLUSH) return IG_OK; /* the device part ran (ig__nccl_exec) */
    if (op->kind != IG__OP_ALL_REDUCE && op->kind != IG__OP_BROADCAST &&
        op->kind != IG__OP_ALL_GATHER && op->kind != IG__OP_REDUCE_SCATTER &&
        op->kind != IG__OP_BARRIER)
        return ig__error(IG_ERR_UNSUPPORTED, "%s: group %s has no MPI (NCCL from a unique id): CPU "
                         "tensors take collectives only", op->what, pg->name);
    ig__comm_op d = *op; /* the same op on device copies */
    d.event = NULL;
    if (op->kind == IG__OP_BARRIER) /* an all-reduce of one byte */
        d.kind = IG__OP_ALL_REDUCE, d.dtype = IG_U8, d.count = 1, d.red = IG_REDUCE_SUM;
    ncclDataType_t t;
    if (!nccl_type(d.dtype, &t))
        return ig__error(IG_ERR_UNSUPPORTED, "%s: NCCL has no %s type", op->what,
                         ig_dtype_name(d.dtype));
    ig_status st = enter(pg, &d);
    if (st != IG_OK) return st;
    size_t in_b, out_b;
    host_sizes(pg, &d, &in_b, &out_b);
    bool in_place = op->kind != IG__OP_ALL_GATHER && op->kind != IG__OP_REDUCE_SCATTER;
    size_t in_room = (in_b + 255) & ~(size_t)255;
    char *dev = NULL;
    st = IG__CK(cudaMallocAsync((void **)&dev, in_room + (in_place ? 0 : out_b) + 1, nc->s));
    if (st != IG_OK) return st;
    d.in = dev;
    d.out = in_place ? dev : dev + in_room;
    if (op->kind == IG__OP_BARRIER) st = IG__CK(cudaMemsetAsync(dev, 0, 1, nc->s));
    else if (in_b) st = IG__CK(cudaMemcpyAsync(dev, op->in, in_b, cudaMemcpyHostToDevice, nc->s));
    if (st == IG_OK) st = launch(pg, &d);
    if (st == IG_OK) st = drain(pg, op->what); /* before any blocking copy back */
    if (st == IG_OK && op->kind != IG__OP_BARRIER && out_b) {
        st = IG__CK(cudaMemcpyAsync(op->out, d.out, out_b, cudaMemcpyDeviceToHost, nc->s));
        if (st == IG_OK) st = IG__CK(cudaStreamSynchronize(nc->s));
    }
    (void)IG__CK(cudaFreeAsync(dev, nc->s)); /* stream-ordered: after the op, even one that never ends */
    return st;
}

void ig__nccl_free(ig_pg *pg) {
    ig__nccl *nc = pg->nccl;
    (void)ig_cuda_set_device(nc->device);
    if (ig__pg_aborted(pg)) { /* its stream may never drain: left as it is */
        abort_comm(nc);
    } else {
        ig_status st = nc->comm ? settle(pg, nc, ncclCommFinalize(nc->comm), pg->name, "ncclCommFinalize")
                                : IG_OK;
        if (st != IG_OK) fprintf(stderr, "ignis: pg_free: %s\n", ig_last_error());
        if (st == IG_OK && nc->comm) ncclCommDestroy(nc->comm);
        else abort_comm(nc);
        ig_cuda_stream_free(nc->stream);
    }
    free(nc);
    pg->nccl = NULL;
}

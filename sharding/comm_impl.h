/* sharding/comm_impl.h: the insides of a process group, shared by comm.c (the
 * generic part: work queue, communication thread, deadlines, abort) and its
 * backends comm_mpi.c (CPU tensors, and the bootstrap of MPI and NCCL
 * groups), comm_nccl.c (CUDA tensors of an NCCL group; also the CPU tensors
 * of one bootstrapped from a caller's unique id, which has no MPI
 * communicator) and comm_ucx.c (CPU tensors of a UCX group, which has no MPI
 * communicator either).
 *
 * Invariants:
 *  - an op carries raw addresses and counts taken on the issuing thread; the
 *    communication thread never touches ig_tensor structs (not thread-safe);
 *  - a group's MPI communicator and NCCL communicator are used by its
 *    communication thread only, once that thread runs; before (creation) and
 *    after (free) by the issuing thread;
 *  - pg->mu guards the queue, the works' completion fields and the abort
 *    state; backends run ops without holding it. */
#ifndef IGNIS_SHARDING_COMM_IMPL_H
#define IGNIS_SHARDING_COMM_IMPL_H

#include <pthread.h>

#include "core/impl.h"
#include "ignis/comm.h"

#ifdef IG_HAVE_MPI
#include <mpi.h>
#endif

typedef enum ig__comm_kind {
    IG__OP_ALL_REDUCE,
    IG__OP_BROADCAST,
    IG__OP_ALL_GATHER,
    IG__OP_REDUCE_SCATTER,
    IG__OP_BARRIER,
    IG__OP_SEND,
    IG__OP_RECV,
    IG__OP_SUBGROUP, /* MPI_Comm_create on the parent: ordered with its collectives */
    IG__OP_FLUSH,    /* completes posted sends and queued device work (ig_pg_free) */
} ig__comm_kind;

typedef struct ig__comm_op {
    ig__comm_kind kind;
    ig_device device; /* CUDA: the NCCL backend runs it; CPU: MPI or UCX */
    ig_dtype dtype;
    void *in, *out;   /* in == out for all_reduce, broadcast, send, recv */
    /* Elements per rank: numel of the tensor (all_reduce, broadcast, send,
     * recv), of `in` (all_gather), of `out` (reduce_scatter). */
    int64_t count;
    ig_reduce_op red;
    int peer; /* root (broadcast), dst (send), src (recv) */
    int tag;
    void *buf;   /* send: a private copy of the data (host for MPI, device for NCCL) */
    void *event; /* NCCL: cudaEvent_t recorded on the issuing stream */
    int n_ranks;      /* subgroup: the parent ranks listed, and the new group */
    const int *ranks;
    ig_pg *sub;
    char what[96]; /* "all_reduce(sum) of [4] f32 cpu", for messages */
} ig__comm_op;

struct ig_work {
    ig_pg *pg;
    ig__comm_op op;
    ig_work *next; /* queue link */
    ig_status status;
    bool done;
    bool abandoned; /* its waiter timed out: the communication thread frees it */
    char err[512];
};

typedef struct ig__nccl ig__nccl;
typedef struct ig__ucx ig__ucx;
typedef struct ig__mpi_send ig__mpi_send;

struct ig_pg {
    int rank, size;
    ig_pg_opts opts;
    char name[48];
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the communication thread: queue or stop changed */
    pthread_cond_t done; /* waiters: some work completed */
    ig_work *head, *tail;
    bool stop;
    ig_status abort_status; /* IG_OK while usable */
    char abort_why[256];
#ifdef IG_HAVE_MPI
    MPI_Comm comm;
#endif
    ig__mpi_send *sends; /* posted MPI sends not yet known complete */
    ig__nccl *nccl;      /* NCCL backend state; NULL for MPI groups */
    bool nccl_only;      /* NCCL from a caller's id (ig_pg_init_nccl_id): no MPI communicator */
    ig__ucx *ucx;        /* UCX backend state (no MPI communicator); else NULL */
};

/* comm.c: true once the group is aborted (any thread). */
bool ig__pg_aborted(ig_pg *pg);
/* comm.c: aborts the group after `what` waited `waited` seconds: one line to
 * stderr, pending work fails with IG_ERR_TIMEOUT, and the job ends
 * (MPI_Abort) unless opts.no_abort_on_timeout. Idempotent. */
void ig__pg_timed_out(ig_pg *pg, const char *what, double waited);

/* ---- comm_mpi.c (without MPI: failing with IG_ERR_UNSUPPORTED) ---- */
/* Initializes MPI when needed (MPI_THREAD_MULTIPLE) and gives pg a dup of
 * MPI_COMM_WORLD; sets rank and size. */
ig_status ig__mpi_init_world(ig_pg *pg);
/* Runs a CPU op on the communication thread (blocking MPI calls). */
ig_status ig__mpi_exec(ig_pg *pg, ig__comm_op *op);
/* MPI_Abort on the group's communicator: the whole job ends. */
void ig__mpi_abort(ig_pg *pg);
/* Frees the communicator; MPI is finalized with the last group, if ignis
 * initialized it. */
void ig__mpi_free(ig_pg *pg);

/* ---- comm_ucx.c (without UCX: failing with IG_ERR_UNSUPPORTED) ---- */
/* Takes the worker of ig_pg_ucx_address and connects it to every other
 * rank's address (pg->rank and pg->size set); sets pg->ucx. */
ig_status ig__ucx_init(ig_pg *pg, const void *const *addrs, const size_t *lens);
/* Runs a CPU op on the communication thread, polling against its deadline. */
ig_status ig__ucx_exec(ig_pg *pg, ig__comm_op *op);
/* Communication thread, with nothing queued: progresses the worker (posted
 * sends, transport buffers); returns the seconds to wait before the next
 * call, 0 for none needed. */
double ig__ucx_idle(ig_pg *pg);
/* Closes the endpoints and frees the worker (thread not running). */
void ig__ucx_free(ig_pg *pg);

/* ---- comm_nccl.c (built with CUDA and NCCL only) ---- */
#ifdef IG_HAVE_NCCL
/* Collective over pg->comm: rank 0's unique id broadcast over MPI, then
 * the communicator on `device` (-1: the node-local rank modulo the device
 * count), as ig__nccl_init_id. */
ig_status ig__nccl_init(ig_pg *pg, int device);
/* Collective over the pg->size ranks given the same id (len bytes, from
 * ig_pg_nccl_unique_id; pg->rank and pg->size set): the communicator on
 * `device`, its creation bounded by the group's timeout. */
ig_status ig__nccl_init_id(ig_pg *pg, int device, const void *id, size_t len);
int ig__nccl_device(const ig_pg *pg);
/* Issuing thread: records op->event on the thread's current stream (after
 * copying a send's data to op->buf). */
ig_status ig__nccl_issue(ig_pg *pg, ig__comm_op *op);
/* Communication thread: enqueues n ops on the group's stream, each after
 * its op->event (sends and recvs: all of them as one NCCL group; otherwise
 * all collectives), then waits for the stream, polling against the
 * deadline. A CPU FLUSH op only waits. */
ig_status ig__nccl_exec(ig_pg *pg, ig__comm_op *const *ops, int n);
/* Frees what a CUDA op holds (its event, a send's copy). */
void ig__nccl_release(ig__comm_op *op);
/* Communication thread, a group with no MPI (nccl_only): runs a CPU op
 * through device memory (host -> device, the NCCL op, device -> host); a
 * barrier is an all-reduce of one byte. Sends and receives of CPU tensors:
 * IG_ERR_UNSUPPORTED. */
ig_status ig__nccl_exec_host(ig_pg *pg, ig__comm_op *op);
void ig__nccl_free(ig_pg *pg);
#endif

/* bf16 and f16 reduce through f32 where a backend has no 16-bit float type:
 * a malloc'ed f32 copy (NULL when out of memory) and the rounding back. */
bool ig__comm_staged(ig_dtype t);
float *ig__comm_to_f32(const void *src, int64_t n, ig_dtype t);
void ig__comm_from_f32(void *dst, const float *f, int64_t n, ig_dtype t);
/* p[0..n) /= k in place (integers truncate): AVG after a SUM. */
void ig__comm_divide(void *p, int64_t n, ig_dtype t, int k);

#endif

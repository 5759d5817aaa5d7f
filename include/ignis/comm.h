/* ignis/comm.h: process groups and their collectives (sharding/).
 *
 * A process group is a set of ranks that run collectives together. Backends:
 * MPI (CPU tensors; ranks started by mpirun / srun), NCCL (CUDA tensors;
 * its unique id bootstrapped through MPI by ig_pg_init_world, or given by the
 * caller to ig_pg_init_nccl_id: GPU ranks started by ignis workers, the id
 * relayed by the coordinator) and UCX (CPU tensors; ranks started by ignis
 * workers, their addresses relayed: ig_pg_init_ucx). Every
 * collective is issued on the group's communication thread, in the order
 * issued, so a call returns at once with a work handle and the caller goes on
 * (DDP overlaps backward with gradient all-reduces this way); with work ==
 * NULL the call waits.
 *
 * Timeouts: every wait that crosses processes has a deadline (the group's
 * timeout). When it passes, the group is aborted — pending and later work
 * fail with IG_ERR_TIMEOUT, and with MPI the whole job is torn down
 * (MPI_Abort) so that no rank is left hanging in a collective. A UCX group,
 * and an NCCL group from ig_pg_init_nccl_id, only abort themselves (their
 * ranks' supervisor ends the job).
 *
 * Tensors must be contiguous, of the same dtype and element count on every
 * rank, and must not be touched until their work completes. Threads: one
 * thread issues collectives on a group. */
#ifndef IGNIS_COMM_H
#define IGNIS_COMM_H

#include "ignis/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ig_reduce_op { IG_REDUCE_SUM, IG_REDUCE_AVG, IG_REDUCE_MAX, IG_REDUCE_OP_COUNT } ig_reduce_op;
typedef enum ig_backend {
    IG_BACKEND_MPI,
    IG_BACKEND_NCCL,
    IG_BACKEND_UCX, /* ig_pg_init_ucx only */
    IG_BACKEND_COUNT
} ig_backend;

/* Who this process is, from the launcher's environment: Open MPI
 * (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK), Slurm (SLURM_PROCID/NTASKS/LOCALID)
 * or torchrun (RANK/WORLD_SIZE/LOCAL_RANK, MASTER_ADDR/MASTER_PORT). */
typedef struct ig_dist_env {
    int rank, world, local_rank;
    char master_addr[256];
    int master_port;
    const char *source; /* "openmpi", "slurm", "torchrun" or "none" */
} ig_dist_env;

/* Fills env; returns false (world 1, rank 0, source "none") when no launcher
 * is seen. The first launcher whose rank variable is set is read; a missing
 * or malformed variable of it (not a number, rank outside [0, world), a port
 * outside 1..65535) also gives false, with env as for no launcher and the last
 * error (IG_ERR_FORMAT) naming the variable: a half-seen launcher is never
 * guessed at. MASTER_ADDR / MASTER_PORT are read for every launcher ("" and 0
 * when unset). */
bool ig_dist_env_detect(ig_dist_env *env);

typedef struct ig_pg_opts {
    ig_backend backend;
    double timeout_s; /* every collective's deadline; default 300 */
    /* Tests only: on a timeout, abort the group but not the job. */
    bool no_abort_on_timeout;
} ig_pg_opts;
#define IG_PG_OPTS_INIT {IG_BACKEND_MPI, 300.0, false}

typedef struct ig_pg ig_pg;
typedef struct ig_work ig_work;

/* The group of all ranks (initializes MPI when needed, also for NCCL, whose
 * bootstrap goes through MPI). opts NULL: IG_PG_OPTS_INIT. Collective. An
 * NCCL group uses CUDA device (node-local rank) % (device count), made the
 * calling thread's current device; its CPU tensors go through MPI. */
ig_status ig_pg_init_world(const ig_pg_opts *opts, ig_pg **out);
/* ---- UCX groups (ranks bootstrapped by their launcher, not by MPI) ----
 * Each rank calls ig_pg_ucx_address, publishes the address (the coordinator
 * relays them), and once it has every rank's, calls ig_pg_init_ucx. */

/* Starts this process's UCX worker for the next ig_pg_init_ucx (again the
 * same one until then) and gives its address: *blob (malloc'd, the caller
 * frees it) of *len bytes. */
ig_status ig_pg_ucx_address(void **blob, size_t *len);
/* The group of `world` ranks whose worker addresses are addrs[i] (lens[i]
 * bytes; addrs[rank] is this process's, from ig_pg_ucx_address): connects to
 * every peer and runs a first barrier (collective; bounded by the timeout).
 * opts NULL: IG_PG_OPTS_INIT; its backend is taken as IG_BACKEND_UCX, and a
 * timeout never ends the process (no_abort_on_timeout is implied). Takes the
 * worker of ig_pg_ucx_address (IG_ERR_STATE without one). CPU tensors only;
 * no subgroups. */
ig_status ig_pg_init_ucx(int rank, int world, const void *const *addrs, const size_t *lens,
                         const ig_pg_opts *opts, ig_pg **out);

/* ---- NCCL groups from a unique id (ranks bootstrapped by their launcher) ----
 * One rank calls ig_pg_nccl_unique_id and hands the id to every rank (the
 * coordinator relays it); each then calls ig_pg_init_nccl_id with it. */

/* A fresh NCCL unique id: *len bytes (128) written to out, which has room for
 * cap (IG_ERR_INVALID when too small). IG_ERR_UNSUPPORTED without NCCL;
 * IG_ERR_COMM when NCCL fails (its message). */
ig_status ig_pg_nccl_unique_id(void *out, size_t cap, size_t *len);
/* The group of `world` ranks that were given the same id (len bytes, from
 * ig_pg_nccl_unique_id: IG_ERR_FORMAT for another length), this process
 * being `rank` on CUDA device `device` (made the calling thread's current
 * device; IG_ERR_NO_DEVICE when there is no such device). Collective:
 * returns once every rank joined, or fails when the timeout passes first
 * (IG_ERR_TIMEOUT) or NCCL fails (IG_ERR_COMM, NCCL's message). opts NULL:
 * IG_PG_OPTS_INIT; its backend is taken as IG_BACKEND_NCCL, and a timeout
 * never ends the process (no_abort_on_timeout is implied). There is no MPI
 * underneath: CPU tensors take collectives and barriers (through a device
 * copy), not send / recv; no subgroups (IG_ERR_UNSUPPORTED). */
ig_status ig_pg_init_nccl_id(int rank, int world, const void *id, size_t len, int device,
                            const ig_pg_opts *opts, ig_pg **out);

/* A group of the listed ranks of parent (collective over parent: every rank
 * calls it; ranks not listed get *out = NULL). Its rank i is parent rank
 * ranks[i]; it takes the parent's options and device. */
ig_status ig_pg_new_subgroup(ig_pg *parent, int n, const int *ranks, ig_pg **out);
int ig_pg_rank(const ig_pg *pg);
int ig_pg_size(const ig_pg *pg);
ig_backend ig_pg_backend(const ig_pg *pg);
/* The CUDA device of an NCCL group; -1 for MPI and UCX. */
int ig_pg_device(const ig_pg *pg);
/* Waits (up to the timeout) for the group's pending work, then frees it. MPI
 * is finalized with the last group freed, if ignis initialized it: free
 * subgroups before the world group, and make no group after that. A group
 * whose communication thread stays stuck after an abort (only possible with
 * no_abort_on_timeout) is left allocated rather than waited for. NULL is
 * allowed. */
void ig_pg_free(ig_pg *pg);
/* Aborts the group: pending work fails; with MPI the job ends (MPI_Abort). */
void ig_pg_abort(ig_pg *pg, const char *why);

/* ---- collectives (work NULL: wait for completion) ---- */
/* In place; AVG divides by the group size. */
ig_status ig_pg_all_reduce(ig_pg *pg, ig_tensor *t, ig_reduce_op op, ig_work **work);
ig_status ig_pg_broadcast(ig_pg *pg, ig_tensor *t, int root, ig_work **work);
/* out has size * numel(in) elements: rank r's in lands at [r * n, (r+1) * n). */
ig_status ig_pg_all_gather(ig_pg *pg, ig_tensor *out, ig_tensor *in, ig_work **work);
/* in has size * numel(out) elements; out receives the reduction of block rank. */
ig_status ig_pg_reduce_scatter(ig_pg *pg, ig_tensor *out, ig_tensor *in, ig_reduce_op op,
                               ig_work **work);
ig_status ig_pg_barrier(ig_pg *pg);
/* Point to point, matched by (peer, tag), tag in [0, 32767], peer != own
 * rank. send queues the message from a private copy of t (MPI: host memory;
 * NCCL: device memory, copied on the caller's stream) and returns without
 * waiting for the receiver, so a ring of send-then-recv on every rank does
 * not deadlock; a failure to deliver it fails a later call (or the timeout
 * aborts the group). With NCCL, a send waits up to 10 ms on the
 * communication thread for the sends and recvs issued right after it, and
 * goes out with them as one NCCL group (NCCL ignores tags). recv waits for
 * the data. */
ig_status ig_pg_send(ig_pg *pg, ig_tensor *t, int dst, int tag);
ig_status ig_pg_recv(ig_pg *pg, ig_tensor *t, int src, int tag);

/* Waits for the work (up to the group's timeout, counted from this call) and
 * frees the handle. CUDA work has then completed on the device. */
ig_status ig_work_wait(ig_work *w);
/* True once the work has completed (its status then comes from wait). */
bool ig_work_test(ig_work *w);

#ifdef __cplusplus
}
#endif
#endif

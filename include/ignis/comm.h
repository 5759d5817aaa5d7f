/* ignis/comm.h: process groups and their collectives (sharding/).
 *
 * A process group is a set of ranks that run collectives together. Backends:
 * MPI (CPU tensors; ranks started by mpirun / srun) and NCCL (CUDA tensors;
 * its unique id bootstrapped through MPI). Every collective is issued on the
 * group's communication thread, in the order issued, so a call returns at
 * once with a work handle and the caller goes on (DDP overlaps backward with
 * gradient all-reduces this way); with work == NULL the call waits.
 *
 * Timeouts: every wait that crosses processes has a deadline (the group's
 * timeout). When it passes, the group is aborted — pending and later work
 * fail with IG_ERR_TIMEOUT, and with MPI the whole job is torn down
 * (MPI_Abort) so that no rank is left hanging in a collective.
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
typedef enum ig_backend { IG_BACKEND_MPI, IG_BACKEND_NCCL, IG_BACKEND_COUNT } ig_backend;

/* Who this process is, from the launcher's environment: Open MPI
 * (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK), Slurm (SLURM_PROCID/NTASKS/LOCALID)
 * or torchrun (RANK/WORLD_SIZE/LOCAL_RANK, MASTER_ADDR/MASTER_PORT). */
typedef struct ig_dist_env {
    int rank, world, local_rank;
    char master_addr[256];
    int master_port;
    const char *source; /* "openmpi", "slurm", "torchrun" or "none" */
} ig_dist_env;

/* Fills env; returns false (world 1, rank 0) when no launcher is seen. */
bool ig_dist_env_detect(ig_dist_env *env);

typedef struct ig_pg_opts {
    ig_backend backend;
    double timeout_s; /* every collective's deadline; default 300 */
} ig_pg_opts;
#define IG_PG_OPTS_INIT {IG_BACKEND_MPI, 300.0}

typedef struct ig_pg ig_pg;
typedef struct ig_work ig_work;

/* The group of all ranks (initializes MPI when needed). */
ig_status ig_pg_init_world(const ig_pg_opts *opts, ig_pg **out);
/* A group of the listed ranks of parent (collective over parent: every rank
 * calls it; ranks not listed get *out = NULL). */
ig_status ig_pg_new_subgroup(ig_pg *parent, int n, const int *ranks, ig_pg **out);
int ig_pg_rank(const ig_pg *pg);
int ig_pg_size(const ig_pg *pg);
ig_backend ig_pg_backend(const ig_pg *pg);
/* Waits for the group's pending work, then frees it. The world group's free
 * finalizes MPI. */
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
ig_status ig_pg_send(ig_pg *pg, ig_tensor *t, int dst, int tag);
ig_status ig_pg_recv(ig_pg *pg, ig_tensor *t, int src, int tag);

/* Waits for the work (up to the group's timeout) and frees the handle. */
ig_status ig_work_wait(ig_work *w);
/* True once the work has completed (its status then comes from wait). */
bool ig_work_test(ig_work *w);

#ifdef __cplusplus
}
#endif
#endif

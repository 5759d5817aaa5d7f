/* ignis/ddp.h: distributed data parallel (sharding/ddp.c).
 *
 * The same model on every rank, each rank a slice of the global batch. At
 * creation the ranks check they hold the same parameters (count, names,
 * shapes, dtypes, requires_grad: a mismatch is an error naming the first
 * difference, on every rank, not a hang) and rank 0's values are broadcast.
 * Gradients live in buckets (about 25 MiB, one dtype each, filled in reverse
 * registration order, the order backward produces them): each parameter's
 * .grad becomes a view into its bucket. When the last gradient of a bucket is final (the autograd grad-ready
 * hook), the bucket's all-reduce starts on the group's communication thread
 * while backward goes on. ig_ddp_finish waits for them and averages, so after
 * it the gradients equal those of one process with the global batch.
 *
 * A step: forward and ONE backward with sync on, then ig_ddp_finish, then
 * (optionally) ig_clip_grad_norm, then the optimizer. Clipping by the global
 * norm is the caller's and comes after finish: only then are the gradients
 * averaged (and equal on every rank).
 *
 * With the optimizer, zero gradients in place (ig_optim_zero_grad(o, false)).
 * A parameter whose .grad is found not to be its bucket view (dropped with
 * set_to_none, or replaced) is re-attached when its gradient is ready, or at
 * finish: its gradient (zero when none) is copied into the bucket and .grad
 * is the view again; this costs a copy, so prefer zeroing in place. After
 * finish every parameter requiring grad has a gradient (zero where unused),
 * the same on every rank. */
#ifndef IGNIS_DDP_H
#define IGNIS_DDP_H

#include "ignis/comm.h"
#include "ignis/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ig_ddp_opts {
    size_t bucket_bytes;   /* default 25 MiB */
    bool broadcast_params; /* from rank 0 at creation; default true */
    bool trace;            /* record bucket timings (ig_ddp_trace) */
} ig_ddp_opts;
#define IG_DDP_OPTS_INIT {25u << 20, true, false}

typedef struct ig_ddp ig_ddp;

/* params and pg must outlive the DDP object; the parameters keep their
 * storage meanwhile (ig_model_to goes before). Parameters not requiring grad
 * are checked and broadcast but get no bucket. All parameters live on one
 * device, the buckets' (CPU with MPI, CUDA with NCCL). Collective: every rank
 * calls it; on failure *out is NULL on every rank. */
ig_status ig_ddp_new(const ig_param_list *params, ig_pg *pg, const ig_ddp_opts *opts,
                     ig_ddp **out);
void ig_ddp_free(ig_ddp *d);
/* false: the next backward passes only accumulate locally (gradient
 * accumulation, like DDP.no_sync()); true again before the last micro-batch. */
void ig_ddp_set_sync(ig_ddp *d, bool sync);
/* After backward: waits for every bucket's all-reduce and averages. A bucket
 * whose hooks did not all fire (unused parameters) is reduced here. With
 * sync off it does nothing. Collective. A failure of a hook during backward
 * (a second backward in one synchronized step: IG_ERR_STATE; a
 * communication failure) is returned here. */
ig_status ig_ddp_finish(ig_ddp *d);
int ig_ddp_bucket_count(const ig_ddp *d);
/* Bucket i (0: the first issued), a 1-D tensor owned by d that the
 * gradients view. For tests and inspection. */
ig_tensor *ig_ddp_bucket(const ig_ddp *d, int i);

/* Timings of the last synchronized step (recorded when opts.trace), seconds
 * on CLOCK_MONOTONIC (clock_gettime), so callers can compare them with their
 * own timestamps. Buckets are issued in index order: events[i].bucket == i. */
typedef struct ig_ddp_event {
    int bucket;
    double ready;  /* last gradient of the bucket final: all-reduce issued */
    double done;   /* all-reduce first seen complete: polled at each grad-ready
                      hook during backward, else when finish waited for it */
} ig_ddp_event;
typedef struct ig_ddp_trace_info {
    int n;
    const ig_ddp_event *events; /* in issue order */
    double backward_end;        /* when ig_ddp_finish was called */
} ig_ddp_trace_info;
void ig_ddp_trace(const ig_ddp *d, ig_ddp_trace_info *out);

#ifdef __cplusplus
}
#endif
#endif

/* sharding/comm_mpi.c: the MPI backend of process groups: CPU tensors of
 * every group, and the communicator every group (NCCL ones too) bootstraps
 * and synchronizes through. Runs on the group's communication thread, one
 * blocking MPI call per op; the deadline is kept by the waiter (comm.c).
 *
 * Invariants:
 *  - MPI runs at MPI_THREAD_MULTIPLE: each group's thread uses its own
 *    communicator (a dup of the parent's), errors returned, not fatal;
 *  - MPI is finalized with the last group freed, and only if ignis
 *    initialized it;
 *  - bf16/f16 have no MPI type: they move as 16-bit words and reduce through
 *    an f32 copy; AVG is a SUM divided in place before the op completes;
 *  - a send posts a private copy (MPI_Isend) and completes at once; the
 *    copies are freed once MPI reports them sent (tested at each op, waited
 *    for by FLUSH). */
#include <string.h>

#include "sharding/comm_impl.h"

#ifdef IG_HAVE_MPI

struct ig__mpi_send {
    MPI_Request req;
    void *buf;
    ig__mpi_send *next;
};

static pthread_mutex_t groups_mu = PTHREAD_MUTEX_INITIALIZER;
static int live_groups;     /* groups holding a communicator */
static bool we_initialized; /* MPI_Init_thread was ours */

static ig_status ck(int rc, const char *what, const char *call) {
    if (rc == MPI_SUCCESS) return IG_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return ig__error(IG_ERR_COMM, "%s: %s: %s", what, call, msg);
}

/* Gives pg the communicator c (ours to free). */
static void adopt(ig_pg *pg, MPI_Comm c) {
    pg->comm = c;
    MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c, &pg->rank);
    MPI_Comm_size(c, &pg->size);
    pthread_mutex_lock(&groups_mu);
    live_groups++;
    pthread_mutex_unlock(&groups_mu);
}

ig_status ig__mpi_init_world(ig_pg *pg) {
    int flag, provided;
    MPI_Finalized(&flag);
    if (flag)
        return ig__error(IG_ERR_STATE, "pg_init_world: MPI was finalized (with the last group "
                                       "freed) and cannot start again");
    MPI_Initialized(&flag);
    if (!flag) {
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
            return ig__error(IG_ERR_COMM, "pg_init_world: MPI_Init_thread failed");
        we_initialized = true;
    }
    MPI_Query_thread(&provided);
    if (provided < MPI_THREAD_MULTIPLE)
        return ig__error(IG_ERR_UNSUPPORTED,
                         "pg_init_world: MPI was initialized at thread level %d; process groups "
                         "need MPI_THREAD_MULTIPLE (%d)",
                         provided, MPI_THREAD_MULTIPLE);
    MPI_Comm c;
    ig_status st = ck(MPI_Comm_dup(MPI_COMM_WORLD, &c), "pg_init_world", "MPI_Comm_dup");
    if (st == IG_OK) adopt(pg, c);
    return st;
}

static MPI_Datatype mpi_type(ig_dtype t) {
    switch (t) {
    case IG_F32: return MPI_FLOAT;
    case IG_F64: return MPI_DOUBLE;
    case IG_I32: return MPI_INT32_T;
    case IG_I64: return MPI_INT64_T;
    case IG_U8: return MPI_UINT8_T;
    default: return MPI_UINT16_T; /* bf16, f16, u16 */
    }
}



/* all_reduce (in place) or reduce_scatter (in: size * count, out: count). */
static ig_status reduce(ig_pg *pg, ig__comm_op *op) {
    bool rs = op->kind == IG__OP_REDUCE_SCATTER;
    ig_dtype t = op->dtype;
    void *in = op->in, *out = op->out;
    float *fin = NULL, *fout = NULL;
    if (ig__comm_staged(t)) {
        fin = ig__comm_to_f32(in, rs ? op->count * pg->size : op->count, t);
        fout = rs ? malloc((size_t)(op->count ? op->count : 1) * sizeof *fout) : fin;
        if (!fin || !fout) {
            free(fin);
            if (rs) free(fout);
            return ig__error(IG_ERR_NOMEM, "%s: out of host memory for its f32 copy", op->what);
        }
        in = fin, out = fout, t = IG_F32;
    }
    MPI_Op mop = op->red == IG_REDUCE_MAX ? MPI_MAX : MPI_SUM;
    int n = (int)op->count;
    ig_status st =
        rs ? ck(MPI_Reduce_scatter_block(in, out, n, mpi_type(t), mop, pg->comm), op->what,
                "MPI_Reduce_scatter_block")
           : ck(MPI_Allreduce(MPI_IN_PLACE, out, n, mpi_type(t), mop, pg->comm), op->what,
                "MPI_Allreduce");
    if (st == IG_OK && op->red == IG_REDUCE_AVG) ig__comm_divide(out, op->count, t, pg->size);
    if (st == IG_OK && fin) ig__comm_from_f32(op->out, fout, op->count, op->dtype);
    free(fin);
    if (rs) free(fout);
    return st;
}

/* Frees the posted sends MPI reports done; with wait, waits for all. */
static ig_status reap_sends(ig_pg *pg, bool wait) {
    ig_status st = IG_OK;
    for (ig__mpi_send **p = &pg->sends; *p;) {
        ig__mpi_send *s = *p;
        int done = 1, rc;
        if (wait) rc = MPI_Wait(&s->req, MPI_STATUS_IGNORE);
        else rc = MPI_Test(&s->req, &done, MPI_STATUS_IGNORE);
        if (st == IG_OK) st = ck(rc, "send", wait ? "MPI_Wait" : "MPI_Test");
        if (!done) {
            p = &s->next;
            continue;
        }
        *p = s->next;
        free(s->buf);
        free(s);
    }
    return st;
}

static ig_status post_send(ig_pg *pg, ig__comm_op *op) {
    ig__mpi_send *s = malloc(sizeof *s);
    if (!s) return ig__error(IG_ERR_NOMEM, "%s: out of host memory", op->what);
    int rc = MPI_Isend(op->buf, (int)op->count, mpi_type(op->dtype), op->peer, op->tag, pg->comm,
                       &s->req);
    if (rc != MPI_SUCCESS) {
        free(s);
        return ck(rc, op->what, "MPI_Isend");
    }
    s->buf = op->buf;
    op->buf = NULL;
    s->next = pg->sends;
    pg->sends = s;
    return IG_OK;
}

static ig_status recv(ig_pg *pg, ig__comm_op *op) {
    MPI_Status status;
    MPI_Datatype t = mpi_type(op->dtype);
    ig_status st = ck(MPI_Recv(op->out, (int)op->count, t, op->peer, op->tag, pg->comm, &status),
                      op->what, "MPI_Recv");
    int got = 0;
    if (st == IG_OK) MPI_Get_count(&status, t, &got);
    if (st == IG_OK && got != op->count)
        return ig__error(IG_ERR_COMM, "%s: the message has %d elements", op->what, got);
    return st;
}

static ig_status subgroup(ig_pg *pg, ig__comm_op *op) {
    MPI_Group all, part;
    MPI_Comm c = MPI_COMM_NULL;
    int rc = MPI_Comm_group(pg->comm, &all);
    if (rc == MPI_SUCCESS) {
        rc = MPI_Group_incl(all, op->n_ranks, op->ranks, &part);
        if (rc == MPI_SUCCESS) {
            rc = MPI_Comm_create(pg->comm, part, &c);
            MPI_Group_free(&part);
        }
        MPI_Group_free(&all);
    }
    ig_status st = ck(rc, op->what, "MPI_Comm_create");
    if (st == IG_OK && c != MPI_COMM_NULL) adopt(op->sub, c);
    return st;
}

ig_status ig__mpi_exec(ig_pg *pg, ig__comm_op *op) {
    ig_status st = reap_sends(pg, op->kind == IG__OP_FLUSH);
    if (st != IG_OK || op->kind == IG__OP_FLUSH) return st;
    int n = (int)op->count;
    MPI_Datatype t = mpi_type(op->dtype);
    switch (op->kind) {
    case IG__OP_ALL_REDUCE:
    case IG__OP_REDUCE_SCATTER: return reduce(pg, op);
    case IG__OP_BROADCAST:
        return ck(MPI_Bcast(op->in, n, t, op->peer, pg->comm), op->what, "MPI_Bcast");
    case IG__OP_ALL_GATHER:
        return ck(MPI_Allgather(op->in, n, t, op->out, n, t, pg->comm), op->what, "MPI_Allgather");
    case IG__OP_BARRIER: return ck(MPI_Barrier(pg->comm), op->what, "MPI_Barrier");
    case IG__OP_SEND: return post_send(pg, op);
    case IG__OP_RECV: return recv(pg, op);
    case IG__OP_SUBGROUP: return subgroup(pg, op);
    default: return IG_OK;
    }
}

void ig__mpi_abort(ig_pg *pg) { MPI_Abort(pg->comm, 1); }

void ig__mpi_free(ig_pg *pg) {
    if (pg->size == 0) return; /* never got a communicator */
    MPI_Comm_free(&pg->comm);
    pthread_mutex_lock(&groups_mu);
    bool last = --live_groups == 0;
    pthread_mutex_unlock(&groups_mu);
    if (last && we_initialized) MPI_Finalize();
}

#else /* no MPI */

ig_status ig__mpi_init_world(ig_pg *pg) {
    (void)pg;
    return ig__error(IG_ERR_UNSUPPORTED, "pg_init_world: this build has no MPI");
}

ig_status ig__mpi_exec(ig_pg *pg, ig__comm_op *op) {
    (void)pg;
    return ig__error(IG_ERR_UNSUPPORTED, "%s: this build has no MPI", op->what);
}

void ig__mpi_abort(ig_pg *pg) { (void)pg; }
void ig__mpi_free(ig_pg *pg) { (void)pg; }

#endif

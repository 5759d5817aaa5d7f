/* coordinator/coord.h: the coordinator's job store, state machine and
 * scheduler (internal API of coordinator/; the daemon wires it to ZeroMQ and
 * libuv). Pure logic over an SQLite journal: no sockets, no threads.
 *
 * Not thread-safe: one thread (the daemon's loop) owns an ig__coord.
 *
 * Journal (journal.c). A state directory holds journal.db (SQLite, WAL,
 * synchronous=FULL): meta (schema_version), jobs, nodes, placements (the rank
 * -> node/local_rank/slot table of running jobs) and an append-only events
 * table (the history `ignis status` shows). Every change is one transaction,
 * committed BEFORE memory changes: a call that returns an error changed
 * nothing, and a call that returned IG_OK survives a crash.
 *
 * Restart recovery (ig__coord_open on an existing journal): every job, node,
 * fence, attempt and event comes back. Nodes come back offline (nothing is
 * placed on them until their worker registers again). Jobs that were running
 * stay `running`, attempt and placement unchanged, slots still held, with
 * `awaiting` set: the daemon re-adopts them when their workers reconnect and
 * report the ranks alive (ig__coord_job_adopt), or, after its grace period,
 * reports the missing nodes failed (ig__coord_node_failed), which takes the
 * normal restart policy. Jobs that were restarting or queued wait as before.
 *
 * States and transitions (anything else is IG_ERR_STATE, nothing applied):
 *   queued     -> running (placed), failed, cancelled
 *   running    -> restarting (failure, restarts left), succeeded, failed, cancelled
 *   restarting -> running (placed again), failed, cancelled
 *   succeeded, failed, cancelled: final.
 * Each transition stores its reason ("rank 5 died at step 1200 (signal 9)",
 * "cancelled by user", "...; max_restarts (3) reached") and an event.
 *
 * Restart policy (ig__coord_job_failed, ig__coord_node_failed): while
 * restarts < max_restarts the job goes to restarting with attempt+1 and
 * restarts+1, else to failed with "<reason>; max_restarts (N) reached". A
 * node failure also fences the node (sticky: a fenced node that registers
 * again stays fenced). Either way the job's slots are released at once: the
 * daemon kills its surviving ranks before it schedules again.
 *
 * Scheduler (scheduler.c), strict FIFO with head-of-line blocking, no
 * backfill: restarting jobs first (by id), then queued jobs (by id); the head
 * is placed or nothing after it is. Gang placement: all ranks at once or none.
 * World size: the largest w in [min_ranks, max_ranks] with w <= free slots
 * (online, unfenced nodes) and train.batch_size % w == 0 (the global batch is
 * split evenly over ranks); so a job runs at max_ranks when that fits and
 * shrinks (never below min_ranks) when fewer slots are free, on any attempt.
 * Ranks are node-major: nodes in registration order, each node's free slots
 * in index order; local_rank counts the job's ranks on that node. One
 * placement costs O(nodes + slots) and one transaction. */
#ifndef IGNIS_COORDINATOR_COORD_H
#define IGNIS_COORDINATOR_COORD_H

#include <stdbool.h>
#include <stdint.h>

#include "ignis/status.h"

typedef enum ig__job_state {
    IG_JOB_QUEUED,
    IG_JOB_RUNNING,
    IG_JOB_RESTARTING,
    IG_JOB_SUCCEEDED,
    IG_JOB_FAILED,
    IG_JOB_CANCELLED,
    IG_JOB_STATE_COUNT
} ig__job_state;

#define IG_COORD_REASON_MAX 256
#define IG_COORD_NAME_MAX 64
#define IG_COORD_MAX_RANKS (1 << 20)
#define IG_COORD_SPEC_BATCH_DEFAULT 16 /* train.batch_size when the spec omits it */
#define IG_COORD_SPEC_STEPS_DEFAULT 1000 /* train.steps when the spec omits it (job-spec.md) */

/* Where one rank of a running job lives. */
typedef struct ig__coord_rank {
    int64_t node;   /* node id */
    int local_rank; /* among this job's ranks on that node */
    int slot;       /* slot index on the node (the GPU index for GPU slots) */
} ig__coord_rank;

typedef struct ig__coord_job {
    int64_t id; /* 1, 2, ... in submit order */
    char *spec; /* the job spec, JSON text */
    int batch;  /* train.batch_size: every world size divides it */
    int ranks;  /* world size of the current (or last) attempt; 0 before the first */
    int min_ranks, max_ranks, max_restarts;
    ig__job_state state;
    char reason[IG_COORD_REASON_MAX]; /* of the last transition */
    int attempt;  /* 1 for the first run, +1 per restart */
    int restarts; /* restarts used */
    double submitted, started, ended; /* unix seconds; started: of the current attempt; 0 = not yet */
    int64_t ckpt_step;     /* last committed checkpoint step reported, -1 = none */
    bool awaiting;         /* running, restored from the journal, workers not back yet */
    ig__coord_rank *assign; /* [ranks] while running, else NULL */
} ig__coord_job;

typedef struct ig__coord_node {
    int64_t id; /* 1, 2, ... in registration order */
    char name[IG_COORD_NAME_MAX];
    int slots, used;
    bool fenced, online;
    char reason[IG_COORD_REASON_MAX]; /* why fenced */
    int64_t *owner; /* [slots]: the job holding each slot, 0 = free */
} ig__coord_node;

typedef struct ig__coord {
    struct sqlite3 *db;
    char path[1024]; /* the journal file, for messages */
    ig__coord_job *jobs; /* jobs[id - 1] */
    int64_t njobs, cap_jobs;
    ig__coord_node *nodes; /* nodes[id - 1] */
    int64_t nnodes, cap_nodes;
} ig__coord;

/* ---- the coordinator's API ---- */

/* Opens (creating dir/journal.db if missing) and restores the state. A file
 * that is not a journal, is corrupt or has a newer schema: an error naming it. */
ig_status ig__coord_open(const char *dir, ig__coord **out);
void ig__coord_close(ig__coord *c);

const char *ig__job_state_name(ig__job_state s); /* "queued", ... */
/* NULL when there is no such job or node. */
ig__coord_job *ig__coord_job_get(ig__coord *c, int64_t id);
ig__coord_node *ig__coord_node_get(ig__coord *c, int64_t id);

/* A new queued job. spec_json: the spec as JSON text (train.batch_size read
 * from it); 1 <= min_ranks <= max_ranks, max_restarts >= 0, and some world
 * size in the range must divide the batch. */
ig_status ig__coord_submit(ig__coord *c, const char *spec_json, int min_ranks, int max_ranks,
                           int max_restarts, int64_t *id);
/* To a final state (succeeded, failed or cancelled), releasing slots. */
ig_status ig__coord_job_end(ig__coord *c, int64_t id, ig__job_state to, const char *reason);
/* A rank of the running job failed: the restart policy. */
ig_status ig__coord_job_failed(ig__coord *c, int64_t id, const char *reason);
/* The running job committed a checkpoint at `step` (steps only grow). */
ig_status ig__coord_job_checkpoint(ig__coord *c, int64_t id, int64_t step);
/* Its workers are back after a coordinator restart: clears `awaiting`. */
ig_status ig__coord_job_adopt(ig__coord *c, int64_t id);

/* A worker registers (or registers again: same name, same id) its slots;
 * the node is online. Slots of a node whose slots are in use cannot change. */
ig_status ig__coord_node_register(ig__coord *c, const char *name, int slots, int64_t *id);
/* The node is lost (silent, disconnected): fenced and offline, and the
 * restart policy applies to every running job with a rank on it. The fence
 * and each job's transition are one transaction each: after a crash between
 * them the job is restored running on a fenced node, and the daemon reports
 * the node failed again at the end of its grace period. */
ig_status ig__coord_node_failed(ig__coord *c, int64_t id, const char *reason);

/* Places jobs from the head of the queue while they fit; *placed (may be
 * NULL) counts them. Placed jobs are running with `assign` filled. */
/* Free slots on online, unfenced nodes; the smallest world size j may run
 * on (in [min_ranks, max_ranks], dividing its batch; 0: none). */
int64_t ig__coord_free_slots(const ig__coord *c);
int ig__coord_min_world(const ig__coord_job *j);
/* The job the scheduler places next: the oldest restarting job, else the
 * oldest queued one (NULL: none waits). */
ig__coord_job *ig__coord_queue_head(ig__coord *c);
ig_status ig__coord_schedule(ig__coord *c, int *placed);

/* Calls fn for each event (job 0: all jobs; node events have job 0), oldest first. */
typedef void (*ig__coord_event_fn)(void *user, double time, int64_t job, const char *kind,
                                   const char *text);
ig_status ig__coord_events(ig__coord *c, int64_t job, ig__coord_event_fn fn, void *user);

/* ---- between the files of coordinator/ ---- */

double ig__coord_now(void);
/* One transaction: begin, writes, commit (rollback on any error). */
ig_status ig__coord_begin(ig__coord *c);
ig_status ig__coord_commit(ig__coord *c);
void ig__coord_rollback(ig__coord *c);
/* Runs one statement with arguments given by `types`: 'i' int, 'l' int64_t, 'd'
 * double, 't' text (NULL is SQL NULL). */
ig_status ig__coord_sql(ig__coord *c, const char *sql, const char *types, ...);
/* The job's row (every column). */
ig_status ig__coord_write_job(ig__coord *c, const ig__coord_job *j);
/* Replaces the job's placements by j->assign (none when NULL). */
ig_status ig__coord_write_placements(ig__coord *c, const ig__coord_job *j);
ig_status ig__coord_write_node(ig__coord *c, const ig__coord_node *n);
ig_status ig__coord_event(ig__coord *c, int64_t job, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Moves j to next (next.state must be a valid transition from j->state):
 * one transaction writes the row, the placements when next.assign differs
 * from j->assign, and an event (kind: the state, text: next.reason); then
 * memory follows (old slots released, new ones held, old assign freed; next
 * owns its assign). On error nothing changed and next.assign is freed. */
ig_status ig__coord_transition(ig__coord *c, ig__coord_job *j, ig__coord_job next);
/* Frees the job's slots on their nodes (memory only). */
void ig__coord_release(ig__coord *c, ig__coord_job *j);
/* Marks the slots of j->assign as held by j (memory only). */
void ig__coord_hold(ig__coord *c, const ig__coord_job *j);

#endif

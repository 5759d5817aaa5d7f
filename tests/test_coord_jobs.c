/* tests/test_coord_jobs.c: the coordinator's job store, state machine and
 * scheduler on a real SQLite journal in a temporary directory, with
 * simulated nodes (registered slots, no workers): gang placement, node-major
 * ranks, FIFO, the restart policy, every transition, recovery by reopening
 * the journal, refused files, and a 256-rank placement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "coordinator/coord.h"

#define SPEC(batch) "{\"name\": \"t\", \"train\": {\"batch_size\": " #batch "}}"

typedef struct {
    char dir[64];
    ig__coord *c;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ig_coord_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    if (ig__coord_open(f->dir, &f->c)) return -1;
    *state = f;
    return 0;
}

static void rm_journal(const char *dir) {
    const char *files[] = {"journal.db", "journal.db-wal", "journal.db-shm"};
    char p[128];
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[k]);
        unlink(p);
    }
}

static int teardown(void **state) {
    fixture *f = *state;
    ig__coord_close(f->c);
    rm_journal(f->dir);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f) {
    ig__coord_close(f->c);
    f->c = NULL;
    assert_int_equal(ig__coord_open(f->dir, &f->c), IG_OK);
}

static int64_t node(ig__coord *c, const char *name, int slots) {
    int64_t id = 0;
    assert_int_equal(ig__coord_node_register(c, name, slots, &id), IG_OK);
    return id;
}

static int64_t submit(ig__coord *c, const char *spec, int min, int max, int restarts) {
    int64_t id = 0;
    assert_int_equal(ig__coord_submit(c, spec, min, max, restarts, &id), IG_OK);
    return id;
}

static int schedule(ig__coord *c) {
    int n = -1;
    assert_int_equal(ig__coord_schedule(c, &n), IG_OK);
    return n;
}

static ig__job_state state_of(ig__coord *c, int64_t id) { return ig__coord_job_get(c, id)->state; }

static void assert_rank(ig__coord *c, int64_t job, int r, int64_t node, int local, int slot) {
    const ig__coord_job *j = ig__coord_job_get(c, job);
    assert_non_null(j->assign);
    assert_int_equal(j->assign[r].node, node);
    assert_int_equal(j->assign[r].local_rank, local);
    assert_int_equal(j->assign[r].slot, slot);
}

/* events of a job, as "kind: text" lines */
static void collect(void *u, double time, int64_t job, const char *kind, const char *text) {
    char *buf = u;
    size_t n = strlen(buf);
    snprintf(buf + n, 8192 - n, "%s: %s\n", kind, text);
}

static const char *events(ig__coord *c, int64_t job) {
    static char buf[8192];
    buf[0] = 0;
    assert_int_equal(ig__coord_events(c, job, collect, buf), IG_OK);
    return buf;
}

static void two_four_rank_jobs_run_one_after_the_other_in_node_major_order(void **state) {
    fixture *f = *state;
    int64_t n1 = node(f->c, "n1", 2), n2 = node(f->c, "n2", 2);
    int64_t a = submit(f->c, SPEC(8), 4, 4, 0), b = submit(f->c, SPEC(8), 4, 4, 0);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(state_of(f->c, a), IG_JOB_RUNNING);
    assert_int_equal(state_of(f->c, b), IG_JOB_QUEUED);
    assert_int_equal(ig__coord_job_get(f->c, a)->ranks, 4);
    assert_rank(f->c, a, 0, n1, 0, 0);
    assert_rank(f->c, a, 1, n1, 1, 1);
    assert_rank(f->c, a, 2, n2, 0, 0);
    assert_rank(f->c, a, 3, n2, 1, 1);
    assert_int_equal(schedule(f->c), 0);
    assert_int_equal(ig__coord_job_end(f->c, a, IG_JOB_SUCCEEDED, "all ranks exited 0"), IG_OK);
    assert_null(ig__coord_job_get(f->c, a)->assign);
    assert_int_equal(ig__coord_node_get(f->c, n1)->used, 0);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(state_of(f->c, b), IG_JOB_RUNNING);
    assert_rank(f->c, b, 3, n2, 1, 1);
}

static void two_two_rank_jobs_run_side_by_side(void **state) {
    fixture *f = *state;
    int64_t n1 = node(f->c, "n1", 2), n2 = node(f->c, "n2", 2);
    int64_t a = submit(f->c, SPEC(8), 2, 2, 0), b = submit(f->c, SPEC(8), 2, 2, 0);
    assert_int_equal(schedule(f->c), 2);
    assert_rank(f->c, a, 0, n1, 0, 0);
    assert_rank(f->c, a, 1, n1, 1, 1);
    assert_rank(f->c, b, 0, n2, 0, 0);
    assert_rank(f->c, b, 1, n2, 1, 1);
    assert_int_equal(ig__coord_node_get(f->c, n2)->owner[1], b);
}

static void gang_job_waits_for_all_its_slots_and_local_ranks_count_per_node(void **state) {
    fixture *f = *state;
    int64_t n1 = node(f->c, "n1", 2), n2 = node(f->c, "n2", 2);
    int64_t small = submit(f->c, SPEC(8), 1, 1, 0);
    assert_int_equal(schedule(f->c), 1);
    int64_t big = submit(f->c, SPEC(8), 4, 4, 0);
    assert_int_equal(schedule(f->c), 0); /* 3 slots free: no partial placement */
    assert_int_equal(state_of(f->c, big), IG_JOB_QUEUED);
    assert_int_equal(ig__coord_node_get(f->c, n2)->used, 0);
    int64_t three = submit(f->c, SPEC(6), 3, 3, 0);
    assert_int_equal(schedule(f->c), 0); /* strict FIFO: the 3-rank job fits but waits behind */
    assert_int_equal(state_of(f->c, three), IG_JOB_QUEUED);
    assert_int_equal(ig__coord_job_end(f->c, small, IG_JOB_SUCCEEDED, "done"), IG_OK);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(state_of(f->c, big), IG_JOB_RUNNING);
    assert_int_equal(ig__coord_job_end(f->c, big, IG_JOB_SUCCEEDED, "done"), IG_OK);
    /* a node already partly used: slot 1 of n2 holds local rank 0 */
    int64_t one = submit(f->c, SPEC(8), 1, 1, 0);
    assert_int_equal(schedule(f->c), 2); /* three, then one */
    assert_rank(f->c, three, 0, n1, 0, 0);
    assert_rank(f->c, three, 2, n2, 0, 0);
    assert_rank(f->c, one, 0, n2, 0, 1);
    assert_int_equal(ig__coord_job_end(f->c, three, IG_JOB_SUCCEEDED, "done"), IG_OK);
    int64_t again = submit(f->c, SPEC(3), 3, 3, 0);
    assert_int_equal(schedule(f->c), 1);
    assert_rank(f->c, again, 0, n1, 0, 0);
    assert_rank(f->c, again, 1, n1, 1, 1);
    assert_rank(f->c, again, 2, n2, 0, 0);
}

static void queue_is_fifo_with_restarting_jobs_first(void **state) {
    fixture *f = *state;
    node(f->c, "n1", 2);
    int64_t a = submit(f->c, SPEC(8), 2, 2, 1), b = submit(f->c, SPEC(8), 2, 2, 0),
            c = submit(f->c, SPEC(8), 2, 2, 0);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(state_of(f->c, a), IG_JOB_RUNNING);
    assert_int_equal(ig__coord_job_failed(f->c, a, "rank 1 died at step 10 (signal 9)"), IG_OK);
    assert_int_equal(schedule(f->c), 1); /* a (restarting) goes before b */
    assert_int_equal(state_of(f->c, a), IG_JOB_RUNNING);
    assert_int_equal(state_of(f->c, b), IG_JOB_QUEUED);
    assert_int_equal(ig__coord_job_end(f->c, a, IG_JOB_SUCCEEDED, "done"), IG_OK);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(state_of(f->c, b), IG_JOB_RUNNING);
    assert_int_equal(state_of(f->c, c), IG_JOB_QUEUED);
}

static void rank_failure_restarts_with_the_next_attempt(void **state) {
    fixture *f = *state;
    int64_t n1 = node(f->c, "n1", 2);
    node(f->c, "n2", 2);
    int64_t a = submit(f->c, SPEC(8), 4, 4, 3);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_job_get(f->c, a)->attempt, 1);
    assert_int_equal(ig__coord_job_checkpoint(f->c, a, 1000), IG_OK);
    assert_int_equal(ig__coord_job_failed(f->c, a, "rank 3 died at step 1200 (signal 9)"), IG_OK);
    const ig__coord_job *j = ig__coord_job_get(f->c, a);
    assert_int_equal(j->state, IG_JOB_RESTARTING);
    assert_int_equal(j->attempt, 2);
    assert_int_equal(j->restarts, 1);
    assert_string_equal(j->reason, "rank 3 died at step 1200 (signal 9)");
    assert_null(j->assign);
    assert_int_equal(ig__coord_node_get(f->c, n1)->used, 0);
    assert_false(ig__coord_node_get(f->c, n1)->fenced); /* a rank failure fences nothing */
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(j->state, IG_JOB_RUNNING);
    assert_int_equal(j->ranks, 4);
    assert_int_equal(j->ckpt_step, 1000);
    assert_non_null(strstr(events(f->c, a), "restarting: rank 3 died at step 1200 (signal 9)\n"
                                            "running: attempt 2 placed: 4 ranks on 2 nodes, last checkpoint step "
                                            "1000, after: rank 3 died at step 1200 (signal 9)\n"));
}

static void node_failure_fences_the_node_and_the_job_shrinks_within_its_range(void **state) {
    fixture *f = *state;
    int64_t n1 = node(f->c, "n1", 2), n2 = node(f->c, "n2", 2);
    /* batch 6: 4 ranks would not divide it, so the largest feasible is 3 */
    int64_t a = submit(f->c, SPEC(6), 2, 4, 2);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_job_get(f->c, a)->ranks, 3);
    assert_int_equal(ig__coord_node_failed(f->c, n2, "node n2 silent for 10 s"), IG_OK);
    const ig__coord_node *n = ig__coord_node_get(f->c, n2);
    assert_true(n->fenced);
    assert_string_equal(n->reason, "node n2 silent for 10 s");
    assert_int_equal(state_of(f->c, a), IG_JOB_RESTARTING);
    assert_string_equal(ig__coord_job_get(f->c, a)->reason, "node n2 silent for 10 s");
    assert_int_equal(schedule(f->c), 1);
    const ig__coord_job *j = ig__coord_job_get(f->c, a);
    assert_int_equal(j->ranks, 2);
    assert_int_equal(j->attempt, 2);
    assert_rank(f->c, a, 1, n1, 1, 1);
    /* the fenced node stays fenced when its worker registers again */
    assert_int_equal(node(f->c, "n2", 2), n2);
    assert_true(ig__coord_node_get(f->c, n2)->fenced);
    int64_t b = submit(f->c, SPEC(8), 1, 1, 0);
    assert_int_equal(schedule(f->c), 0);
    assert_int_equal(state_of(f->c, b), IG_JOB_QUEUED);
    /* below min_ranks: the job waits, restarting */
    assert_int_equal(ig__coord_node_failed(f->c, n1, "node n1 silent for 10 s"), IG_OK);
    assert_int_equal(schedule(f->c), 0);
    assert_int_equal(state_of(f->c, a), IG_JOB_RESTARTING);
    assert_int_equal(j->attempt, 3);
}

static void max_restarts_reached_fails_the_job_with_the_reason(void **state) {
    fixture *f = *state;
    int64_t n1 = node(f->c, "n1", 2);
    int64_t a = submit(f->c, SPEC(8), 2, 2, 1);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_job_failed(f->c, a, "rank 0 died at step 5 (exit 1)"), IG_OK);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_job_failed(f->c, a, "rank 1 died at step 9 (signal 9)"), IG_OK);
    const ig__coord_job *j = ig__coord_job_get(f->c, a);
    assert_int_equal(j->state, IG_JOB_FAILED);
    assert_string_equal(j->reason, "rank 1 died at step 9 (signal 9); max_restarts (1) reached");
    assert_int_equal(j->attempt, 2);
    assert_true(j->ended > 0);
    assert_int_equal(ig__coord_node_get(f->c, n1)->used, 0);
    assert_int_equal(schedule(f->c), 0);
    assert_int_equal(j->state, IG_JOB_FAILED);
}

static void cancel_works_from_queued_running_and_restarting(void **state) {
    fixture *f = *state;
    int64_t n1 = node(f->c, "n1", 2);
    int64_t a = submit(f->c, SPEC(8), 2, 2, 5), b = submit(f->c, SPEC(8), 2, 2, 0),
            c = submit(f->c, SPEC(8), 2, 2, 0);
    assert_int_equal(ig__coord_job_end(f->c, c, IG_JOB_CANCELLED, "cancelled by user"), IG_OK);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_job_end(f->c, a, IG_JOB_CANCELLED, "cancelled by user"), IG_OK);
    assert_int_equal(ig__coord_node_get(f->c, n1)->used, 0);
    assert_int_equal(schedule(f->c), 1); /* the freed slots go to b */
    assert_int_equal(state_of(f->c, b), IG_JOB_RUNNING);
    assert_int_equal(ig__coord_job_failed(f->c, b, "rank 0 died (signal 11)"), IG_OK);
    assert_int_equal(state_of(f->c, b), IG_JOB_FAILED); /* max_restarts 0 */
    int64_t d = submit(f->c, SPEC(8), 2, 2, 1);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_job_failed(f->c, d, "rank 0 died (signal 11)"), IG_OK);
    assert_int_equal(ig__coord_job_end(f->c, d, IG_JOB_CANCELLED, "cancelled by user"), IG_OK);
    assert_int_equal(state_of(f->c, c), IG_JOB_CANCELLED);
    assert_int_equal(state_of(f->c, a), IG_JOB_CANCELLED);
    assert_int_equal(state_of(f->c, d), IG_JOB_CANCELLED);
    assert_string_equal(ig__coord_job_get(f->c, d)->reason, "cancelled by user");
}

/* Brings a fresh job to state s (n1 has 2 free slots beforehand). */
static int64_t job_in(ig__coord *c, ig__job_state s) {
    int64_t id = submit(c, SPEC(8), 2, 2, 1);
    if (s == IG_JOB_QUEUED) return id;
    assert_int_equal(schedule(c), 1);
    if (s == IG_JOB_RESTARTING) assert_int_equal(ig__coord_job_failed(c, id, "rank 0 died"), IG_OK);
    if (s >= IG_JOB_SUCCEEDED) assert_int_equal(ig__coord_job_end(c, id, s, "end"), IG_OK);
    assert_int_equal(state_of(c, id), s);
    return id;
}

static int count_events(ig__coord *c) {
    int n = 0;
    for (const char *p = events(c, 0); *p; p++) n += *p == '\n';
    return n;
}

static void every_invalid_transition_is_rejected_and_changes_nothing(void **state) {
    fixture *f = *state;
    node(f->c, "n1", 2);
    /* valid[from][to] for the final states, the failure and the checkpoint */
    const struct { bool ok[IG_JOB_STATE_COUNT]; bool fail, ckpt; } valid[] = {
        [IG_JOB_QUEUED] = {{[IG_JOB_FAILED] = true, [IG_JOB_CANCELLED] = true}, false, false},
        [IG_JOB_RUNNING] = {{[IG_JOB_SUCCEEDED] = true, [IG_JOB_FAILED] = true, [IG_JOB_CANCELLED] = true}, true, true},
        [IG_JOB_RESTARTING] = {{[IG_JOB_FAILED] = true, [IG_JOB_CANCELLED] = true}, false, false},
        [IG_JOB_SUCCEEDED] = {{0}, false, false},
        [IG_JOB_FAILED] = {{0}, false, false},
        [IG_JOB_CANCELLED] = {{0}, false, false},
    };
    for (int s = 0; s < IG_JOB_STATE_COUNT; s++) {
        for (int to = IG_JOB_SUCCEEDED; to <= IG_JOB_CANCELLED + 2; to++) {
            int64_t id = job_in(f->c, (ig__job_state)s);
            ig__coord_job before = *ig__coord_job_get(f->c, id);
            int nev = count_events(f->c);
            ig_status st;
            bool ok;
            if (to <= IG_JOB_CANCELLED) {
                st = ig__coord_job_end(f->c, id, (ig__job_state)to, "x"), ok = valid[s].ok[to];
            } else if (to == IG_JOB_CANCELLED + 1) {
                st = ig__coord_job_failed(f->c, id, "rank 1 died"), ok = valid[s].fail;
            } else {
                st = ig__coord_job_checkpoint(f->c, id, 7), ok = valid[s].ckpt;
            }
            if (ok) {
                assert_int_equal(st, IG_OK);
            } else {
                assert_int_equal(st, IG_ERR_STATE);
                assert_non_null(strstr(ig_last_error(), ig__job_state_name((ig__job_state)s)));
                const ig__coord_job *j = ig__coord_job_get(f->c, id);
                assert_int_equal(j->state, before.state);
                assert_string_equal(j->reason, before.reason);
                assert_int_equal(j->attempt, before.attempt);
                assert_int_equal(count_events(f->c), nev);
            }
            /* clear the slots for the next case */
            ig__job_state now = state_of(f->c, id);
            if (now == IG_JOB_RUNNING || now == IG_JOB_RESTARTING || now == IG_JOB_QUEUED)
                assert_int_equal(ig__coord_job_end(f->c, id, IG_JOB_CANCELLED, "cleanup"), IG_OK);
        }
    }
    /* not final states, unknown jobs */
    int64_t id = job_in(f->c, IG_JOB_RUNNING);
    assert_int_equal(ig__coord_job_end(f->c, id, IG_JOB_RUNNING, "x"), IG_ERR_INVALID);
    assert_int_equal(ig__coord_job_end(f->c, id, IG_JOB_QUEUED, "x"), IG_ERR_INVALID);
    assert_int_equal(ig__coord_job_checkpoint(f->c, id, 5), IG_OK);
    assert_int_equal(ig__coord_job_checkpoint(f->c, id, 5), IG_ERR_STATE); /* steps only grow */
    assert_int_equal(ig__coord_job_adopt(f->c, id), IG_ERR_STATE);        /* nothing to adopt */
    assert_int_equal(ig__coord_job_end(f->c, 999, IG_JOB_CANCELLED, "x"), IG_ERR_INVALID);
    assert_int_equal(ig__coord_job_failed(f->c, 0, "x"), IG_ERR_INVALID);
    assert_int_equal(ig__coord_node_failed(f->c, 42, "x"), IG_ERR_INVALID);
}

static void submit_rejects_bad_ranges_specs_and_indivisible_batches(void **state) {
    fixture *f = *state;
    int64_t id = -1;
    assert_int_equal(ig__coord_submit(f->c, SPEC(8), 0, 2, 0, &id), IG_ERR_INVALID);
    assert_int_equal(ig__coord_submit(f->c, SPEC(8), 3, 2, 0, &id), IG_ERR_INVALID);
    assert_int_equal(ig__coord_submit(f->c, SPEC(8), 1, 2, -1, &id), IG_ERR_INVALID);
    assert_int_equal(ig__coord_submit(f->c, "{not json", 1, 2, 0, &id), IG_ERR_FORMAT);
    assert_int_equal(ig__coord_submit(f->c, "{\"train\": {\"batch_size\": \"8\"}}", 1, 1, 0, &id),
                     IG_ERR_INVALID);
    assert_int_equal(ig__coord_submit(f->c, SPEC(10), 3, 4, 0, &id), IG_ERR_INVALID);
    assert_non_null(strstr(ig_last_error(), "train.batch_size 10"));
    assert_int_equal(id, -1);
    assert_int_equal(f->c->njobs, 0);
    /* without train.batch_size: the spec default (16) */
    id = submit(f->c, "{\"name\": \"x\"}", 1, 4, 0);
    assert_int_equal(ig__coord_job_get(f->c, id)->batch, IG_COORD_SPEC_BATCH_DEFAULT);
    assert_int_equal(node(f->c, "n1", 3), 1);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_job_get(f->c, id)->ranks, 2); /* 3 slots, 16 % 3 != 0 */
    assert_int_equal(ig__coord_node_register(f->c, "n1", 4, NULL), IG_ERR_STATE); /* slots in use */
    assert_int_equal(ig__coord_node_register(f->c, "", 4, NULL), IG_ERR_INVALID);
}

static void reopened_journal_restores_jobs_nodes_and_events(void **state) {
    fixture *f = *state;
    int64_t n1 = node(f->c, "n1", 2), n2 = node(f->c, "n2", 2), n3 = node(f->c, "n3", 1);
    int64_t run = submit(f->c, SPEC(8), 2, 4, 3);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_job_get(f->c, run)->ranks, 4);
    assert_int_equal(ig__coord_job_failed(f->c, run, "rank 2 died at step 300 (signal 9)"), IG_OK);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_job_checkpoint(f->c, run, 500), IG_OK);
    int64_t done = submit(f->c, SPEC(8), 1, 1, 0);
    assert_int_equal(schedule(f->c), 1); /* on n3 */
    assert_int_equal(ig__coord_job_end(f->c, done, IG_JOB_SUCCEEDED, "all ranks exited 0"), IG_OK);
    int64_t waiting = submit(f->c, SPEC(8), 2, 2, 0);
    int64_t rest = submit(f->c, SPEC(8), 1, 1, 2); /* on n3, then its node fails */
    assert_int_equal(ig__coord_job_end(f->c, waiting, IG_JOB_CANCELLED, "cancelled by user"), IG_OK);
    waiting = submit(f->c, SPEC(8), 2, 2, 0);
    assert_int_equal(schedule(f->c), 1);
    assert_int_equal(ig__coord_node_failed(f->c, n3, "node n3 silent for 10 s"), IG_OK);
    assert_int_equal(state_of(f->c, rest), IG_JOB_RESTARTING);
    ig__coord_job before = *ig__coord_job_get(f->c, run);
    ig__coord_rank assign[4];
    memcpy(assign, before.assign, sizeof assign);
    char history[8192];
    snprintf(history, sizeof history, "%s", events(f->c, 0));

    reopen(f); /* a restarted coordinator */

    ig__coord *c = f->c;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(c->db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(c->db, "PRAGMA synchronous", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 2); /* FULL */
    sqlite3_finalize(s);
    assert_int_equal(c->njobs, 5);
    assert_int_equal(c->nnodes, 3);
    const ig__coord_job *j = ig__coord_job_get(c, run);
    assert_int_equal(j->state, IG_JOB_RUNNING);
    assert_true(j->awaiting);
    assert_int_equal(j->attempt, 2);
    assert_int_equal(j->restarts, 1);
    assert_int_equal(j->ranks, 4);
    assert_int_equal(j->min_ranks, 2);
    assert_int_equal(j->max_ranks, 4);
    assert_int_equal(j->max_restarts, 3);
    assert_int_equal(j->ckpt_step, 500);
    assert_string_equal(j->spec, SPEC(8));
    assert_string_equal(j->reason, before.reason);
    assert_true(j->submitted == before.submitted && j->started == before.started);
    assert_memory_equal(j->assign, assign, sizeof assign);
    assert_int_equal(state_of(c, done), IG_JOB_SUCCEEDED);
    assert_true(ig__coord_job_get(c, done)->ended > 0);
    assert_int_equal(state_of(c, waiting), IG_JOB_QUEUED);
    assert_int_equal(state_of(c, waiting - 2), IG_JOB_CANCELLED);
    assert_int_equal(state_of(c, rest), IG_JOB_RESTARTING);
    assert_int_equal(ig__coord_job_get(c, rest)->attempt, 2);
    assert_string_equal(ig__coord_job_get(c, rest)->reason, "node n3 silent for 10 s");
    assert_true(ig__coord_node_get(c, n3)->fenced);
    assert_string_equal(ig__coord_node_get(c, n3)->reason, "node n3 silent for 10 s");
    assert_false(ig__coord_node_get(c, n1)->fenced);
    assert_int_equal(ig__coord_node_get(c, n1)->used, 2); /* held by the running job */
    assert_int_equal(ig__coord_node_get(c, n2)->owner[1], run);
    assert_false(ig__coord_node_get(c, n1)->online);
    assert_string_equal(events(c, 0), history);
    assert_non_null(strstr(events(c, run), "checkpoint: checkpoint at step 500 committed\n"));

    /* nodes come back; the running job is re-adopted, its slots stay held */
    assert_int_equal(schedule(c), 0);
    assert_int_equal(node(c, "n1", 2), n1);
    assert_int_equal(node(c, "n2", 2), n2);
    assert_int_equal(ig__coord_job_adopt(c, run), IG_OK);
    assert_false(j->awaiting);
    assert_int_equal(schedule(c), 0); /* rest (restarting, head) has no slot: n3 is fenced */
    assert_int_equal(ig__coord_job_end(c, run, IG_JOB_SUCCEEDED, "all ranks exited 0"), IG_OK);
    assert_int_equal(schedule(c), 2);
    assert_int_equal(state_of(c, rest), IG_JOB_RUNNING);
    assert_int_equal(state_of(c, waiting), IG_JOB_RUNNING);

    /* and everything again after a second restart, with no job awaiting twice */
    reopen(f);
    assert_true(ig__coord_job_get(f->c, waiting)->awaiting);
    assert_int_equal(state_of(f->c, run), IG_JOB_SUCCEEDED);
    assert_int_equal(ig__coord_job_failed(f->c, waiting, "node n1 silent for 30 s"), IG_OK);
    assert_int_equal(state_of(f->c, waiting), IG_JOB_FAILED);
}

static void corrupt_foreign_or_newer_journal_is_refused_naming_the_file(void **state) {
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/journal.db", f->dir);
    ig__coord_close(f->c);
    f->c = NULL;
    ig__coord *c = NULL;

    /* garbage */
    rm_journal(f->dir);
    FILE *fp = fopen(path, "wb");
    for (int k = 0; k < 4096; k++) fputc((k * 7919) & 0xff, fp);
    fclose(fp);
    assert_int_equal(ig__coord_open(f->dir, &c), IG_ERR_FORMAT);
    assert_null(c);
    assert_non_null(strstr(ig_last_error(), path));

    /* another program's database */
    rm_journal(f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE photos(id INTEGER)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(ig__coord_open(f->dir, &c), IG_ERR_FORMAT);
    assert_non_null(strstr(ig_last_error(), path));
    assert_non_null(strstr(ig_last_error(), "meta"));

    /* a journal of a newer coordinator */
    rm_journal(f->dir);
    assert_int_equal(ig__coord_open(f->dir, &c), IG_OK);
    ig__coord_close(c);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(ig__coord_open(f->dir, &c), IG_ERR_UNSUPPORTED);
    assert_non_null(strstr(ig_last_error(), path));
    assert_non_null(strstr(ig_last_error(), "version 2"));

    /* a journal that contradicts itself: a placement on a node that does not exist */
    rm_journal(f->dir);
    assert_int_equal(ig__coord_open(f->dir, &c), IG_OK);
    node(c, "n1", 1);
    int64_t id = submit(c, SPEC(8), 1, 1, 0);
    assert_int_equal(schedule(c), 1);
    ig__coord_close(c);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE placements SET node = 9", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(ig__coord_open(f->dir, &c), IG_ERR_FORMAT);
    assert_non_null(strstr(ig_last_error(), path));
    (void)id;

    rm_journal(f->dir);
    assert_int_equal(ig__coord_open(f->dir, &f->c), IG_OK); /* for teardown */
}

static void a_256_rank_job_is_placed_on_256_single_slot_nodes(void **state) {
    fixture *f = *state;
    char name[16];
    for (int k = 0; k < 256; k++) {
        snprintf(name, sizeof name, "n%d", k + 1);
        node(f->c, name, 1);
    }
    int64_t id = submit(f->c, SPEC(256), 256, 256, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(schedule(f->c), 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("placing a 256-rank job on 256 one-slot nodes (journal write included): %.2f ms\n",
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6);
    const ig__coord_job *j = ig__coord_job_get(f->c, id);
    assert_int_equal(j->ranks, 256);
    for (int r = 0; r < 256; r++) assert_rank(f->c, id, r, r + 1, 0, 0);
    reopen(f);
    for (int r = 0; r < 256; r++) assert_rank(f->c, id, r, r + 1, 0, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(two_four_rank_jobs_run_one_after_the_other_in_node_major_order, setup, teardown),
        cmocka_unit_test_setup_teardown(two_two_rank_jobs_run_side_by_side, setup, teardown),
        cmocka_unit_test_setup_teardown(gang_job_waits_for_all_its_slots_and_local_ranks_count_per_node, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_is_fifo_with_restarting_jobs_first, setup, teardown),
        cmocka_unit_test_setup_teardown(rank_failure_restarts_with_the_next_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(node_failure_fences_the_node_and_the_job_shrinks_within_its_range, setup, teardown),
        cmocka_unit_test_setup_teardown(max_restarts_reached_fails_the_job_with_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_works_from_queued_running_and_restarting, setup, teardown),
        cmocka_unit_test_setup_teardown(every_invalid_transition_is_rejected_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(submit_rejects_bad_ranges_specs_and_indivisible_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(reopened_journal_restores_jobs_nodes_and_events, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_foreign_or_newer_journal_is_refused_naming_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(a_256_rank_job_is_placed_on_256_single_slot_nodes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* coordinator/jobs.c: the job state machine and restart policy (coord.h
 * states the transitions and the policy).
 *
 * Invariants: a job changes state only through ig__coord_transition, which
 * checks the transition table and journals before memory changes; a job
 * holds slots (assign != NULL) exactly while running; final states never
 * change again. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

#define BIT(s) (1u << (s))
static const unsigned allowed[IG_JOB_STATE_COUNT] = {
    [IG_JOB_QUEUED] = BIT(IG_JOB_RUNNING) | BIT(IG_JOB_FAILED) | BIT(IG_JOB_CANCELLED),
    [IG_JOB_RUNNING] = BIT(IG_JOB_RESTARTING) | BIT(IG_JOB_SUCCEEDED) | BIT(IG_JOB_FAILED) |
                       BIT(IG_JOB_CANCELLED),
    [IG_JOB_RESTARTING] = BIT(IG_JOB_RUNNING) | BIT(IG_JOB_FAILED) | BIT(IG_JOB_CANCELLED),
};

const char *ig__job_state_name(ig__job_state s) {
    static const char *const names[] = {"queued", "running", "restarting", "succeeded", "failed",
                                        "cancelled"};
    return s >= 0 && s < IG_JOB_STATE_COUNT ? names[s] : "?";
}

ig__coord_job *ig__coord_job_get(ig__coord *c, int64_t id) {
    return id >= 1 && id <= c->njobs ? &c->jobs[id - 1] : NULL;
}

static ig_status lookup(ig__coord *c, int64_t id, ig__coord_job **j) {
    *j = ig__coord_job_get(c, id);
    return *j ? IG_OK : ig_set_error(IG_ERR_INVALID, "no job %lld", (long long)id);
}

ig_status ig__coord_transition(ig__coord *c, ig__coord_job *j, ig__coord_job next) {
    if (!(allowed[j->state] & BIT(next.state))) {
        if (next.assign != j->assign) free(next.assign);
        return ig_set_error(IG_ERR_STATE, "job %lld: cannot go from %s to %s", (long long)j->id,
                            ig__job_state_name(j->state), ig__job_state_name(next.state));
    }
    bool moved = next.assign != j->assign;
    if (next.state >= IG_JOB_SUCCEEDED) next.ended = ig__coord_now();
    ig_status st = ig__coord_begin(c);
    if (!st) st = ig__coord_write_job(c, &next);
    if (!st && moved) st = ig__coord_write_placements(c, &next);
    if (!st) st = ig__coord_event(c, j->id, ig__job_state_name(next.state), "%s", next.reason);
    if (!st) st = ig__coord_commit(c);
    if (st) {
        ig__coord_rollback(c);
        if (moved) free(next.assign);
        return st;
    }
    if (moved) {
        if (j->assign) ig__coord_release(c, j);
        free(j->assign);
    }
    *j = next;
    if (moved && j->assign) ig__coord_hold(c, j);
    return IG_OK;
}

/* train.batch_size of the spec (the spec default when absent). */
static ig_status spec_batch(const char *spec_json, int *batch) {
    json_error_t e;
    json_t *root = json_loads(spec_json ? spec_json : "", 0, &e);
    if (!json_is_object(root)) {
        json_decref(root);
        return ig_set_error(IG_ERR_FORMAT, "job spec: not a JSON object (%s, line %d)", e.text, e.line);
    }
    json_t *b = json_object_get(json_object_get(root, "train"), "batch_size");
    *batch = IG_COORD_SPEC_BATCH_DEFAULT;
    if (b && !json_is_null(b)) *batch = json_is_integer(b) ? (int)json_integer_value(b) : -1;
    json_decref(root);
    return *batch > 0 ? IG_OK
                      : ig_set_error(IG_ERR_INVALID, "job spec: train.batch_size: expected a positive integer");
}

ig_status ig__coord_submit(ig__coord *c, const char *spec_json, int min_ranks, int max_ranks,
                           int max_restarts, int64_t *id) {
    if (min_ranks < 1 || max_ranks < min_ranks || max_ranks > IG_COORD_MAX_RANKS || max_restarts < 0)
        return ig_set_error(IG_ERR_INVALID,
                            "submit: need 1 <= min_ranks <= max_ranks <= %d and max_restarts >= 0, got %d, %d, %d",
                            IG_COORD_MAX_RANKS, min_ranks, max_ranks, max_restarts);
    int batch = 0;
    ig_status st = spec_batch(spec_json, &batch);
    if (st) return st;
    int w = max_ranks;
    while (w >= min_ranks && batch % w) w--;
    if (w < min_ranks)
        return ig_set_error(IG_ERR_INVALID,
                            "submit: train.batch_size %d (the global batch) is not divisible by any "
                            "world size in [%d, %d]", batch, min_ranks, max_ranks);
    ig__coord_job j = {.id = c->njobs + 1, .spec = (char *)spec_json, .batch = batch,
                       .min_ranks = min_ranks, .max_ranks = max_ranks, .max_restarts = max_restarts,
                       .state = IG_JOB_QUEUED, .reason = "submitted", .attempt = 1,
                       .submitted = ig__coord_now(), .ckpt_step = -1};
    st = ig__coord_begin(c);
    if (!st) st = ig__coord_write_job(c, &j);
    if (!st) st = ig__coord_event(c, j.id, "submitted", "%d..%d ranks, batch %d, max_restarts %d",
                                  min_ranks, max_ranks, batch, max_restarts);
    if (!st) st = ig__coord_commit(c);
    if (st) {
        ig__coord_rollback(c);
        return st;
    }
    if (c->njobs == c->cap_jobs) {
        c->cap_jobs = c->cap_jobs ? 2 * c->cap_jobs : 16;
        c->jobs = realloc(c->jobs, (size_t)c->cap_jobs * sizeof *c->jobs);
    }
    j.spec = strdup(spec_json);
    c->jobs[c->njobs++] = j;
    if (id) *id = j.id;
    return IG_OK;
}

ig_status ig__coord_job_end(ig__coord *c, int64_t id, ig__job_state to, const char *reason) {
    ig__coord_job *j;
    ig_status st = lookup(c, id, &j);
    if (st) return st;
    if (to != IG_JOB_SUCCEEDED && to != IG_JOB_FAILED && to != IG_JOB_CANCELLED)
        return ig_set_error(IG_ERR_INVALID, "job %lld: %s is not a final state", (long long)id,
                            ig__job_state_name(to));
    ig__coord_job next = *j;
    next.state = to, next.assign = NULL, next.awaiting = false;
    snprintf(next.reason, sizeof next.reason, "%s", reason);
    return ig__coord_transition(c, j, next);
}

/* The restart policy for a failure of running job j. */
static ig_status failure(ig__coord *c, ig__coord_job *j, const char *reason) {
    if (j->state != IG_JOB_RUNNING)
        return ig_set_error(IG_ERR_STATE, "job %lld: is %s, not running: no rank to fail (%s)",
                            (long long)j->id, ig__job_state_name(j->state), reason);
    ig__coord_job next = *j;
    next.assign = NULL, next.awaiting = false;
    if (j->restarts < j->max_restarts) {
        next.state = IG_JOB_RESTARTING, next.attempt++, next.restarts++;
        snprintf(next.reason, sizeof next.reason, "%s", reason);
    } else {
        next.state = IG_JOB_FAILED;
        snprintf(next.reason, sizeof next.reason, "%s; max_restarts (%d) reached", reason,
                 j->max_restarts);
    }
    return ig__coord_transition(c, j, next);
}

ig_status ig__coord_job_failed(ig__coord *c, int64_t id, const char *reason) {
    ig__coord_job *j;
    ig_status st = lookup(c, id, &j);
    return st ? st : failure(c, j, reason);
}

ig_status ig__coord_node_failed(ig__coord *c, int64_t id, const char *reason) {
    ig__coord_node *n = ig__coord_node_get(c, id);
    if (!n) return ig_set_error(IG_ERR_INVALID, "no node %lld", (long long)id);
    ig__coord_node next = *n;
    next.fenced = true;
    snprintf(next.reason, sizeof next.reason, "%s", reason);
    ig_status st = ig__coord_begin(c);
    if (!st) st = ig__coord_write_node(c, &next);
    if (!st) st = ig__coord_event(c, 0, "fenced", "node %s fenced: %s", n->name, reason);
    if (!st) st = ig__coord_commit(c);
    if (st) {
        ig__coord_rollback(c);
        return st;
    }
    *n = next;
    n->online = false;
    /* failure() releases all of a job's slots, so each job is seen once */
    for (int s = 0; s < n->slots && !st; s++)
        if (n->owner[s]) st = failure(c, ig__coord_job_get(c, n->owner[s]), reason);
    return st;
}

ig_status ig__coord_job_checkpoint(ig__coord *c, int64_t id, int64_t step) {
    ig__coord_job *j;
    ig_status st = lookup(c, id, &j);
    if (st) return st;
    if (j->state != IG_JOB_RUNNING || step <= j->ckpt_step)
        return ig_set_error(IG_ERR_STATE, "job %lld: checkpoint at step %lld while %s at step %lld",
                            (long long)id, (long long)step, ig__job_state_name(j->state),
                            (long long)j->ckpt_step);
    st = ig__coord_begin(c);
    if (!st) st = ig__coord_sql(c, "UPDATE jobs SET ckpt_step = ? WHERE id = ?", "ll", step, id);
    if (!st) st = ig__coord_event(c, id, "checkpoint", "checkpoint at step %lld committed", (long long)step);
    if (!st) st = ig__coord_commit(c);
    if (st) {
        ig__coord_rollback(c);
        return st;
    }
    j->ckpt_step = step;
    return IG_OK;
}

ig_status ig__coord_job_adopt(ig__coord *c, int64_t id) {
    ig__coord_job *j;
    ig_status st = lookup(c, id, &j);
    if (st) return st;
    if (!j->awaiting)
        return ig_set_error(IG_ERR_STATE, "job %lld: is %s and awaits no workers", (long long)id,
                            ig__job_state_name(j->state));
    st = ig__coord_event(c, id, "adopted", "running ranks re-adopted after a coordinator restart");
    if (!st) j->awaiting = false;
    return st;
}

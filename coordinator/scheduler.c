/* coordinator/scheduler.c: the node/slot registry and gang placement
 * (policy in coord.h: strict FIFO, restarting jobs first, largest feasible
 * world size in [min_ranks, max_ranks], node-major ranks).
 *
 * Invariants: node->owner[s] is the id of the running job holding slot s (0 =
 * free) and node->used counts the non-zero entries; only online, unfenced
 * nodes receive ranks; a placement is computed without touching the
 * registry, journaled, and only then held (ig__coord_transition). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

ig__coord_node *ig__coord_node_get(ig__coord *c, int64_t id) {
    return id >= 1 && id <= c->nnodes ? &c->nodes[id - 1] : NULL;
}

void ig__coord_release(ig__coord *c, ig__coord_job *j) {
    for (int r = 0; r < j->ranks; r++) {
        ig__coord_node *n = ig__coord_node_get(c, j->assign[r].node);
        n->owner[j->assign[r].slot] = 0;
        n->used--;
    }
}

void ig__coord_hold(ig__coord *c, const ig__coord_job *j) {
    for (int r = 0; r < j->ranks; r++) {
        ig__coord_node *n = ig__coord_node_get(c, j->assign[r].node);
        n->owner[j->assign[r].slot] = j->id;
        n->used++;
    }
}

ig_status ig__coord_node_register(ig__coord *c, const char *name, int slots, int64_t *id) {
    if (!name || !*name || strlen(name) >= IG_COORD_NAME_MAX || slots < 1 || slots > 1 << 16)
        return ig_set_error(IG_ERR_INVALID,
                            "node register: need a name of 1..%d bytes and 1..65536 slots, got \"%s\", %d",
                            IG_COORD_NAME_MAX - 1, name ? name : "", slots);
    ig__coord_node *n = NULL;
    for (int64_t k = 0; k < c->nnodes && !n; k++)
        if (!strcmp(c->nodes[k].name, name)) n = &c->nodes[k];
    if (n && n->slots != slots && n->used)
        return ig_set_error(IG_ERR_STATE, "node %s: registers %d slots while %d of its %d are in use",
                            name, slots, n->used, n->slots);
    ig__coord_node next = n ? *n : (ig__coord_node){.id = c->nnodes + 1};
    snprintf(next.name, sizeof next.name, "%s", name);
    next.slots = slots;
    ig_status st = ig__coord_begin(c);
    if (!st) st = ig__coord_write_node(c, &next);
    if (!st) st = ig__coord_event(c, 0, "registered", "node %s: %d slots%s", name, slots,
                                  next.fenced ? " (fenced)" : "");
    if (!st) st = ig__coord_commit(c);
    if (st) {
        ig__coord_rollback(c);
        return st;
    }
    if (!n) {
        if (c->nnodes == c->cap_nodes) {
            c->cap_nodes = c->cap_nodes ? 2 * c->cap_nodes : 16;
            c->nodes = realloc(c->nodes, (size_t)c->cap_nodes * sizeof *c->nodes);
        }
        n = &c->nodes[c->nnodes++];
    }
    if (!next.owner || n->slots != slots) { /* new, or resized while empty */
        free(next.owner);
        next.owner = calloc((size_t)slots, sizeof(int64_t));
    }
    *n = next;
    n->online = true;
    if (id) *id = n->id;
    return IG_OK;
}

int64_t ig__coord_free_slots(const ig__coord *c) {
    int64_t free_slots = 0;
    for (int64_t k = 0; k < c->nnodes; k++)
        if (c->nodes[k].online && !c->nodes[k].fenced) free_slots += c->nodes[k].slots - c->nodes[k].used;
    return free_slots;
}

int ig__coord_min_world(const ig__coord_job *j) {
    int w = j->min_ranks;
    while (w <= j->max_ranks && j->batch % w) w++;
    return w <= j->max_ranks ? w : 0;
}

/* Places j if some world size fits now; *placed says whether it did. */
static ig_status place(ig__coord *c, ig__coord_job *j, bool *placed) {
    int64_t free_slots = ig__coord_free_slots(c);
    int w = j->max_ranks;
    while (w >= j->min_ranks && (w > free_slots || j->batch % w)) w--;
    *placed = w >= j->min_ranks;
    if (!*placed) return IG_OK;
    ig__coord_job next = *j;
    next.assign = malloc((size_t)w * sizeof *next.assign);
    int r = 0, nodes = 0;
    for (int64_t k = 0; k < c->nnodes && r < w; k++) {
        ig__coord_node *n = &c->nodes[k];
        if (!n->online || n->fenced || n->used == n->slots) continue;
        nodes++;
        for (int s = 0, local = 0; s < n->slots && r < w; s++)
            if (!n->owner[s]) next.assign[r++] = (ig__coord_rank){n->id, local++, s};
    }
    next.state = IG_JOB_RUNNING, next.ranks = w, next.started = ig__coord_now(), next.awaiting = false;
    int k = snprintf(next.reason, sizeof next.reason, "attempt %d placed: %d ranks on %d nodes", j->attempt, w,
                     nodes);
    if (j->state == IG_JOB_RESTARTING && k > 0 && (size_t)k < sizeof next.reason) { /* why, and from where */
        char from[48] = "";
        if (j->ckpt_step >= 0) snprintf(from, sizeof from, ", last checkpoint step %lld", (long long)j->ckpt_step);
        snprintf(next.reason + k, sizeof next.reason - (size_t)k, "%s, after: %.150s", from, j->reason);
    }
    return ig__coord_transition(c, j, next);
}

ig__coord_job *ig__coord_queue_head(ig__coord *c) {
    for (int pass = 0; pass < 2; pass++)
        for (int64_t k = 0; k < c->njobs; k++)
            if (c->jobs[k].state == (pass ? IG_JOB_QUEUED : IG_JOB_RESTARTING)) return &c->jobs[k];
    return NULL;
}

ig_status ig__coord_schedule(ig__coord *c, int *placed) {
    int count = 0;
    ig_status st = IG_OK;
    bool ok = true;
    for (ig__coord_job *j; ok && !st && (j = ig__coord_queue_head(c));)
        if (!(st = place(c, j, &ok)) && ok) count++;
    if (placed) *placed = count;
    return st;
}

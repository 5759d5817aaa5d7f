/* core/scope.c: scopes own the temporaries made while they are open, like an
 * autorelease pool. Each scope keeps an intrusive doubly linked list of its
 * tensors, so ig_keep and ig_scope_end_with take a tensor out in O(1). Scopes
 * are per thread and nest; ending one that is not the innermost is misuse. */
#include "core/impl.h"
#include "core/pool.h"

struct ig_scope {
    ig_scope *parent;
    ig_tensor *head; /* most recent first */
};

static _Thread_local ig_scope *current;
static _Thread_local ig__pool pool = IG__POOL_INIT(ig_scope);

void ig__scope_pool_drain(void) { ig__pool_drain(&pool); }

static void link(ig_scope *s, ig_tensor *t) {
    t->scope = s;
    t->scope_prev = NULL;
    t->scope_next = s->head;
    if (s->head) s->head->scope_prev = t;
    s->head = t;
}

void ig__scope_adopt(ig_tensor *t) {
    if (current) link(current, t);
}

void ig__scope_remove(ig_tensor *t) {
    ig_scope *s = t->scope;
    if (!s) return;
    if (t->scope_prev) t->scope_prev->scope_next = t->scope_next;
    else s->head = t->scope_next;
    if (t->scope_next) t->scope_next->scope_prev = t->scope_prev;
    t->scope = NULL;
    t->scope_prev = t->scope_next = NULL;
}

ig_scope *ig_scope_begin(void) {
    ig_scope *s = ig__pool_get(&pool);
    IG_CHECK(s, "scope: out of host memory");
    s->parent = current;
    s->head = NULL;
    current = s;
    return s;
}

void ig_scope_end(ig_scope *s) {
    IG_CHECK(s == current, "scope: ending a scope that is not the innermost open one");
    /* Release in creation order reversed (most recent first): results before
     * the inputs they were computed from. */
    while (s->head) {
        ig_tensor *t = s->head;
        s->head = t->scope_next;
        t->scope = NULL;
        t->scope_prev = t->scope_next = NULL;
        ig__tensor_release(t);
    }
    current = s->parent;
    ig__pool_put(&pool, s);
}

ig_tensor *ig_scope_end_with(ig_scope *s, ig_tensor *result) {
    if (result) ig__scope_remove(result);
    ig_scope_end(s);
    if (result && current) link(current, result);
    return result;
}

ig_tensor *ig_keep(ig_tensor *t) {
    if (t) ig__scope_remove(t);
    return t;
}

void ig_tensor_free(ig_tensor *t) {
    if (!t) return;
    IG_CHECK(!t->scope, "tensor_free: %s belongs to a scope; ig_keep it first or let the scope end",
             ig__describe(t));
    ig__tensor_release(t);
}

/* core/nn_param.c: parameter registries (state dicts), an ordered list of
 * (name, tensor, decay) owning copies of the names and the kept tensors; and
 * what every model shares: its registry, device, mode, dtype/device moves
 * and safetensors load/save by name.
 *
 * Invariants: the order of registration is the state-dict order; decay is
 * set from the tensor's rank when added (2+ dims); a NULL tensor (a failed
 * allocation) may be registered so the constructor can report it. */
#include <string.h>

#include "core/impl.h"
#include "core/nn_impl.h"
#include "ignis/ckpt.h"

void ig_param_list_init(ig_param_list *l) { memset(l, 0, sizeof *l); }

void ig_param_list_add(ig_param_list *l, const char *name, ig_tensor *t) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **names = realloc(l->names, sizeof *names * (size_t)cap);
        if (names) l->names = names;
        ig_tensor **tensors = realloc(l->tensors, sizeof *tensors * (size_t)cap);
        if (tensors) l->tensors = tensors;
        bool *decay = realloc(l->decay, sizeof *decay * (size_t)cap);
        if (decay) l->decay = decay;
        IG_CHECK(names && tensors && decay, "param_list_add: out of memory registering %s",
                 name);
        l->cap = cap;
    }
    char *copy = strdup(name);
    IG_CHECK(copy, "param_list_add: out of memory registering %s", name);
    l->names[l->n] = copy;
    l->tensors[l->n] = t;
    l->decay[l->n] = t && ig_tensor_ndim(t) >= 2;
    l->n++;
}

void ig_param_list_destroy(ig_param_list *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->names[i]);
        ig_tensor_free(l->tensors[i]);
    }
    free(l->names);
    free(l->tensors);
    free(l->decay);
    ig_param_list_init(l);
}

ig_tensor *ig_param_list_find(const ig_param_list *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0) return l->tensors[i];
    return NULL;
}

int64_t ig_param_list_numel(const ig_param_list *l) {
    int64_t n = 0;
    for (int i = 0; i < l->n; i++)
        if (l->tensors[i]) n += ig_tensor_numel(l->tensors[i]);
    return n;
}

/* ---- models ---- */

ig_model *ig__model_alloc(ig__model_kind kind, ig_device dev) {
    ig_model *m = calloc(1, sizeof *m);
    if (!m) {
        ig__error(IG_ERR_NOMEM, "model: out of host memory");
        return NULL;
    }
    m->kind = kind;
    m->dev = dev;
    m->training = true;
    ig_param_list_init(&m->params);
    return m;
}

ig_model *ig__model_check(ig_model *m) {
    for (int i = 0; i < m->params.n; i++)
        if (!m->params.tensors[i]) {
            ig__error(ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_NOMEM,
                      "model: no memory for parameter %s: %s", m->params.names[i],
                      ig_last_error());
            ig_model_free(m);
            return NULL;
        }
    return m;
}

const ig_param_list *ig_model_params(const ig_model *m) { return &m->params; }
void ig_model_train(ig_model *m, bool training) { m->training = training; }
ig_device ig_model_device(const ig_model *m) { return m->dev; }

void ig_model_free(ig_model *m) {
    if (!m) return;
    ig_param_list_destroy(&m->params);
    if (m->kind == IG__MODEL_GPT) free(m->gpt.h);
    if (m->kind == IG__MODEL_MLP) free(m->mlp.layers);
    free(m);
}

ig_status ig_model_to(ig_model *m, ig_dtype dtype, ig_device dev) {
    IG_CHECK(ig_dtype_is_float(dtype), "model_to: %s is not a floating dtype",
             ig_dtype_name(dtype));
    bool prev = ig_grad_set_enabled(false);
    ig_status st = IG_OK;
    for (int i = 0; i < m->params.n && st == IG_OK; i++) {
        ig_tensor *t = m->params.tensors[i];
        if (t->dtype == dtype && ig_device_eq(t->device, dev)) continue;
        ig_scope *s = ig_scope_begin();
        ig_tensor *c = ig_keep(ig_to(t, dtype, dev));
        ig_scope_end(s);
        if (!c) {
            st = ig_last_status();
            break;
        }
        /* t takes c's storage and geometry; c leaves with t's old storage */
        ig_tensor old = *t;
        t->storage = c->storage;
        t->offset = c->offset;
        t->dtype = c->dtype;
        t->device = c->device;
        memcpy(t->strides, c->strides, sizeof t->strides);
        c->storage = old.storage;
        c->offset = old.offset;
        c->dtype = old.dtype;
        c->device = old.device;
        memcpy(c->strides, old.strides, sizeof c->strides);
        ig_tensor_free(c);
        ig_tensor_zero_grad(t, true);
    }
    ig_grad_set_enabled(prev);
    if (st == IG_OK) m->dev = dev;
    return st;
}

/* The index of name in f, also trying it without a "transformer." prefix. */
static int find_entry(const ig_safetensors *f, const char *name, const char **stored) {
    static const char prefix[] = "transformer.";
    *stored = name;
    int i = ig_safetensors_find(f, name);
    if (i < 0 && strncmp(name, prefix, sizeof prefix - 1) == 0) {
        *stored = name + sizeof prefix - 1;
        i = ig_safetensors_find(f, *stored);
    }
    return i;
}

ig_status ig_model_load_safetensors(ig_model *m, const char *path) {
    ig_safetensors *f = NULL;
    ig_status st = ig_safetensors_open(path, &f);
    for (int i = 0; i < m->params.n && st == IG_OK; i++) {
        const char *name = m->params.names[i], *stored;
        if (find_entry(f, name, &stored) < 0)
            st = ig__error(IG_ERR_INVALID, "%s: tensor '%s' is missing (wanted %s)", path, name,
                           ig__describe(m->params.tensors[i]));
        else
            st = ig_safetensors_read_into(f, stored, m->params.tensors[i], true);
    }
    if (f) ig_safetensors_close(f);
    return st;
}

ig_status ig_model_save_safetensors(const ig_model *m, const char *path) {
    return ig_safetensors_save(path, m->params.n, (const char *const *)m->params.names,
                               m->params.tensors, NULL);
}

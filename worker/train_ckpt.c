/* worker/train_ckpt.c: the trainer's checkpoints and final weights.
 *
 * A checkpoint is a sharded checkpoint directory (include/ignis/dckpt.h):
 * the state dict as "model.<name>", the optimizer's state tensors as
 * "optim.<name>", and state.json (steps done, data cursor, the default
 * generator, the optimizer's step count, the model config). Each rank writes
 * 1/W of the bytes; any number of ranks can load it. It is written in the
 * background (ig_dckpt_writer), or in the foreground over the run's group
 * when that group has no subgroups (UCX or unique-id NCCL, ranks started by workers): a
 * writer that cannot be made with IG_ERR_UNSUPPORTED. Resuming restores all
 * of it, so a resumed run computes bit for bit what an uninterrupted one
 * would (at the same world size). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "worker/trainer_impl.h"

/* The checkpoint's tensor list: model.* then optim.* (names owned by the list). */
typedef struct ckpt_list {
    int n;
    char **names;
    ig_tensor **tensors;
} ckpt_list;

static void list_free(ckpt_list *l) {
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->tensors);
}

static ig_status list_make(ig_model *m, ig_optim *o, ckpt_list *l) {
    const ig_param_list *p = ig_model_params(m);
    const char *const *onames = NULL;
    ig_tensor *const *otensors = NULL;
    int no = o ? ig_optim_state(o, &onames, &otensors) : 0;
    if (no < 0) return ig_last_status();
    l->n = 0;
    l->names = calloc((size_t)(p->n + no), sizeof *l->names);
    l->tensors = calloc((size_t)(p->n + no), sizeof *l->tensors);
    if (!l->names || !l->tensors) {
        list_free(l);
        return ig_set_error(IG_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < p->n + no; i++) {
        bool model = i < p->n;
        const char *name = model ? p->names[i] : onames[i - p->n];
        size_t len = strlen(name) + 8;
        l->names[i] = malloc(len);
        if (!l->names[i]) {
            list_free(l);
            return ig_set_error(IG_ERR_NOMEM, "out of memory");
        }
        snprintf(l->names[i], len, "%s%s", model ? "model." : "optim.", name);
        l->tensors[i] = model ? p->tensors[i] : otensors[i - p->n];
        l->n++;
    }
    return IG_OK;
}

static json_t *config_json(const ig_job_spec *spec) {
    if (spec->model != IG_MODEL_GPT) return json_pack("{s:s}", "type", spec->model == IG_MODEL_MLP ? "mlp" : "cnn");
    const ig_gpt_config *c = &spec->gpt;
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i}", "type", "gpt", "n_layer", c->n_layer,
                     "n_head", c->n_head, "n_embd", c->n_embd, "block_size", c->block_size,
                     "vocab_size", c->vocab_size);
}

static char *state_text(const ig_job_spec *spec, ig_optim *o, const train_state *st) {
    char seed[32], off[32];
    snprintf(seed, sizeof seed, "%" PRIu64, st->rng.seed);
    snprintf(off, sizeof off, "%" PRIu64, st->rng.offset);
    json_t *j = json_pack("{s:s, s:I, s:I, s:{s:I, s:I}, s:{s:s, s:s}, s:o}", "job", spec->name,
                          "step", (json_int_t)st->step, "optim_steps",
                          (json_int_t)ig_optim_step_count(o), "data", "epoch",
                          (json_int_t)st->cursor.epoch, "position",
                          (json_int_t)st->cursor.position, "rng", "seed", seed, "offset", off,
                          "model", config_json(spec));
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return text;
}

ig_status train_ckpt_save(train_run *r, const train_state *st) {
    ckpt_list l;
    ig_status s = list_make(r->model, r->optim, &l);
    if (s != IG_OK) return s;
    char *text = state_text(r->spec, r->optim, st);
    if (!text) s = ig_set_error(IG_ERR_NOMEM, "cannot build the checkpoint state");
    if (s == IG_OK && !r->writer && !r->sync_ckpt && !(r->writer = ig_dckpt_writer_new(r->pg))) {
        s = ig_last_status();
        if (s == IG_ERR_UNSUPPORTED) { /* no subgroup for the writer's thread */
            ig_clear_error();
            s = IG_OK;
            r->sync_ckpt = true;
        }
    }
    if (s == IG_OK && r->sync_ckpt)
        s = ig_dckpt_save(r->pg, r->spec->ckpt_dir, st->step, l.n, (const char *const *)l.names,
                          l.tensors, text, r->spec->ckpt_keep);
    else if (s == IG_OK)
        s = ig_dckpt_save_async(r->writer, r->spec->ckpt_dir, st->step, l.n,
                                (const char *const *)l.names, l.tensors, text,
                                r->spec->ckpt_keep);
    free(text);
    list_free(&l);
    return s;
}

static ig_status parse_state(const char *path, const char *text, ig_optim *o, train_state *st) {
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j) return ig_set_error(IG_ERR_FORMAT, "%s:%d:%d: %s", path, err.line, err.column, err.text);
    json_int_t step, osteps, epoch, pos;
    const char *seed, *off;
    int rc = json_unpack_ex(j, &err, 0, "{s:I, s:I, s:{s:I, s:I}, s:{s:s, s:s}}", "step", &step,
                            "optim_steps", &osteps, "data", "epoch", &epoch, "position", &pos,
                            "rng", "seed", &seed, "offset", &off);
    ig_status s = IG_OK;
    if (rc != 0 || step < 0 || osteps < 0 || epoch < 0 || pos < 0) {
        s = ig_set_error(IG_ERR_FORMAT, "%s: %s", path, rc ? err.text : "negative count");
    } else {
        st->step = step;
        st->cursor.epoch = epoch;
        st->cursor.position = pos;
        st->rng.seed = strtoull(seed, NULL, 10);
        st->rng.offset = strtoull(off, NULL, 10);
        if (o) ig_optim_set_step_count(o, osteps);
    }
    json_decref(j);
    return s;
}

ig_status train_ckpt_load(train_run *r, train_state *st, bool *found) {
    char dir[IG_JOB_PATH_MAX + 64], path[IG_JOB_PATH_MAX + 96];
    int64_t step;
    *found = false;
    if (!r->spec->ckpt_dir[0] || ig_ckpt_latest(r->spec->ckpt_dir, dir, sizeof dir, &step) != IG_OK) {
        ig_clear_error();
        return IG_OK;
    }
    /* everything is read into fresh tensors first: a checkpoint that does not
     * fit (another model, a bad file) changes nothing */
    ig_dckpt *c = NULL;
    ckpt_list l = {0};
    ig_status s = ig_dckpt_open(dir, &c);
    if (s == IG_OK) s = list_make(r->model, r->optim, &l);
    ig_scope *sc = ig_scope_begin();
    ig_tensor **tmp = s == IG_OK ? calloc((size_t)l.n + 1, sizeof *tmp) : NULL;
    if (s == IG_OK && !tmp) s = ig_set_error(IG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < l.n && s == IG_OK; i++) {
        tmp[i] = ig_empty_like(l.tensors[i]);
        s = tmp[i] ? ig_dckpt_read(c, l.names[i], tmp[i]) : ig_last_status();
    }
    train_state loaded = *st;
    snprintf(path, sizeof path, "%s/state.json", dir);
    if (s == IG_OK) s = parse_state(path, ig_dckpt_state(c), NULL, &loaded);
    for (int i = 0; i < l.n && s == IG_OK; i++) s = ig_copy_(l.tensors[i], tmp[i]);
    if (s == IG_OK) s = parse_state(path, ig_dckpt_state(c), r->optim, st);
    ig_scope_end(sc);
    free(tmp);
    list_free(&l);
    ig_dckpt_close(c);
    *found = s == IG_OK;
    return s;
}

ig_status train_save_weights(const ig_job_spec *spec, ig_model *m, const char *path) {
    char v[5][24];
    const char *meta[16] = {"format", "ignis"};
    int k = 2;
    if (spec->model == IG_MODEL_GPT) {
        const ig_gpt_config *c = &spec->gpt;
        int vals[5] = {c->n_layer, c->n_head, c->n_embd, c->block_size, c->vocab_size};
        const char *keys[5] = {"n_layer", "n_head", "n_embd", "block_size", "vocab_size"};
        meta[k++] = "model";
        meta[k++] = "gpt";
        for (int i = 0; i < 5; i++) {
            snprintf(v[i], sizeof v[i], "%d", vals[i]);
            meta[k++] = keys[i];
            meta[k++] = v[i];
        }
    }
    meta[k] = NULL;
    const ig_param_list *p = ig_model_params(m);
    train_make_parent(path);
    return ig_safetensors_save(path, p->n, (const char *const *)p->names, p->tensors, meta);
}

/* ---- reading a GPT back for `ignis sample` ---- */

static ig_status gpt_config_from_state(const char *path, const char *text, ig_gpt_config *cfg) {
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j) return ig_set_error(IG_ERR_FORMAT, "%s:%d:%d: %s", path, err.line, err.column, err.text);
    const char *type = NULL;
    int rc = json_unpack_ex(j, &err, 0, "{s:{s:s, s:i, s:i, s:i, s:i, s:i}}", "model", "type",
                            &type, "n_layer", &cfg->n_layer, "n_head", &cfg->n_head, "n_embd",
                            &cfg->n_embd, "block_size", &cfg->block_size, "vocab_size",
                            &cfg->vocab_size);
    ig_status s = rc == 0 && strcmp(type, "gpt") == 0
                      ? IG_OK
                      : ig_set_error(IG_ERR_FORMAT, "%s: model: expected a GPT config: %s", path,
                                     rc ? err.text : "another model type");
    cfg->dropout = 0;
    json_decref(j);
    return s;
}

static ig_status gpt_config_from_metadata(const ig_safetensors *f, const char *path,
                                          ig_gpt_config *cfg) {
    const char *model = ig_safetensors_metadata(f, "model");
    if (!model || strcmp(model, "gpt") != 0)
        return ig_set_error(IG_ERR_FORMAT, "%s: __metadata__.model: expected \"gpt\"", path);
    const char *keys[5] = {"n_layer", "n_head", "n_embd", "block_size", "vocab_size"};
    int *dst[5] = {&cfg->n_layer, &cfg->n_head, &cfg->n_embd, &cfg->block_size, &cfg->vocab_size};
    for (int i = 0; i < 5; i++) {
        const char *v = ig_safetensors_metadata(f, keys[i]);
        char *end = NULL;
        long x = v ? strtol(v, &end, 10) : 0;
        if (!v || *end || x <= 0 || x > (1L << 30))
            return ig_set_error(IG_ERR_FORMAT, "%s: __metadata__.%s: expected a positive integer",
                                path, keys[i]);
        *dst[i] = (int)x;
    }
    cfg->dropout = 0;
    return IG_OK;
}

static ig_status step_dir(const char *path, char *out, size_t cap);

static bool is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

ig_status train_load_gpt(const char *path, ig_model **out) {
    *out = NULL;
    ig_gpt_config cfg;
    ig_model *m = NULL;
    ig_status s;
    if (is_dir(path)) {
        char dir[IG_JOB_PATH_MAX + 64], meta[IG_JOB_PATH_MAX + 96];
        s = step_dir(path, dir, sizeof dir);
        if (s != IG_OK) return s;
        ig_dckpt *c = NULL;
        s = ig_dckpt_open(dir, &c);
        snprintf(meta, sizeof meta, "%s/state.json", dir);
        if (s == IG_OK) s = gpt_config_from_state(meta, ig_dckpt_state(c), &cfg);
        if (s == IG_OK && !(m = ig_gpt_new(&cfg, IG_CPU, NULL))) s = ig_last_status();
        const ig_param_list *p = m ? ig_model_params(m) : NULL;
        for (int i = 0; s == IG_OK && i < p->n; i++) {
            char name[512];
            snprintf(name, sizeof name, "model.%s", p->names[i]);
            s = ig_dckpt_read(c, name, p->tensors[i]);
        }
        ig_dckpt_close(c);
    } else {
        ig_safetensors *f = NULL;
        s = ig_safetensors_open(path, &f);
        if (s == IG_OK) s = gpt_config_from_metadata(f, path, &cfg);
        ig_safetensors_close(f);
        if (s == IG_OK && !(m = ig_gpt_new(&cfg, IG_CPU, NULL))) s = ig_last_status();
        if (s == IG_OK) s = ig_model_load_safetensors(m, path);
    }
    if (s != IG_OK) {
        ig_model_free(m);
        return s;
    }
    *out = m;
    return IG_OK;
}

/* The step directory a path names: itself when it holds metadata.json, else
 * the latest committed step inside it. */
static ig_status step_dir(const char *path, char *out, size_t cap) {
    char meta[IG_JOB_PATH_MAX + 96];
    struct stat st;
    int64_t step;
    snprintf(meta, sizeof meta, "%s/metadata.json", path);
    if (stat(meta, &st) == 0) {
        snprintf(out, cap, "%s", path);
        return IG_OK;
    }
    if (ig_ckpt_latest(path, out, cap, &step) != IG_OK)
        return ig_set_error(IG_ERR_IO, "%s: not a checkpoint directory and holds none", path);
    return IG_OK;
}

ig_status ig_export_run(const char *ckpt, const char *out_path) {
    ig_model *m = NULL;
    char dir[IG_JOB_PATH_MAX + 64];
    ig_status s = step_dir(ckpt, dir, sizeof dir);
    if (s != IG_OK) return s;
    if (train_load_gpt(dir, &m) == IG_OK) {
        /* a GPT: keep its config in the metadata */
        ig_job_spec spec;
        ig_job_spec_init(&spec);
        spec.model = IG_MODEL_GPT;
        spec.gpt = *ig_gpt_config_of(m);
        s = train_save_weights(&spec, m, out_path);
        ig_model_free(m);
        return s;
    }
    ig_clear_error();
    return ig_dckpt_export(dir, "model.", out_path);
}

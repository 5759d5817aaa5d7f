/* worker/train_ckpt.c: the trainer's checkpoints (single process) and final
 * weights. A checkpoint is a directory committed atomically by ig_ckpt_*:
 * model.safetensors (the state dict), optim.safetensors (the optimizer's
 * state tensors) and state.json (steps done, data cursor, the default
 * generator, the optimizer's step count). Resuming restores all of it, so a
 * resumed run computes bit for bit what an uninterrupted one would. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/trainer_impl.h"

static ig_status save_params(const ig_param_list *p, const char *path, const char *const *meta) {
    return ig_safetensors_save(path, p->n, (const char *const *)p->names, p->tensors, meta);
}

static ig_status write_state(const char *path, const ig_job_spec *spec, ig_optim *o,
                             const train_state *st) {
    char seed[32], off[32];
    snprintf(seed, sizeof seed, "%" PRIu64, st->rng.seed);
    snprintf(off, sizeof off, "%" PRIu64, st->rng.offset);
    json_t *j = json_pack("{s:s, s:I, s:I, s:{s:I, s:I}, s:{s:s, s:s}}", "job", spec->name,
                          "step", (json_int_t)st->step, "optim_steps",
                          (json_int_t)ig_optim_step_count(o), "data", "epoch",
                          (json_int_t)st->cursor.epoch, "position",
                          (json_int_t)st->cursor.position, "rng", "seed", seed, "offset", off);
    if (!j) return ig_set_error(IG_ERR_NOMEM, "%s: cannot build the state", path);
    int rc = json_dump_file(j, path, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    return rc == 0 ? IG_OK : ig_set_error(IG_ERR_IO, "%s: cannot write", path);
}

ig_status train_ckpt_save(const ig_job_spec *spec, ig_model *m, ig_optim *o,
                          const train_state *st) {
    char dir[IG_JOB_PATH_MAX + 64], path[IG_JOB_PATH_MAX + 128];
    ig_status s = ig_ckpt_begin(spec->ckpt_dir, st->step, dir, sizeof dir);
    if (s != IG_OK) return s;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    s = train_save_weights(spec, m, path);
    if (s == IG_OK) {
        const char *const *names;
        ig_tensor *const *tensors;
        int n = ig_optim_state(o, &names, &tensors);
        snprintf(path, sizeof path, "%s/optim.safetensors", dir);
        s = n < 0 ? ig_last_status() : ig_safetensors_save(path, n, names, tensors, NULL);
    }
    if (s == IG_OK) {
        snprintf(path, sizeof path, "%s/state.json", dir);
        s = write_state(path, spec, o, st);
    }
    if (s == IG_OK) s = ig_ckpt_commit(spec->ckpt_dir, st->step, spec->ckpt_keep);
    return s;
}

static ig_status read_into_all(const char *path, int n, const char *const *names,
                               ig_tensor *const *tensors) {
    ig_safetensors *f = NULL;
    ig_status s = ig_safetensors_open(path, &f);
    for (int i = 0; i < n && s == IG_OK; i++) s = ig_safetensors_read_into(f, names[i], tensors[i], false);
    ig_safetensors_close(f);
    return s;
}

static ig_status read_state(const char *path, ig_optim *o, train_state *st) {
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
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
        ig_optim_set_step_count(o, osteps);
    }
    json_decref(j);
    return s;
}

ig_status train_ckpt_load(const ig_job_spec *spec, ig_model *m, ig_optim *o, train_state *st,
                          bool *found) {
    char dir[IG_JOB_PATH_MAX + 64], path[IG_JOB_PATH_MAX + 128];
    int64_t step;
    *found = false;
    if (!spec->ckpt_dir[0] || ig_ckpt_latest(spec->ckpt_dir, dir, sizeof dir, &step) != IG_OK) {
        ig_clear_error();
        return IG_OK;
    }
    const ig_param_list *p = ig_model_params(m);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ig_status s = read_into_all(path, p->n, (const char *const *)p->names, p->tensors);
    if (s == IG_OK) {
        const char *const *names;
        ig_tensor *const *tensors;
        int n = ig_optim_state(o, &names, &tensors);
        snprintf(path, sizeof path, "%s/optim.safetensors", dir);
        s = n < 0 ? ig_last_status() : read_into_all(path, n, names, tensors);
    }
    if (s == IG_OK) {
        snprintf(path, sizeof path, "%s/state.json", dir);
        s = read_state(path, o, st);
    }
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
    return save_params(ig_model_params(m), path, meta);
}

ig_status train_config_from_metadata(const ig_safetensors *f, const char *path,
                                     ig_gpt_config *cfg) {
    const char *model = ig_safetensors_metadata(f, "model");
    if (!model || strcmp(model, "gpt") != 0)
        return ig_set_error(IG_ERR_FORMAT, "%s: __metadata__.model: expected \"gpt\", got %s%s%s",
                            path, model ? "\"" : "", model ? model : "nothing",
                            model ? "\"" : "");
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

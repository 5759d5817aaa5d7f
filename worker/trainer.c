/* worker/trainer.c: the built-in trainer behind `ignis train` and `ignis
 * sample`. One process, CPU or one GPU: build the model the spec names, read
 * its data, and loop: forward, backward (micro-batches accumulate), clip,
 * step, log; evaluate, checkpoint and finally save the weights and show a
 * sample. Everything that decides what a step computes (weights, optimizer
 * state, data cursor, generator) is in the checkpoint, so --resume continues
 * bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "worker/trainer_impl.h"

static ig_model *build_model(const ig_job_spec *spec, ig_device dev) {
    ig_generator g = {spec->seed, 0};
    switch (spec->model) {
    case IG_MODEL_GPT: return ig_gpt_new(&spec->gpt, dev, &g);
    case IG_MODEL_MLP: return ig_mlp_new(&spec->mlp, dev, &g);
    case IG_MODEL_CNN: return ig_cnn_new(&spec->cnn, dev, &g);
    default: return NULL;
    }
}

ig_tensor *train_logits(ig_model *m, const ig_job_spec *spec, ig_tensor *x) {
    switch (spec->model) {
    case IG_MODEL_GPT: return ig_gpt_forward(m, x);
    case IG_MODEL_MLP: return ig_mlp_forward(m, x);
    default: return ig_cnn_forward(m, x);
    }
}

ig_tensor *train_loss(ig_model *m, const ig_job_spec *spec, ig_tensor *x, ig_tensor *y) {
    if (spec->model == IG_MODEL_GPT) return ig_gpt_loss(m, x, y);
    return ig_cross_entropy(train_logits(m, spec, x), y, IG_IGNORE_INDEX_NONE, 0.0);
}

/* Loads every state-dict entry of m from a safetensors file by name. */
static ig_status load_weights(ig_model *m, const char *path) {
    const ig_param_list *p = ig_model_params(m);
    ig_safetensors *f = NULL;
    ig_status s = ig_safetensors_open(path, &f);
    for (int i = 0; i < p->n && s == IG_OK; i++)
        s = ig_safetensors_read_into(f, p->names[i], p->tensors[i], true);
    ig_safetensors_close(f);
    return s;
}

/* One optimizer step over grad_accum micro-batches; returns the mean loss. */
static ig_status train_step(ig_model *m, const ig_job_spec *spec, train_data *d, ig_device dev,
                            double *loss) {
    *loss = 0;
    for (int k = 0; k < spec->grad_accum; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x, *y;
        ig_status st = train_data_next(d, dev, &x, &y);
        ig_tensor *l = st == IG_OK ? train_loss(m, spec, x, y) : NULL;
        if (l && spec->grad_accum > 1) l = ig_mul_scalar(l, 1.0 / spec->grad_accum);
        if (st == IG_OK) st = l ? ig_backward(l) : ig_last_status();
        if (st == IG_OK) *loss += ig_tensor_item(l);
        ig_scope_end(s);
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

static void sample_text(train_log *log, const ig_job_spec *spec, ig_model *m) {
    int np = (int)strlen(spec->sample_prompt), n = np + spec->sample_tokens;
    int64_t *tok = malloc(sizeof *tok * (size_t)(n > 0 ? n : 1));
    if (!tok) return;
    for (int i = 0; i < np; i++) tok[i] = (unsigned char)spec->sample_prompt[i];
    if (np == 0) tok[np++] = '\n', n++;
    ig_generator g = {spec->seed + 1, 0};
    if (ig_gpt_generate(m, tok, np, n - np, spec->sample_temperature, spec->sample_top_k, &g,
                        tok) == IG_OK) {
        char *text = malloc((size_t)n + 1);
        if (text) {
            for (int i = 0; i < n; i++) text[i] = (char)tok[i];
            text[n] = 0;
            train_log_text(log, "---- sample ----\n%s\n----------------\n", text);
            free(text);
        }
    } else {
        train_log_text(log, "sample: %s\n", ig_last_error());
    }
    free(tok);
}

ig_status ig_train_run(const ig_job_spec *spec, const ig_train_opts *opts) {
    ig_train_opts o = IG_TRAIN_OPTS_INIT;
    if (opts) o = *opts;
    if (strcmp(spec->precision, "fp32") != 0)
        return ig_set_error(IG_ERR_UNSUPPORTED, "%s: train.precision %s: only fp32 for now",
                            spec->path, spec->precision);
    ig_device dev = ig_device_parse(spec->device);
    ig_manual_seed(spec->seed);
    ig_model *m = build_model(spec, dev);
    if (!m) return ig_last_status();
    train_data d;
    train_log log;
    ig_optim *opt = NULL;
    ig_status st = train_data_open(&d, spec);
    if (st == IG_OK && spec->init_from[0]) st = load_weights(m, spec->init_from);
    if (st == IG_OK) {
        opt = ig_optim_new(ig_model_params(m), &spec->optim);
        if (!opt) st = ig_last_status();
    }
    if (st == IG_OK) st = train_log_open(&log, spec, &o);
    if (st != IG_OK) {
        ig_optim_free(opt);
        train_data_close(&d);
        ig_model_free(m);
        return st;
    }
    const ig_param_list *params = ig_model_params(m);
    train_state state = {0, {0, 0}, *ig_default_generator()};
    if (o.resume) {
        bool found;
        st = train_ckpt_load(spec, m, opt, &state, &found);
        if (st == IG_OK && found) {
            train_data_set_cursor(&d, state.cursor);
            *ig_default_generator() = state.rng;
            train_log_text(&log, "resumed from step %lld (%s)\n", (long long)state.step,
                           spec->ckpt_dir);
        } else if (st == IG_OK) {
            train_log_text(&log, "no checkpoint in '%s': starting at step 0\n", spec->ckpt_dir);
        }
    }
    if (st == IG_OK)
        train_log_text(&log, "%s: %lld parameters on %s, %lld steps of %lld %s\n", spec->name,
                       (long long)ig_param_list_numel(params), spec->device,
                       (long long)spec->steps,
                       (long long)train_data_items(&d, spec) * spec->grad_accum,
                       spec->data_format == IG_DATA_MNIST ? "examples" : "tokens");
    int64_t first = state.step;
    for (int64_t step = first; st == IG_OK && step < spec->steps; step++) {
        double t0 = train_now(), loss, lr = ig_lr_at(&spec->schedule, step);
        ig_optim_set_lr(opt, lr);
        st = train_step(m, spec, &d, dev, &loss);
        if (st != IG_OK) break;
        if (!isfinite(loss)) {
            st = ig_set_error(IG_ERR_STATE, "%s: the loss is %f at step %lld", spec->path, loss,
                              (long long)step);
            break;
        }
        double norm = ig_clip_grad_norm(params, spec->grad_clip > 0 ? spec->grad_clip : INFINITY);
        st = ig_optim_step(opt);
        ig_optim_zero_grad(opt, true);
        if (st != IG_OK) break;
        double dt = train_now() - t0;
        int64_t done = step + 1;
        bool line = done % spec->log_interval == 0 || done == spec->steps || step == first;
        train_log_step(&log, spec, done, loss, lr, norm,
                       (double)(train_data_items(&d, spec) * spec->grad_accum) / dt, dt * 1e3,
                       line);
        if (spec->eval_interval > 0 && done % spec->eval_interval == 0 && done != spec->steps) {
            double vl, acc;
            st = train_data_eval(&d, m, spec, dev, &vl, &acc);
            if (st == IG_OK) train_log_eval(&log, done, vl, acc);
        }
        state.step = done;
        state.cursor = train_data_cursor(&d);
        state.rng = *ig_default_generator();
        if (st == IG_OK && spec->ckpt_dir[0] && spec->ckpt_interval > 0 &&
            done % spec->ckpt_interval == 0)
            st = train_ckpt_save(spec, m, opt, &state);
        if (o.stop_after > 0 && done - first >= o.stop_after) goto out;
    }
    if (st == IG_OK) {
        double vl, acc;
        st = train_data_eval(&d, m, spec, dev, &vl, &acc);
        if (st == IG_OK && !isnan(vl)) train_log_eval(&log, state.step, vl, acc);
    }
    if (st == IG_OK && spec->ckpt_dir[0] && state.step > first &&
        (spec->ckpt_interval <= 0 || state.step % spec->ckpt_interval != 0))
        st = train_ckpt_save(spec, m, opt, &state);
    if (st == IG_OK && spec->output[0]) {
        st = train_save_weights(spec, m, spec->output);
        if (st == IG_OK) train_log_text(&log, "weights: %s\n", spec->output);
    }
    if (st == IG_OK && spec->model == IG_MODEL_GPT && spec->sample_tokens > 0)
        sample_text(&log, spec, m);
out:
    train_log_close(&log);
    ig_optim_free(opt);
    train_data_close(&d);
    ig_model_free(m);
    return st;
}

/* ---- ignis sample ---- */

static bool is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

ig_status ig_sample_run(const char *path, const ig_sample_opts *opts, FILE *out) {
    char file[IG_JOB_PATH_MAX + 64];
    if (is_dir(path)) {
        snprintf(file, sizeof file, "%s/model.safetensors", path);
        struct stat s;
        if (stat(file, &s) != 0) {
            char latest[IG_JOB_PATH_MAX];
            int64_t step;
            if (ig_ckpt_latest(path, latest, sizeof latest, &step) != IG_OK)
                return ig_set_error(IG_ERR_IO, "%s: no model.safetensors and no checkpoint", path);
            snprintf(file, sizeof file, "%s/model.safetensors", latest);
        }
    } else {
        snprintf(file, sizeof file, "%s", path);
    }
    ig_safetensors *f = NULL;
    ig_status st = ig_safetensors_open(file, &f);
    ig_gpt_config cfg;
    if (st == IG_OK) st = train_config_from_metadata(f, file, &cfg);
    ig_safetensors_close(f);
    if (st != IG_OK) return st;
    ig_model *m = ig_gpt_new(&cfg, IG_CPU, NULL);
    if (!m) return ig_last_status();
    st = load_weights(m, file);
    int np = (int)strlen(opts->prompt), n = np + opts->tokens;
    int64_t *tok = st == IG_OK ? malloc(sizeof *tok * (size_t)(n + 1)) : NULL;
    if (st == IG_OK && !tok) st = ig_set_error(IG_ERR_NOMEM, "out of memory");
    if (st == IG_OK) {
        for (int i = 0; i < np; i++) tok[i] = (unsigned char)opts->prompt[i];
        if (np == 0) tok[np++] = '\n', n++;
        ig_generator g = {opts->seed, 0};
        st = ig_gpt_generate(m, tok, np, n - np, opts->temperature, opts->top_k, &g, tok);
    }
    if (st == IG_OK) {
        for (int i = 0; i < n; i++) fputc((int)(tok[i] & 0xff), out);
        fputc('\n', out);
    }
    free(tok);
    ig_model_free(m);
    return st;
}

/* worker/trainer.c: the built-in trainer behind `ignis train` and `ignis
 * sample`. Build the model the spec names, read its data, and loop: forward,
 * backward (micro-batches accumulate), clip, step, log; evaluate, checkpoint
 * and finally save the weights and show a sample.
 *
 * Direct mode: started by mpirun / srun (ig_dist_env_detect sees the rank),
 * the run is data parallel: one process group (MPI for CPU, NCCL for CUDA),
 * DDP averaging gradients, each rank reading its rows of every global batch
 * (train.batch_size is the global batch, so any world size trains the same
 * way), sharded checkpoints that any world size can resume, and rank 0
 * printing and writing the outputs. Everything that decides what a step
 * computes (weights, optimizer state, data cursor, generator) is in the
 * checkpoint, so --resume continues bit for bit at the same world size.
 *
 * Ranks started by `ignis worker` (IGNIS_COORDINATOR and IGNIS_JOB in the
 * environment) run the same way over a group bootstrapped through the
 * coordinator's rendezvous (train_rendezvous.c): UCX for CPU, NCCL for CUDA
 * (each rank on its slot's GPU); their checkpoints are written in the
 * foreground (these groups have no subgroup for a writer thread); a
 * restarted attempt (IGNIS_ATTEMPT > 1) resumes from the job's last
 * committed checkpoint, as --resume does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* One optimizer step's gradients over grad_accum micro-batches; *loss is the
 * mean loss of the global batch (averaged over the ranks). */
static ig_status train_step(train_run *r, train_data *d, ig_device dev, double *loss) {
    const ig_job_spec *spec = r->spec;
    *loss = 0;
    for (int k = 0; k < spec->grad_accum; k++) {
        if (r->ddp) ig_ddp_set_sync(r->ddp, k == spec->grad_accum - 1);
        ig_scope *s = ig_scope_begin();
        ig_tensor *x, *y;
        ig_status st = train_data_next(d, dev, &x, &y);
        ig_tensor *l = st == IG_OK ? train_loss(r->model, spec, x, y) : NULL;
        if (l && spec->grad_accum > 1) l = ig_mul_scalar(l, 1.0 / spec->grad_accum);
        if (st == IG_OK) st = l ? ig_backward(l) : ig_last_status();
        if (st == IG_OK) *loss += ig_tensor_item(l);
        ig_scope_end(s);
        if (st != IG_OK) return st;
    }
    ig_status st = r->ddp ? ig_ddp_finish(r->ddp) : IG_OK;
    if (st == IG_OK && r->pg) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *t = ig_full(IG_SHAPE(1), *loss, IG_F64, IG_CPU);
        st = t ? ig_pg_all_reduce(r->pg, t, IG_REDUCE_AVG, NULL) : ig_last_status();
        if (st == IG_OK) *loss = ig_tensor_item(t);
        ig_scope_end(s);
    }
    return st;
}

static void sample_text(train_log *log, const ig_job_spec *spec, ig_model *m) {
    int np = (int)strlen(spec->sample_prompt), n = np + spec->sample_tokens;
    int64_t *tok = malloc(sizeof *tok * (size_t)(n + 1));
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

/* Joins the job's process group: through the coordinator's rendezvous when
 * started by `ignis worker`, else the launcher's when started by mpirun /
 * srun; none for a world of 1. */
static ig_status join_group(train_run *r, ig_device *dev) {
    ig_status st;
    if (getenv("IGNIS_COORDINATOR") && getenv("IGNIS_JOB")) {
        st = train_rendezvous(dev, &r->pg);
    } else {
        ig_dist_env env;
        if (!ig_dist_env_detect(&env) || env.world <= 1) return IG_OK;
        ig_pg_opts o = IG_PG_OPTS_INIT;
        if (dev->kind == IG_DEV_CUDA) {
            o.backend = IG_BACKEND_NCCL;
            *dev = IG_CUDA(env.local_rank); /* one GPU per rank */
        }
        st = ig_pg_init_world(&o, &r->pg);
    }
    if (st != IG_OK || !r->pg) return st;
    r->rank = ig_pg_rank(r->pg);
    r->world = ig_pg_size(r->pg);
    return IG_OK;
}

static void run_free(train_run *r) {
    if (r->writer) ig_dckpt_writer_free(r->writer); /* waits for the save in flight */
    if (r->ddp) ig_ddp_free(r->ddp);
    ig_optim_free(r->optim);
    ig_model_free(r->model);
    if (r->pg) ig_pg_free(r->pg);
}

ig_status ig_train_run(const ig_job_spec *spec, const ig_train_opts *opts) {
    ig_train_opts o = IG_TRAIN_OPTS_INIT;
    if (opts) o = *opts;
    /* A later attempt of a worker's job goes on from its last checkpoint. */
    const char *attempt = getenv("IGNIS_ATTEMPT");
    if (getenv("IGNIS_JOB") && attempt && atoi(attempt) > 1) o.resume = true;
    if (strcmp(spec->precision, "fp32") != 0)
        return ig_set_error(IG_ERR_UNSUPPORTED, "%s: train.precision %s: only fp32 for now",
                            spec->path, spec->precision);
    train_run r = {spec, NULL, NULL, NULL, NULL, NULL, 0, 1};
    ig_device dev = ig_device_parse(spec->device);
    ig_status st = join_group(&r, &dev);
    if (st != IG_OK) return st;
    FILE *quiet = NULL;
    if (r.rank != 0) { /* only rank 0 prints and writes metrics */
        quiet = fopen("/dev/null", "w");
        o.log = quiet;
        o.progress = false;
    }
    ig_manual_seed(spec->seed);
    r.model = build_model(spec, dev);
    if (!r.model) st = ig_last_status();
    train_data d = {0};
    train_log log = {0};
    bool log_open = false;
    if (st == IG_OK) st = train_data_open(&d, spec, r.rank, r.world);
    if (st == IG_OK && spec->init_from[0]) st = ig_model_load_safetensors(r.model, spec->init_from);
    if (st == IG_OK && !(r.optim = ig_optim_new(ig_model_params(r.model), &spec->optim)))
        st = ig_last_status();
    if (st == IG_OK && r.pg) {
        ig_ddp_opts dopts = IG_DDP_OPTS_INIT;
        st = ig_ddp_new(ig_model_params(r.model), r.pg, &dopts, &r.ddp);
    }
    if (st == IG_OK) {
        ig_train_opts lo = o;
        if (r.rank != 0) lo.resume = true; /* append, never truncate another rank's file */
        st = r.rank == 0 ? train_log_open(&log, spec, &lo) : IG_OK;
        if (r.rank != 0) log.out = quiet ? quiet : stdout;
        log_open = st == IG_OK;
    }
    const ig_param_list *params = r.model ? ig_model_params(r.model) : NULL;
    train_state state = {0, {0, 0}, *ig_default_generator()};
    if (st == IG_OK && o.resume) {
        bool found;
        st = train_ckpt_load(&r, &state, &found);
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
        train_log_text(&log, "%s: %lld parameters on %s%s, %lld steps of %lld %s\n", spec->name,
                       (long long)ig_param_list_numel(params), ig_device_name(dev),
                       r.world > 1 ? " (data parallel)" : "", (long long)spec->steps,
                       (long long)train_data_items(&d, spec) * spec->grad_accum,
                       spec->data_format == IG_DATA_MNIST ? "examples" : "tokens");
    if (st == IG_OK && r.world > 1) train_log_text(&log, "ranks: %d\n", r.world);
    int64_t first = state.step, committed = first > 0 ? first : -1; /* resumed: from a committed one */
    for (int64_t step = first; st == IG_OK && step < spec->steps; step++) {
        double t0 = train_now(), loss, lr = ig_lr_at(&spec->schedule, step);
        ig_optim_set_lr(r.optim, lr);
        st = train_step(&r, &d, dev, &loss);
        if (st != IG_OK) break;
        if (!isfinite(loss)) {
            st = ig_set_error(IG_ERR_STATE, "%s: the loss is %f at step %lld", spec->path, loss,
                              (long long)step);
            break;
        }
        double norm = ig_clip_grad_norm(params, spec->grad_clip > 0 ? spec->grad_clip : INFINITY);
        st = ig_optim_step(r.optim);
        ig_optim_zero_grad(r.optim, r.ddp == NULL); /* DDP: zero in place (bucket views) */
        if (st != IG_OK) break;
        double dt = train_now() - t0;
        int64_t done = step + 1;
        bool line = done % spec->log_interval == 0 || done == spec->steps || step == first;
        train_log_step(&log, spec, done, loss, lr, norm,
                       (double)(train_data_items(&d, spec) * spec->grad_accum) / dt, dt * 1e3,
                       line);
        train_progress(spec, r.rank, done, loss,
                       (double)(train_data_items(&d, spec) * spec->grad_accum) / dt, dt * 1e3, committed);
        if (spec->eval_interval > 0 && done % spec->eval_interval == 0 && done != spec->steps) {
            double vl, acc;
            st = train_data_eval(&d, r.model, spec, dev, &vl, &acc);
            if (st == IG_OK) train_log_eval(&log, done, vl, acc);
        }
        state.step = done;
        state.cursor = train_data_cursor(&d);
        state.rng = *ig_default_generator();
        if (st == IG_OK && spec->ckpt_dir[0] && spec->ckpt_interval > 0 &&
            done % spec->ckpt_interval == 0) {
            st = train_ckpt_save(&r, &state);
            if (st == IG_OK && r.sync_ckpt) committed = done; /* a foreground save is committed on return */
        }
        if (o.stop_after > 0 && done - first >= o.stop_after) {
            if (st == IG_OK && r.writer) st = ig_dckpt_wait(r.writer);
            goto out;
        }
    }
    if (st == IG_OK) {
        double vl, acc;
        st = train_data_eval(&d, r.model, spec, dev, &vl, &acc);
        if (st == IG_OK && !isnan(vl)) train_log_eval(&log, state.step, vl, acc);
    }
    if (st == IG_OK && spec->ckpt_dir[0] && state.step > first &&
        (spec->ckpt_interval <= 0 || state.step % spec->ckpt_interval != 0))
        st = train_ckpt_save(&r, &state);
    if (st == IG_OK && r.writer) st = ig_dckpt_wait(r.writer); /* the last one is committed */
    if (st == IG_OK && spec->output[0] && r.rank == 0) {
        st = train_save_weights(spec, r.model, spec->output);
        if (st == IG_OK) train_log_text(&log, "weights: %s\n", spec->output);
    }
    if (st == IG_OK && r.rank == 0 && spec->model == IG_MODEL_GPT && spec->sample_tokens > 0)
        sample_text(&log, spec, r.model);
out:
    if (log_open && r.rank == 0) train_log_close(&log);
    if (quiet) fclose(quiet);
    train_data_close(&d);
    if (st != IG_OK && r.pg) ig_pg_abort(r.pg, ig_last_error());
    run_free(&r);
    return st;
}

/* ---- ignis sample ---- */

ig_status ig_sample_run(const char *path, const ig_sample_opts *opts, FILE *out) {
    ig_model *m = NULL;
    ig_status st = train_load_gpt(path, &m);
    if (st != IG_OK) return st;
    int np = (int)strlen(opts->prompt), n = np + opts->tokens;
    int64_t *tok = malloc(sizeof *tok * (size_t)(n + 1));
    if (!tok) st = ig_set_error(IG_ERR_NOMEM, "out of memory");
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

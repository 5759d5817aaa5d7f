/* worker/trainer_impl.h: the pieces of the built-in trainer, shared by the
 * files of worker/train_*.c. One `trainer` holds everything a run needs; the
 * data, checkpoint and log files each own one aspect of it. */
#ifndef IGNIS_WORKER_TRAINER_IMPL_H
#define IGNIS_WORKER_TRAINER_IMPL_H

#include <stdio.h>

#include "ignis/ckpt.h"
#include "ignis/data.h"
#include "ignis/ddp.h"
#include "ignis/dckpt.h"
#include "ignis/ignis.h"
#include "ignis/job.h"
#include "ignis/nn.h"
#include "ignis/optim.h"
#include "ignis/train.h"

/* Batches of (inputs, targets): token windows for a GPT, (images, labels)
 * for a classifier. The cursor is all the state a checkpoint needs. */
typedef struct train_data {
    ig_data_format format;
    /* tokens */
    ig_tokens *train_tokens, *val_tokens; /* val may alias train (a tail range) */
    ig_loader *train_loader;
    ig_loader_config val_cfg;
    /* classification */
    ig_tensor *images, *labels, *val_images, *val_labels; /* kept */
    int64_t *order;        /* this epoch's permutation of the training set */
    ig_loader_cursor cursor;
    int batch;
    uint64_t seed;
    bool images_2d;        /* CNN: (N, 1, H, W) */
    int rank, world;       /* this rank takes rows [rank * batch, (rank + 1) * batch) */
    int64_t height, width;
} train_data;

/* rank/world: this process's share of every global batch (world 1: all). */
ig_status train_data_open(train_data *d, const ig_job_spec *spec, int rank, int world);
void train_data_close(train_data *d);
/* The next training batch, in the current scope. */
ig_status train_data_next(train_data *d, ig_device dev, ig_tensor **x, ig_tensor **y);
ig_loader_cursor train_data_cursor(const train_data *d);
void train_data_set_cursor(train_data *d, ig_loader_cursor c);
/* Mean loss (and accuracy for classifiers, else NaN) over up to `batches`
 * validation batches, the same ones every time. */
ig_status train_data_eval(train_data *d, ig_model *m, const ig_job_spec *spec, ig_device dev,
                          double *loss, double *accuracy);
/* Tokens per batch (GPT) or examples per batch (classifier). */
int64_t train_data_items(const train_data *d, const ig_job_spec *spec);

/* The model's loss on a batch (a scalar, in the current scope). */
ig_tensor *train_loss(ig_model *m, const ig_job_spec *spec, ig_tensor *x, ig_tensor *y);
/* Logits of a batch (for accuracy). */
ig_tensor *train_logits(ig_model *m, const ig_job_spec *spec, ig_tensor *x);

/* One run: what the loop and the checkpoints share. pg and ddp are NULL in a
 * single process. */
typedef struct train_run {
    const ig_job_spec *spec;
    ig_model *model;
    ig_optim *optim;
    ig_pg *pg;
    ig_ddp *ddp;
    ig_dckpt_writer *writer; /* checkpoints are written in the background */
    int rank, world;
    bool sync_ckpt;          /* the group has no subgroups (UCX, unique-id NCCL): save in the foreground */
} train_run;

/* ---- ranks started by `ignis worker` (worker/train_rendezvous.c) ---- */
/* The group of this rank's job, from the environment the worker gives it
 * (IGNIS_COORDINATOR, IGNIS_JOB, IGNIS_ATTEMPT, RANK, WORLD_SIZE, IGNIS_SLOT):
 * the addresses go through the coordinator's rendezvous; the group is UCX for
 * a CPU *dev, NCCL for a CUDA one, which becomes the slot's GPU (also for a
 * world of 1). *out NULL for a world of 1. Bounded by
 * IGNIS_RENDEZVOUS_TIMEOUT seconds (default 60), then the group's creation
 * by its timeout. */
ig_status train_rendezvous(ig_device *dev, ig_pg **out);

/* ---- checkpoints (worker/train_ckpt.c) ---- */
typedef struct train_state {
    int64_t step;            /* steps done */
    ig_loader_cursor cursor;
    ig_generator rng;        /* the default generator (dropout) */
} train_state;

/* Collective over the run's group: a sharded checkpoint of the step,
 * snapshotted now and written on the writer's thread while training goes on
 * (the previous one is waited for first); written before returning when the
 * group cannot make the writer's subgroup (UCX). */
ig_status train_ckpt_save(train_run *r, const train_state *st);
/* Loads the latest committed checkpoint; *found false when there is none. */
ig_status train_ckpt_load(train_run *r, train_state *st, bool *found);
/* Final weights with the model config in the metadata (for `ignis sample`). */
ig_status train_save_weights(const ig_job_spec *spec, ig_model *m, const char *path);
/* A GPT from a weights file or a checkpoint directory (a step or its parent). */
ig_status train_load_gpt(const char *path, ig_model **out);

/* ---- output (worker/train_log.c) ---- */
typedef struct train_log {
    FILE *out;
    FILE *metrics;
    bool progress;
    double start;
} train_log;

ig_status train_log_open(train_log *l, const ig_job_spec *spec, const ig_train_opts *opts);
void train_log_close(train_log *l);
void train_log_step(train_log *l, const ig_job_spec *spec, int64_t step, double loss, double lr,
                    double norm, double items_per_s, double ms, bool line);
void train_log_eval(train_log *l, int64_t step, double loss, double accuracy);
void train_log_text(train_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Creates the directories above a file's path (mkdir -p of its parent). */
void train_make_parent(const char *path);
double train_now(void);

/* ---- progress for the worker (worker/train_progress.c) ---- */
/* Rank 0 of a worker-started job: progress.json next to the spec file;
 * ckpt_step: the last checkpoint known committed (-1: none). */
void train_progress(const ig_job_spec *spec, int rank, int64_t step, double loss,
                    double items_per_s, double ms, int64_t ckpt_step);

#endif

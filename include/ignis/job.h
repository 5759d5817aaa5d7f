/* ignis/job.h: the job spec, what `ignis train` runs. Read from JSON or YAML
 * (by the file's extension: .yaml/.yml is YAML, anything else JSON) through
 * Jansson and libyaml. Every field has a default; an unknown key, a value of
 * the wrong type or out of range is an error naming the file and the dotted
 * field ("job.json: train.batch_size: expected a positive integer, got -3").
 *
 *   {
 *     "name": "char-gpt",
 *     "model": {"type": "gpt", "n_layer": 4, "n_head": 4, "n_embd": 128,
 *               "block_size": 128, "vocab_size": 256, "dropout": 0.0},
 *     "init": {"seed": 1337, "from": "weights.safetensors"},
 *     "data": {"format": "text", "train": "corpus.txt" | ["a.txt", "b.txt"],
 *              "val": null, "val_fraction": 0.1},
 *     "train": {"batch_size": 16, "seq_len": 128, "steps": 2000, "grad_accum": 1,
 *               "grad_clip": 1.0, "precision": "fp32", "device": "cpu"},
 *     "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.1,
 *                   "betas": [0.9, 0.95], "eps": 1e-8, "momentum": 0.0, "nesterov": false},
 *     "schedule": {"name": "cosine", "warmup": 100, "min_lr": 1e-4},
 *     "eval": {"interval": 200, "batches": 20},
 *     "log": {"interval": 10, "metrics": "out/metrics.jsonl"},
 *     "checkpoint": {"dir": "out/ckpt", "interval": 500, "keep": 2},
 *     "output": "out/model.safetensors",
 *     "sample": {"tokens": 300, "prompt": "\n", "temperature": 0.8, "top_k": 40}
 *   }
 *
 * Paths: input paths (data.train/val/train_labels/val_labels, init.from) are
 * relative to the spec file's directory (ig_job_spec_load; with
 * ig_job_spec_parse they are kept as written, relative to the working
 * directory); output paths (log.metrics, checkpoint.dir, output) are always
 * relative to the working directory, so a job writes where it is run from.
 *
 * Also accepted: model.{in, hidden, layers, classes, dropout} (type mlp),
 * model.{channels, height, width_px, width, classes} (type cnn), data.format
 * "shards" | "mnist" (with train_labels/val_labels), optimizer "sgd" | "adam",
 * optimizer.{dampening, decay_all}, schedule "constant" | "linear". null means
 * the default. YAML plain scalars follow YAML 1.1 (yes/no/on/off are booleans;
 * 1e-3 is a number); quoted ones are strings. docs/job-spec.md has every field,
 * its default and range. */
#ifndef IGNIS_JOB_H
#define IGNIS_JOB_H

#include "ignis/nn.h"
#include "ignis/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IG_JOB_PATH_MAX 1024
#define IG_JOB_MAX_FILES 64

typedef enum ig_model_kind { IG_MODEL_GPT, IG_MODEL_MLP, IG_MODEL_CNN, IG_MODEL_KIND_COUNT } ig_model_kind;
typedef enum ig_data_format { IG_DATA_TEXT, IG_DATA_SHARDS, IG_DATA_MNIST, IG_DATA_FORMAT_COUNT } ig_data_format;

typedef struct ig_job_spec {
    char path[IG_JOB_PATH_MAX]; /* the spec file */
    char name[128];

    ig_model_kind model;
    ig_gpt_config gpt;  /* model.* when type is gpt */
    ig_mlp_config mlp;  /* model.{in, hidden, layers, classes, dropout} */
    ig_cnn_config cnn;  /* model.{channels, height, width_px, width, classes} */

    uint64_t seed;                        /* init.seed */
    char init_from[IG_JOB_PATH_MAX];      /* init.from ("" = random) */

    ig_data_format data_format;
    int n_train;                          /* data.train: files or globs */
    char train[IG_JOB_MAX_FILES][IG_JOB_PATH_MAX];
    int n_val;
    char val[IG_JOB_MAX_FILES][IG_JOB_PATH_MAX];
    char train_labels[IG_JOB_PATH_MAX];   /* data.train_labels (mnist) */
    char val_labels[IG_JOB_PATH_MAX];     /* data.val_labels (mnist) */
    double val_fraction;                  /* held-out tail when no val files */

    int batch_size, seq_len, grad_accum;
    int64_t steps;
    double grad_clip;                     /* 0: off */
    char precision[8];                    /* "fp32" or "bf16" */
    char device[32];                      /* "cpu", "cuda", "cuda:N" */

    ig_optim_config optim;                /* optimizer.* */
    ig_lr_schedule schedule;              /* schedule.*; lr from optimizer.lr, total = steps */

    int64_t eval_interval;                /* 0: only at the end */
    int eval_batches;
    int64_t log_interval;
    char metrics[IG_JOB_PATH_MAX];        /* "" = none */
    char ckpt_dir[IG_JOB_PATH_MAX];       /* "" = no checkpoints */
    int64_t ckpt_interval;
    int ckpt_keep;
    char output[IG_JOB_PATH_MAX];         /* final weights ("" = none) */

    int sample_tokens;                    /* 0: no sample at the end */
    char sample_prompt[512];
    double sample_temperature;
    int sample_top_k;

    /* run.*: how the orchestrator runs the job (`ignis submit`, `ignis run`;
     * their flags win); `ignis train` ignores them. 0 / -1: not given. */
    int run_ranks, run_min_ranks, run_max_ranks; /* in [1, IG_JOB_MAX_RANKS] */
    int run_max_restarts;                 /* -1: the coordinator's default (3) */
    char run_strategy[16];                /* "ddp" (the only one so far) */
} ig_job_spec;

#define IG_JOB_MAX_RANKS 65536

/* Fills the defaults. */
void ig_job_spec_init(ig_job_spec *spec);
/* Reads and validates a spec file (JSON or YAML). */
ig_status ig_job_spec_load(const char *path, ig_job_spec *spec);
/* The same from text; `origin` names it in messages; yaml selects the syntax. */
ig_status ig_job_spec_parse(const char *text, size_t len, const char *origin, bool yaml,
                            ig_job_spec *spec);
/* ig_job_spec_load with overrides applied before validation, each
 * "field=value": a dotted field and a YAML value ("train.steps=500",
 * "data.train=[a.txt, b.txt]"). Errors in those fields name "command line". */
ig_status ig_job_spec_load_with(const char *path, const char *const *overrides, int n_overrides,
                                ig_job_spec *spec);

#ifdef __cplusplus
}
#endif
#endif

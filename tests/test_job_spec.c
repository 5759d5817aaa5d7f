/* tests/test_job_spec.c: the job spec parser (worker/job_spec.c) and the
 * `ignis` command's usage errors. JSON and YAML give the same struct; every
 * default; every kind of invalid spec is IG_ERR_FORMAT with a one-line message
 * naming the file and the dotted field; input paths join the spec's
 * directory. The CLI cases run the binary whose path is argv[1] (meson passes
 * it) and are skipped without it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ignis/job.h"
#include "tests/testutil.h"

static const char *ignis_path; /* the built `ignis`, or NULL */
static char tmp[64];           /* a scratch directory for this run */

static ig_job_spec *new_spec(void) {
    ig_job_spec *s = malloc(sizeof *s);
    assert_non_null(s);
    return s;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The message of a failing parse, checked: IG_ERR_FORMAT, one line, starting
 * with the origin, containing each of the given fragments. */
static void expect_error(const char *text, bool yaml, const char *frag1, const char *frag2) {
    ig_job_spec *s = new_spec();
    const char *origin = yaml ? "job.yaml" : "job.json";
    ig_status st = ig_job_spec_parse(text, strlen(text), origin, yaml, s);
    const char *msg = ig_last_error();
    if (st != IG_ERR_FORMAT || strncmp(msg, origin, strlen(origin)) || strchr(msg, '\n') ||
        !strstr(msg, frag1) || (frag2 && !strstr(msg, frag2)))
        fail_msg("spec %s\n  gave %s: \"%s\"\n  wanted IG_ERR_FORMAT naming %s, \"%s\", \"%s\"", text,
                 ig_status_name(st), msg, origin, frag1, frag2 ? frag2 : "");
    free(s);
}

static const char FULL_JSON[] =
    "{\"name\": \"full\",\n"
    " \"model\": {\"type\": \"gpt\", \"n_layer\": 2, \"n_head\": 3, \"n_embd\": 48,\n"
    "           \"block_size\": 64, \"vocab_size\": 300, \"dropout\": 0.1},\n"
    " \"init\": {\"seed\": 7, \"from\": \"init.safetensors\"},\n"
    " \"data\": {\"format\": \"text\", \"train\": [\"a.txt\", \"b.txt\"], \"val\": \"v.txt\",\n"
    "          \"val_fraction\": 0.2},\n"
    " \"train\": {\"batch_size\": 8, \"seq_len\": 32, \"steps\": 500, \"grad_accum\": 2,\n"
    "           \"grad_clip\": 0.5, \"precision\": \"bf16\", \"device\": \"cuda:1\"},\n"
    " \"optimizer\": {\"name\": \"adam\", \"lr\": 3e-4, \"weight_decay\": 0.01,\n"
    "               \"betas\": [0.8, 0.99], \"eps\": 1e-6, \"decay_all\": true},\n"
    " \"schedule\": {\"name\": \"linear\", \"warmup\": 50, \"min_lr\": 1e-5},\n"
    " \"eval\": {\"interval\": 100, \"batches\": 5},\n"
    " \"log\": {\"interval\": 20, \"metrics\": \"out/m.jsonl\"},\n"
    " \"checkpoint\": {\"dir\": \"out/ckpt\", \"interval\": 250, \"keep\": 3},\n"
    " \"output\": \"out/model.safetensors\",\n"
    " \"sample\": {\"tokens\": 100, \"prompt\": \"Once\\n\", \"temperature\": 0.5, \"top_k\": 10},\n"
    " \"run\": {\"ranks\": 4, \"min_ranks\": 2, \"max_ranks\": 8, \"max_restarts\": 5, \"strategy\": \"ddp\"}}\n";

static const char FULL_YAML[] =
    "# the same job as FULL_JSON\n"
    "name: full\n"
    "model: {type: gpt, n_layer: 2, n_head: 3, n_embd: 48, block_size: 64, vocab_size: 300,\n"
    "        dropout: 0.1}\n"
    "init:\n"
    "  seed: 7\n"
    "  from: init.safetensors\n"
    "data:\n"
    "  format: text\n"
    "  train:\n"
    "    - a.txt\n"
    "    - 'b.txt'\n"
    "  val: v.txt\n"
    "  val_fraction: 0.2\n"
    "train:\n"
    "  batch_size: 8\n"
    "  seq_len: 32\n"
    "  steps: 500\n"
    "  grad_accum: 2\n"
    "  grad_clip: .5\n"
    "  precision: bf16\n"
    "  device: cuda:1\n"
    "optimizer: &opt\n"
    "  name: adam\n"
    "  lr: 3e-4\n"
    "  weight_decay: 1e-2\n"
    "  betas: [0.8, 0.99]\n"
    "  eps: 1.0e-6\n"
    "  decay_all: yes\n"
    "schedule: {name: linear, warmup: 50, min_lr: 1e-5}\n"
    "eval: {interval: 100, batches: 5}\n"
    "log: {interval: 20, metrics: out/m.jsonl}\n"
    "checkpoint: {dir: out/ckpt, interval: 250, keep: 3}\n"
    "output: \"out/model.safetensors\"\n"
    "sample:\n"
    "  tokens: 100\n"
    "  prompt: \"Once\\n\"\n"
    "  temperature: 0.5\n"
    "  top_k: 10\n"
    "run: {ranks: 4, min_ranks: 2, max_ranks: 8, max_restarts: 5, strategy: ddp}\n";

static void json_and_yaml_of_one_job_give_identical_specs(void **state) {
    (void)state;
    ig_job_spec *a = new_spec(), *b = new_spec();
    assert_int_equal(ig_job_spec_parse(FULL_JSON, strlen(FULL_JSON), "full.json", false, a), IG_OK);
    assert_int_equal(ig_job_spec_parse(FULL_YAML, strlen(FULL_YAML), "full.yaml", true, b), IG_OK);
    assert_string_equal(a->path, "full.json");
    assert_string_equal(b->path, "full.yaml");
    /* every field was read, not defaulted */
    assert_string_equal(a->name, "full");
    assert_int_equal(a->gpt.n_head, 3);
    assert_int_equal(a->gpt.vocab_size, 300);
    assert_true(a->gpt.dropout == 0.1);
    assert_int_equal(a->seed, 7);
    assert_string_equal(a->init_from, "init.safetensors");
    assert_int_equal(a->n_train, 2);
    assert_string_equal(a->train[1], "b.txt");
    assert_int_equal(a->n_val, 1);
    assert_true(a->val_fraction == 0.2);
    assert_int_equal(a->batch_size, 8);
    assert_int_equal(a->seq_len, 32);
    assert_int_equal(a->steps, 500);
    assert_int_equal(a->grad_accum, 2);
    assert_true(a->grad_clip == 0.5);
    assert_string_equal(a->precision, "bf16");
    assert_string_equal(a->device, "cuda:1");
    assert_int_equal(a->optim.kind, IG_OPTIM_ADAM);
    assert_true(a->optim.lr == 3e-4 && a->optim.weight_decay == 0.01 && a->optim.eps == 1e-6);
    assert_true(a->optim.beta1 == 0.8 && a->optim.beta2 == 0.99 && a->optim.decay_all);
    assert_int_equal(a->schedule.kind, IG_LR_LINEAR);
    assert_true(a->schedule.lr == 3e-4 && a->schedule.min_lr == 1e-5);
    assert_int_equal(a->schedule.warmup, 50);
    assert_int_equal(a->schedule.total, 500);
    assert_int_equal(a->eval_interval, 100);
    assert_int_equal(a->eval_batches, 5);
    assert_int_equal(a->log_interval, 20);
    assert_string_equal(a->metrics, "out/m.jsonl");
    assert_string_equal(a->ckpt_dir, "out/ckpt");
    assert_int_equal(a->ckpt_interval, 250);
    assert_int_equal(a->ckpt_keep, 3);
    assert_string_equal(a->output, "out/model.safetensors");
    assert_int_equal(a->sample_tokens, 100);
    assert_string_equal(a->sample_prompt, "Once\n");
    assert_true(a->sample_temperature == 0.5);
    assert_int_equal(a->sample_top_k, 10);
    assert_true(a->run_ranks == 4 && a->run_min_ranks == 2 && a->run_max_ranks == 8);
    assert_int_equal(a->run_max_restarts, 5);
    assert_string_equal(a->run_strategy, "ddp");
    /* and the YAML gives the same bytes */
    memset(a->path, 0, sizeof a->path);
    memset(b->path, 0, sizeof b->path);
    assert_memory_equal(a, b, sizeof *a);
    free(a);
    free(b);
}

static void absent_fields_take_their_defaults(void **state) {
    (void)state;
    ig_job_spec *s = new_spec();
    const char *t = "{\"data\": {\"train\": \"corpus.txt\"}}";
    assert_int_equal(ig_job_spec_parse(t, strlen(t), "dir/char.json", false, s), IG_OK);
    assert_string_equal(s->name, "char"); /* the file's stem */
    assert_int_equal(s->model, IG_MODEL_GPT);
    assert_int_equal(s->gpt.n_layer, 4);
    assert_int_equal(s->gpt.n_head, 4);
    assert_int_equal(s->gpt.n_embd, 128);
    assert_int_equal(s->gpt.block_size, 128);
    assert_int_equal(s->gpt.vocab_size, 256);
    assert_true(s->gpt.dropout == 0);
    assert_int_equal(s->seed, 1337);
    assert_string_equal(s->init_from, "");
    assert_int_equal(s->data_format, IG_DATA_TEXT);
    assert_int_equal(s->n_train, 1);
    assert_string_equal(s->train[0], "corpus.txt"); /* parse: kept as written */
    assert_int_equal(s->n_val, 0);
    assert_true(s->val_fraction == 0.1);
    assert_int_equal(s->batch_size, 16);
    assert_int_equal(s->seq_len, 128);
    assert_int_equal(s->steps, 1000);
    assert_int_equal(s->grad_accum, 1);
    assert_true(s->grad_clip == 1.0);
    assert_string_equal(s->precision, "fp32");
    assert_string_equal(s->device, "cpu");
    assert_int_equal(s->optim.kind, IG_OPTIM_ADAMW);
    assert_true(s->optim.lr == 1e-3 && s->optim.weight_decay == 0.1);
    assert_true(s->optim.beta1 == 0.9 && s->optim.beta2 == 0.95 && s->optim.eps == 1e-8);
    assert_true(s->optim.momentum == 0 && !s->optim.nesterov && !s->optim.decay_all);
    assert_int_equal(s->schedule.kind, IG_LR_COSINE);
    assert_int_equal(s->schedule.warmup, 0);
    assert_int_equal(s->schedule.total, 1000);
    assert_true(s->schedule.lr == 1e-3 && s->schedule.min_lr == 1e-4);
    assert_int_equal(s->eval_interval, 0);
    assert_int_equal(s->eval_batches, 20);
    assert_int_equal(s->log_interval, 10);
    assert_string_equal(s->metrics, "");
    assert_string_equal(s->ckpt_dir, "");
    assert_int_equal(s->ckpt_interval, 0);
    assert_int_equal(s->ckpt_keep, 2);
    assert_string_equal(s->output, "");
    assert_int_equal(s->sample_tokens, 0);
    assert_string_equal(s->sample_prompt, "\n");
    assert_true(s->sample_temperature == 0.8);
    assert_int_equal(s->sample_top_k, 40);
    assert_true(s->run_ranks == 0 && s->run_min_ranks == 0 && s->run_max_ranks == 0); /* not given */
    assert_int_equal(s->run_max_restarts, -1);
    assert_string_equal(s->run_strategy, "ddp");

    /* derived defaults follow the fields they come from; null is the default */
    t = "model: {block_size: 64}\ndata: {train: c.txt}\ntrain: {steps: 300, seq_len: ~}\n"
        "optimizer: {name: sgd, lr: 0.1}\neval:\n";
    assert_int_equal(ig_job_spec_parse(t, strlen(t), "j.yaml", true, s), IG_OK);
    assert_int_equal(s->seq_len, 64);
    assert_int_equal(s->schedule.total, 300);
    assert_true(s->schedule.lr == 0.1 && s->schedule.min_lr == 0.1 / 10);
    assert_true(s->optim.weight_decay == 0); /* only adamw decays by default */
    assert_int_equal(s->eval_batches, 20);
    free(s);
}

static void invalid_values_are_format_errors_naming_file_and_field(void **state) {
    (void)state;
#define D "\"data\": {\"train\": \"a.txt\"}"
    static const struct {
        const char *text, *field, *expected;
    } json[] = {
        {"[1, 2]", "expected an object", NULL},
        {"{" D ", \"train\": {\"batch_size\": 0}}", "train.batch_size", "positive integer, got 0"},
        {"{" D ", \"train\": {\"batch_size\": -3}}", "train.batch_size", "got -3"},
        {"{" D ", \"train\": {\"steps\": \"100\"}}", "train.steps", "got \"100\""},
        {"{" D ", \"train\": {\"steps\": 1.5}}", "train.steps", "positive integer"},
        {"{" D ", \"train\": {\"grad_accum\": [1]}}", "train.grad_accum", "got an array"},
        {"{" D ", \"train\": 5}", "train", "expected a section"},
        {"{" D ", \"optimizer\": {\"lr\": 0}}", "optimizer.lr", "number > 0"},
        {"{" D ", \"optimizer\": {\"lr\": -1e-3}}", "optimizer.lr", "number > 0"},
        {"{" D ", \"optimizer\": {\"betas\": [0.9, 1.0]}}", "optimizer.betas[1]", "[0, 1)"},
        {"{" D ", \"optimizer\": {\"betas\": [-0.1, 0.9]}}", "optimizer.betas[0]", "[0, 1)"},
        {"{" D ", \"optimizer\": {\"betas\": 0.9}}", "optimizer.betas", "two numbers"},
        {"{" D ", \"optimizer\": {\"eps\": 0}}", "optimizer.eps", "> 0"},
        {"{" D ", \"optimizer\": {\"name\": \"lion\"}}", "optimizer.name", "sgd, adam, adamw"},
        {"{" D ", \"optimizer\": {\"nesterov\": true}}", "optimizer.nesterov", "sgd"},
        {"{" D ", \"optimizer\": {\"nesterov\": 1}}", "optimizer.nesterov", "true or false"},
        {"{" D ", \"model\": {\"dropout\": 1.0}}", "model.dropout", "[0, 1)"},
        {"{" D ", \"model\": {\"dropout\": -0.5}}", "model.dropout", "[0, 1)"},
        {"{" D ", \"model\": {\"n_embd\": 130, \"n_head\": 4}}", "model.n_embd", "multiple of model.n_head"},
        {"{" D ", \"model\": {\"type\": \"rnn\"}}", "model.type", "gpt, mlp, cnn"},
        {"{" D ", \"model\": {\"vocab_size\": 100}}", "model.vocab_size", "256"},
        {"{" D ", \"model\": {\"block_size\": 64}, \"train\": {\"seq_len\": 65}}", "train.seq_len",
         "model.block_size (64)"},
        {"{" D ", \"train\": {\"precision\": \"fp16\"}}", "train.precision", "fp32, bf16"},
        {"{" D ", \"train\": {\"device\": \"gpu\"}}", "train.device", "cpu, cuda or cuda:N"},
        {"{" D ", \"train\": {\"device\": \"cuda:x\"}}", "train.device", "cuda:N"},
        {"{" D ", \"train\": {\"device\": \"cuda:\"}}", "train.device", "cuda:N"},
        {"{" D ", \"train\": {\"steps\": 10}, \"schedule\": {\"warmup\": 11}}", "schedule.warmup",
         "train.steps (10)"},
        {"{" D ", \"schedule\": {\"name\": \"step\"}}", "schedule.name", "constant, cosine, linear"},
        {"{" D ", \"schedule\": {\"min_lr\": 0.01}}", "schedule.min_lr", "[0, 0.001]"},
        {"{" D ", \"eval\": {\"batches\": 0}}", "eval.batches", "positive"},
        {"{" D ", \"log\": {\"interval\": 0}}", "log.interval", "positive"},
        {"{" D ", \"checkpoint\": {\"keep\": 0}}", "checkpoint.keep", "positive"},
        {"{" D ", \"checkpoint\": {\"dir\": 3}}", "checkpoint.dir", "path"},
        {"{" D ", \"sample\": {\"temperature\": -1}}", "sample.temperature", ">= 0"},
        {"{" D ", \"name\": 5}", "name", "string"},
        {"{" D ", \"run\": {\"ranks\": 0}}", "run.ranks", "[1, 65536], got 0"},
        {"{" D ", \"run\": {\"max_restarts\": -1}}", "run.max_restarts", "[0, 1000000]"},
        {"{" D ", \"run\": {\"strategy\": \"fsdp\"}}", "run.strategy", "expected one of ddp"},
        {"{" D ", \"run\": {\"ranks\": 2, \"min_ranks\": 4}}", "run", "min_ranks <= ranks <= max_ranks"},
        {"{" D ", \"run\": {\"min_ranks\": 4, \"max_ranks\": 2}}", "run", "min_ranks <= ranks <= max_ranks"},
        {"{\"data\": {\"format\": \"csv\", \"train\": \"a\"}}", "data.format", "text, shards, mnist"},
        {"{\"data\": {}}", "data.train", "required"},
        {"{}", "data.train", "required"},
        {"{\"data\": {\"train\": []}}", "data.train", "required"},
        {"{\"data\": {\"train\": [\"a\", 2]}}", "data.train[1]", "path"},
        {"{\"data\": {\"train\": \"\"}}", "data.train", "non-empty"},
        {"{\"data\": {\"train\": \"a\", \"val_fraction\": 1}}", "data.val_fraction", "[0, 1)"},
        {"{\"data\": {\"train\": \"a\", \"train_labels\": \"l\"}}", "data.train_labels", "mnist"},
        {"{\"data\": {\"format\": \"shards\", \"train\": [\"a\", \"b\"]}}", "data.train",
         "one path or glob"},
        {"{\"model\": {\"type\": \"mlp\"}, \"data\": {\"format\": \"mnist\", \"train\": \"x\"}}",
         "data.train_labels", "required for format mnist"},
        {"{\"model\": {\"type\": \"mlp\"}, \"data\": {\"format\": \"mnist\", \"train\": \"x\", "
         "\"train_labels\": \"y\", \"val\": \"v\"}}", "data.val_labels", "required"},
        {"{\"model\": {\"type\": \"mlp\"}, " D "}", "data.format", "mnist"},
        {"{\"data\": {\"format\": \"mnist\", \"train\": \"x\", \"train_labels\": \"y\"}}",
         "data.format", "text or shards"},
        {"{\"model\": {\"type\": \"cnn\"}, \"data\": {\"format\": \"mnist\", \"train\": \"x\", "
         "\"train_labels\": \"y\"}, \"sample\": {\"tokens\": 5}}", "sample.tokens", "gpt"},
    };
#undef D
    for (size_t i = 0; i < sizeof json / sizeof *json; i++)
        expect_error(json[i].text, false, json[i].field, json[i].expected);

    static const struct {
        const char *text, *field, *expected;
    } yaml[] = {
        {"data: {train: a}\ntrain: {steps: abc}\n", "train.steps", "got \"abc\""},
        {"data: {train: a}\ntrain: {batch_size: 0}\n", "train.batch_size", "positive integer"},
        {"data: {train: a}\ntrain: {device: '1'}\n", "train.device", "got \"1\""},
        {"data: {train: a}\nsample: {prompt: yes}\n", "sample.prompt", "got true"}, /* YAML 1.1 */
        {"data: {train: a}\nname: 123\n", "name", "got 123"},
        {"data: {train: a}\noptimizer: {lr: 0}\n", "optimizer.lr", "> 0"},
        {"- a\n- b\n", "expected an object", NULL},
        {"", "expected an object", NULL},
    };
    for (size_t i = 0; i < sizeof yaml / sizeof *yaml; i++)
        expect_error(yaml[i].text, true, yaml[i].field, yaml[i].expected);
}

static void syntax_errors_name_line_and_column(void **state) {
    (void)state;
    expect_error("{\n  \"data\": {\"train\": \"a\"},\n  \"train\": {\"steps\": 10,}\n}", false,
                 "job.json:3:", "JSON syntax error");
    expect_error("{\"data\": {\"train\": \"a\"}", false, "job.json:1:", "JSON syntax error");
    expect_error("{\"data\": {\"train\": \"a\"},\n \"data\": {}}", false, "job.json:2:", "duplicate");
    expect_error("data:\n  train: a\ntrain:\n  steps: 10\n   x: 1\n", true, "job.yaml:5:5:",
                 "YAML syntax error");
    expect_error("data: {train: [a, b}\n", true, "job.yaml:1:", "YAML syntax error");
    expect_error("data: {train: a}\ntrain: {}\ntrain: {}\n", true, "job.yaml:3:1:", "duplicate key");
    expect_error("data: {train: a}\n---\ntrain: {}\n", true, "job.yaml:2:1:", "one YAML document");
    expect_error("data: {train: *nowhere}\n", true, "job.yaml:1:", "alias");
}

static void unknown_keys_are_errors_that_suggest_the_nearest_key(void **state) {
    (void)state;
    expect_error("data: {train: a}\ntrain: {batchsize: 4}\n", true,
                 "job.yaml: train.batchsize: unknown key", "(did you mean batch_size?)");
    expect_error("{\"data\": {\"train\": \"a\"}, \"optimizer\": {\"lr\": 1, \"wieght_decay\": 0}}",
                 false, "optimizer.wieght_decay: unknown key", "(did you mean weight_decay?)");
    expect_error("{\"modle\": {}, \"data\": {\"train\": \"a\"}}", false, "job.json: modle: unknown key",
                 "(did you mean model?)");
    /* a key of another section points there */
    expect_error("data: {train: a}\ntrain: {lr: 0.1}\n", true, "train.lr: unknown key",
                 "(did you mean optimizer.lr?)");
    expect_error("data: {train: a}\nsteps: 5\n", true, "steps: unknown key", "(did you mean train.steps?)");
    /* another model type's keys are unknown for this one */
    expect_error("data: {train: a}\nmodel: {hidden: 5}\n", true, "model.hidden: unknown key for model type gpt",
                 NULL);
    /* nothing near: no suggestion */
    ig_job_spec *s = new_spec();
    const char *t = "data: {train: a}\neval: {frobnicate: 1}\n";
    assert_int_equal(ig_job_spec_parse(t, strlen(t), "job.yaml", true, s), IG_ERR_FORMAT);
    assert_string_equal(ig_last_error(), "job.yaml: eval.frobnicate: unknown key");
    free(s);
}

static void yaml_scalars_resolve_by_yaml_1_1_rules(void **state) {
    (void)state;
    ig_job_spec *s = new_spec();
    const char *t = "name: '123'\n"
                    "data: {train: [a, \"null\", 'yes', '1e3']}\n"
                    "init: {seed: 0x10}\n"
                    "train: {steps: 1_000, grad_clip: 0, batch_size: 2e1}\n"
                    "optimizer: {lr: &lr 1e-2, betas: [0, .5], decay_all: On}\n"
                    "schedule: {min_lr: *lr}\n"
                    "sample:\n  prompt: |\n    two\n    lines\n";
    assert_int_equal(ig_job_spec_parse(t, strlen(t), "y.yaml", true, s), IG_OK);
    assert_string_equal(s->name, "123");
    assert_int_equal(s->n_train, 4);
    assert_string_equal(s->train[1], "null");
    assert_string_equal(s->train[2], "yes");
    assert_string_equal(s->train[3], "1e3");
    assert_int_equal(s->seed, 16);
    assert_int_equal(s->steps, 1000);
    assert_true(s->grad_clip == 0);
    assert_int_equal(s->batch_size, 20);
    assert_true(s->optim.lr == 1e-2 && s->schedule.min_lr == 1e-2);
    assert_true(s->optim.beta1 == 0 && s->optim.beta2 == 0.5 && s->optim.decay_all);
    assert_string_equal(s->sample_prompt, "two\nlines\n");
    free(s);
}

static void input_paths_join_the_spec_dir_and_output_paths_stay(void **state) {
    (void)state;
    char dir[128], path[192];
    snprintf(dir, sizeof dir, "%s/specs", tmp);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/job.yml", dir);
    write_file(path, "init: {from: w.safetensors}\n"
                     "data: {train: [a.txt, /abs/b.txt], val: ../v.txt}\n"
                     "log: {metrics: out/m.jsonl}\n"
                     "checkpoint: {dir: out/ckpt}\n"
                     "output: out/model.safetensors\n");
    ig_job_spec *s = new_spec();
    assert_int_equal(ig_job_spec_load(path, s), IG_OK);
    char want[256];
    assert_string_equal(s->path, path);
    assert_string_equal(s->name, "job");
    snprintf(want, sizeof want, "%s/a.txt", dir);
    assert_string_equal(s->train[0], want);
    assert_string_equal(s->train[1], "/abs/b.txt");
    snprintf(want, sizeof want, "%s/../v.txt", dir);
    assert_string_equal(s->val[0], want);
    snprintf(want, sizeof want, "%s/w.safetensors", dir);
    assert_string_equal(s->init_from, want);
    assert_string_equal(s->metrics, "out/m.jsonl");
    assert_string_equal(s->ckpt_dir, "out/ckpt");
    assert_string_equal(s->output, "out/model.safetensors");

    /* an unreadable file is IG_ERR_IO naming it */
    snprintf(path, sizeof path, "%s/missing.json", dir);
    assert_int_equal(ig_job_spec_load(path, s), IG_ERR_IO);
    assert_non_null(strstr(ig_last_error(), path));
    /* errors from a file name the path as given */
    snprintf(path, sizeof path, "%s/bad.json", dir);
    write_file(path, "{\"data\": {\"train\": \"a\"}, \"train\": {\"steps\": 0}}");
    assert_int_equal(ig_job_spec_load(path, s), IG_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: train.steps: expected a positive integer, got 0", path);
    assert_string_equal(ig_last_error(), want);
    free(s);
}

static void overrides_replace_fields_and_their_errors_name_the_command_line(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/ov.json", tmp);
    write_file(path, "{\"data\": {\"train\": \"a\"}, \"train\": {\"steps\": 100}}");
    ig_job_spec *s = new_spec();
    const char *ok[] = {"train.steps=50", "optimizer.lr=1e-2", "train.device=cuda:0",
                        "data.train=[x, y]"};
    assert_int_equal(ig_job_spec_load_with(path, ok, 4, s), IG_OK);
    assert_int_equal(s->steps, 50);
    assert_int_equal(s->schedule.total, 50);
    assert_true(s->schedule.lr == 1e-2 && s->schedule.min_lr == 1e-3);
    assert_string_equal(s->device, "cuda:0");
    assert_int_equal(s->n_train, 2);

    const char *bad[][2] = {{"train.steps=abc", "command line: train.steps: expected a positive integer"},
                            {"train.stepz=1", "command line: train.stepz: unknown key (did you mean steps?)"},
                            {"nonsense", "command line: \"nonsense\": expected FIELD=VALUE"},
                            {"train.device=gpu", "command line: train.device: expected cpu"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ig_job_spec_load_with(path, &bad[i][0], 1, s), IG_ERR_FORMAT);
        if (strncmp(ig_last_error(), bad[i][1], strlen(bad[i][1])))
            fail_msg("override %s gave \"%s\"", bad[i][0], ig_last_error());
    }
    free(s);
}

/* ---- the `ignis` command ---- */

/* Runs ignis with args; returns its exit status, its stdout and stderr. */
static int run_ignis(const char *const *args, char *out, char *err, size_t cap) {
    char out_path[96], err_path[96];
    snprintf(out_path, sizeof out_path, "%s/cli.out", tmp);
    snprintf(err_path, sizeof err_path, "%s/cli.err", tmp);
    const char *argv[16] = {ignis_path};
    for (int i = 0; args[i]; i++) argv[i + 1] = args[i];
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        execv(ignis_path, (char *const *)argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    const char *paths[2] = {out_path, err_path};
    char *bufs[2] = {out, err};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(paths[k], "r");
        assert_non_null(f);
        size_t n = fread(bufs[k], 1, cap - 1, f);
        bufs[k][n] = 0;
        fclose(f);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void cli_usage_errors_exit_2_with_one_line_on_stderr(void **state) {
    (void)state;
    if (!ignis_path) skip();
    char bad_spec[128], ok_spec[128];
    snprintf(bad_spec, sizeof bad_spec, "%s/malformed.json", tmp);
    write_file(bad_spec, "{\"data\": {\"train\": \"a\"},\n \"train\": {\"steps\": }}\n");
    snprintf(ok_spec, sizeof ok_spec, "%s/fine.json", tmp);
    write_file(ok_spec, "{\"data\": {\"train\": \"a\"}}");
    const struct {
        const char *args[6];
        const char *want; /* in the message */
    } cases[] = {
        {{NULL}, "no command"},
        {{"frobnicate", NULL}, "'frobnicate' is not an ignis command"},
        {{"--bogus", NULL}, "unknown option '--bogus'"},
        {{"train", "--bogus", ok_spec, NULL}, "unknown option '--bogus'"},
        {{"train", ok_spec, "--steps", NULL}, "'--steps' needs a value"},
        {{"train", NULL}, "expected one JOB file"},
        {{"train", "/nonexistent/job.json", NULL}, "/nonexistent/job.json"},
        {{"train", bad_spec, NULL}, "malformed.json:2:"},
        {{"train", ok_spec, "--steps", "0", NULL}, "command line: train.steps"},
        {{"train", ok_spec, "--device", "tpu", NULL}, "command line: train.device"},
        {{"sample", "x", "--tokens", "-1", NULL}, "--tokens"},
        {{"sample", NULL}, "expected one PATH"},
        {{"help", "frobnicate", NULL}, "'frobnicate' is not an ignis command"},
    };
    char out[4096], err[4096];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = run_ignis(cases[i].args, out, err, sizeof out);
        char *nl = strchr(err, '\n');
        if (rc != 2 || !nl || nl[1] || !strstr(err, cases[i].want))
            fail_msg("ignis %s %s ...: exit %d, stderr \"%s\"; wanted exit 2 and one line with \"%s\"",
                     cases[i].args[0] ? cases[i].args[0] : "", cases[i].args[0] && cases[i].args[1] ? cases[i].args[1] : "",
                     rc, err, cases[i].want);
    }
    /* usage errors point to the help */
    const char *args[] = {"frobnicate", NULL};
    run_ignis(args, out, err, sizeof out);
    assert_non_null(strstr(err, "see 'ignis --help'"));
}

static void cli_help_and_version_exit_0_on_stdout(void **state) {
    (void)state;
    if (!ignis_path) skip();
    char out[4096], err[4096];
    const char *help[] = {"--help", NULL}, *help_train[] = {"help", "train", NULL},
               *train_help[] = {"train", "--help", NULL}, *version[] = {"--version", NULL};
    assert_int_equal(run_ignis(help, out, err, sizeof out), 0);
    assert_non_null(strstr(out, "train JOB"));
    assert_non_null(strstr(out, "sample PATH"));
    assert_string_equal(err, "");
    assert_int_equal(run_ignis(help_train, out, err, sizeof out), 0);
    assert_non_null(strstr(out, "--resume"));
    assert_int_equal(run_ignis(train_help, out, err, sizeof out), 0);
    assert_non_null(strstr(out, "--steps"));
    assert_int_equal(run_ignis(version, out, err, sizeof out), 0);
    assert_true(strncmp(out, "ignis ", 6) == 0);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv) {
    ignis_path = argc > 1 ? argv[1] : NULL;
    strcpy(tmp, "/tmp/ig_job_spec_XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_and_yaml_of_one_job_give_identical_specs),
        cmocka_unit_test(absent_fields_take_their_defaults),
        cmocka_unit_test(invalid_values_are_format_errors_naming_file_and_field),
        cmocka_unit_test(syntax_errors_name_line_and_column),
        cmocka_unit_test(unknown_keys_are_errors_that_suggest_the_nearest_key),
        cmocka_unit_test(yaml_scalars_resolve_by_yaml_1_1_rules),
        cmocka_unit_test(input_paths_join_the_spec_dir_and_output_paths_stay),
        cmocka_unit_test(overrides_replace_fields_and_their_errors_name_the_command_line),
        cmocka_unit_test(cli_usage_errors_exit_2_with_one_line_on_stderr),
        cmocka_unit_test(cli_help_and_version_exit_0_on_stdout),
    };
    int failed = TU_RUN(tests);
    nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return failed;
}

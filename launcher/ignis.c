/* launcher/ignis.c: the `ignis` command. `ignis train JOB` runs a job spec
 * with the built-in trainer (worker/trainer.c), also as one rank of
 * `mpirun -np N ignis train JOB`; `ignis sample PATH` writes text from a
 * trained GPT; `ignis export CKPT OUT` turns a checkpoint into safetensors.
 *
 * Exit status: 0 done; 1 the run failed ("ignis: <message>"); 2 a usage error:
 * unknown command or option, a bad option value, a job spec that does not load
 * (its own "file: field: ..." message). Every message is one line on stderr;
 * help goes to stdout. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ignis/status.h"
#include "ignis/train.h"
#include "launcher/commands.h"

enum { EXIT_RUN = 1, EXIT_USAGE = 2, MAX_OVERRIDES = 32 };

#define TRAIN_HELP                                                                     \
    "  train JOB         train as the job spec says (JSON, or YAML for .yaml/.yml)\n" \
    "    --resume            continue from the latest checkpoint in checkpoint.dir\n" \
    "    --steps N           override train.steps\n"                                  \
    "    --device DEV        override train.device: cpu, cuda or cuda:N\n"            \
    "    --set FIELD=VALUE   override any field, e.g. --set optimizer.lr=3e-4\n"      \
    "                        (VALUE is read as YAML; repeatable)\n"                   \
    "    --quiet             no step lines, no progress bar\n"                       \
    "    --stop-after N      stop as if killed after N steps of this run (tests)\n"
#define SAMPLE_HELP                                                                    \
    "  sample PATH       text from a trained GPT: a checkpoint directory or the\n"    \
    "                    .safetensors file that `ignis train` wrote\n"               \
    "    --prompt TEXT       start from TEXT (default: a newline)\n"                  \
    "    --tokens N          generate N tokens (default 300)\n"                       \
    "    --temperature T     sampling temperature, 0 = greedy (default 0.8)\n"        \
    "    --top-k K           sample among the K likeliest tokens, 0 = all (default 40)\n" \
    "    --seed S            random seed (default 1337)\n"

#define EXPORT_HELP                                                                    \
    "  export CKPT OUT   write a checkpoint's model as one safetensors file (for\n"  \
    "                    PyTorch / Hugging Face); CKPT is a step directory or the\n"  \
    "                    checkpoint directory (its latest step)\n"

static const char HELP[] =
    "usage: ignis [--help] [--version] <command> [<args>]\n"
    "\n"
    "commands:\n" TRAIN_HELP SAMPLE_HELP EXPORT_HELP WORKER_HELP COORDINATOR_HELP
    KEYGEN_HELP RUN_HELP SUBMIT_HELP STATUS_HELP CANCEL_HELP LOGS_HELP
    "  help [COMMAND]    this help, or one command's\n"
    "\n"
    "exit status: 0 done, 1 the run failed, 2 usage error or invalid job spec\n"
    "The job spec format: docs/job-spec.md.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("; see 'ignis --help'\n", stderr);
    return EXIT_USAGE;
}

/* The message for getopt_long's '?' (unknown option) or ':' (missing value). */
static int bad_option(const char *who, char **argv, int c) {
    const char *arg = argv[optind - 1];
    if (c == ':') return usage_error("%s: option '%s' needs a value", who, arg);
    if (optopt) return usage_error("%s: unknown option '-%c'", who, optopt);
    return usage_error("%s: unknown option '%s'", who, arg);
}

static bool parse_real(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0) return false;
    *out = v;
    return true;
}

static int help_for(const char *cmd) {
    if (!strcmp(cmd, "train")) fputs("usage: ignis train JOB [options]\n" TRAIN_HELP, stdout);
    else if (!strcmp(cmd, "sample")) fputs("usage: ignis sample PATH [options]\n" SAMPLE_HELP, stdout);
    else if (!strcmp(cmd, "export")) fputs("usage: ignis export CKPT OUT.safetensors\n" EXPORT_HELP, stdout);
    else if (!strcmp(cmd, "coordinator"))
        fputs("usage: ignis coordinator --listen ADDR --state DIR [options]\n" COORDINATOR_HELP, stdout);
    else if (!strcmp(cmd, "keygen")) fputs("usage: ignis keygen FILE [--force]\n" KEYGEN_HELP, stdout);
    else if (!strcmp(cmd, "worker")) fputs("usage: ignis worker --coordinator ADDR [options]\n" WORKER_HELP, stdout);
    else if (!strcmp(cmd, "run"))
        fputs("usage: ignis run (--local N | --hosts H:N,... | --slurm) JOB [options]\n" RUN_HELP, stdout);
    else if (!strcmp(cmd, "submit")) fputs("usage: ignis submit JOB [options]\n" SUBMIT_HELP, stdout);
    else if (!strcmp(cmd, "status")) fputs("usage: ignis status [JOB] [options]\n" STATUS_HELP, stdout);
    else if (!strcmp(cmd, "cancel")) fputs("usage: ignis cancel JOB [options]\n" CANCEL_HELP, stdout);
    else if (!strcmp(cmd, "logs")) fputs("usage: ignis logs JOB [options]\n" LOGS_HELP, stdout);
    else return usage_error("ignis help: '%s' is not an ignis command", cmd);
    return 0;
}

static int cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"resume", no_argument, NULL, 'r'},  {"steps", required_argument, NULL, 'n'},
        {"device", required_argument, NULL, 'd'}, {"set", required_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},   {"stop-after", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},    {NULL, 0, NULL, 0}};
    static char overrides[MAX_OVERRIDES][IG_JOB_PATH_MAX + 64];
    const char *ov[MAX_OVERRIDES];
    int n_ov = 0, c;
    ig_train_opts topts = IG_TRAIN_OPTS_INIT;
    bool quiet = false;
    long long v;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        const char *field = c == 'n' ? "train.steps" : c == 'd' ? "train.device" : NULL;
        switch (c) {
        case 'r': topts.resume = true; break;
        case 'q': quiet = true; break;
        case 'x':
            if (!cmd_parse_int(optarg, 1, INT64_MAX, &v))
                return usage_error("ignis train: --stop-after: expected a positive integer, got '%s'", optarg);
            topts.stop_after = v;
            break;
        case 'h': return help_for("train");
        case 'n':
        case 'd':
        case 's':
            if (n_ov == MAX_OVERRIDES) return usage_error("ignis train: more than %d overrides", MAX_OVERRIDES);
            if (snprintf(overrides[n_ov], sizeof *overrides, "%s%s%s", field ? field : "",
                         field ? "=" : "", optarg) >= (int)sizeof *overrides)
                return usage_error("ignis train: option value too long");
            ov[n_ov] = overrides[n_ov];
            n_ov++;
            break;
        default: return bad_option("ignis train", argv, c);
        }
    }
    if (argc - optind != 1)
        return usage_error("ignis train: expected one JOB file, got %d arguments", argc - optind);

    static ig_job_spec spec;
    ig_status st = ig_job_spec_load_with(argv[optind], ov, n_ov, &spec);
    if (st == IG_ERR_FORMAT || st == IG_ERR_IO) {
        fprintf(stderr, "%s\n", ig_last_error());
        return EXIT_USAGE;
    }
    FILE *devnull = NULL;
    if (st == IG_OK) {
        if (quiet) devnull = topts.log = fopen("/dev/null", "w");
        topts.progress = !quiet && isatty(STDOUT_FILENO);
        st = ig_train_run(&spec, &topts);
        if (devnull) fclose(devnull);
    }
    if (st == IG_OK) return 0;
    fprintf(stderr, "ignis: %s\n", *ig_last_error() ? ig_last_error() : ig_status_text(st));
    return EXIT_RUN;
}

static int cmd_sample(int argc, char **argv) {
    static const struct option opts[] = {
        {"prompt", required_argument, NULL, 'p'}, {"tokens", required_argument, NULL, 'n'},
        {"temperature", required_argument, NULL, 't'}, {"top-k", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 's'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    ig_sample_opts so = {"\n", 300, 0.8, 40, 1337};
    long long v;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': so.prompt = optarg; break;
        case 'n':
            if (!cmd_parse_int(optarg, 0, 1 << 24, &v))
                return usage_error("ignis sample: --tokens: expected an integer >= 0, got '%s'", optarg);
            so.tokens = (int)v;
            break;
        case 't':
            if (!parse_real(optarg, &so.temperature))
                return usage_error("ignis sample: --temperature: expected a number >= 0, got '%s'", optarg);
            break;
        case 'k':
            if (!cmd_parse_int(optarg, 0, 1 << 30, &v))
                return usage_error("ignis sample: --top-k: expected an integer >= 0, got '%s'", optarg);
            so.top_k = (int)v;
            break;
        case 's':
            if (!cmd_parse_int(optarg, 0, INT64_MAX, &v))
                return usage_error("ignis sample: --seed: expected an integer >= 0, got '%s'", optarg);
            so.seed = (uint64_t)v;
            break;
        case 'h': return help_for("sample");
        default: return bad_option("ignis sample", argv, c);
        }
    }
    if (argc - optind != 1)
        return usage_error("ignis sample: expected one PATH, got %d arguments", argc - optind);
    ig_status st = ig_sample_run(argv[optind], &so, stdout);
    if (st == IG_OK) return 0;
    fprintf(stderr, "ignis: %s\n", *ig_last_error() ? ig_last_error() : ig_status_text(st));
    return EXIT_RUN;
}

static int cmd_export(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) return help_for("export");
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-') return usage_error("ignis export: unknown option '%s'", argv[i]);
    if (argc != 3) return usage_error("ignis export: expected CKPT and OUT, got %d arguments", argc - 1);
    ig_status st = ig_export_run(argv[1], argv[2]);
    if (st == IG_OK) return 0;
    fprintf(stderr, "ignis: %s\n", *ig_last_error() ? ig_last_error() : ig_status_text(st));
    return EXIT_RUN;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        if (c == 'h') return fputs(HELP, stdout), 0;
        if (c == 'V') return printf("ignis %s\n", IG_VERSION), 0;
        return bad_option("ignis", argv, c);
    }
    if (optind == argc) return usage_error("ignis: no command given");
    const char *cmd = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    if (!strcmp(cmd, "train")) return cmd_train(sub_argc, sub_argv);
    if (!strcmp(cmd, "sample")) return cmd_sample(sub_argc, sub_argv);
    if (!strcmp(cmd, "export")) return cmd_export(sub_argc, sub_argv);
    if (!strcmp(cmd, "worker")) return cmd_worker(sub_argc, sub_argv);
    if (!strcmp(cmd, "coordinator")) return cmd_coordinator(sub_argc, sub_argv);
    if (!strcmp(cmd, "keygen")) return cmd_keygen(sub_argc, sub_argv);
    if (!strcmp(cmd, "run")) return cmd_run(sub_argc, sub_argv);
    if (!strcmp(cmd, "submit")) return cmd_submit(sub_argc, sub_argv);
    if (!strcmp(cmd, "status")) return cmd_status(sub_argc, sub_argv);
    if (!strcmp(cmd, "cancel")) return cmd_cancel(sub_argc, sub_argv);
    if (!strcmp(cmd, "logs")) return cmd_logs(sub_argc, sub_argv);
    if (!strcmp(cmd, "help")) {
        if (sub_argc > 2) return usage_error("ignis help: expected at most one COMMAND");
        return sub_argc == 2 ? help_for(sub_argv[1]) : (fputs(HELP, stdout), 0);
    }
    return usage_error("ignis: '%s' is not an ignis command", cmd);
}

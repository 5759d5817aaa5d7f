/* launcher/cmd_worker.c: `ignis worker`, the node daemon (worker/daemon.h):
 * parses the options into wd_opts and runs the daemon until SIGINT/SIGTERM
 * (or, with --stop-on-eof, the end of stdin).
 * --key and --coordinator-key are checked here and exported as IGNIS_KEY
 * (an absolute path) and IGNIS_COORDINATOR_KEY (the Z85 key), which the
 * daemon's socket and every rank's rendezvous read (ig_proto_client_open).
 * Exit status: 0 stopped by a signal (every rank aborted), 1 the daemon could
 * not run, 2 a usage error. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#ifdef IG_HAVE_UV
#include <uv.h>
#endif

#include "ignis/tensor.h"
#include "launcher/commands.h"
#include "worker/daemon.h"

enum { MAX_ARGS = 64 };

static bool parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* "all", a count N (devices 0..N-1), or a list "0,2,3". */
static bool parse_gpus(const char *s, int *gpus, int *n) {
    long v;
    *n = 0;
    if (!strcmp(s, "all")) {
        *n = ig_cuda_device_count();
        for (int i = 0; i < *n && i < WD_MAX_GPUS; i++) gpus[i] = i;
        return *n <= WD_MAX_GPUS;
    }
    if (!strchr(s, ',') && parse_long(s, 0, WD_MAX_GPUS, &v)) {
        for (*n = 0; *n < v; (*n)++) gpus[*n] = *n;
        return true;
    }
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf) return false;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == WD_MAX_GPUS || !parse_long(tok, 0, 1023, &v)) return false;
        gpus[(*n)++] = (int)v;
    }
    return *n > 0;
}

int cmd_worker(int argc, char **argv) {
    static const struct option opts[] = {
        {"coordinator", required_argument, NULL, 'c'}, {"cpus", required_argument, NULL, 'n'},
        {"gpus", required_argument, NULL, 'g'},        {"name", required_argument, NULL, 'N'},
        {"work-dir", required_argument, NULL, 'w'},    {"rank-command", required_argument, NULL, 'r'},
        {"grace", required_argument, NULL, 'G'},       {"stop-on-eof", no_argument, NULL, 'E'},
        {"key", required_argument, NULL, 'k'},         {"coordinator-key", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0}};
    static int gpus[WD_MAX_GPUS];
    static char exe[PATH_MAX], cmd[4096];
    char *rank_argv[MAX_ARGS + 1] = {0};
    wd_opts o = {.cpus = -1, .gpus = gpus};
    const char *rank_command = NULL, *key = NULL, *coord_key = NULL;
    long v;
    double grace;
    char *end;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.coordinator = optarg; break;
        case 'N': o.node = optarg; break;
        case 'w': o.work_dir = optarg; break;
        case 'r': rank_command = optarg; break;
        case 'k': key = optarg; break;
        case 'K': coord_key = optarg; break;
        case 'E': o.stop_on_eof = true; break;
        case 'n':
            if (!parse_long(optarg, 0, 65536, &v))
                return cmd_usage("worker", "--cpus: expected an integer in [0, 65536], got '%s'", optarg);
            o.cpus = (int)v;
            break;
        case 'g':
            if (!parse_gpus(optarg, gpus, &o.n_gpus))
                return cmd_usage("worker", "--gpus: expected all, a count, or indices like 0,2; got '%s'", optarg);
            break;
        case 'G':
            grace = strtod(optarg, &end);
            if (end == optarg || *end || !isfinite(grace) || grace <= 0 || grace > 3600)
                return cmd_usage("worker", "--grace: expected seconds in (0, 3600], got '%s'", optarg);
            o.grace_ms = (int)ceil(grace * 1000);
            break;
        case 'h': return fputs("usage: ignis worker --coordinator ADDR [options]\n" WORKER_HELP, stdout), 0;
        case ':': return cmd_usage("worker", "option '%s' needs a value", argv[optind - 1]);
        default: return cmd_usage("worker", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cmd_usage("worker", "unexpected argument '%s'", argv[optind]);
    if (!o.coordinator) return cmd_usage("worker", "--coordinator ADDR is required");
    if (!key != !coord_key)
        return cmd_usage("worker", "%s needs %s too", key ? "--key" : "--coordinator-key",
                     key ? "--coordinator-key" : "--key");
    if (key) {
        static char abs_key[PATH_MAX];
        char z85[IG_PROTO_KEY_LEN + 1];
        ig_proto_keypair kp;
        if (ig_proto_keypair_load(key, &kp) || ig_proto_public_key(coord_key, "--coordinator-key", z85))
            return fprintf(stderr, "ignis worker: %s\n", ig_last_error()), 2;
        if (!realpath(key, abs_key))
            return fprintf(stderr, "ignis worker: --key %s: %s\n", key, strerror(errno)), 2;
        setenv("IGNIS_KEY", abs_key, 1);
        setenv("IGNIS_COORDINATOR_KEY", z85, 1);
    }
#ifdef IG_HAVE_UV
    uv_handle_type in = uv_guess_handle(0);
    if (o.stop_on_eof && in != UV_NAMED_PIPE && in != UV_TTY && in != UV_TCP)
        return cmd_usage("worker", "--stop-on-eof: stdin must be a pipe, a socket or a terminal, not a file");
#endif

    int n = 0;
    if (rank_command) {
        if (snprintf(cmd, sizeof cmd, "%s", rank_command) >= (int)sizeof cmd)
            return cmd_usage("worker", "--rank-command: too long");
        for (char *save, *tok = strtok_r(cmd, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            if (n == MAX_ARGS) return cmd_usage("worker", "--rank-command: more than %d words", MAX_ARGS);
            rank_argv[n++] = tok;
        }
        if (!n) return cmd_usage("worker", "--rank-command: empty");
    } else {
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1); /* as ignis run does */
        if (len <= 0) return fputs("ignis worker: cannot find this program's path\n", stderr), 1;
        exe[len] = 0;
        rank_argv[n++] = exe;
        rank_argv[n++] = "train";
    }
    o.rank_argv = rank_argv;
    /* A worker whose stderr went away (ssh gone) still aborts its ranks: a
     * failed write is no reason to die. Its ranks start with SIGPIPE's
     * default again (libuv resets every signal in the child). */
    signal(SIGPIPE, SIG_IGN);
    ig_status st = wd_run(&o);
    if (st == IG_OK) return 0;
    fprintf(stderr, "ignis: %s\n", ig_last_error());
    return 1;
}

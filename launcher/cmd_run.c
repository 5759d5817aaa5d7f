/* launcher/cmd_run.c: `ignis run --local N JOB [--state DIR]`: the whole
 * control plane on this machine. It starts a coordinator (on a free loopback
 * port) and a worker with N CPU slots as child processes of this same
 * binary, submits JOB on N ranks, follows it with STATUS (one line whenever
 * its state, attempt or step changes) and exits with its result: 0 succeeded,
 * 1 failed or cancelled (with the reason), 2 a usage error or a bad spec
 * (nothing started).
 *
 * Invariants: the children live in their own process groups (a terminal's
 * Ctrl-C reaches only this process) and get SIGTERM if it dies
 * (PR_SET_PDEATHSIG); whatever happens they are stopped before it returns:
 * the worker first (it aborts its ranks), then the coordinator, each with
 * SIGTERM, a bounded wait, then SIGKILL. The first Ctrl-C (or SIGTERM)
 * cancels the job and waits for it to end; a second one stops at once. The
 * job's outputs go where `ignis train` would put them (relative to the
 * current directory); the journal and the logs go to DIR: coordinator.log,
 * worker.log, work/job-J/attempt-A/rank-R.log. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launcher/commands.h"

enum { POLL_MS = 200, SUBMIT_TIMEOUT_MS = 10000, CANCEL_WAIT_S = 20, WORKER_GRACE_S = 3 };

typedef struct child {
    const char *name;
    pid_t pid; /* 0: not running (never started or reaped) */
    char log[PATH_MAX + 32];
} child;

static volatile sig_atomic_t interrupts;
static void on_signal(int sig) { (void)sig, interrupts++; }

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ignis run: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("; see 'ignis help run'\n", stderr);
    return 2;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

/* A loopback TCP port that was free a moment ago (0: none found). */
static int free_port(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) && !getsockname(fd, (struct sockaddr *)&a, &n))
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* Starts `ignis ARGS...` with stdout and stderr to c->log. */
static bool spawn(child *c, const char *exe, char *const argv[]) {
    pid_t parent = getpid();
    c->pid = fork();
    if (c->pid < 0) {
        c->pid = 0;
        fprintf(stderr, "ignis run: cannot start the %s: %s\n", c->name, strerror(errno));
        return false;
    }
    if (c->pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(127); /* the parent died before prctl */
        int in = open("/dev/null", O_RDONLY), out = open(c->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(127);
        execv(exe, argv);
        fprintf(stderr, "ignis run: %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    return true;
}

/* Whether the child is still running (it is reaped otherwise). */
static bool alive(child *c) {
    int status;
    if (c->pid && waitpid(c->pid, &status, WNOHANG) == c->pid) c->pid = 0;
    return c->pid != 0;
}

/* SIGTERM, up to wait_s seconds, then SIGKILL. */
static void stop(child *c, double wait_s) {
    if (!alive(c)) return;
    kill(c->pid, SIGTERM);
    for (double end = now_s() + wait_s; now_s() < end && alive(c);) sleep_ms(20);
    if (!alive(c)) return;
    fprintf(stderr, "ignis run: the %s did not stop within %g s: killed\n", c->name, wait_s);
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    c->pid = 0;
}

static void print_log_tail(const child *c) {
    FILE *f = fopen(c->log, "r");
    char line[1024], last[1024] = "";
    while (f && fgets(line, sizeof line, f)) snprintf(last, sizeof last, "%s", line);
    if (f) fclose(f);
    fprintf(stderr, "ignis run: the %s stopped%s%s", c->name, *last ? ": " : "\n", last);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* client_request with SIGINT and SIGTERM held back (they would cut its waits
 * short); they are handled after it, within its timeout. */
static int request(const char *addr, ig_msg_type type, const json_t *body, ig_msg_type want, int timeout_ms,
                   json_t **reply) {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    int rc = client_request(addr, type, body, want, timeout_ms, reply);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Follows the job to its end: 0 succeeded, 1 otherwise. */
static int follow(const char *addr, long long id, child *kids, int nkids) {
    json_t *req = json_pack("{s:I}", "job", (json_int_t)id), *reply, *ok;
    char seen[64] = "";
    long long seen_attempt = -1, seen_step = -1;
    bool cancel_sent = false;
    double give_up = 0;
    int rc = 1;
    for (;;) {
        if (interrupts >= 2) {
            fprintf(stderr, "ignis run: interrupted again: stopping now\n");
            break;
        }
        if (interrupts == 1 && !cancel_sent) {
            cancel_sent = true;
            give_up = now_s() + CANCEL_WAIT_S;
            fprintf(stderr, "ignis run: interrupted: cancelling job %lld (again to stop at once)\n", id);
            if (!request(addr, IG_MSG_CANCEL, req, IG_MSG_OK, CLIENT_TIMEOUT_MS, &ok)) json_decref(ok);
        }
        if (cancel_sent && now_s() > give_up) {
            fprintf(stderr, "ignis run: job %lld did not end within %d s of the cancel\n", id, CANCEL_WAIT_S);
            break;
        }
        int dead = -1;
        for (int k = 0; k < nkids && dead < 0; k++)
            if (!alive(&kids[k])) dead = k;
        if (dead >= 0) {
            print_log_tail(&kids[dead]);
            break;
        }
        if (request(addr, IG_MSG_STATUS, req, IG_MSG_STATUS_REPLY, CLIENT_TIMEOUT_MS, &reply)) break;
        json_t *j = json_array_get(json_object_get(reply, "jobs"), 0);
        const char *state = json_string_value(json_object_get(j, "state"));
        if (!state) {
            fprintf(stderr, "ignis run: the coordinator's STATUS_REPLY has no job %lld\n", id);
            json_decref(reply);
            break;
        }
        long long attempt = json_integer_value(json_object_get(j, "attempt"));
        json_t *step = json_object_get(j, "step");
        long long s = step ? json_integer_value(step) : -1;
        if (strcmp(state, seen) || attempt != seen_attempt || s != seen_step) {
            client_print_job(stdout, j);
            fflush(stdout);
        }
        snprintf(seen, sizeof seen, "%s", state);
        seen_attempt = attempt, seen_step = s;
        bool done = !strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
        const char *reason = json_string_value(json_object_get(j, "reason"));
        if (done && !strcmp(state, "succeeded")) rc = 0;
        else if (done) fprintf(stderr, "ignis: job %lld %s: %s\n", id, state, reason ? reason : "no reason given");
        json_decref(reply);
        if (done) break;
        sleep_ms(POLL_MS);
    }
    json_decref(req);
    return rc;
}

int cmd_run(int argc, char **argv) {
    static const struct option opts[] = {{"local", required_argument, NULL, 'n'},
                                         {"state", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *state_opt = NULL;
    long local = 0;
    char *end;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            errno = 0;
            local = strtol(optarg, &end, 10);
            if (end == optarg || *end || errno || local < 1 || local > 4096)
                return usage("--local: expected a number of ranks in [1, 4096], got '%s'", optarg);
            break;
        case 's': state_opt = optarg; break;
        case 'h': return fputs("usage: ignis run --local N JOB [options]\n" RUN_HELP, stdout), 0;
        case ':': return usage("option '%s' needs a value", argv[optind - 1]);
        default: return usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return usage("expected one JOB file, got %d arguments", argc - optind);
    if (!local) return usage("--local N is required (a cluster's coordinator: use 'ignis submit')");
    json_t *spec;
    int rc = client_load_spec(argv[optind], &spec);
    if (rc) return rc;

    char exe[PATH_MAX], state[PATH_MAX], addr[64], ncpus[16], coord_dir[PATH_MAX + 16], work_dir[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *tmp = getenv("TMPDIR");
    snprintf(state, sizeof state, "%s/ignis-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (n < 0 || (state_opt ? mkdir(state_opt, 0755) && errno != EEXIST : !mkdtemp(state))) {
        fprintf(stderr, "ignis run: %s: %s\n", n < 0 ? "/proc/self/exe" : state_opt ? state_opt : state,
                strerror(errno));
        json_decref(spec);
        return 1;
    }
    exe[n] = 0;
    if (state_opt) snprintf(state, sizeof state, "%s", state_opt);
    int port = free_port();
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
    snprintf(ncpus, sizeof ncpus, "%ld", local);
    snprintf(coord_dir, sizeof coord_dir, "%s/coordinator", state);
    snprintf(work_dir, sizeof work_dir, "%s/work", state);
    child kids[2] = {{.name = "coordinator"}, {.name = "worker"}};
    snprintf(kids[0].log, sizeof kids[0].log, "%s/coordinator.log", state);
    snprintf(kids[1].log, sizeof kids[1].log, "%s/worker.log", state);
    char *coord_argv[] = {exe, "coordinator", "--listen", addr, "--state", coord_dir, NULL};
    char *worker_argv[] = {exe, "worker", "--coordinator", addr, "--cpus", ncpus, "--name", "local",
                           "--work-dir", work_dir, "--grace", "2", NULL};

    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    interrupts = 0;
    rc = 1;
    json_t *body = json_pack("{s:o, s:i}", "spec", spec, "ranks", (int)local), *ack = NULL;
    if (port && spawn(&kids[0], exe, coord_argv) && spawn(&kids[1], exe, worker_argv)) {
        printf("ignis run: coordinator at %s, a worker with %ld CPU slot%s; logs in %s\n", addr, local,
               local > 1 ? "s" : "", state);
        fflush(stdout);
        if (request(addr, IG_MSG_SUBMIT, body, IG_MSG_SUBMIT_ACK, SUBMIT_TIMEOUT_MS, &ack)) {
            if (!alive(&kids[0])) print_log_tail(&kids[0]);
        } else {
            long long id = json_integer_value(json_object_get(ack, "job"));
            printf("submitted job %lld\n", id);
            fflush(stdout);
            rc = follow(addr, id, kids, 2);
            if (rc) fprintf(stderr, "ignis run: the logs are in %s\n", state);
        }
    } else if (!port) {
        fprintf(stderr, "ignis run: no free loopback port: %s\n", strerror(errno));
    }
    stop(&kids[1], WORKER_GRACE_S + 5);
    stop(&kids[0], 5);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    json_decref(body);
    json_decref(ack);
    if (!rc && !state_opt) nftw(state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

/* launcher/cmd_run.c: `ignis run (--local N | --hosts H:N,... | --slurm) JOB
 * [--state DIR]`: a coordinator and workers for one job. It starts a
 * coordinator (a child process of this same binary) and the
 * workers (launcher/run_workers.h: one here, one per host over ssh, or one
 * per node of a Slurm allocation with srun), submits JOB on all their slots,
 * follows it with STATUS (one line whenever its state or attempt changes)
 * while relaying rank 0's output (run_logs.c), and exits with its result: 0 succeeded, 1 failed or
 * cancelled (with the reason), 2 a usage error or a bad spec (nothing
 * started).
 *
 * Invariants: the children live in their own process groups (a terminal's
 * Ctrl-C reaches only this process) and get SIGTERM if it dies
 * (PR_SET_PDEATHSIG); whatever happens they are stopped before it returns:
 * the workers first (they abort their ranks), then the coordinator, each
 * with a bounded wait, then SIGKILL. The first Ctrl-C (or SIGTERM) cancels
 * the job and waits for it to end; a second one stops at once. The job's
 * outputs go where `ignis train` would put them (relative to the current
 * directory, the workers' on every host); the journal and the logs go to
 * DIR: coordinator.log, worker.log or worker-HOST.log, work/job-J/attempt-A/
 * rank-R.log (--local) or work/HOST/job-J/... (--hosts, --slurm).
 *
 * Hosts that are all this machine: the coordinator is plaintext on a Unix
 * socket only this user can reach. Otherwise CurveZMQ (make_keys): the coordinator on every
 * interface with its key and the authorized workers' key, which each
 * launcher copies to its hosts (run_ctx.key_file). Its argv
 * (coordinator_argv) and the workers' environment (worker_env) are each
 * built in one place. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "launcher/commands.h"
#include "launcher/run_workers.h"

/* sun_path holds 108 bytes: "ipc://" and the path must fit (addr's size). */
enum { IPC_PATH_MAX = 6 + 107, TAIL_LINES = 10, TAIL_WAIT_S = 3, LOG_DRAIN_S = 10, POLL_MS = 200, SUBMIT_TIMEOUT_MS = 10000, CANCEL_WAIT_S = 20, WORKER_GRACE_S = 2 };

extern char **environ;

static volatile sig_atomic_t interrupts;
static void on_signal(int sig) { (void)sig, interrupts++; }

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

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* The coordinator's command line; keys (a key pair file and the authorized
 * keys) NULL: plaintext (it then listens on loopback only). */
static char **coordinator_argv(const char *exe, const char *listen, const char *state_dir, const char *key,
                               const char *authorized) {
    static char *argv[12];
    char *const a[] = {(char *)exe, "coordinator", "--listen", (char *)listen, "--state", (char *)state_dir,
                       "--key", (char *)key, "--authorized-keys", (char *)authorized, NULL};
    memcpy(argv, a, sizeof a);
    if (!key) argv[6] = NULL;
    return argv;
}

void run_worker_key_path(const run_ctx *c, const char *node, char *out, size_t size) {
    snprintf(out, size, "%s/keys/worker-%s.key", c->state, node);
}

/* CurveZMQ for a run over other hosts: in STATE/keys (mode 0700) the
 * coordinator's key pair, one key pair for the workers and this process
 * (each worker gets a copy on its host), and authorized_keys listing the
 * latter; this process's own requests then use it (IGNIS_KEY,
 * IGNIS_COORDINATOR_KEY). 0, or 1 with the reason printed. */
static int make_keys(const char *state, char *coord_key, char *client_key, char *authorized, size_t size,
                     char coord_public[IG_PROTO_KEY_LEN + 1]) {
    char dir[PATH_MAX + 8];
    ig_proto_keypair coord, client;
    snprintf(dir, sizeof dir, "%s/keys", state);
    snprintf(coord_key, size, "%s/coordinator.key", dir);
    snprintf(client_key, size, "%s/client.key", dir);
    snprintf(authorized, size, "%s/authorized_keys", dir);
    FILE *f = NULL;
    if ((mkdir(dir, 0700) && errno != EEXIST) || ig_proto_keypair_generate(&coord) ||
        ig_proto_keypair_generate(&client) || ig_proto_keypair_save(coord_key, &coord, true) ||
        ig_proto_keypair_save(client_key, &client, true) || !(f = fopen(authorized, "w")) ||
        fprintf(f, "# the workers of this ignis run\n%s\n", client.public_key) < 0 || fclose(f)) {
        fprintf(stderr, "ignis run: keys in %s: %s\n", dir, errno ? strerror(errno) : ig_last_error());
        return 1;
    }
    snprintf(coord_public, IG_PROTO_KEY_LEN + 1, "%s", coord.public_key);
    setenv("IGNIS_KEY", client_key, 1);
    setenv("IGNIS_COORDINATOR_KEY", coord.public_key, 1);
    return 0;
}

/* What every worker gets on top of its own environment, from ours, as
 * `mpirun -x` would pass it: what the ranks need (threads, BLAS, libraries,
 * NCCL, UCX, ignis' own), and NCCL_NVLS_ENABLE=0 always. NULL-terminated;
 * the strings are environ's. */
static char **worker_env(void) {
    static const char *const pass[] = {"OMP_NUM_THREADS=", "OPENBLAS_", "LD_LIBRARY_PATH=", "NCCL_", "UCX_",
                                       "IGNIS_"};
    size_t n = 0, cap = 2;
    for (char **e = environ; *e; e++) cap++;
    char **env = calloc(cap, sizeof *env);
    if (!env) return NULL;
    env[n++] = "NCCL_NVLS_ENABLE=0";
    for (char **e = environ; *e; e++)
        for (size_t i = 0; i < sizeof pass / sizeof *pass; i++)
            if (!strncmp(*e, pass[i], strlen(pass[i])) && strncmp(*e, "NCCL_NVLS_ENABLE=", 17) &&
                strncmp(*e, "IGNIS_KEY=", 10) && strncmp(*e, "IGNIS_COORDINATOR_KEY=", 22)) {
                env[n++] = *e;
                break;
            }
    return env;
}

/* --hostfile PATH as a --hosts list into out: 0, or 2 with the reason printed. */
static int read_hostfile(const char *path, char *out, size_t cap) {
    static char text[1 << 20];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    bool whole = f && feof(f) && !ferror(f);
    if (f) fclose(f);
    if (!f) return cmd_usage("run", "--hostfile %s: %s", path, strerror(errno));
    if (!whole) return cmd_usage("run", "--hostfile %s: unreadable, or over 1 MiB", path);
    text[n] = 0;
    if (memchr(text, 0, n)) return cmd_usage("run", "--hostfile %s: a NUL byte: not a text file", path);
    char err[512];
    if (run_hostfile_to_hosts(text, path, out, cap, err, sizeof err)) return cmd_usage("run", "%s", err);
    return 0;
}

/* The ranks to ask for: the spec's run.ranks, else all the slots (at most
 * run.max_ranks); 0 with the reason printed when the slots cannot hold the
 * job (run.ranks or run.min_ranks above them). */
static int ranks_for(const json_t *spec, int slots) {
    const json_t *run = json_object_get(spec, "run");
    int r = (int)json_integer_value(json_object_get(run, "ranks")),
        lo = (int)json_integer_value(json_object_get(run, "min_ranks")),
        hi = (int)json_integer_value(json_object_get(run, "max_ranks"));
    int need = r ? r : lo ? lo : 1;
    if (need <= slots) return r ? r : hi && hi < slots ? hi : slots;
    fprintf(stderr, "ignis run: the job needs %d ranks (run.%s in its spec) and this run has %d slot%s\n", need,
            r ? "ranks" : "min_ranks", slots, slots > 1 ? "s" : "");
    return 0;
}

/* Where the workers go (w->via, w->nodes), the world size, and whether a
 * node is not this machine (*remote: the coordinator then needs keys), from
 * the options: 0, or 2 with the reason printed. */
static int plan_workers(long local, const char *hosts, bool slurm, run_workers *w, int *world, bool *remote) {
    char err[512], self[256] = "";
    if (!!local + !!hosts + slurm != 1) return cmd_usage("run", "give one of --local N, --hosts H:N,... or --slurm");
    if (local) {
        w->via = &run_local, w->n = 1, *world = (int)local;
        w->nodes[0].cpus = (int)local;
        snprintf(w->nodes[0].name, sizeof w->nodes[0].name, "local");
        return 0;
    }
    if (hosts) {
        w->via = &run_ssh;
        if (run_parse_hosts(hosts, w->nodes, RUN_MAX_NODES, &w->n, err, sizeof err)) return cmd_usage("run", "%s", err);
        *world = 0;
        for (int i = 0; i < w->n; i++) *world += w->nodes[i].cpus;
    } else {
        w->via = &run_srun;
        int rc = run_slurm_nodes(w, world);
        if (rc) return rc;
    }
    gethostname(self, sizeof self - 1);
    for (int i = 0; i < w->n; i++) *remote |= !run_is_loopback(w->nodes[i].name, self);
    return 0;
}

int run_request(const char *addr, ig_msg_type type, const json_t *body, ig_msg_type want, int timeout_ms,
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
static int follow(const char *addr, long long id, run_proc *coord, run_workers *w) {
    json_t *req = json_pack("{s:I}", "job", (json_int_t)id), *reply, *ok;
    char seen[64] = "";
    long long seen_attempt = -1;
    run_logs logs = {.job = id};
    bool started = false;
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
            give_up = run_now() + CANCEL_WAIT_S;
            fprintf(stderr, "ignis run: interrupted: cancelling job %lld (again to stop at once)\n", id);
            if (!run_request(addr, IG_MSG_CANCEL, req, IG_MSG_OK, CLIENT_TIMEOUT_MS, &ok)) json_decref(ok);
        }
        if (cancel_sent && run_now() > give_up) {
            fprintf(stderr, "ignis run: job %lld did not end within %d s of the cancel\n", id, CANCEL_WAIT_S);
            break;
        }
        if (!run_proc_alive(coord)) {
            run_proc_print_tail(coord);
            break;
        }
        if (run_workers_dead(w) >= 0) break;
        if (run_request(addr, IG_MSG_STATUS, req, IG_MSG_STATUS_REPLY, CLIENT_TIMEOUT_MS, &reply)) break;
        json_t *j = json_array_get(json_object_get(reply, "jobs"), 0);
        const char *state = json_string_value(json_object_get(j, "state"));
        if (!state) {
            fprintf(stderr, "ignis run: the coordinator's STATUS_REPLY has no job %lld\n", id);
            json_decref(reply);
            break;
        }
        long long attempt = json_integer_value(json_object_get(j, "attempt"));
        bool done = !strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
        /* every state but queued and cancelled says ranks ran (a job fails only after an attempt did) */
        started |= strcmp(state, "queued") && strcmp(state, "cancelled");
        if (started) { /* rank 0's output; at the end, all of it (bounded) */
            for (double end = run_now() + (done ? LOG_DRAIN_S : 0); !run_logs_poll(&logs, addr) && run_now() < end;)
                sleep_ms(POLL_MS / 2);
        }
        if (started && seen_attempt >= 1 && attempt > seen_attempt) /* attempt seen_attempt failed */
            run_logs_tail(addr, id, seen_attempt, TAIL_LINES, TAIL_WAIT_S);
        if (started && !strcmp(state, "failed")) run_logs_tail(addr, id, attempt, TAIL_LINES, TAIL_WAIT_S);
        if (strcmp(state, seen) || attempt != seen_attempt) {
            client_print_job(stdout, j);
            fflush(stdout);
        }
        snprintf(seen, sizeof seen, "%s", state);
        seen_attempt = attempt;
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
                                         {"hosts", required_argument, NULL, 'H'},
                                         {"slurm", no_argument, NULL, 'S'},
                                         {"state", required_argument, NULL, 's'},
                                         {"coordinator-host", required_argument, NULL, 'C'},
                                         {"max-restarts", required_argument, NULL, 'R'},
                                         {"hostfile", required_argument, NULL, 'F'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *state_opt = NULL, *hosts = NULL, *head = NULL, *hostfile = NULL;
    static char hosts_from_file[65536];
    bool slurm = false, remote = false;
    long long restarts = -1; /* --max-restarts; -1: the spec's run.max_restarts, else 3 */
    long local = 0;
    char *end;
    int c, world = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            errno = 0;
            local = strtol(optarg, &end, 10);
            if (end == optarg || *end || errno || local < 1 || local > RUN_MAX_SLOTS)
                return cmd_usage("run", "--local: expected a number of ranks in [1, %d], got '%s'", RUN_MAX_SLOTS,
                             optarg);
            break;
        case 'H': hosts = optarg; break;
        case 'F': hostfile = optarg; break;
        case 'S': slurm = true; break;
        case 's': state_opt = optarg; break;
        case 'C': head = optarg; break;
        case 'R':
            if (!cmd_parse_int(optarg, 0, 1000000, &restarts))
                return cmd_usage("run", "--max-restarts: expected an integer in [0, 1000000], got '%s'", optarg);
            break;
        case 'h':
            fputs("usage: ignis run (--local N | --hosts H:N,... | --slurm) JOB [options]\n" RUN_HELP,
                  stdout);
            return 0;
        case ':': return cmd_usage("run", "option '%s' needs a value", argv[optind - 1]);
        default: return cmd_usage("run", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cmd_usage("run", "expected one JOB file, got %d arguments", argc - optind);
    if (hostfile) { /* the same as --hosts with the file's list */
        if (hosts) return cmd_usage("run", "give --hosts or --hostfile, not both");
        int rc = read_hostfile(hostfile, hosts_from_file, sizeof hosts_from_file);
        if (rc) return rc;
        hosts = hosts_from_file;
    }
    run_workers *w = calloc(1, sizeof *w);
    if (!w) return fputs("ignis run: out of memory\n", stderr), 1;
    for (int i = 0; i < RUN_MAX_NODES; i++) w->procs[i].stdin_fd = -1;
    json_t *spec = NULL;
    int rc = plan_workers(local, hosts, slurm, w, &world, &remote);
    if (!rc) rc = client_load_spec(argv[optind], &spec);
    int ranks = rc ? 0 : ranks_for(spec, world);
    if (!rc && !ranks) rc = 2;
    if (rc) return json_decref(spec), free(w), rc;

    char exe[PATH_MAX], cwd[PATH_MAX], state[PATH_MAX], addr[IPC_PATH_MAX + 1], listen[IPC_PATH_MAX + 1],
        worker_addr[RUN_NAME_MAX + IPC_PATH_MAX],
        coord_dir[PATH_MAX + 16], key[PATH_MAX + 64], client_key[PATH_MAX + 64], authorized[PATH_MAX + 64],
        coord_public[IG_PROTO_KEY_LEN + 1], self[RUN_NAME_MAX] = "localhost";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *tmp = getenv("TMPDIR");
    snprintf(state, sizeof state, "%s/ignis-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (n < 0 || !getcwd(cwd, sizeof cwd) ||
        (state_opt ? mkdir(state_opt, 0755) && errno != EEXIST : !mkdtemp(state))) {
        fprintf(stderr, "ignis run: %s: %s\n", n < 0 ? "/proc/self/exe" : state_opt ? state_opt : state,
                strerror(errno));
        json_decref(spec);
        free(w);
        return 1;
    }
    exe[n] = 0;
    if (state_opt && !realpath(state_opt, state)) snprintf(state, sizeof state, "%s", state_opt);
    /* Workers on other hosts: CurveZMQ, the coordinator on every interface,
     * reached at --coordinator-host (default: this host's name). Else
     * plaintext (keys left in the environment would not fit) on a Unix socket
     * in a directory only this user can enter (STATE/sock, mode 0700), so
     * other users of the machine cannot submit to it; on loopback TCP only
     * when that path is too long for a socket. */
    if (remote && make_keys(state, key, client_key, authorized, sizeof key, coord_public)) {
        json_decref(spec);
        free(w);
        return 1;
    }
    if (!remote) unsetenv("IGNIS_KEY"), unsetenv("IGNIS_COORDINATOR_KEY");
    gethostname(self, sizeof self - 1);
    int port = free_port();
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
    snprintf(listen, sizeof listen, "tcp://%s:%d", remote ? "0.0.0.0" : "127.0.0.1", port);
    snprintf(worker_addr, sizeof worker_addr, "tcp://%s:%d", remote ? head ? head : self : "127.0.0.1", port);
    char sock_dir[PATH_MAX + 8];
    snprintf(sock_dir, sizeof sock_dir, "%s/sock", state);
    if (!remote && strlen("ipc://") + strlen(sock_dir) + strlen("/coordinator") <= IPC_PATH_MAX &&
        (!mkdir(sock_dir, 0700) || errno == EEXIST) && !chmod(sock_dir, 0700)) {
        snprintf(addr, sizeof addr, "ipc://%s/coordinator", sock_dir);
        snprintf(listen, sizeof listen, "%s", addr);
        snprintf(worker_addr, sizeof worker_addr, "%s", addr);
        port = 1; /* none needed */
    }
    snprintf(coord_dir, sizeof coord_dir, "%s/coordinator", state);
    run_proc coord = {.what = "the coordinator", .stdin_fd = -1};
    snprintf(coord.log, sizeof coord.log, "%s/coordinator.log", state);
    char **env = worker_env();
    run_ctx ctx = {.exe = exe, .coordinator = worker_addr, .cwd = cwd, .state = state, .env = env,
                   .grace_s = WORKER_GRACE_S, .key_file = remote ? client_key : NULL,
                   .coordinator_key = remote ? coord_public : NULL};

    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    interrupts = 0;
    rc = 1;
    json_t *body = json_pack("{s:o, s:i}", "spec", spec, "ranks", ranks), *ack = NULL;
    if (restarts >= 0) json_object_set_new(body, "max_restarts", json_integer(restarts));
    if (port && env && run_proc_spawn(&coord, coordinator_argv(exe, listen, coord_dir, remote ? key : NULL, authorized), NULL,
                                           false) &&
        w->via->start(w, &ctx)) {
        printf("ignis run: coordinator at %s, %d worker%s (%s) with %d CPU slot%s; logs in %s\n", addr, w->n,
               w->n > 1 ? "s" : "", w->via->mode, world, world > 1 ? "s" : "", state);
        fflush(stdout);
        if (run_request(addr, IG_MSG_SUBMIT, body, IG_MSG_SUBMIT_ACK, SUBMIT_TIMEOUT_MS, &ack)) {
            if (!run_proc_alive(&coord)) run_proc_print_tail(&coord);
        } else {
            long long id = json_integer_value(json_object_get(ack, "job"));
            printf("submitted job %lld\n", id);
            fflush(stdout);
            rc = follow(addr, id, &coord, w);
            if (rc) fprintf(stderr, "ignis run: the logs are in %s\n", state);
        }
    } else if (!port) {
        fprintf(stderr, "ignis run: no free loopback port: %s\n", strerror(errno));
    }
    w->via->stop(w, &ctx);
    run_procs_stop(&coord, 1, 0, 5);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    json_decref(body);
    json_decref(ack);
    free(env);
    free(w);
    if (!rc && !state_opt) nftw(state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

/* launcher/run_workers.h: how `ignis run` (cmd_run.c) starts its workers.
 * cmd_run.c parses the options, starts the coordinator, submits, follows
 * and tears down; the workers come from one of three launchers with the same
 * interface: run_local (one worker, a child process: --local N), run_ssh (one
 * worker per host over ssh: --hosts), run_srun (one srun step per node of
 * the Slurm allocation: --slurm). Each worker is a child process of
 * `ignis run` (the worker itself, ssh or srun), watched the same way
 * (run_proc_alive); each launcher knows how to start and stop its own.
 *
 * The parsers (run_parse.c) are pure functions, unit-tested in
 * tests/test_run_parse.c. */
#ifndef IGNIS_LAUNCHER_RUN_WORKERS_H
#define IGNIS_LAUNCHER_RUN_WORKERS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "launcher/commands.h"

enum { RUN_MAX_NODES = 1024, RUN_MAX_SLOTS = 4096, RUN_NAME_MAX = 256 };

/* A node: its host name (also the worker's --name) and its CPU slots. */
typedef struct run_node {
    char name[RUN_NAME_MAX];
    int cpus;
} run_node;

/* ---- parsers (run_parse.c): 0, or -1 with a one-line reason in err ---- */

/* --hosts "h1:8,h2:8": at most max nodes, each named once, 1..RUN_MAX_SLOTS
 * slots, RUN_MAX_SLOTS in all. */
int run_parse_hosts(const char *s, run_node *nodes, int max, int *n, char *err, size_t errlen);
/* A hostfile's text (lines HOST, HOST:N or HOST slots=N; '#' comments and
 * blank lines skipped; path names it in messages) as a --hosts list in out. */
int run_hostfile_to_hosts(const char *text, const char *path, char *out, size_t cap, char *err, size_t errlen);
/* SLURM_TASKS_PER_NODE "2(x3),1": exactly n counts, one per node, into slots. */
int run_parse_tasks_per_node(const char *s, int *slots, int n, char *err, size_t errlen);
/* Whether host (with or without "user@") is this machine: 127.x.y.z, ::1,
 * localhost, or self (this machine's host name) or its first label. */
bool run_is_loopback(const char *host, const char *self);
/* s in single quotes for a POSIX shell ('\'' for each quote), into out: its
 * length, or -1 when it does not fit. */
int run_shell_quote(const char *s, char *out, size_t size);

/* ---- child processes (run_proc.c) ---- */

typedef struct run_proc {
    char what[RUN_NAME_MAX + 32]; /* "the worker on h1", for messages */
    pid_t pid;                     /* 0: not running (never started, or reaped) */
    int stdin_fd;                  /* our end of its stdin, or -1 (its stdin is /dev/null) */
    char log[PATH_MAX + 64];       /* its stdout and stderr */
} run_proc;

/* Starts argv (argv[0] searched in PATH) with env ("NAME=VALUE", NULL-terminated,
 * may be NULL) added to ours, stdout and stderr appended to p->log, stdin a
 * pipe whose end we keep (with_stdin) or /dev/null, in a process group of its
 * own, SIGTERM'd if `ignis run` dies. false with the reason printed. */
bool run_proc_spawn(run_proc *p, char *const argv[], char *const env[], bool with_stdin);
/* Runs argv with the file `from` (at most 4 KiB: a key) on its stdin and its
 * output appended to p->log; true when it exits 0 within timeout_s, else
 * false with the reason printed (killed when it outlives the timeout). */
bool run_proc_feed(run_proc *p, char *const argv[], const char *from, double timeout_s);
/* Seconds on the monotonic clock (every wait of `ignis run` is measured by it). */
double run_now(void);
/* Whether it runs (it is reaped otherwise). */
bool run_proc_alive(run_proc *p);
/* Stops them all: closes their stdins and waits up to eof_wait_s for them to
 * end, then SIGTERM and up to term_wait_s, then SIGKILL. */
void run_procs_stop(run_proc *ps, int n, double eof_wait_s, double term_wait_s);
/* "ignis run: the worker on h1 stopped: <the last line of its log>" */
void run_proc_print_tail(const run_proc *p);

/* ---- launchers ---- */

/* What every launcher is given. */
typedef struct run_ctx {
    const char *exe;         /* this ignis: the same path on every host, as mpirun assumes */
    const char *coordinator; /* the address the workers connect to */
    const char *cwd;         /* the workers' directory (the job's outputs are relative to it) */
    const char *state;       /* logs: STATE/worker[-NODE].log; work dirs: STATE/work[/NODE] */
    char *const *env;        /* "NAME=VALUE" every worker gets (run_worker_env in cmd_run.c) */
    int grace_s;             /* the workers' --grace */
    /* CurveZMQ (hosts that are not this machine), else NULL: the workers' key
     * pair file here (each launcher copies it to the worker's host, readable
     * by its owner only, as STATE/keys/worker-NODE.key, for --key) and the
     * coordinator's public key (--coordinator-key). */
    const char *key_file, *coordinator_key;
} run_ctx;

/* Where a worker's key goes on its host (run_ctx.key_file). */
void run_worker_key_path(const run_ctx *c, const char *node, char *out, size_t size);

typedef struct run_workers {
    const struct run_launcher *via;
    run_node nodes[RUN_MAX_NODES];
    run_proc procs[RUN_MAX_NODES];
    int n;
} run_workers;

typedef struct run_launcher {
    const char *mode; /* "--local", "--hosts", "--slurm" */
    /* Starts a worker per node: true, or false with the reason printed (the
     * ones started are stopped by stop). */
    bool (*start)(run_workers *w, const run_ctx *c);
    /* Stops every worker (each aborts its ranks with the grace first). */
    void (*stop)(run_workers *w, const run_ctx *c);
} run_launcher;

extern const run_launcher run_local, run_ssh, run_srun;

/* The index of a worker that is gone (its log's last line printed), or -1. */
int run_workers_dead(run_workers *w);

/* --slurm: the allocation's nodes and slots (run_srun.c): 0, or 2 with the
 * reason printed (not in an allocation, unreadable variables). *world is
 * SLURM_NTASKS. */
int run_slurm_nodes(run_workers *w, int *world);

/* ---- the job's output (run_logs.c) ---- */

typedef struct run_logs {
    long long job;
    long long attempt; /* relayed now; 0 before the first */
    long long offset;  /* in that attempt's rank-0 log */
    bool off;          /* a request failed: no more relaying */
} run_logs;

/* Relays what is new of rank 0's output to stdout (call once the job's first
 * attempt started): true when it has all there will be, so far (the last
 * attempt that started reached its end, or the relay is off). */
bool run_logs_poll(run_logs *l, const char *addr);
/* After a failed attempt: the last `lines` (at most 64) lines that ranks
 * other than 0 wrote in it (the coordinator's merged view), on stderr;
 * waits up to wait_s for all of its output to arrive. Quiet on errors. */
void run_logs_tail(const char *addr, long long job, long long attempt, int lines, double wait_s);

/* client_request (commands.h) with SIGINT and SIGTERM held back meanwhile
 * (they would cut its waits short); handled after it, within its timeout. */
int run_request(const char *addr, ig_msg_type type, const json_t *body, ig_msg_type want, int timeout_ms,
                json_t **reply);

#endif

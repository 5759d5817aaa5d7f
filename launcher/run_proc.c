/* launcher/run_proc.c: the child processes of `ignis run` (the coordinator,
 * and each worker, ssh or srun): started with their output in a log, in a
 * process group of their own (a terminal's Ctrl-C reaches only `ignis run`),
 * SIGTERM'd when `ignis run` dies (PR_SET_PDEATHSIG), optionally with a pipe
 * as stdin that only `ignis run` holds (so its end, also by a kill -9,
 * reaches a worker run with --stop-on-eof, through ssh too); stopped with a
 * bounded wait at each step. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launcher/run_workers.h"

double run_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

bool run_proc_spawn(run_proc *p, char *const argv[], char *const env[], bool with_stdin) {
    int fds[2] = {-1, -1};
    pid_t parent = getpid();
    p->stdin_fd = -1;
    if (with_stdin && pipe2(fds, O_CLOEXEC)) {
        fprintf(stderr, "ignis run: cannot start %s: pipe: %s\n", p->what, strerror(errno));
        return false;
    }
    p->pid = fork();
    if (p->pid < 0) {
        p->pid = 0;
        fprintf(stderr, "ignis run: cannot start %s: %s\n", p->what, strerror(errno));
        if (with_stdin) close(fds[0]), close(fds[1]);
        return false;
    }
    if (p->pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(127); /* the parent died before prctl */
        int in = with_stdin ? fds[0] : open("/dev/null", O_RDONLY);
        int out = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(127);
        for (char *const *e = env; e && *e; e++) putenv(*e);
        execvp(argv[0], argv);
        fprintf(stderr, "ignis run: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (with_stdin) {
        close(fds[0]);
        p->stdin_fd = fds[1];
    }
    return true;
}

bool run_proc_feed(run_proc *p, char *const argv[], const char *from, double timeout_s) {
    FILE *f = fopen(from, "rb");
    char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    bool whole = f && feof(f) && !ferror(f);
    if (f) fclose(f);
    if (!whole) {
        fprintf(stderr, "ignis run: %s: cannot read it whole (%s)\n", from, f ? "over 4 KiB" : strerror(errno));
        return false;
    }
    if (!run_proc_spawn(p, argv, NULL, true)) return false;
    bool written = write(p->stdin_fd, buf, n) == (ssize_t)n; /* a pipe takes 4 KiB at once */
    close(p->stdin_fd), p->stdin_fd = -1;
    int status = 0;
    pid_t pid = p->pid, got = 0;
    for (double end = run_now() + timeout_s; (got = waitpid(pid, &status, WNOHANG)) == 0 && run_now() < end;)
        nanosleep(&(struct timespec){0, 20000000L}, NULL);
    if (got != pid) kill(pid, SIGKILL), waitpid(pid, &status, 0);
    p->pid = 0;
    if (got == pid && written && WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
    fprintf(stderr, "ignis run: %s %s; see %s\n", p->what, got != pid ? "did not finish in time" : "failed",
            p->log);
    return false;
}

bool run_proc_alive(run_proc *p) {
    int status;
    if (p->pid && waitpid(p->pid, &status, WNOHANG) == p->pid) p->pid = 0;
    return p->pid != 0;
}

static int n_alive(run_proc *ps, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) k += run_proc_alive(&ps[i]);
    return k;
}

/* Up to wait_s seconds for all of them to end: whether they did. */
static bool wait_all(run_proc *ps, int n, double wait_s) {
    for (double end = run_now() + wait_s; run_now() < end && n_alive(ps, n);)
        nanosleep(&(struct timespec){0, 20000000L}, NULL);
    return !n_alive(ps, n);
}

void run_procs_stop(run_proc *ps, int n, double eof_wait_s, double term_wait_s) {
    for (int i = 0; i < n; i++)
        if (ps[i].stdin_fd >= 0) close(ps[i].stdin_fd), ps[i].stdin_fd = -1;
    if (wait_all(ps, n, eof_wait_s)) return;
    for (int i = 0; i < n; i++)
        if (run_proc_alive(&ps[i])) kill(ps[i].pid, SIGTERM);
    if (wait_all(ps, n, term_wait_s)) return;
    for (int i = 0; i < n; i++) {
        if (!run_proc_alive(&ps[i])) continue;
        fprintf(stderr, "ignis run: %s did not stop within %g s: killed\n", ps[i].what,
                eof_wait_s + term_wait_s);
        kill(ps[i].pid, SIGKILL);
        waitpid(ps[i].pid, NULL, 0);
        ps[i].pid = 0;
    }
}

void run_proc_print_tail(const run_proc *p) {
    FILE *f = fopen(p->log, "r");
    char line[1024], last[1024] = "";
    while (f && fgets(line, sizeof line, f)) snprintf(last, sizeof last, "%s", line);
    if (f) fclose(f);
    fprintf(stderr, "ignis run: %s stopped%s%s", p->what, *last ? ": " : "\n", last);
}

int run_workers_dead(run_workers *w) {
    for (int i = 0; i < w->n; i++)
        if (!run_proc_alive(&w->procs[i])) {
            run_proc_print_tail(&w->procs[i]);
            return i;
        }
    return -1;
}

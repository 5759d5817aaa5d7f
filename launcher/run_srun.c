/* launcher/run_srun.c: `ignis run --slurm`'s workers, inside a Slurm
 * allocation (salloc, sbatch). The nodes are `scontrol show hostnames
 * "$SLURM_JOB_NODELIST"`, their slots SLURM_TASKS_PER_NODE, the world
 * SLURM_NTASKS. One job step per node, each one task, the worker:
 *     srun --nodes=1 --ntasks=1 --cpus-per-task=K --nodelist=HOST --overlap
 *          --kill-on-bad-exit=0 IGNIS worker --coordinator ADDR --cpus K
 *          --name HOST --work-dir STATE/work/HOST --grace G --stop-on-eof
 * (one step per node rather than one step of many tasks, so that each
 * worker gets its own node's slot count and its own log,
 * STATE/worker-HOST.log; srun passes our environment on, and the run_ctx's
 * env on top). The step holds the node's K CPUs of the allocation (its
 * ranks, the worker's children, run inside them where Slurm confines steps).
 * Stopping: srun forwards its stdin, a pipe only `ignis run` holds, to the
 * worker; closing it stops the worker, which aborts its ranks within its
 * grace. Only then SIGTERM to srun: srun answers it by having Slurm kill
 * the step (SIGKILL to the worker and its ranks, no grace), which is also
 * what happens when `ignis run` dies (srun gets SIGTERM then). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/run_workers.h"

enum { KEY_COPY_TIMEOUT_S = 60 };

static int slurm_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int slurm_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ignis run: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

/* `scontrol show hostnames LIST`, one name per node: 0, or 2 (printed). */
static int expand_nodelist(const char *list, run_workers *w) {
    char quoted[8192], cmd[8300], line[RUN_NAME_MAX];
    if (run_shell_quote(list, quoted, sizeof quoted) < 0)
        return slurm_error("SLURM_JOB_NODELIST is too long");
    snprintf(cmd, sizeof cmd, "scontrol show hostnames %s", quoted);
    FILE *f = popen(cmd, "r");
    if (!f) return slurm_error("cannot run scontrol: %s", strerror(errno));
    w->n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!*line) continue;
        if (w->n == RUN_MAX_NODES) break;
        snprintf(w->nodes[w->n++].name, RUN_NAME_MAX, "%s", line);
    }
    int status = pclose(f);
    if (status || !w->n || w->n == RUN_MAX_NODES)
        return slurm_error("`scontrol show hostnames \"%s\"` failed (is scontrol in PATH?), gave no nodes "
                           "or too many", list);
    return 0;
}

int run_slurm_nodes(run_workers *w, int *world) {
    const char *job = getenv("SLURM_JOB_ID"), *list = getenv("SLURM_JOB_NODELIST"),
               *tasks = getenv("SLURM_TASKS_PER_NODE"), *ntasks = getenv("SLURM_NTASKS");
    if (!job || !*job)
        return slurm_error("not inside a Slurm allocation: use salloc/sbatch (SLURM_JOB_ID is not set)");
    if (!list || !tasks || !ntasks)
        return slurm_error("Slurm job %s: SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE or SLURM_NTASKS is "
                           "not set (allocate tasks: salloc -n N)", job);
    char *end, err[512];
    errno = 0;
    long n = strtol(ntasks, &end, 10);
    if (end == ntasks || *end || errno || n < 1 || n > RUN_MAX_SLOTS)
        return slurm_error("SLURM_NTASKS='%s': expected a number of tasks in [1, 4096]", ntasks);
    int rc = expand_nodelist(list, w), slots[RUN_MAX_NODES], total = 0;
    if (rc) return rc;
    if (run_parse_tasks_per_node(tasks, slots, w->n, err, sizeof err)) return slurm_error("%s", err);
    int k = 0; /* the nodes with tasks of ours */
    for (int i = 0; i < w->n; i++)
        if (slots[i]) w->nodes[k] = w->nodes[i], w->nodes[k++].cpus = slots[i], total += slots[i];
    w->n = k;
    if (total < n) return slurm_error("SLURM_TASKS_PER_NODE='%s' holds fewer tasks than SLURM_NTASKS", tasks);
    *world = (int)n;
    return 0;
}

static bool srun_start(run_workers *w, const run_ctx *c) {
    for (int i = 0; i < w->n; i++) {
        const run_node *node = &w->nodes[i];
        run_proc *p = &w->procs[i];
        char cpus[16], cpt[32], nodelist[RUN_NAME_MAX + 16], grace[16], work_dir[PATH_MAX + RUN_NAME_MAX + 8];
        snprintf(cpus, sizeof cpus, "%d", node->cpus);
        snprintf(cpt, sizeof cpt, "--cpus-per-task=%d", node->cpus);
        snprintf(nodelist, sizeof nodelist, "--nodelist=%s", node->name);
        snprintf(grace, sizeof grace, "%d", c->grace_s);
        snprintf(work_dir, sizeof work_dir, "%s/work/%s", c->state, node->name);
        snprintf(p->what, sizeof p->what, "the worker on %s (srun)", node->name);
        snprintf(p->log, sizeof p->log, "%s/worker-%s.log", c->state, node->name);
        char key[PATH_MAX + RUN_NAME_MAX + 32], copy[2 * PATH_MAX + 2 * RUN_NAME_MAX + 128],
            qkey[sizeof key + 64], qdir[PATH_MAX + 64];
        run_worker_key_path(c, node->name, key, sizeof key);
        if (c->key_file) { /* the worker's key first, through srun's stdin: never on a command line */
            snprintf(copy, sizeof copy, "%s/keys", c->state);
            if (run_shell_quote(copy, qdir, sizeof qdir) < 0 || run_shell_quote(key, qkey, sizeof qkey) < 0)
                return fprintf(stderr, "ignis run: %s: too long\n", key), false;
            snprintf(copy, sizeof copy, "umask 077 && mkdir -p %s && cat > %s", qdir, qkey);
            char *cp[] = {"srun", "--nodes=1", "--ntasks=1", nodelist, "--overlap", "sh", "-c", copy, NULL};
            if (!run_proc_feed(p, cp, c->key_file, KEY_COPY_TIMEOUT_S)) return false;
        }
        char *argv[] = {"srun", "--nodes=1", "--ntasks=1", cpt, nodelist, "--overlap", "--kill-on-bad-exit=0",
                        (char *)c->exe, "worker", "--coordinator", (char *)c->coordinator, "--cpus", cpus,
                        "--name", (char *)node->name, "--work-dir", work_dir, "--grace", grace,
                        "--stop-on-eof", "--key", key, "--coordinator-key", (char *)c->coordinator_key, NULL};
        if (!c->key_file) argv[sizeof argv / sizeof *argv - 5] = NULL;
        if (!run_proc_spawn(p, argv, c->env, true)) return false;
    }
    return true;
}

/* The end of stdin first; SIGTERM to srun (the step killed) after the grace. */
static void srun_stop(run_workers *w, const run_ctx *c) { run_procs_stop(w->procs, w->n, c->grace_s + 5, 10); }

const run_launcher run_srun = {"--slurm", srun_start, srun_stop};

/* launcher/run_local.c: `ignis run --local N`'s worker: one `ignis worker`
 * with N CPU slots, a child process of `ignis run` on this machine, named
 * "local", logging to STATE/worker.log, its ranks' logs under STATE/work.
 * Stopped by SIGTERM (it aborts its ranks with the grace, then exits). */
#include <stdio.h>

#include "launcher/run_workers.h"

static bool local_start(run_workers *w, const run_ctx *c) {
    char cpus[16], grace[16], work_dir[PATH_MAX + 16];
    run_proc *p = &w->procs[0];
    snprintf(cpus, sizeof cpus, "%d", w->nodes[0].cpus);
    snprintf(grace, sizeof grace, "%d", c->grace_s);
    snprintf(work_dir, sizeof work_dir, "%s/work", c->state);
    snprintf(p->what, sizeof p->what, "the worker");
    snprintf(p->log, sizeof p->log, "%s/worker.log", c->state);
    char *argv[] = {(char *)c->exe, "worker", "--coordinator", (char *)c->coordinator, "--cpus", cpus,
                    "--name", w->nodes[0].name, "--work-dir", work_dir, "--grace", grace, NULL};
    return run_proc_spawn(p, argv, c->env, false);
}

static void local_stop(run_workers *w, const run_ctx *c) { run_procs_stop(w->procs, 1, 0, c->grace_s + 5); }

const run_launcher run_local = {"--local", local_start, local_stop};

/* launcher/run_ssh.c: `ignis run --hosts h1:8,h2:8`'s workers: one per host,
 * started over ssh as mpirun's rsh launcher does, assuming the same ignis
 * path and working directory on every host:
 *     $IGNIS_SSH -o BatchMode=yes HOST 'cd CWD && exec env VARS... IGNIS worker
 *         --coordinator ADDR --cpus N --name HOST --work-dir STATE/work/HOST
 *         --grace G --stop-on-eof'
 * (every word shell-quoted; IGNIS_SSH, default "ssh", split on spaces like
 * Open MPI's plm_rsh_agent; VARS the run_ctx's env, as mpirun -x). Each
 * ssh's stdin is a pipe only `ignis run` holds: closing it (or `ignis run`
 * dying) ends the remote worker's stdin, which stops it (--stop-on-eof:
 * its ranks aborted with the grace). The worker's output comes back through
 * ssh into STATE/worker-HOST.log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/run_workers.h"

enum { MAX_SSH_WORDS = 64, CMD_MAX = 65536, KEY_COPY_TIMEOUT_S = 60 };

/* Appends ' ' and word shell-quoted to cmd[0..*k): false when it is full. */
static bool add_word(char *cmd, size_t *k, const char *word) {
    if (*k + 2 >= CMD_MAX) return false;
    cmd[(*k)++] = ' ';
    int n = run_shell_quote(word, cmd + *k, CMD_MAX - *k);
    if (n < 0) return false;
    *k += (size_t)n;
    return true;
}

/* The remote command that starts node's worker. */
static bool remote_command(const run_ctx *c, const run_node *node, const char *host, char *cmd) {
    char cpus[16], grace[16], work_dir[PATH_MAX + RUN_NAME_MAX + 8];
    snprintf(cpus, sizeof cpus, "%d", node->cpus);
    snprintf(grace, sizeof grace, "%d", c->grace_s);
    snprintf(work_dir, sizeof work_dir, "%s/work/%s", c->state, host);
    size_t k = 0;
    bool ok = add_word(cmd, &k, "cd") && add_word(cmd, &k, c->cwd);
    if (ok) k += (size_t)snprintf(cmd + k, CMD_MAX - k, " && exec env");
    for (char *const *e = c->env; ok && e && *e; e++) ok = add_word(cmd, &k, *e);
    char key[PATH_MAX + RUN_NAME_MAX + 32];
    run_worker_key_path(c, host, key, sizeof key);
    const char *words[] = {c->exe, "worker", "--coordinator", c->coordinator, "--cpus", cpus, "--name", host,
                           "--work-dir", work_dir, "--grace", grace, "--stop-on-eof",
                           "--key", key, "--coordinator-key", c->coordinator_key};
    size_t nwords = sizeof words / sizeof *words - (c->key_file ? 0 : 4);
    for (size_t i = 0; ok && i < nwords; i++) ok = add_word(cmd, &k, words[i]);
    if (!ok) fprintf(stderr, "ignis run: the command for %s is over %d bytes\n", node->name, CMD_MAX);
    return ok;
}

static bool ssh_start(run_workers *w, const run_ctx *c) {
    static char cmd[CMD_MAX];
    char agent[4096], *argv[MAX_SSH_WORDS + 5];
    const char *env_agent = getenv("IGNIS_SSH");
    int n = 0;
    snprintf(agent, sizeof agent, "%s", env_agent && *env_agent ? env_agent : "ssh");
    for (char *save, *tok = strtok_r(agent, " ", &save); tok && n < MAX_SSH_WORDS;
         tok = strtok_r(NULL, " ", &save))
        argv[n++] = tok;
    if (!n) return fputs("ignis run: IGNIS_SSH has no command\n", stderr), false;
    argv[n++] = "-o";
    argv[n++] = "BatchMode=yes";
    for (int i = 0; i < w->n; i++) {
        const char *at = strchr(w->nodes[i].name, '@'), *host = at ? at + 1 : w->nodes[i].name;
        run_proc *p = &w->procs[i];
        snprintf(p->what, sizeof p->what, "the worker on %s", host);
        snprintf(p->log, sizeof p->log, "%s/worker-%s.log", c->state, host);
        argv[n] = w->nodes[i].name;
        if (c->key_file) { /* the worker's key first, through ssh's stdin: never on a command line */
            char key[PATH_MAX + RUN_NAME_MAX + 32], dir[PATH_MAX + 16];
            size_t k = 0;
            run_worker_key_path(c, host, key, sizeof key);
            snprintf(dir, sizeof dir, "%s/keys", c->state);
            k += (size_t)snprintf(cmd, CMD_MAX, " umask 077 && mkdir -p");
            bool ok = add_word(cmd, &k, dir);
            if (ok) k += (size_t)snprintf(cmd + k, CMD_MAX - k, " && cat >");
            ok = ok && add_word(cmd, &k, key);
            argv[n + 1] = cmd + 1;
            argv[n + 2] = NULL;
            if (!ok || !run_proc_feed(p, argv, c->key_file, KEY_COPY_TIMEOUT_S)) return false;
        }
        if (!remote_command(c, &w->nodes[i], host, cmd)) return false;
        argv[n + 1] = cmd + 1; /* past the leading space */
        argv[n + 2] = NULL;
        if (!run_proc_spawn(p, argv, NULL, true)) return false;
    }
    return true;
}

/* The end of stdin first; each worker aborts its ranks within its grace. */
static void ssh_stop(run_workers *w, const run_ctx *c) { run_procs_stop(w->procs, w->n, c->grace_s + 5, 5); }

const run_launcher run_ssh = {"--hosts", ssh_start, ssh_stop};

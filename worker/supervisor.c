/* worker/supervisor.c: starts rank processes and watches them (supervisor.h).
 *
 * Each rank owns three long-lived handles: its process, the read end of its
 * output pipe, and a timer (the SIGKILL deadline of an abort; after the exit,
 * the log's drain deadline). A rank goes running -> exited (on_exit reported)
 * -> closing (its pipe reached EOF or the drain deadline passed; its handles
 * are closing) -> freed (in the last close callback).
 *
 * Ranks are spawned UV_PROCESS_DETACHED: libuv calls setsid() in the child, so
 * a rank leads its own session and process group (pgid == pid), and
 * kill(-pid, sig) reaches the rank and every child it forked (unless one made
 * itself a new group). The group outlives the rank while any member lives,
 * and its id (the rank's pid) is not reused meanwhile: so, when the rank has
 * exited, kill(-pid) still reaches its children, or finds none (ESRCH). The
 * worker's own signals (Ctrl-C in a terminal) do not reach ranks; the worker
 * kills them itself (sup_abort_all).
 *
 * Log writes are plain write(2)s from the read callback: the log is a local
 * file, and a chunk is at most sizeof(rank.buf). A failed write (disk full)
 * loses that chunk from the file, never blocks the rank: the pipe keeps
 * draining. */
#define _GNU_SOURCE
#include "worker/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/impl.h"

extern char **environ;

typedef struct rank {
    struct rank *next;
    sup *sup;
    sup_rank_id id;
    int pid;
    int log_fd;
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer;
    bool exited, drained, closing;
    int open_handles; /* counted down by the close callbacks */
    char buf[65536];  /* one read in flight per pipe: reused */
} rank;

struct sup {
    uv_loop_t *loop;
    sup_exit_cb on_exit;
    sup_output_cb on_output;
    void *data;
    rank *ranks;
};

ig_status sup_new(uv_loop_t *loop, sup_exit_cb on_exit, sup_output_cb on_output, void *data,
                  sup **out) {
    IG_CHECK(loop && on_exit && out, "sup_new: loop and on_exit are required");
    sup *s = calloc(1, sizeof *s);
    if (!s) return ig__error(IG_ERR_NOMEM, "supervisor: out of memory");
    *s = (sup){.loop = loop, .on_exit = on_exit, .on_output = on_output, .data = data};
    *out = s;
    return IG_OK;
}

void sup_free(sup *s) {
    if (!s) return;
    IG_CHECK(!s->ranks, "sup_free: %d rank(s) not yet closed: run the loop until sup_count is 0",
             sup_count(s));
    free(s);
}

int sup_count(const sup *s) {
    int n = 0;
    for (const rank *r = s->ranks; r; r = r->next) n++;
    return n;
}

int sup_running(const sup *s) {
    int n = 0;
    for (const rank *r = s->ranks; r; r = r->next) n += !r->exited;
    return n;
}

/* ---- closing: handles first, memory in the last close callback ---- */

static void on_closed(uv_handle_t *h) {
    rank *r = h->data;
    if (--r->open_handles) return;
    sup *s = r->sup;
    for (rank **p = &s->ranks; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    close(r->log_fd);
    free(r);
}

static void close_if_done(rank *r) {
    if (!r->exited || !r->drained || r->closing) return;
    r->closing = true;
    uv_close((uv_handle_t *)&r->proc, on_closed);
    uv_close((uv_handle_t *)&r->out, on_closed);
    uv_close((uv_handle_t *)&r->timer, on_closed);
}

/* ---- the log ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)hint;
    rank *r = h->data;
    *buf = uv_buf_init(r->buf, sizeof r->buf);
}

static void append(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* see the file comment: the chunk is lost, the rank is not */
        p += w, n -= (size_t)w;
    }
}

/* The log is complete: no more reads, on_output told. */
static void log_complete(rank *r) {
    uv_read_stop((uv_stream_t *)&r->out);
    r->drained = true;
    if (r->sup->on_output) r->sup->on_output(r->sup, &r->id, "", 0, r->sup->data);
    close_if_done(r);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    rank *r = st->data;
    if (n > 0) {
        append(r->log_fd, buf->base, (size_t)n);
        if (r->sup->on_output) r->sup->on_output(r->sup, &r->id, buf->base, (size_t)n, r->sup->data);
    } else if (n < 0) { /* UV_EOF: every writer is gone (or a read error: nothing more comes) */
        log_complete(r);
    }
}

/* ---- exits and aborts ---- */

static void on_timer(uv_timer_t *t) {
    rank *r = t->data;
    if (!r->exited) { /* the abort's grace is over */
        uv_kill(-r->pid, SIGKILL);
        return;
    }
    /* the drain deadline: a descendant outside the group holds the pipe */
    log_complete(r);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_proc_exit(uv_process_t *p, int64_t status, int term_signal) {
    rank *r = p->data;
    r->exited = true;
    uv_timer_stop(&r->timer);
    uv_kill(-r->pid, SIGKILL); /* what is left of its group; ESRCH when nothing */
    sup_exit e = {.id = r->id, .pid = r->pid, .exit_code = (int)status,
                  .term_signal = term_signal, .time = now()};
    if (!r->drained) uv_timer_start(&r->timer, on_timer, SUP_DRAIN_MS, 0);
    r->sup->on_exit(r->sup, &e, r->sup->data);
    close_if_done(r);
}

static int abort_where(sup *s, bool all, int64_t job, int64_t attempt, int grace_ms) {
    int n = 0;
    for (rank *r = s->ranks; r; r = r->next) {
        if (r->exited || (!all && (r->id.job != job || (attempt >= 0 && r->id.attempt != attempt))))
            continue;
        n++;
        if (grace_ms <= 0) {
            uv_timer_stop(&r->timer);
            uv_kill(-r->pid, SIGKILL);
            continue;
        }
        uv_kill(-r->pid, SIGTERM);
        if (!uv_is_active((uv_handle_t *)&r->timer) ||
            uv_timer_get_due_in(&r->timer) > (uint64_t)grace_ms)
            uv_timer_start(&r->timer, on_timer, (uint64_t)grace_ms, 0);
    }
    return n;
}

int sup_abort_job(sup *s, int64_t job, int64_t attempt, int grace_ms) {
    return abort_where(s, false, job, attempt, grace_ms);
}

int sup_abort_all(sup *s, int grace_ms) { return abort_where(s, true, 0, 0, grace_ms); }

/* ---- starting ---- */

#define N_IDENTITY 10 /* the most variables build_env sets itself */

static bool has_key(char *const *env, int n, const char *kv) {
    size_t klen = strcspn(kv, "=");
    for (int i = 0; i < n; i++)
        if (!strncmp(env[i], kv, klen) && env[i][klen] == '=') return true;
    return false;
}

/* own[(*k)++] = the formatted string, or NULL when out of memory. */
static void add(char **own, int *k, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&own[*k], fmt, ap) < 0) own[*k] = NULL;
    va_end(ap);
    (*k)++;
}

/* The child's environment: the identity first, then the spec's extras, then
 * the worker's own, each key kept at its first occurrence. own[] receives the
 * strings allocated here (free them, and the array, after the spawn); the
 * rest point into the spec and environ. NULL when out of memory. */
static char **build_env(const sup_rank_spec *sp, char *own[N_IDENTITY]) {
    int k = 0;
    add(own, &k, "RANK=%d", sp->id.rank);
    add(own, &k, "WORLD_SIZE=%d", sp->world);
    add(own, &k, "LOCAL_RANK=%d", sp->local_rank);
    add(own, &k, "LOCAL_WORLD_SIZE=%d", sp->local_world);
    add(own, &k, "IGNIS_JOB=%" PRId64, sp->id.job);
    add(own, &k, "IGNIS_ATTEMPT=%" PRId64, sp->id.attempt);
    add(own, &k, "NCCL_NVLS_ENABLE=0");
    if (sp->master_addr) {
        add(own, &k, "MASTER_ADDR=%s", sp->master_addr);
        add(own, &k, "MASTER_PORT=%d", sp->master_port);
    }
    if (sp->coordinator) add(own, &k, "IGNIS_COORDINATOR=%s", sp->coordinator);
    for (int i = 0; i < k; i++)
        if (!own[i]) return NULL;
    size_t cap = N_IDENTITY + 1;
    for (char *const *e = sp->env; e && *e; e++) cap++;
    for (char **e = environ; *e; e++) cap++;
    char **env = malloc(cap * sizeof *env);
    if (!env) return NULL;
    int n = 0;
    for (int i = 0; i < k; i++) env[n++] = own[i];
    for (char *const *e = sp->env; e && *e; e++)
        if (strchr(*e, '=') && !has_key(env, n, *e)) env[n++] = *e;
    for (char **e = environ; *e; e++)
        if (!has_key(env, n, *e)) env[n++] = *e;
    env[n] = NULL;
    return env;
}

static const char *describe(const sup_rank_id *id) {
    static __thread char text[96];
    snprintf(text, sizeof text, "job %" PRId64 " attempt %" PRId64 " rank %d", id->job, id->attempt,
             id->rank);
    return text;
}

ig_status sup_start_rank(sup *s, const sup_rank_spec *sp) {
    IG_CHECK(sp && sp->argv && sp->argv[0] && sp->log_path,
             "sup_start_rank: argv (with a program) and log_path are required");
    for (const rank *o = s->ranks; o; o = o->next)
        IG_CHECK(o->exited || o->id.job != sp->id.job || o->id.attempt != sp->id.attempt ||
                     o->id.rank != sp->id.rank,
                 "sup_start_rank: %s is running already", describe(&sp->id));
    ig_status st = IG_OK;
    char *own[N_IDENTITY] = {0};
    char **env = build_env(sp, own);
    rank *r = env ? calloc(1, sizeof *r) : NULL;
    uv_file fds[2];
    int rc;
    if (!r) {
        st = ig__error(IG_ERR_NOMEM, "supervisor: %s: out of memory", describe(&sp->id));
        goto done;
    }
    r->sup = s;
    r->id = sp->id;
    r->log_fd = open(sp->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (r->log_fd < 0) {
        st = ig__error(IG_ERR_IO, "supervisor: %s: cannot open the log %s: %s", describe(&sp->id),
                       sp->log_path, strerror(errno));
        free(r);
        goto done;
    }
    /* Both pipe ends are close-on-exec: the child gets the write end as its
     * fds 1 and 2 through dup2 (which drops the flag), and no rank inherits
     * another's pipe. */
    if ((rc = uv_pipe(fds, 0, 0)) < 0) {
        st = ig__error(IG_ERR_IO, "supervisor: %s: pipe: %s", describe(&sp->id), uv_strerror(rc));
        close(r->log_fd);
        free(r);
        goto done;
    }
    uv_pipe_init(s->loop, &r->out, 0);
    /* Neither this nor uv_read_start below fails on a fresh pipe handle and
     * fd. uv_pipe_open makes our end non-blocking; the child's stays blocking. */
    uv_pipe_open(&r->out, fds[0]);
    uv_timer_init(s->loop, &r->timer);
    r->out.data = r->timer.data = r->proc.data = r;
    r->open_handles = 3;
    r->next = s->ranks;
    s->ranks = r;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, /* /dev/null */
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
    };
    uv_process_options_t opt = {
        .exit_cb = on_proc_exit, .file = sp->argv[0], .args = (char **)sp->argv, .env = env,
        .cwd = sp->cwd, .flags = UV_PROCESS_DETACHED, .stdio_count = 3, .stdio = stdio,
    };
    rc = uv_spawn(s->loop, &r->proc, &opt);
    close(fds[1]);
    if (rc < 0) {
        /* The process handle is initialized even when the spawn failed: it
         * closes with the others; on_exit never fires for this rank. */
        r->exited = r->drained = true;
        close_if_done(r);
        st = ig__error(IG_ERR_IO, "supervisor: %s: cannot start '%s'%s%s: %s", describe(&sp->id),
                       sp->argv[0], sp->cwd ? " in " : "", sp->cwd ? sp->cwd : "",
                       uv_strerror(rc));
        goto done;
    }
    r->pid = r->proc.pid;
    uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
done:
    for (int i = 0; i < N_IDENTITY; i++) free(own[i]);
    free(env);
    return st;
}

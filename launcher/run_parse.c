/* launcher/run_parse.c: the text `ignis run` reads to know where its workers
 * go: --hosts lists and --hostfile files, Slurm's SLURM_TASKS_PER_NODE, whether a host is this
 * machine, and the shell quoting of the command run over ssh. Pure functions
 * (no I/O, no globals), so that tests/test_run_parse.c covers every case. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/run_workers.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A decimal integer in [lo, hi] that is all of [s, end). */
static bool parse_count(const char *s, const char *end, long lo, long hi, long *out) {
    char *stop;
    if (s == end || *s < '0' || *s > '9') return false;
    errno = 0;
    long v = strtol(s, &stop, 10);
    if (errno || stop != end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Letters, digits, '.', '-', '_' (a host name or an IPv4 address), after an
 * optional "user@"; not starting with '-' (ssh would read an option). */
static bool valid_host(const char *s, size_t len) {
    const char *at = memchr(s, '@', len);
    if (at) len -= (size_t)(at + 1 - s), s = at + 1;
    if (!len || *s == '-') return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", s[i])) return false;
    return true;
}

int run_parse_hosts(const char *s, run_node *nodes, int max, int *n, char *err, size_t errlen) {
    long total = 0;
    *n = 0;
    for (const char *p = s;; p++) {
        const char *end = p + strcspn(p, ","), *colon = NULL;
        for (const char *q = p; q < end; q++)
            if (*q == ':') colon = q;
        int len = (int)(end - p);
        long slots;
        if (!len)
            return fail(err, errlen, "--hosts: entry %d is empty (expected HOST:SLOTS,... like h1:8,h2:8)",
                        *n + 1);
        if (!colon)
            return fail(err, errlen, "--hosts: '%.*s' has no slot count (expected HOST:SLOTS, like h1:8)",
                        len, p);
        if (!valid_host(p, (size_t)(colon - p)) || colon - p >= RUN_NAME_MAX)
            return fail(err, errlen,
                        "--hosts: '%.*s': expected a host name (letters, digits, '.', '-', '_', "
                        "optionally user@) before the ':'",
                        len, p);
        if (!parse_count(colon + 1, end, 1, RUN_MAX_SLOTS, &slots))
            return fail(err, errlen, "--hosts: '%.*s': expected a number of slots in [1, %d] after the ':'",
                        len, p, RUN_MAX_SLOTS);
        for (int i = 0; i < *n; i++)
            if (strlen(nodes[i].name) == (size_t)(colon - p) &&
                !strncmp(nodes[i].name, p, (size_t)(colon - p)))
                return fail(err, errlen,
                            "--hosts: '%s' is listed twice (give each host once, with all its slots)",
                            nodes[i].name);
        if (*n == max) return fail(err, errlen, "--hosts: more than %d hosts", max);
        if ((total += slots) > RUN_MAX_SLOTS)
            return fail(err, errlen, "--hosts: more than %d slots in all", RUN_MAX_SLOTS);
        snprintf(nodes[*n].name, sizeof nodes[*n].name, "%.*s", (int)(colon - p), p);
        nodes[(*n)++].cpus = (int)slots;
        if (!*end) return 0;
        p = end;
    }
}

int run_parse_tasks_per_node(const char *s, int *slots, int n, char *err, size_t errlen) {
    int k = 0;
    for (const char *p = s;; p++) {
        const char *end = p + strcspn(p, ","), *paren = memchr(p, '(', (size_t)(end - p));
        long count, times = 1;
        bool ok = parse_count(p, paren ? paren : end, 0, RUN_MAX_SLOTS, &count);
        if (ok && paren)
            ok = end - paren > 3 && paren[1] == 'x' && end[-1] == ')' &&
                 parse_count(paren + 2, end - 1, 1, RUN_MAX_NODES, &times);
        if (!ok)
            return fail(err, errlen, "SLURM_TASKS_PER_NODE='%s': expected counts like 2(x3),1, got '%.*s'", s,
                        (int)(end - p), p);
        for (long i = 0; i < times; i++, k++)
            if (k < n) slots[k] = (int)count;
        if (!*end) break;
        p = end;
    }
    if (k != n)
        return fail(err, errlen, "SLURM_TASKS_PER_NODE='%s' gives %d node(s), SLURM_JOB_NODELIST %d", s, k,
                    n);
    return 0;
}

bool run_is_loopback(const char *host, const char *self) {
    const char *at = strchr(host, '@');
    if (at) host = at + 1;
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1) return !strcmp(host, "::1");
    if (!strcmp(host, "localhost") || !strcmp(host, self)) return true;
    size_t label = strcspn(self, ".");
    return label && strlen(host) == label && !strncmp(host, self, label);
}

/* Appends text to out[0..*k), keeping room for the terminating NUL. */
static bool put(char *out, size_t size, size_t *k, const char *text) {
    size_t len = strlen(text);
    if (*k + len >= size) return false;
    memcpy(out + *k, text, len + 1);
    *k += len;
    return true;
}

int run_shell_quote(const char *s, char *out, size_t size) {
    size_t k = 0;
    if (!size || !put(out, size, &k, "'")) return -1;
    for (; *s; s++)
        if (!put(out, size, &k, *s == '\'' ? "'\\''" : (char[2]){*s, 0})) return -1;
    return put(out, size, &k, "'") ? (int)k : -1;
}

int run_hostfile_to_hosts(const char *text, const char *path, char *out, size_t cap, char *err, size_t errlen) {
    size_t k = 0;
    int line = 0;
    out[0] = 0;
    for (const char *p = text; *p;) {
        const char *eol = p + strcspn(p, "\n"), *hash = memchr(p, '#', (size_t)(eol - p));
        const char *end = hash ? hash : eol;
        line++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) end--;
        if (p < end) { /* HOST, HOST:N, or HOST slots=N (as DeepSpeed's and Open MPI's hostfiles) */
            const char *sp = p + strcspn(p, " \t");
            long slots = 1;
            int host_len = (int)((sp < end ? sp : end) - p);
            if (sp < end) {
                const char *v = sp + strspn(sp, " \t");
                if (strncmp(v, "slots=", 6) || !parse_count(v + 6, end, 1, RUN_MAX_SLOTS, &slots))
                    return fail(err, errlen, "--hostfile %s:%d: expected 'HOST slots=N' or 'HOST:N' (N in [1, %d]), "
                                "got '%.*s'", path, line, RUN_MAX_SLOTS, (int)(end - p), p);
            }
            int n = memchr(p, ':', (size_t)host_len)
                        ? snprintf(out + k, cap - k, "%s%.*s", k ? "," : "", host_len, p)
                        : snprintf(out + k, cap - k, "%s%.*s:%ld", k ? "," : "", host_len, p, slots);
            if (n < 0 || (size_t)n >= cap - k) return fail(err, errlen, "--hostfile %s: too many hosts", path);
            k += (size_t)n;
        }
        p = *eol ? eol + 1 : eol;
    }
    if (!k) return fail(err, errlen, "--hostfile %s: no hosts in it", path);
    return 0;
}

/* coordinator/logstore.c: the files of the coordinator's rank logs (logs.h
 * has the layout and the rules).
 *
 * The merged view's progress through a rank's log, `shown`, is a function of
 * rank-R.log (and its .final marker) alone:
 *   final marker present            -> the file's size;
 *   a newline in the last L-1 bytes -> just after the last one;
 *   else, a file shorter than L-1   -> 0 (one partial line, held);
 *   else                            -> the file's size (a long line, shown
 *                                      piece by piece as it arrives)
 * (L = IG_LOG_LINE_MAX). It only grows as the file grows, so an append shows
 * exactly the bytes between `shown` before and after it: at most L - 1 held
 * bytes plus the chunk. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/logs.h"

struct ig__logstore {
    char dir[PATH_MAX / 2]; /* STATE/logs (the file names after it fit in PATH_MAX) */
};

static ig_status make_dir(const char *path) {
    if (mkdir(path, 0755) && errno != EEXIST)
        return ig_set_error(IG_ERR_IO, "logs: cannot create %s: %s", path, strerror(errno));
    return IG_OK;
}

ig_status ig__logstore_open(const char *state_dir, ig__logstore **out) {
    *out = NULL;
    ig__logstore *s = calloc(1, sizeof *s);
    if (!s) return ig_set_error(IG_ERR_NOMEM, "logs: out of memory");
    if (snprintf(s->dir, sizeof s->dir, "%s/logs", state_dir) >= (int)sizeof s->dir) {
        free(s);
        return ig_set_error(IG_ERR_INVALID, "logs: state directory %s: path too long", state_dir);
    }
    ig_status st = make_dir(s->dir);
    if (st) {
        free(s);
        return st;
    }
    *out = s;
    return IG_OK;
}

void ig__logstore_close(ig__logstore *s) { free(s); }

/* STATE/logs/job-J/attempt-A[/name] (name NULL: the directory). */
static void path_of(const ig__logstore *s, int64_t job, int64_t attempt, const char *name,
                    char out[PATH_MAX]) {
    snprintf(out, PATH_MAX, "%s/job-%" PRId64 "/attempt-%" PRId64 "%s%s", s->dir, job, attempt,
             name ? "/" : "", name ? name : "");
}

static void rank_file(const ig__logstore *s, int64_t job, int64_t attempt, int rank, const char *ext,
                      char out[PATH_MAX]) {
    char name[48];
    snprintf(name, sizeof name, "rank-%d.%s", rank, ext);
    path_of(s, job, attempt, name, out);
}

static ig_status make_attempt_dir(const ig__logstore *s, int64_t job, int64_t attempt) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/job-%" PRId64, s->dir, job);
    ig_status st = make_dir(path);
    if (st) return st;
    path_of(s, job, attempt, NULL, path);
    return make_dir(path);
}

ig_status ig__logstore_begin(ig__logstore *s, int64_t job, int64_t attempt, int world) {
    ig_status st = make_attempt_dir(s, job, attempt);
    if (st) return st;
    char path[PATH_MAX];
    path_of(s, job, attempt, "world", path);
    FILE *f = fopen(path, "w");
    bool ok = f && fprintf(f, "%d\n", world) > 0;
    if (f && fclose(f)) ok = false;
    return ok ? IG_OK : ig_set_error(IG_ERR_IO, "logs: cannot write %s: %s", path, strerror(errno));
}

int ig__logstore_world(ig__logstore *s, int64_t job, int64_t attempt) {
    char path[PATH_MAX];
    path_of(s, job, attempt, "world", path);
    FILE *f = fopen(path, "r");
    int world = 0;
    if (f && (fscanf(f, "%d", &world) != 1 || world < 0)) world = 0;
    if (f) fclose(f);
    return world;
}

bool ig__logstore_final(ig__logstore *s, int64_t job, int64_t attempt, int rank) {
    char path[PATH_MAX];
    rank_file(s, job, attempt, rank, "final", path);
    return access(path, F_OK) == 0;
}

/* Reads exactly n bytes at off (short only at the end of the file). */
static ssize_t read_at(int fd, void *buf, size_t n, int64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + (int64_t)got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static bool write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w, n -= (size_t)w;
    }
    return true;
}

/* How far the merged view has shown a log of `size` bytes (file comment). */
static int64_t shown(int fd, int64_t size, bool final) {
    if (final) return size;
    char tail[IG_LOG_LINE_MAX - 1];
    int64_t n = size < (int64_t)sizeof tail ? size : (int64_t)sizeof tail;
    ssize_t got = read_at(fd, tail, (size_t)n, size - n);
    if (got != n) return size; /* unreadable: show nothing twice */
    char *nl = memrchr(tail, '\n', (size_t)n);
    if (nl) return size - n + (nl - tail) + 1;
    return size < (int64_t)sizeof tail ? 0 : size;
}

/* Appends bytes [from, to) of the rank's log to all.log, each line (a last
 * piece without its newline too) prefixed "[rank R] ". */
static ig_status show(const ig__logstore *s, int64_t job, int64_t attempt, int rank, int fd, int64_t from,
                      int64_t to) {
    if (to <= from) return IG_OK;
    size_t n = (size_t)(to - from);
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "[rank %d] ", rank);
    char *text = malloc(n), *out = NULL;
    ssize_t got = text ? read_at(fd, text, n, from) : -1;
    size_t lines = 1;
    for (size_t i = 0; got > 0 && i < (size_t)got; i++) lines += text[i] == '\n';
    if (got > 0) out = malloc((size_t)got + lines * ((size_t)plen + 1));
    size_t k = 0;
    for (size_t i = 0; out && i < (size_t)got;) {
        char *nl = memchr(text + i, '\n', (size_t)got - i);
        size_t len = nl ? (size_t)(nl - (text + i)) : (size_t)got - i;
        memcpy(out + k, prefix, (size_t)plen), k += (size_t)plen;
        memcpy(out + k, text + i, len), k += len;
        out[k++] = '\n';
        i += len + (nl != NULL);
    }
    char path[PATH_MAX];
    path_of(s, job, attempt, "all.log", path);
    ig_status st = IG_OK;
    if (!out)
        st = got <= 0 ? ig_set_error(IG_ERR_IO, "logs: cannot read rank %d's log: %s", rank, strerror(errno))
                      : ig_set_error(IG_ERR_NOMEM, "logs: out of memory");
    else {
        int all = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (all < 0 || !write_all(all, out, k))
            st = ig_set_error(IG_ERR_IO, "logs: cannot write %s: %s", path, strerror(errno));
        if (all >= 0) close(all);
    }
    free(text);
    free(out);
    return st;
}

static int64_t file_size(int fd) {
    struct stat sb;
    return fstat(fd, &sb) ? -1 : (int64_t)sb.st_size;
}

ig_status ig__logstore_append(ig__logstore *s, int64_t job, int64_t attempt, int rank, int64_t offset,
                              const void *data, size_t n, bool final, ig__log_stored *out) {
    *out = (ig__log_stored){0};
    char path[PATH_MAX], marker[PATH_MAX];
    rank_file(s, job, attempt, rank, "log", path);
    rank_file(s, job, attempt, rank, "final", marker);
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT && !make_attempt_dir(s, job, attempt))
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return ig_set_error(IG_ERR_IO, "logs: cannot open %s: %s", path, strerror(errno));
    bool was_final = access(marker, F_OK) == 0;
    int64_t size = file_size(fd);
    ig_status st = IG_OK;
    if (size < 0) {
        st = ig_set_error(IG_ERR_IO, "logs: %s: %s", path, strerror(errno));
    } else if (offset > size) {
        out->gap = true;
    } else {
        int64_t from = shown(fd, size, was_final), skip = size - offset;
        if (skip < (int64_t)n && !write_all(fd, (const char *)data + skip, n - (size_t)skip))
            st = ig_set_error(IG_ERR_IO, "logs: cannot write %s: %s", path, strerror(errno));
        int64_t now = file_size(fd);
        bool ends = final && offset + (int64_t)n <= now;
        if (now > size) size = now;
        if (!st) st = show(s, job, attempt, rank, fd, from, shown(fd, size, was_final || ends));
        if (!st && ends && !was_final) {
            int m = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (m < 0)
                st = ig_set_error(IG_ERR_IO, "logs: cannot create %s: %s", marker, strerror(errno));
            else
                close(m);
        }
        out->final = !st && (was_final || ends);
    }
    out->size = size;
    close(fd);
    return st;
}

ig_status ig__logstore_read(ig__logstore *s, int64_t job, int64_t attempt, int rank, int64_t offset,
                            void *buf, size_t cap, size_t *n) {
    *n = 0;
    char path[PATH_MAX];
    if (rank < 0)
        path_of(s, job, attempt, "all.log", path);
    else
        rank_file(s, job, attempt, rank, "log", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return IG_OK; /* nothing stored yet */
    ssize_t got = fd < 0 ? -1 : read_at(fd, buf, cap, offset);
    int err = errno;
    if (fd >= 0) close(fd);
    if (got < 0) return ig_set_error(IG_ERR_IO, "logs: cannot read %s: %s", path, strerror(err));
    *n = (size_t)got;
    return IG_OK;
}

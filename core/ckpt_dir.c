/* core/ckpt_dir.c: checkpoint directories (single process) and the fsync
 * helpers of core/ckpt_impl.h.
 *
 * A checkpoint of step N is written under dir/.tmp_step_N, every file in it
 * and the directory itself are fsynced, then it is renamed to
 * dir/step_NNNNNNNN (8 digits at least) and dir is fsynced: a directory named
 * step_<digits> is always complete. ig_ckpt_latest only ever looks at those
 * names; temporary directories left by a crash are ignored (and replaced when
 * the same step is begun again). */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ckpt_impl.h"
#include "core/impl.h"
#include "ignis/ckpt.h"

ig_status ig__fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        return ig__error(IG_ERR_IO, "%s: fsync failed: %s", path, strerror(err));
    }
    close(fd);
    return IG_OK;
}

ig_status ig__fsync_parent(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) return ig__fsync_path(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof dir) return ig__error(IG_ERR_INVALID, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = 0;
    return ig__fsync_path(dir);
}

/* ---- walking a tree (nftw: depth first, not following links) ---- */

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p) != 0 ? errno : 0;
}

static int sync_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)ftw;
    if (flag != FTW_F && flag != FTW_DP) return 0; /* links and the like */
    return ig__fsync_path(p) == IG_OK ? 0 : EIO;
}

/* rm -r path; a missing path is fine. */
static ig_status remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0 && errno == ENOENT) return IG_OK;
    int r = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (r != 0)
        return ig__error(IG_ERR_IO, "%s: cannot remove: %s", path, strerror(r > 0 ? r : errno));
    return IG_OK;
}

/* mkdir -p */
static ig_status make_dirs(const char *dir) {
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s", dir) >= sizeof p)
        return ig__error(IG_ERR_INVALID, "%s: path too long", dir);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return ig__error(IG_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
        if (!(*s = c)) break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ig__error(IG_ERR_IO, "%s: not a directory", dir);
    return IG_OK;
}

static ig_status step_path(char *out, size_t cap, const char *dir, const char *prefix,
                           int64_t step) {
    IG_CHECK(step >= 0, "ckpt: step %" PRId64 " is negative (%s)", step, dir);
    if ((size_t)snprintf(out, cap, "%s/%sstep_%08" PRId64, dir, prefix, step) >= cap)
        return ig__error(IG_ERR_INVALID, "%s: checkpoint path too long for a %zu-byte buffer", dir,
                         cap);
    return IG_OK;
}

/* The step of a committed directory named as step_path names it
 * ("step_00000100"), or -1 for any other name. */
static int64_t committed_step(const char *dir, const char *name) {
    if (strncmp(name, "step_", 5) != 0) return -1;
    size_t n = strspn(name + 5, "0123456789");
    if (n < 8 || n > 18 || name[5 + n] || (n > 8 && name[5] == '0')) return -1;
    char p[4096];
    struct stat sb;
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p || stat(p, &sb) != 0 ||
        !S_ISDIR(sb.st_mode))
        return -1;
    return strtoll(name + 5, NULL, 10);
}

/* The committed steps of dir, in *steps (malloc'd), count returned; -1 when
 * dir cannot be read. */
static int list_steps(const char *dir, int64_t **steps) {
    DIR *d = opendir(dir);
    *steps = NULL;
    if (!d) {
        ig__error(IG_ERR_IO, "%s: cannot open checkpoint directory: %s", dir, strerror(errno));
        return -1;
    }
    int n = 0, cap = 0;
    for (struct dirent *de; (de = readdir(d));) {
        int64_t s = committed_step(dir, de->d_name);
        if (s < 0) continue;
        if (n == cap) {
            int64_t *p = realloc(*steps, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *p);
            if (!p) {
                closedir(d);
                ig__error(IG_ERR_NOMEM, "%s: no memory to list checkpoints", dir);
                return -1;
            }
            *steps = p;
        }
        (*steps)[n++] = s;
    }
    closedir(d);
    return n;
}

static int descending(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

ig_status ig_ckpt_latest(const char *dir, char *out, size_t cap, int64_t *step) {
    int64_t *steps;
    int n = list_steps(dir, &steps);
    if (n < 0) return ig_last_status();
    int64_t best = -1;
    for (int i = 0; i < n; i++)
        if (steps[i] > best) best = steps[i];
    free(steps);
    if (best < 0) return ig__error(IG_ERR_IO, "%s: no committed checkpoint (step_NNNNNNNN)", dir);
    ig_status st = step_path(out, cap, dir, "", best);
    if (st == IG_OK && step) *step = best;
    return st;
}

ig_status ig_ckpt_begin(const char *dir, int64_t step, char *out, size_t cap) {
    ig_status st = step_path(out, cap, dir, ".tmp_", step);
    if (st == IG_OK) st = make_dirs(dir);
    if (st == IG_OK) st = remove_tree(out);
    if (st == IG_OK && mkdir(out, 0777) != 0)
        st = ig__error(IG_ERR_IO, "%s: cannot create directory: %s", out, strerror(errno));
    return st;
}

ig_status ig_ckpt_commit(const char *dir, int64_t step, int keep) {
    char tmp[4096], final[4096];
    ig_status st = step_path(tmp, sizeof tmp, dir, ".tmp_", step);
    if (st == IG_OK) st = step_path(final, sizeof final, dir, "", step);
    if (st != IG_OK) return st;
    struct stat sb;
    if (stat(tmp, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ig__error(IG_ERR_STATE, "%s: no checkpoint begun for step %" PRId64
                         " (ig_ckpt_begin)", tmp, step);
    int r = nftw(tmp, sync_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (r > 0) return IG_ERR_IO; /* sync_entry has said which file */
    if (r < 0) return ig__error(IG_ERR_IO, "%s: cannot walk: %s", tmp, strerror(errno));
    /* a step committed before (a rerun from an older checkpoint) is replaced */
    if ((st = remove_tree(final)) != IG_OK) return st;
    if (rename(tmp, final) != 0)
        return ig__error(IG_ERR_IO, "%s: cannot rename %s to it: %s", final, tmp, strerror(errno));
    if ((st = ig__fsync_path(dir)) != IG_OK || keep <= 0) return st;

    int64_t *steps;
    int n = list_steps(dir, &steps);
    if (n < 0) return ig_last_status();
    qsort(steps, (size_t)n, sizeof *steps, descending);
    for (int i = keep; i < n && st == IG_OK; i++)
        if ((st = step_path(tmp, sizeof tmp, dir, "", steps[i])) == IG_OK) st = remove_tree(tmp);
    free(steps);
    return st;
}

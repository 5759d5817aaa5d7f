/* sharding/ckpt_sharded.c: sharded checkpoints (ignis/dckpt.h, which gives
 * the format).
 *
 * Saving. Every rank computes the whole layout without communication: a
 * tensor of n elements is split as rank r's [r n / W, (r+1) n / W), and rank
 * r's file holds its parts in tensor order, so a chunk's byte offset is the
 * sum of that rank's earlier parts (empty parts get no chunk). A save is four
 * steps, each ended by a status exchange over the group (an all-reduce MAX of
 * (rank + 1, status): the barrier and the news of any failure at once): rank
 * 0 begins the temporary directory; every rank writes and fsyncs its file;
 * rank 0 writes metadata.json and state.json and commits; all learn the
 * commit's status. A failure anywhere makes every rank return it, and then
 * nothing is committed (a temporary directory may stay; it is never read).
 *
 * The async writer copies this rank's parts to host memory it owns, then runs
 * the same save on its own thread over its own subgroup of all ranks (made at
 * ig_dckpt_writer_new): a group's collectives are issued by one thread, and
 * two threads issuing on one group could interleave differently on different
 * ranks, so the writer never touches the training group.
 *
 * Loading. ig_dckpt_open checks metadata.json field by field, every chunk
 * against the size of its data file (stat), and that each tensor's chunks
 * tile its elements exactly; so every later read stays inside the files. A
 * read preads the overlapping part of each chunk. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/impl.h"
#include "sharding/dckpt_impl.h"

#define FORMAT_NAME "ignis-dckpt"
#define FORMAT_VERSION 1
#define MAX_FILES (1 << 20) /* rank files a checkpoint may name */

/* The safetensors names of our dtypes, in ig_dtype order. */
static const char *const dtype_names[IG_DTYPE_COUNT] = {"F32", "F64", "BF16", "F16",
                                                        "I32", "I64", "U8",   "U16"};

/* Rank r's first element of n elements split over w ranks. */
static int64_t split(int64_t n, int r, int w) { return (int64_t)((__int128)n * r / w); }

static ig_status failed(void) {
    return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_INVALID;
}

static ig_status join(char *out, size_t cap, const char *dir, const char *name) {
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap)
        return ig__error(IG_ERR_INVALID, "%s: path too long", dir);
    return IG_OK;
}

static void rank_file(char out[32], int r) { snprintf(out, 32, "rank_%05d.bin", r); }

/* ---- saving ---- */

/* A tensor to save: its global description and where its bytes come from. */
typedef struct src {
    const char *name;
    ig_dtype dtype;
    int ndim;
    int64_t shape[IG_MAX_DIMS];
    int64_t numel;
    ig_tensor *t;     /* the tensor (any device and layout), or */
    const char *part; /* this rank's part, already on the host (async) */
} src;

static ig_status make_srcs(int n, const char *const *names, ig_tensor *const *tensors, src *s) {
    for (int i = 0; i < n; i++) {
        IG_CHECK(names[i], "dckpt_save: tensor %d has no name", i);
        for (int j = 0; j < i; j++)
            IG_CHECK(strcmp(names[i], names[j]),
                     "dckpt_save: name '%s' is repeated (tensors %d and %d)", names[i], j, i);
        ig_tensor *t = tensors[i];
        if (!t)
            return ig__error(failed(), "dckpt_save: tensor '%s' is NULL (a failed op?)", names[i]);
        s[i] = (src){names[i], t->dtype, t->ndim, {0}, t->numel, t, NULL};
        memcpy(s[i].shape, t->shape, sizeof s[i].shape);
    }
    return IG_OK;
}

/* Elements [start, start + count) of t, flattened, into host memory dst. */
static ig_status copy_part(ig_tensor *t, int64_t start, int64_t count, void *dst) {
    if (!count) return IG_OK;
    bool grad = ig_grad_set_enabled(false);
    ig_scope *sc = ig_scope_begin();
    ig_tensor *part = ig_narrow(ig_flatten(ig_contiguous(t)), 0, start, count);
    ig_status st = part ? ig_tensor_to_host(part, dst) : failed();
    ig_scope_end(sc);
    ig_grad_set_enabled(grad);
    return st;
}

static ig_status write_all(int fd, const void *p, size_t n, const char *path) {
    for (const char *c = p; n;) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return ig__error(IG_ERR_IO, "%s: write failed: %s", path,
                             k < 0 ? strerror(errno) : "no progress");
        c += k;
        n -= (size_t)k;
    }
    return IG_OK;
}

static ig_status open_new(const char *path, int *fd) {
    *fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    return *fd < 0 ? ig__error(IG_ERR_IO, "%s: cannot create: %s", path, strerror(errno)) : IG_OK;
}

/* fsyncs (when st is IG_OK) and closes fd; returns the first failure. */
static ig_status close_synced(int fd, const char *path, ig_status st) {
    if (st == IG_OK && fsync(fd) != 0)
        st = ig__error(IG_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == IG_OK)
        st = ig__error(IG_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    return st;
}

static ig_status write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    int fd;
    ig_status st = join(path, sizeof path, dir, name);
    if (st == IG_OK) st = open_new(path, &fd);
    return st != IG_OK ? st : close_synced(fd, path, write_all(fd, text, strlen(text), path));
}

/* tmp/rank_r.bin: rank r's part of every tensor, in order; fsynced. */
static ig_status write_rank_file(const char *tmp, int r, int world, int n, const src *s) {
    char name[32], path[4096];
    int fd;
    rank_file(name, r);
    ig_status st = join(path, sizeof path, tmp, name);
    if (st == IG_OK) st = open_new(path, &fd);
    if (st != IG_OK) return st;
    for (int i = 0; i < n && st == IG_OK; i++) {
        size_t es = ig_dtype_size(s[i].dtype);
        int64_t start = split(s[i].numel, r, world);
        int64_t count = split(s[i].numel, r + 1, world) - start;
        size_t bytes = (size_t)count * es;
        ig_tensor *t = s[i].t;
        if (s[i].part) {
            st = write_all(fd, s[i].part, bytes, path);
        } else if (t->device.kind == IG_DEV_CPU && ig_tensor_is_contiguous(t)) {
            st = write_all(fd, (const char *)ig_tensor_data(t) + start * (int64_t)es, bytes, path);
        } else {
            void *buf = malloc(bytes ? bytes : 1);
            st = buf ? copy_part(t, start, count, buf)
                     : ig__error(IG_ERR_NOMEM, "%s: no memory to stage %zu bytes", path, bytes);
            if (st == IG_OK) st = write_all(fd, buf, bytes, path);
            free(buf);
        }
    }
    return close_synced(fd, path, st);
}

/* tmp/metadata.json (the layout of every rank's file) and tmp/state.json. */
static ig_status write_metadata(const char *tmp, int64_t step, int world, int n, const src *s,
                                const char *state) {
    int64_t *at = calloc((size_t)world, sizeof *at); /* bytes so far in each rank's file */
    json_t *root = json_object(), *tensors = json_object();
    ig_status st = IG_OK;
    if (!at || !root || !tensors || json_object_set_new(root, "format", json_string(FORMAT_NAME)) ||
        json_object_set_new(root, "version", json_integer(FORMAT_VERSION)) ||
        json_object_set_new(root, "step", json_integer(step)) ||
        json_object_set_new(root, "world", json_integer(world)) ||
        json_object_set(root, "tensors", tensors))
        st = ig__error(IG_ERR_NOMEM, "%s: no memory for metadata.json", tmp);
    for (int i = 0; i < n && st == IG_OK; i++) {
        size_t es = ig_dtype_size(s[i].dtype);
        json_t *shape = json_array(), *chunks = json_array();
        for (int d = 0; d < s[i].ndim; d++)
            json_array_append_new(shape, json_integer(s[i].shape[d]));
        for (int r = 0; r < world; r++) {
            int64_t start = split(s[i].numel, r, world);
            int64_t bytes = (split(s[i].numel, r + 1, world) - start) * (int64_t)es;
            if (!bytes) continue;
            char file[32];
            rank_file(file, r);
            json_array_append_new(chunks, json_pack("{s:s, s:I, s:I, s:I}", "file", file, "offset",
                                                    (json_int_t)at[r], "length", (json_int_t)bytes,
                                                    "start", (json_int_t)start));
            at[r] += bytes;
        }
        json_t *e = json_pack("{s:s, s:o, s:o}", "dtype", dtype_names[s[i].dtype], "shape", shape,
                              "chunks", chunks);
        if (!e || json_object_set_new(tensors, s[i].name, e))
            st = ig__error(IG_ERR_INVALID, "%s: tensor name '%s' is not valid UTF-8", tmp,
                           s[i].name);
    }
    char *text = st == IG_OK ? json_dumps(root, JSON_COMPACT) : NULL;
    if (st == IG_OK && !text) st = ig__error(IG_ERR_NOMEM, "%s: no memory for metadata.json", tmp);
    if (st == IG_OK) st = write_text(tmp, "metadata.json", text);
    if (st == IG_OK && state) st = write_text(tmp, "state.json", state);
    free(text);
    json_decref(tensors);
    json_decref(root);
    free(at);
    return st;
}

/* Ends a step of a save: every rank learns whether any rank failed. Returns
 * st, or else the failure of the highest failing rank (its status code). The
 * number is a host tensor (an NCCL group sends those through MPI). */
static ig_status agree(ig_pg *pg, ig_status st, const char *dir, int64_t step) {
    if (!pg) return st;
    float v = st == IG_OK ? 0.f : (float)((ig_pg_rank(pg) + 1) * IG_STATUS_COUNT + st);
    ig_scope *sc = ig_scope_begin();
    ig_tensor *t = ig_from_data(&v, IG_SHAPE(1), IG_F32, IG_CPU);
    ig_status cs = t ? ig_pg_all_reduce(pg, t, IG_REDUCE_MAX, NULL) : failed();
    int64_t got = cs == IG_OK ? (int64_t)ig_tensor_item(t) : 0;
    ig_scope_end(sc);
    if (cs != IG_OK) return cs;
    if (st == IG_OK && got > 0)
        st =
            ig__error((ig_status)(got % IG_STATUS_COUNT),
                      "%s: the checkpoint of step %" PRId64 " failed on rank %d (its log says why)",
                      dir, step, (int)(got / IG_STATUS_COUNT) - 1);
    return st;
}

/* The save of a world-rank checkpoint: with a group, this process writes its
 * rank's file; without one, every rank's file. st: a failure before it began. */
static ig_status save(ig_pg *pg, int world, const char *dir, int64_t step, int n, const src *s,
                      ig_status st, const char *state, int keep) {
    IG_CHECK(step >= 0, "dckpt_save: step %" PRId64 " is negative (%s)", step, dir);
    int rank = pg ? ig_pg_rank(pg) : 0;
    char tmp[4096];
    if (st == IG_OK && rank == 0) st = ig_ckpt_begin(dir, step, tmp, sizeof tmp);
    /* the others name it as ig_ckpt_begin does */
    if (st == IG_OK && rank != 0 &&
        (size_t)snprintf(tmp, sizeof tmp, "%s/.tmp_step_%08" PRId64, dir, step) >= sizeof tmp)
        st = ig__error(IG_ERR_INVALID, "%s: path too long", dir);
    if ((st = agree(pg, st, dir, step)) != IG_OK) return st;
    for (int r = pg ? rank : 0; r < (pg ? rank + 1 : world) && st == IG_OK; r++)
        st = write_rank_file(tmp, r, world, n, s);
    if ((st = agree(pg, st, dir, step)) != IG_OK) return st;
    if (rank == 0) {
        st = write_metadata(tmp, step, world, n, s, state);
        if (st == IG_OK) st = ig_ckpt_commit(dir, step, keep);
    }
    return agree(pg, st, dir, step);
}

static ig_status save_sync(ig_pg *pg, int world, const char *dir, int64_t step, int n,
                           const char *const *names, ig_tensor *const *tensors,
                           const char *state_json, int keep) {
    IG_CHECK(dir && n >= 0 && (n == 0 || (names && tensors)),
             "dckpt_save: bad arguments (dir %s, %d tensors)", dir ? dir : "NULL", n);
    src *s = calloc(n ? (size_t)n : 1, sizeof *s);
    ig_status st = s ? make_srcs(n, names, tensors, s)
                     : ig__error(IG_ERR_NOMEM, "%s: no memory for %d tensors", dir, n);
    st = save(pg, world, dir, step, n, s, st, state_json, keep);
    free(s);
    return st;
}

ig_status ig_dckpt_save(ig_pg *pg, const char *dir, int64_t step, int n, const char *const *names,
                        ig_tensor *const *tensors, const char *state_json, int keep) {
    return save_sync(pg, pg ? ig_pg_size(pg) : 1, dir, step, n, names, tensors, state_json, keep);
}

ig_status ig__dckpt_save_as(const char *dir, int64_t step, int world, int n,
                            const char *const *names, ig_tensor *const *tensors,
                            const char *state_json, int keep) {
    IG_CHECK(world >= 1, "dckpt_save_as: world %d must be at least 1", world);
    return save_sync(NULL, world, dir, step, n, names, tensors, state_json, keep);
}

/* ---- the async writer ---- */

struct ig_dckpt_writer {
    ig_pg *pg;     /* the writer's own group of all ranks; NULL: one process */
    bool busy;     /* a save to collect with ig_dckpt_wait */
    bool threaded; /* ... on `thread` (else it ran inline) */
    pthread_t thread;
    /* the save in flight, owned */
    char *dir, *state, *names, *parts;
    src *s;
    int n, keep;
    int64_t step;
    ig_status st; /* before the save: the snapshot's; after: the save's */
    char err[1024];
};

ig_dckpt_writer *ig_dckpt_writer_new(ig_pg *pg) {
    ig_pg *sub = NULL;
    if (pg) {
        int size = ig_pg_size(pg);
        int *ranks = malloc((size_t)size * sizeof *ranks);
        if (!ranks) {
            ig__error(IG_ERR_NOMEM, "dckpt_writer_new: no memory for %d ranks", size);
            return NULL;
        }
        for (int r = 0; r < size; r++) ranks[r] = r;
        ig_status st = ig_pg_new_subgroup(pg, size, ranks, &sub);
        free(ranks);
        if (st != IG_OK) return NULL;
    }
    ig_dckpt_writer *w = calloc(1, sizeof *w);
    if (!w) {
        ig_pg_free(sub);
        ig__error(IG_ERR_NOMEM, "dckpt_writer_new: no memory");
        return NULL;
    }
    w->pg = sub;
    return w;
}

static void *writer_main(void *arg) {
    ig_dckpt_writer *w = arg;
    ig_status before = w->st; /* its message is in err already */
    w->st = save(w->pg, w->pg ? ig_pg_size(w->pg) : 1, w->dir, w->step, w->n, w->s, before,
                 w->state, w->keep);
    if (before == IG_OK && w->st != IG_OK) snprintf(w->err, sizeof w->err, "%s", ig_last_error());
    if (w->threaded) { /* this thread's free lists die with it */
        ig__tensor_pool_drain();
        ig__storage_pool_drain();
        ig__scope_pool_drain();
    }
    return NULL;
}

/* Copies this rank's part of every tensor (and the names, dir, state) into
 * memory the writer owns. */
static ig_status snapshot(ig_dckpt_writer *w, const char *dir, const char *const *names,
                          ig_tensor *const *tensors, const char *state) {
    int n = w->n, rank = w->pg ? ig_pg_rank(w->pg) : 0, world = w->pg ? ig_pg_size(w->pg) : 1;
    w->s = calloc(n ? (size_t)n : 1, sizeof *w->s);
    if (!w->s) return ig__error(IG_ERR_NOMEM, "%s: no memory for %d tensors", dir, n);
    ig_status st = make_srcs(n, names, tensors, w->s);
    size_t name_bytes = 0, part_bytes = 0;
    for (int i = 0; i < n && st == IG_OK; i++) {
        name_bytes += strlen(names[i]) + 1;
        int64_t count = split(w->s[i].numel, rank + 1, world) - split(w->s[i].numel, rank, world);
        part_bytes += (size_t)count * ig_dtype_size(w->s[i].dtype);
    }
    if (st != IG_OK) return st;
    w->dir = strdup(dir);
    w->state = state ? strdup(state) : NULL;
    w->names = malloc(name_bytes + 1);
    w->parts = malloc(part_bytes + 1);
    if (!w->dir || (state && !w->state) || !w->names || !w->parts)
        return ig__error(IG_ERR_NOMEM, "%s: no memory to snapshot %zu bytes", dir, part_bytes);
    char *name = w->names, *part = w->parts;
    for (int i = 0; i < n && st == IG_OK; i++) {
        src *s = &w->s[i];
        int64_t start = split(s->numel, rank, world),
                count = split(s->numel, rank + 1, world) - start;
        st = copy_part(s->t, start, count, part);
        s->name = strcpy(name, names[i]);
        s->part = part;
        s->t = NULL;
        name += strlen(name) + 1;
        part += (size_t)count * ig_dtype_size(s->dtype);
    }
    return st;
}

static void forget_job(ig_dckpt_writer *w) {
    free(w->dir);
    free(w->state);
    free(w->names);
    free(w->parts);
    free(w->s);
    w->dir = w->state = w->names = w->parts = NULL;
    w->s = NULL;
}

ig_status ig_dckpt_save_async(ig_dckpt_writer *w, const char *dir, int64_t step, int n,
                              const char *const *names, ig_tensor *const *tensors,
                              const char *state_json, int keep) {
    IG_CHECK(w && dir && n >= 0 && (n == 0 || (names && tensors)) && step >= 0,
             "dckpt_save_async: bad arguments (dir %s, step %" PRId64 ", %d tensors)",
             dir ? dir : "NULL", step, n);
    ig_status st = ig_dckpt_wait(w);
    if (st != IG_OK) return st;
    w->n = n;
    w->step = step;
    w->keep = keep;
    /* a failed snapshot still runs the save: the other ranks learn of it */
    w->st = snapshot(w, dir, names, tensors, state_json);
    if (w->st != IG_OK) snprintf(w->err, sizeof w->err, "%s", ig_last_error());
    if (!w->dir) w->dir = strdup(dir); /* for the messages; NULL is fine too */
    w->busy = true;
    w->threaded = true;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        w->threaded = false; /* no thread: save now, on this one */
        writer_main(w);
    }
    return IG_OK;
}

ig_status ig_dckpt_wait(ig_dckpt_writer *w) {
    if (!w->busy) return IG_OK;
    if (w->threaded) pthread_join(w->thread, NULL);
    w->busy = false;
    forget_job(w);
    return w->st == IG_OK ? IG_OK : ig__error(w->st, "%s", w->err);
}

void ig_dckpt_writer_free(ig_dckpt_writer *w) {
    if (!w) return;
    ig_dckpt_wait(w);
    ig_pg_free(w->pg);
    free(w);
}

/* ---- loading ---- */

typedef struct chunk {
    int file;             /* its rank number */
    int index;            /* in metadata.json */
    int64_t offset;       /* bytes, in the file */
    int64_t start, count; /* elements of the flattened tensor */
} chunk;

typedef struct dtensor {
    const char *name; /* a key of root */
    ig_dtype dtype;
    int ndim;
    int64_t shape[IG_MAX_DIMS];
    int64_t numel;
    int nchunks;
    chunk *chunks; /* sorted by start: they tile [0, numel) */
} dtensor;

struct ig_dckpt {
    char *dir;
    json_t *root; /* metadata.json: owns the names */
    char *state;
    int n;
    dtensor *t;
    int nsizes;
    int64_t *sizes; /* bytes of rank_N.bin by N; -1: not looked at */
};

/* "<dir>/metadata.json[: tensor '<name>'][: chunk <k>]: ..." */
static ig_status bad(const ig_dckpt *c, const char *name, int k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ig_status bad(const ig_dckpt *c, const char *name, int k, const char *fmt, ...) {
    char msg[512], where[384] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (name && k >= 0)
        snprintf(where, sizeof where, ": tensor '%s': chunk %d", name, k);
    else if (name)
        snprintf(where, sizeof where, ": tensor '%s'", name);
    return ig__error(IG_ERR_FORMAT, "%s/metadata.json%s: %s", c->dir, where, msg);
}

/* A JSON value as text, for "got ...". */
static const char *jdesc(const json_t *v, char *buf, size_t cap) {
    if (!v) return "nothing";
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, cap, "%.60s%s", t ? t : "?", t && strlen(t) > 60 ? "..." : "");
    free(t);
    return buf;
}

/* A non-negative integer, or -1. */
static int64_t jcount(const json_t *v) {
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
}

/* The rank of a data file name exactly as rank_file writes it, or -1. */
static int rank_of(const char *name) {
    size_t d = strncmp(name, "rank_", 5) ? 0 : strspn(name + 5, "0123456789");
    if (d < 5 || d > 7 || strcmp(name + 5 + d, ".bin")) return -1;
    int r = atoi(name + 5);
    char canon[32];
    rank_file(canon, r);
    return r < MAX_FILES && !strcmp(canon, name) ? r : -1;
}

/* The size of rank_r.bin (stat once), or -1 with errno. */
static int64_t file_size(ig_dckpt *c, int r) {
    if (r >= c->nsizes) {
        int64_t *p = realloc(c->sizes, (size_t)(r + 1) * sizeof *p);
        if (!p) {
            errno = ENOMEM;
            return -1;
        }
        for (int i = c->nsizes; i <= r; i++) p[i] = -1;
        c->sizes = p;
        c->nsizes = r + 1;
    }
    if (c->sizes[r] < 0) {
        char name[32], path[4096];
        struct stat sb;
        rank_file(name, r);
        if (join(path, sizeof path, c->dir, name) != IG_OK) return -1;
        if (stat(path, &sb) != 0) return -1;
        if (!S_ISREG(sb.st_mode)) {
            errno = EISDIR;
            return -1;
        }
        c->sizes[r] = sb.st_size;
    }
    return c->sizes[r];
}

static ig_status parse_chunk(ig_dckpt *c, const dtensor *t, int k, const json_t *v, chunk *ck) {
    char g[80];
    if (!json_is_object(v))
        return bad(c, t->name, k, "expected an object {file, offset, length, start}, got %s",
                   jdesc(v, g, sizeof g));
    const json_t *file = json_object_get(v, "file");
    ck->index = k;
    ck->file = json_is_string(file) ? rank_of(json_string_value(file)) : -1;
    if (ck->file < 0)
        return bad(c, t->name, k,
                   "file: expected a data file name rank_NNNNN.bin (in the directory), got %s",
                   jdesc(file, g, sizeof g));
    const char *fname = json_string_value(file);
    static const char *const keys[3] = {"offset", "length", "start"};
    int64_t val[3];
    for (int i = 0; i < 3; i++)
        if ((val[i] = jcount(json_object_get(v, keys[i]))) < 0)
            return bad(c, t->name, k, "%s: expected a non-negative integer, got %s", keys[i],
                       jdesc(json_object_get(v, keys[i]), g, sizeof g));
    int64_t es = (int64_t)ig_dtype_size(t->dtype), length = val[1];
    ck->offset = val[0];
    ck->start = val[2];
    ck->count = length / es;
    if (length % es)
        return bad(c, t->name, k, "length: expected a multiple of %lld bytes (%s), got %lld",
                   (long long)es, dtype_names[t->dtype], (long long)length);
    if (ck->start > t->numel || ck->count > t->numel - ck->start)
        return bad(c, t->name, k, "elements [%lld, %lld) lie outside the tensor's %lld",
                   (long long)ck->start, (long long)ck->start + ck->count, (long long)t->numel);
    int64_t size = file_size(c, ck->file);
    if (size < 0)
        return bad(c, t->name, k, "data file %s/%s: cannot stat: %s", c->dir, fname,
                   strerror(errno));
    if (ck->offset > size || length > size - ck->offset)
        return bad(
            c, t->name, k, "bytes [%lld, %lld) lie past the end of %s/%s (%lld bytes): truncated?",
            (long long)ck->offset, (long long)ck->offset + length, c->dir, fname, (long long)size);
    return IG_OK;
}

static int by_start(const void *pa, const void *pb) {
    const chunk *a = pa, *b = pb;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return (a->count > b->count) - (a->count < b->count);
}

static ig_status parse_tensor(ig_dckpt *c, const char *name, const json_t *v, dtensor *t) {
    char g[80];
    t->name = name;
    if (!json_is_object(v))
        return bad(c, name, -1, "expected an object {dtype, shape, chunks}, got %s",
                   jdesc(v, g, sizeof g));
    const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
                 *ch = json_object_get(v, "chunks");
    t->dtype = IG_DTYPE_COUNT;
    for (int k = 0; k < IG_DTYPE_COUNT && json_is_string(dt); k++)
        if (!strcmp(json_string_value(dt), dtype_names[k])) t->dtype = (ig_dtype)k;
    if (t->dtype == IG_DTYPE_COUNT)
        return bad(c, name, -1,
                   "dtype: expected one of F32, F64, BF16, F16, I32, I64, U8, U16, got %s",
                   jdesc(dt, g, sizeof g));
    if (!json_is_array(sh) || json_array_size(sh) > IG_MAX_DIMS)
        return bad(c, name, -1, "shape: expected an array of at most %d sizes, got %s", IG_MAX_DIMS,
                   jdesc(sh, g, sizeof g));
    t->ndim = (int)json_array_size(sh);
    int64_t bytes = (int64_t)ig_dtype_size(t->dtype);
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        const json_t *x = json_array_get(sh, (size_t)d);
        if ((t->shape[d] = jcount(x)) < 0)
            return bad(c, name, -1, "shape[%d]: expected a non-negative integer, got %s", d,
                       jdesc(x, g, sizeof g));
        if (__builtin_mul_overflow(t->numel, t->shape[d], &t->numel) ||
            __builtin_mul_overflow(bytes, t->shape[d], &bytes))
            return bad(c, name, -1, "shape: expected fewer than 2^63 bytes, got %s",
                       jdesc(sh, g, sizeof g));
    }
    if (!json_is_array(ch))
        return bad(c, name, -1, "chunks: expected an array, got %s", jdesc(ch, g, sizeof g));
    t->nchunks = (int)json_array_size(ch);
    t->chunks = calloc(t->nchunks ? (size_t)t->nchunks : 1, sizeof *t->chunks);
    if (!t->chunks) return ig__error(IG_ERR_NOMEM, "%s: no memory for chunks", c->dir);
    for (int k = 0; k < t->nchunks; k++) {
        ig_status st = parse_chunk(c, t, k, json_array_get(ch, (size_t)k), &t->chunks[k]);
        if (st != IG_OK) return st;
    }
    qsort(t->chunks, (size_t)t->nchunks, sizeof *t->chunks, by_start);
    int64_t at = 0;
    for (int k = 0; k < t->nchunks; k++) {
        const chunk *ck = &t->chunks[k];
        if (ck->start > at)
            return bad(c, name, ck->index, "elements [%lld, %lld) before it are in no chunk",
                       (long long)at, (long long)ck->start);
        if (ck->start < at)
            return bad(c, name, ck->index, "elements [%lld, %lld) are in another chunk too",
                       (long long)ck->start,
                       (long long)(at < ck->start + ck->count ? at : ck->start + ck->count));
        at += ck->count;
    }
    if (at != t->numel)
        return bad(c, name, -1, "chunks: elements [%lld, %lld) of %lld are in no chunk",
                   (long long)at, (long long)t->numel, (long long)t->numel);
    return IG_OK;
}

static ig_status parse_metadata(ig_dckpt *c) {
    char path[4096], g[80];
    json_error_t je;
    ig_status st = join(path, sizeof path, c->dir, "metadata.json");
    if (st != IG_OK) return st;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return ig__error(IG_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    if (!(c->root = json_load_file(path, JSON_REJECT_DUPLICATES, &je)))
        return bad(c, NULL, -1, "invalid JSON (line %d, column %d: %s)", je.line, je.column,
                   je.text);
    const json_t *r = c->root, *format = json_object_get(r, "format"),
                 *version = json_object_get(r, "version"), *tensors = json_object_get(r, "tensors");
    if (!json_is_object(r))
        return bad(c, NULL, -1, "expected an object, got %s", jdesc(r, g, sizeof g));
    if (!json_is_string(format) || strcmp(json_string_value(format), FORMAT_NAME))
        return bad(c, NULL, -1, "format: expected \"%s\", got %s", FORMAT_NAME,
                   jdesc(format, g, sizeof g));
    if (!json_is_integer(version) || json_integer_value(version) != FORMAT_VERSION)
        return bad(c, NULL, -1, "version: expected %d, got %s", FORMAT_VERSION,
                   jdesc(version, g, sizeof g));
    if (jcount(json_object_get(r, "step")) < 0)
        return bad(c, NULL, -1, "step: expected a non-negative integer, got %s",
                   jdesc(json_object_get(r, "step"), g, sizeof g));
    if (jcount(json_object_get(r, "world")) < 1)
        return bad(c, NULL, -1, "world: expected a positive integer, got %s",
                   jdesc(json_object_get(r, "world"), g, sizeof g));
    if (!json_is_object(tensors))
        return bad(c, NULL, -1, "tensors: expected an object, got %s", jdesc(tensors, g, sizeof g));
    size_t n = json_object_size(tensors);
    if (!(c->t = calloc(n ? n : 1, sizeof *c->t)))
        return ig__error(IG_ERR_NOMEM, "%s: no memory for %zu tensors", path, n);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tensors, k, v) {
        if ((st = parse_tensor(c, k, v, &c->t[c->n++])) != IG_OK) return st;
    }
    return IG_OK;
}

/* state.json's text, "" when there is none. */
static ig_status read_state(ig_dckpt *c) {
    char path[4096];
    ig_status st = join(path, sizeof path, c->dir, "state.json");
    if (st != IG_OK) return st;
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT)
        return (c->state = strdup("")) ? IG_OK : ig__error(IG_ERR_NOMEM, "no memory");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (c->state = malloc((size_t)n + 1)) && fread(c->state, 1, (size_t)n, f) == (size_t)n)
        c->state[n] = 0;
    else
        st = ig__error(IG_ERR_IO, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
    if (f) fclose(f);
    return st;
}

void ig_dckpt_close(ig_dckpt *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->t[i].chunks);
    free(c->t);
    free(c->sizes);
    free(c->state);
    json_decref(c->root);
    free(c->dir);
    free(c);
}

ig_status ig_dckpt_open(const char *stepdir, ig_dckpt **out) {
    IG_CHECK(stepdir && out, "dckpt_open: stepdir and out must not be NULL");
    *out = NULL;
    ig_dckpt *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(stepdir))) {
        free(c);
        return ig__error(IG_ERR_NOMEM, "%s: no memory", stepdir);
    }
    ig_status st = parse_metadata(c);
    if (st == IG_OK) st = read_state(c);
    if (st != IG_OK) {
        ig_dckpt_close(c);
        return st;
    }
    *out = c;
    return IG_OK;
}

int ig_dckpt_count(const ig_dckpt *c) { return c->n; }

const char *ig_dckpt_name(const ig_dckpt *c, int i) {
    IG_CHECK(i >= 0 && i < c->n, "dckpt_name: index %d out of [0, %d) in %s", i, c->n, c->dir);
    return c->t[i].name;
}

const char *ig_dckpt_state(const ig_dckpt *c) { return c->state; }

static const dtensor *find(const ig_dckpt *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->t[i].name, name)) return &c->t[i];
    ig__error(IG_ERR_INVALID, "%s: no tensor '%s' in the checkpoint", c->dir, name);
    return NULL;
}

/* n bytes at off of rank_r.bin into dst. */
static ig_status pread_file(const ig_dckpt *c, int r, char *dst, size_t n, int64_t off) {
    char name[32], path[4096];
    rank_file(name, r);
    ig_status st = join(path, sizeof path, c->dir, name);
    int fd = st == IG_OK ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (st == IG_OK && fd < 0)
        st = ig__error(IG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    while (st == IG_OK && n) {
        ssize_t k = pread(fd, dst, n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            st = ig__error(IG_ERR_IO, "%s: cannot read %zu bytes at %lld: %s", path, n,
                           (long long)off, k < 0 ? strerror(errno) : "the file has shrunk");
        else
            dst += k, n -= (size_t)k, off += k;
    }
    if (fd >= 0) close(fd);
    return st;
}

ig_status ig_dckpt_read_range(const ig_dckpt *c, const char *name, int64_t offset, ig_tensor *dst) {
    IG_CHECK(c && name, "dckpt_read_range: checkpoint and name must not be NULL");
    if (!dst) return failed();
    const dtensor *t = find(c, name);
    if (!t) return IG_ERR_INVALID;
    int64_t m = dst->numel;
    if (dst->dtype != t->dtype)
        return ig__error(IG_ERR_INVALID,
                         "%s: tensor '%s': dtype: expected %s (the destination %s), got %s", c->dir,
                         name, dtype_names[dst->dtype], ig__describe(dst), dtype_names[t->dtype]);
    if (offset < 0 || offset > t->numel || m > t->numel - offset)
        return ig__error(IG_ERR_INVALID,
                         "%s: tensor '%s': elements [%lld, %lld) requested (into %s), it has %lld",
                         c->dir, name, (long long)offset, (long long)(offset + m),
                         ig__describe(dst), (long long)t->numel);
    /* straight into dst when it is host memory in order, else through the host */
    bool direct = dst->device.kind == IG_DEV_CPU && ig_tensor_is_contiguous(dst);
    ig_scope *sc = direct ? NULL : ig_scope_begin();
    ig_tensor *h = direct ? dst : ig_empty(dst->ndim, dst->shape, dst->dtype, IG_CPU);
    ig_status st = h ? IG_OK : failed();
    size_t es = ig_dtype_size(t->dtype);
    for (int k = 0; k < t->nchunks && st == IG_OK; k++) {
        const chunk *ck = &t->chunks[k];
        int64_t lo = ck->start > offset ? ck->start : offset;
        int64_t hi = ck->start + ck->count < offset + m ? ck->start + ck->count : offset + m;
        if (ck->start >= offset + m) break;
        if (lo < hi)
            st = pread_file(c, ck->file, (char *)ig_tensor_data(h) + (lo - offset) * (int64_t)es,
                            (size_t)(hi - lo) * es, ck->offset + (lo - ck->start) * (int64_t)es);
    }
    if (!direct) {
        if (st == IG_OK) st = ig_copy_(dst, h);
        ig_scope_end(sc);
    }
    return st;
}

ig_status ig_dckpt_read(const ig_dckpt *c, const char *name, ig_tensor *dst) {
    IG_CHECK(c && name, "dckpt_read: checkpoint and name must not be NULL");
    if (!dst) return failed();
    const dtensor *t = find(c, name);
    if (!t) return IG_ERR_INVALID;
    bool same = t->ndim == dst->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == dst->shape[d];
    if (!same) {
        char s[256];
        size_t k = (size_t)snprintf(s, sizeof s, "[");
        for (int d = 0; d < t->ndim && k < sizeof s; d++)
            k += (size_t)snprintf(s + k, sizeof s - k, "%s%lld", d ? ", " : "",
                                  (long long)t->shape[d]);
        if (k < sizeof s) snprintf(s + k, sizeof s - k, "]");
        return ig__error(IG_ERR_INVALID,
                         "%s: tensor '%s': shape: expected %s (the destination), got %s", c->dir,
                         name, ig__describe(dst), s);
    }
    return ig_dckpt_read_range(c, name, 0, dst);
}

ig_status ig_dckpt_export(const char *stepdir, const char *prefix, const char *out_path) {
    IG_CHECK(stepdir && prefix && out_path, "dckpt_export: arguments must not be NULL");
    ig_dckpt *c;
    ig_status st = ig_dckpt_open(stepdir, &c);
    if (st != IG_OK) return st;
    size_t plen = strlen(prefix);
    const char **names = calloc(c->n ? (size_t)c->n : 1, sizeof *names);
    ig_tensor **tensors = calloc(c->n ? (size_t)c->n : 1, sizeof *tensors);
    if (!names || !tensors) st = ig__error(IG_ERR_NOMEM, "%s: no memory", stepdir);
    int k = 0;
    ig_scope *sc = ig_scope_begin();
    for (int i = 0; i < c->n && st == IG_OK; i++) {
        const dtensor *t = &c->t[i];
        if (strncmp(t->name, prefix, plen)) continue;
        if (!strcmp(t->name + plen, "__metadata__"))
            st = ig__error(IG_ERR_INVALID,
                           "%s: tensor '%s': its exported name is reserved in safetensors", stepdir,
                           t->name);
        else if (!(tensors[k] = ig_empty(t->ndim, t->shape, t->dtype, IG_CPU)))
            st = failed();
        else
            st = ig_dckpt_read(c, t->name, tensors[k]);
        names[k++] = t->name + plen;
    }
    if (st == IG_OK && k == 0)
        st = ig__error(IG_ERR_INVALID, "%s: no tensor name starts with '%s'", stepdir, prefix);
    if (st == IG_OK) st = ig_safetensors_save(out_path, k, names, tensors, NULL);
    ig_scope_end(sc);
    free(names);
    free(tensors);
    ig_dckpt_close(c);
    return st;
}

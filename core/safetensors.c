/* core/safetensors.c: reading and writing safetensors files
 * (https://github.com/huggingface/safetensors).
 *
 * Layout: u64 little-endian N, N bytes of JSON (Jansson; padded with spaces to
 * a multiple of 8 when we write), then the data buffer. Invariants of an open
 * file, all checked before ig_safetensors_open returns: the header is a JSON
 * object of tensor entries {dtype, shape, data_offsets} and an optional
 * "__metadata__" object of strings; names are unique; every dtype is one of
 * ours; end - begin == numel * dtype size; sorted by offset the tensors tile
 * the buffer exactly (no overlap, no hole, nothing after), as the reference
 * implementation requires. So every read stays inside the mapped file.
 * Entries are indexed in data order. Writes go to "<path>.tmp.<pid>", are
 * fsynced and renamed over path, so path is never half written. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ckpt_impl.h"
#include "core/impl.h"
#include "ignis/ckpt.h"

#define MAX_HEADER 100000000ull /* the reference implementation's limit */

/* The format's dtypes (the sub-byte ones aside) and their sizes; the first
 * IG_DTYPE_COUNT are ours, in ig_dtype order. A file holding the others opens,
 * only reading those tensors fails. */
#define NONE IG_DTYPE_COUNT
static const struct {
    const char *name;
    unsigned size;
    ig_dtype ig;
} formats[] = {
    {"F32", 4, IG_F32},  {"F64", 8, IG_F64},    {"BF16", 2, IG_BF16},    {"F16", 2, IG_F16},
    {"I32", 4, IG_I32},  {"I64", 8, IG_I64},    {"U8", 1, IG_U8},        {"U16", 2, IG_U16},
    {"BOOL", 1, NONE},   {"I8", 1, NONE},       {"F8_E5M2", 1, NONE},    {"F8_E4M3", 1, NONE},
    {"F8_E8M0", 1, NONE}, {"I16", 2, NONE},     {"U32", 4, NONE},        {"U64", 8, NONE},
    {"C64", 8, NONE},
};
#define NFORMATS (int)(sizeof formats / sizeof *formats)

typedef struct entry {
    const char *name; /* a key of root */
    int fmt;          /* index in formats */
    int ndim;
    int64_t shape[IG_MAX_DIMS];
    uint64_t begin, end; /* in the data buffer */
    int order;           /* position in the header: ties of the sort */
} entry;

struct ig_safetensors {
    char *path;
    void *map;
    size_t map_size;
    const unsigned char *data; /* the buffer, after the header */
    json_t *root;              /* owns names and metadata */
    json_t *meta;              /* "__metadata__" or NULL */
    int n;
    entry *e;
};

/* ---- errors ---- */

/* "<path>: tensor '<name>': ..." or "<path>: header: ..." */
static ig_status bad(const char *path, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ig_status bad(const char *path, const char *name, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (name) return ig__error(IG_ERR_FORMAT, "%s: tensor '%s': %s", path, name, msg);
    return ig__error(IG_ERR_FORMAT, "%s: header: %s", path, msg);
}

/* What a JSON value is, for "got ...": its text for scalars. */
static const char *jdesc(const json_t *v, char *buf, size_t cap) {
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: {
        char *t = json_dumps(v, JSON_COMPACT);
        snprintf(buf, cap, "%s", t ? t : "an array");
        free(t);
        return buf;
    }
    case JSON_STRING: snprintf(buf, cap, "\"%.40s\"", json_string_value(v)); return buf;
    case JSON_INTEGER: snprintf(buf, cap, "%lld", (long long)json_integer_value(v)); return buf;
    case JSON_REAL: snprintf(buf, cap, "a real %g", json_real_value(v)); return buf;
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return v ? "null" : "nothing";
    }
}

static void shape_text(int ndim, const int64_t *shape, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* ---- reading ---- */

/* A non-negative integer, or -1. */
static int64_t jcount(const json_t *v) {
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
}

static ig_status parse_entry(const char *path, const char *name, const json_t *v,
                             uint64_t buf_size, entry *e) {
    char g[64], s[256];
    if (!json_is_object(v))
        return bad(path, name, "expected an object {dtype, shape, data_offsets}, got %s",
                   jdesc(v, g, sizeof g));
    const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
                 *off = json_object_get(v, "data_offsets");
    e->name = name;
    e->fmt = -1;
    for (int t = 0; t < NFORMATS && json_is_string(dt); t++)
        if (!strcmp(json_string_value(dt), formats[t].name)) e->fmt = t;
    if (e->fmt < 0)
        return bad(path, name,
                   "dtype: expected a safetensors dtype (F32, BF16, I64, BOOL, ...), got %s",
                   jdesc(dt, g, sizeof g));

    if (!json_is_array(sh))
        return bad(path, name, "shape: expected an array of sizes, got %s", jdesc(sh, g, sizeof g));
    if (json_array_size(sh) > IG_MAX_DIMS)
        return bad(path, name, "shape: expected at most %d dimensions, got %zu", IG_MAX_DIMS,
                   json_array_size(sh));
    e->ndim = (int)json_array_size(sh);
    uint64_t nbytes = formats[e->fmt].size;
    bool overflow = false;
    for (int d = 0; d < e->ndim; d++) {
        const json_t *x = json_array_get(sh, (size_t)d);
        if ((e->shape[d] = jcount(x)) < 0)
            return bad(path, name, "shape[%d]: expected a non-negative integer, got %s", d,
                       jdesc(x, g, sizeof g));
        overflow |= __builtin_mul_overflow(nbytes, (uint64_t)e->shape[d], &nbytes);
    }
    shape_text(e->ndim, e->shape, s, sizeof s);
    if (overflow)
        return bad(path, name, "shape: expected fewer than 2^64 bytes of data, got shape %s", s);

    int64_t b = -1, en = -1;
    if (json_is_array(off) && json_array_size(off) == 2) {
        b = jcount(json_array_get(off, 0));
        en = jcount(json_array_get(off, 1));
    }
    if (b < 0 || en < 0 || b > en)
        return bad(path, name, "data_offsets: expected [begin, end] with 0 <= begin <= end, got %s",
                   jdesc(off, g, sizeof g));
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    if (e->end > buf_size)
        return bad(path, name,
                   "data_offsets: expected an end within the %llu-byte data buffer, got %llu",
                   (unsigned long long)buf_size, (unsigned long long)e->end);
    if (e->end - e->begin != nbytes)
        return bad(path, name, "data_offsets: expected %llu bytes (shape %s of %s), got %llu",
                   (unsigned long long)nbytes, s, formats[e->fmt].name,
                   (unsigned long long)(e->end - e->begin));
    return IG_OK;
}

static int by_offset(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return a->order - b->order;
}

static ig_status parse_header(ig_safetensors *f, const char *text, size_t len, uint64_t buf_size) {
    const char *path = f->path;
    char g[64];
    json_error_t je;
    f->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!f->root) /* it starts with '{': valid JSON is an object */
        return bad(path, NULL, "expected a JSON object, got invalid JSON (line %d, column %d: %s)",
                   je.line, je.column, je.text);

    f->meta = json_object_get(f->root, "__metadata__");
    if (f->meta) {
        if (!json_is_object(f->meta))
            return bad(path, NULL, "__metadata__: expected an object of strings, got %s",
                       jdesc(f->meta, g, sizeof g));
        const char *k;
        json_t *v;
        json_object_foreach(f->meta, k, v) {
            if (!json_is_string(v))
                return bad(path, NULL, "__metadata__: key '%s': expected a string, got %s", k,
                           jdesc(v, g, sizeof g));
        }
    }

    size_t n = json_object_size(f->root) - (f->meta != NULL);
    f->e = calloc(n ? n : 1, sizeof *f->e);
    if (!f->e) return ig__error(IG_ERR_NOMEM, "%s: no memory for %zu tensor entries", path, n);
    const char *k;
    json_t *v;
    json_object_foreach(f->root, k, v) {
        if (v == f->meta) continue;
        entry *e = &f->e[f->n];
        e->order = f->n++;
        ig_status st = parse_entry(path, k, v, buf_size, e);
        if (st != IG_OK) return st;
    }

    qsort(f->e, (size_t)f->n, sizeof *f->e, by_offset);
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const entry *e = &f->e[i];
        if (e->begin < at)
            return bad(path, e->name,
                       "data_offsets: expected no overlap, got [%llu, %llu] overlapping tensor "
                       "'%s' [%llu, %llu]",
                       (unsigned long long)e->begin, (unsigned long long)e->end, f->e[i - 1].name,
                       (unsigned long long)f->e[i - 1].begin, (unsigned long long)f->e[i - 1].end);
        if (e->begin > at)
            return bad(path, e->name,
                       "data_offsets: expected begin %llu (the end of the previous tensor), "
                       "got %llu (a hole)",
                       (unsigned long long)at, (unsigned long long)e->begin);
        at = e->end;
    }
    if (at != buf_size)
        return bad(path, NULL,
                   "data: expected the tensors to fill the %llu-byte data buffer, got %llu bytes",
                   (unsigned long long)buf_size, (unsigned long long)at);
    return IG_OK;
}

ig_status ig_safetensors_open(const char *path, ig_safetensors **out) {
    IG_CHECK(path && out, "safetensors_open: path and out must not be NULL");
    *out = NULL;
    ig_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return ig__error(IG_ERR_NOMEM, "%s: no memory", path);
    }
    ig_status st = IG_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        st = ig__error(IG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        st = ig__error(IG_ERR_IO, "%s: not a regular file", path);
    } else if (sb.st_size < 8) {
        st = bad(path, NULL, "size: expected at least 8 bytes, got a %lld-byte file",
                 (long long)sb.st_size);
    } else {
        f->map_size = (size_t)sb.st_size;
        f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            st = ig__error(IG_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
    }
    if (fd >= 0) close(fd);
    if (st == IG_OK) {
        const unsigned char *p = f->map;
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | p[i];
        uint64_t room = f->map_size - 8;
        if (n > MAX_HEADER || n > room)
            st = bad(path, NULL, "size: expected at most %llu bytes, got %llu",
                     (unsigned long long)(room < MAX_HEADER ? room : MAX_HEADER),
                     (unsigned long long)n);
        else if (n == 0 || p[8] != '{')
            st = bad(path, NULL, "expected a JSON object starting with '{', got %s",
                     n ? "another character" : "an empty header");
        else if ((st = parse_header(f, (const char *)p + 8, (size_t)n, room - n)) == IG_OK)
            f->data = p + 8 + n;
    }
    if (st != IG_OK) {
        ig_safetensors_close(f);
        return st;
    }
    *out = f;
    return IG_OK;
}

void ig_safetensors_close(ig_safetensors *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    json_decref(f->root);
    free(f->e);
    free(f->path);
    free(f);
}

int ig_safetensors_count(const ig_safetensors *f) { return f->n; }

const char *ig_safetensors_name(const ig_safetensors *f, int i) {
    IG_CHECK(i >= 0 && i < f->n, "safetensors_name: index %d out of [0, %d) in %s", i, f->n,
             f->path);
    return f->e[i].name;
}

int ig_safetensors_find(const ig_safetensors *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->e[i].name, name)) return i;
    return -1;
}

const char *ig_safetensors_metadata(const ig_safetensors *f, const char *key) {
    return json_string_value(json_object_get(f->meta, key)); /* NULL-safe */
}

/* The entry of name, if it exists and has one of our dtypes. */
static const entry *lookup(const ig_safetensors *f, const char *name) {
    int i = ig_safetensors_find(f, name);
    if (i < 0) {
        ig__error(IG_ERR_INVALID, "%s: no tensor '%s' in the file", f->path, name);
        return NULL;
    }
    if (formats[f->e[i].fmt].ig == NONE) {
        ig__error(IG_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s has no ignis dtype", f->path,
                  name, formats[f->e[i].fmt].name);
        return NULL;
    }
    return &f->e[i];
}

ig_tensor *ig_safetensors_get(const ig_safetensors *f, const char *name, ig_device dev) {
    const entry *e = lookup(f, name);
    return e ? ig_from_data(f->data + e->begin, e->ndim, e->shape, formats[e->fmt].ig, dev)
             : NULL;
}

ig_status ig_safetensors_read_into(const ig_safetensors *f, const char *name, ig_tensor *dst,
                                   bool convert) {
    if (!dst) return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_INVALID;
    const entry *e = lookup(f, name);
    if (!e) return ig_last_status();
    char s[256];
    shape_text(e->ndim, e->shape, s, sizeof s);
    bool same = e->ndim == dst->ndim;
    for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == dst->shape[d];
    if (!same)
        return ig__error(IG_ERR_INVALID,
                         "%s: tensor '%s': shape: expected %s (the destination), got %s", f->path,
                         name, ig__describe(dst), s);
    ig_dtype dt = formats[e->fmt].ig;
    if (dt != dst->dtype && !convert)
        return ig__error(IG_ERR_INVALID,
                         "%s: tensor '%s': dtype: expected %s (the destination %s), got %s",
                         f->path, name, formats[dst->dtype].name, ig__describe(dst),
                         formats[e->fmt].name);
    const unsigned char *src = f->data + e->begin;
    if (dst->device.kind == IG_DEV_CPU && dt == dst->dtype && ig_tensor_is_contiguous(dst)) {
        if (e->end > e->begin) memcpy(ig__ptr(dst), src, e->end - e->begin);
        return IG_OK;
    }
    ig_scope *sc = ig_scope_begin();
    ig_tensor *h = ig_from_data(src, e->ndim, e->shape, dt, IG_CPU);
    ig_status st = h ? ig_copy_(dst, h) : ig_last_status();
    ig_scope_end(sc);
    return st;
}

/* ---- writing ---- */

/* The header text: compact JSON, metadata first, then the tensors in order. */
static char *make_header(const char *path, int n, const char *const *names,
                         ig_tensor *const *tensors, const char *const *metadata, ig_status *st) {
    json_t *root = json_object();
    *st = IG_OK;
    if (metadata) {
        json_t *m = json_object();
        json_object_set_new(root, "__metadata__", m);
        for (int i = 0; metadata[i]; i += 2) {
            IG_CHECK(metadata[i + 1], "safetensors_save: metadata key '%s' has no value (%s)",
                     metadata[i], path);
            if (json_object_set_new(m, metadata[i], json_string(metadata[i + 1])))
                *st = ig__error(IG_ERR_INVALID, "%s: metadata '%s': not valid UTF-8", path,
                                metadata[i]);
        }
    }
    uint64_t at = 0;
    for (int i = 0; i < n && *st == IG_OK; i++) {
        const ig_tensor *t = tensors[i];
        IG_CHECK(names[i] && strcmp(names[i], "__metadata__") && !json_object_get(root, names[i]),
                 "safetensors_save: tensor %d: name '%s' is missing, reserved or repeated (%s)", i,
                 names[i] ? names[i] : "(null)", path);
        if (!t) {
            *st = ig__error(ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_INVALID,
                            "%s: tensor '%s' is NULL (a failed op?)", path, names[i]);
            break;
        }
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        uint64_t end = at + (uint64_t)t->numel * ig_dtype_size(t->dtype);
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", formats[t->dtype].name, "shape",
                              shape, "data_offsets", (json_int_t)at, (json_int_t)end);
        if (json_object_set_new(root, names[i], e))
            *st = ig__error(IG_ERR_INVALID, "%s: tensor name '%s' is not valid UTF-8", path,
                            names[i]);
        at = end;
    }
    char *text = *st == IG_OK ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (*st == IG_OK && !text) *st = ig__error(IG_ERR_NOMEM, "%s: no memory for the header", path);
    return text;
}

static ig_status write_all(FILE *fp, const void *p, size_t n, const char *tmp) {
    if (n && fwrite(p, 1, n, fp) != n)
        return ig__error(IG_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return IG_OK;
}

static ig_status write_tensor(FILE *fp, const ig_tensor *t, const char *tmp) {
    size_t nbytes = (size_t)t->numel * ig_dtype_size(t->dtype);
    if (t->device.kind == IG_DEV_CPU && ig_tensor_is_contiguous(t))
        return write_all(fp, ig__ptr(t), nbytes, tmp);
    void *buf = malloc(nbytes ? nbytes : 1);
    if (!buf) return ig__error(IG_ERR_NOMEM, "%s: no memory to stage %zu bytes", tmp, nbytes);
    ig_status st = ig_tensor_to_host(t, buf);
    if (st == IG_OK) st = write_all(fp, buf, nbytes, tmp);
    free(buf);
    return st;
}

ig_status ig_safetensors_save(const char *path, int n, const char *const *names,
                              ig_tensor *const *tensors, const char *const *metadata) {
    IG_CHECK(path && n >= 0 && (n == 0 || (names && tensors)),
             "safetensors_save: bad arguments (path %s, %d tensors)", path ? path : "NULL", n);
    ig_status st;
    char *header = make_header(path, n, names, tensors, metadata, &st);
    if (!header) return st;
    size_t len = strlen(header), padded = (len + 7) / 8 * 8;
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)((uint64_t)padded >> (8 * i));

    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp) {
        free(header);
        return ig__error(IG_ERR_INVALID, "%s: path too long", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(header);
        return ig__error(IG_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    st = write_all(fp, prefix, 8, tmp);
    if (st == IG_OK) st = write_all(fp, header, len, tmp);
    if (st == IG_OK) st = write_all(fp, "        ", padded - len, tmp);
    free(header);
    for (int i = 0; i < n && st == IG_OK; i++) st = write_tensor(fp, tensors[i], tmp);
    if (st == IG_OK && (fflush(fp) != 0 || fsync(fileno(fp)) != 0))
        st = ig__error(IG_ERR_IO, "%s: flush failed: %s", tmp, strerror(errno));
    if (fclose(fp) != 0 && st == IG_OK)
        st = ig__error(IG_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (st == IG_OK && rename(tmp, path) != 0)
        st = ig__error(IG_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (st != IG_OK) {
        unlink(tmp);
        return st;
    }
    return ig__fsync_parent(path);
}

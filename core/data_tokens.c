/* core/data_tokens.c: token streams. A stream is a list of chunks read as one
 * sequence: llm.c shards (memory-mapped, tokens after the 1024-byte header),
 * a text file (memory-mapped, one byte per token) or an in-memory copy.
 *
 * Invariants: every chunk's bytes lie inside its mapping or buffer (checked
 * against the file size before a chunk is made); chunks[i].first is the
 * stream index of the chunk's first token and chunks are in stream order;
 * tokens are read byte by byte as little-endian, so no alignment is assumed. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/impl.h"
#include "ignis/data.h"

#define SHARD_MAGIC 20240520
#define SHARD_VERSION 1
#define SHARD_HEADER 1024 /* 256 int32 */

typedef struct chunk {
    const uint8_t *p; /* first token */
    int64_t n, first;
    int width;        /* bytes per token: 1 (text) or 2 (uint16 LE) */
    void *map;        /* mmap base (munmap) or malloc'd buffer (free) */
    size_t map_len;   /* 0 for a malloc'd buffer */
} chunk;

struct ig_tokens {
    int n_chunks;
    chunk *chunks;
    int64_t count;
};

/* Maps path read-only; *len = its size (a zero-length file maps nothing). */
static ig_status map_file(const char *path, void **map, size_t *len) {
    *map = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ig__error(IG_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    ig_status s = IG_OK;
    if (fstat(fd, &st) != 0) {
        s = ig__error(IG_ERR_IO, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        s = ig__error(IG_ERR_IO, "%s: not a regular file", path);
    } else if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            s = ig__error(IG_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        } else {
            *map = m;
            *len = (size_t)st.st_size;
        }
    }
    close(fd);
    return s;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Checks a mapped shard; on success its tokens become chunk c. */
static ig_status check_shard(const char *path, const uint8_t *m, size_t len, chunk *c) {
    /* the magic first: a file of another kind is named as such even when short */
    if (len >= 4 && (int32_t)le32(m) != SHARD_MAGIC)
        return ig__error(IG_ERR_FORMAT, "%s: byte 0 (magic): expected %d, got %d", path,
                         SHARD_MAGIC, (int32_t)le32(m));
    if (len < SHARD_HEADER)
        return ig__error(IG_ERR_FORMAT, "%s: header: expected %d bytes, got a file of %zu bytes",
                         path, SHARD_HEADER, len);
    int32_t version = (int32_t)le32(m + 4), n = (int32_t)le32(m + 8);
    if (version != SHARD_VERSION)
        return ig__error(IG_ERR_FORMAT, "%s: byte 4 (version): expected %d, got %d", path,
                         SHARD_VERSION, version);
    int64_t holds = (int64_t)(len - SHARD_HEADER) / 2;
    if (n < 0 || n > holds)
        return ig__error(IG_ERR_FORMAT,
                         "%s: byte 8 (token count): expected at most the %lld tokens a file of "
                         "%zu bytes holds, got %d", path, (long long)holds, len, n);
    int64_t end = SHARD_HEADER + 2 * (int64_t)n;
    if ((int64_t)len != end)
        return ig__error(IG_ERR_FORMAT, "%s: byte %lld: expected the end of the file after %d "
                         "tokens, got %lld more bytes", path, (long long)end, n,
                         (long long)len - end);
    c->p = m + SHARD_HEADER;
    c->n = n;
    c->width = 2;
    return IG_OK;
}

/* A stream of n_chunks zeroed chunks (NULL + last error on OOM). */
static ig_tokens *tokens_new(int n_chunks) {
    ig_tokens *t = calloc(1, sizeof *t);
    chunk *c = calloc((size_t)n_chunks, sizeof *c);
    if (!t || !c) {
        free(t);
        free(c);
        ig__error(IG_ERR_NOMEM, "tokens: out of memory for %d chunks", n_chunks);
        return NULL;
    }
    t->n_chunks = n_chunks;
    t->chunks = c;
    return t;
}

static void number_chunks(ig_tokens *t) {
    t->count = 0;
    for (int i = 0; i < t->n_chunks; i++) {
        t->chunks[i].first = t->count;
        t->count += t->chunks[i].n;
    }
}

ig_status ig_tokens_open_shards(const char *pattern, ig_tokens **out) {
    *out = NULL;
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) return ig__error(IG_ERR_IO, "%s: no file matches", pattern);
    if (rc != 0) {
        globfree(&g);
        return ig__error(IG_ERR_IO, "%s: glob failed (%d)", pattern, rc);
    }
    ig_tokens *t = tokens_new((int)g.gl_pathc);
    ig_status s = t ? IG_OK : ig_last_status();
    for (int i = 0; s == IG_OK && i < t->n_chunks; i++) {
        chunk *c = &t->chunks[i];
        s = map_file(g.gl_pathv[i], &c->map, &c->map_len);
        if (s == IG_OK) s = check_shard(g.gl_pathv[i], c->map, c->map_len, c);
    }
    globfree(&g);
    if (s != IG_OK) {
        ig_tokens_free(t);
        return s;
    }
    number_chunks(t);
    *out = t;
    return IG_OK;
}

ig_status ig_tokens_open_text(const char *path, ig_tokens **out) {
    *out = NULL;
    ig_tokens *t = tokens_new(1);
    if (!t) return ig_last_status();
    chunk *c = &t->chunks[0];
    ig_status s = map_file(path, &c->map, &c->map_len);
    if (s == IG_OK && c->map_len == 0)
        s = ig__error(IG_ERR_FORMAT, "%s: byte 0: expected text, got an empty file", path);
    if (s != IG_OK) {
        ig_tokens_free(t);
        return s;
    }
    c->p = c->map;
    c->n = (int64_t)c->map_len;
    c->width = 1;
    number_chunks(t);
    *out = t;
    return IG_OK;
}

ig_tokens *ig_tokens_from_array(const uint16_t *tokens, int64_t n) {
    IG_CHECK(n >= 0 && (tokens || n == 0), "tokens_from_array: %lld tokens at %p", (long long)n,
             (const void *)tokens);
    ig_tokens *t = tokens_new(1);
    uint8_t *b = t ? malloc((size_t)n * 2 + 1) : NULL;
    if (!b) {
        if (t) ig__error(IG_ERR_NOMEM, "tokens_from_array: out of memory for %lld tokens",
                         (long long)n);
        ig_tokens_free(t);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        b[2 * i] = (uint8_t)tokens[i];
        b[2 * i + 1] = (uint8_t)(tokens[i] >> 8);
    }
    t->chunks[0] = (chunk){.p = b, .n = n, .width = 2, .map = b};
    number_chunks(t);
    return t;
}

int64_t ig_tokens_count(const ig_tokens *t) { return t->count; }

void ig_tokens_read(const ig_tokens *t, int64_t start, int64_t n, int64_t *dst) {
    IG_CHECK(start >= 0 && n >= 0 && start <= t->count - n,
             "tokens_read: [%lld, %lld) outside a stream of %lld tokens", (long long)start,
             (long long)(start + n), (long long)t->count);
    /* the last chunk starting at or before `start` (empty chunks share their
     * `first` with the next one, so this skips them) */
    int lo = 0, hi = t->n_chunks - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (t->chunks[mid].first <= start) lo = mid;
        else hi = mid - 1;
    }
    for (int ci = lo; n > 0; ci++) {
        const chunk *c = &t->chunks[ci];
        int64_t i = start - c->first, m = c->n - i < n ? c->n - i : n;
        if (c->width == 1) {
            for (int64_t j = 0; j < m; j++) dst[j] = c->p[i + j];
        } else {
            const uint8_t *p = c->p + 2 * i;
            for (int64_t j = 0; j < m; j++) dst[j] = p[2 * j] | p[2 * j + 1] << 8;
        }
        dst += m;
        start += m;
        n -= m;
    }
}

int ig_tokens_get(const ig_tokens *t, int64_t i) {
    int64_t v;
    ig_tokens_read(t, i, 1, &v);
    return (int)v;
}

void ig_tokens_free(ig_tokens *t) {
    if (!t) return;
    for (int i = 0; i < t->n_chunks; i++) {
        chunk *c = &t->chunks[i];
        if (c->map_len) munmap(c->map, c->map_len);
        else free(c->map);
    }
    free(t->chunks);
    free(t);
}

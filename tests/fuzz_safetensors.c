/* tests/fuzz_safetensors.c: deterministic mutation fuzzing of the safetensors
 * reader (no external tool). Valid files written by ig_safetensors_save are
 * mutated (header bytes, JSON numbers, brackets and quotes, the length
 * prefix, truncation, appended bytes); every mutant must either open, and
 * then every tensor reads within the file (or is of a dtype ignis lacks), or
 * fail with IG_ERR_FORMAT (or IG_ERR_NOMEM) and a message naming the file.
 * Bounded by MAX_ITERS mutants or MAX_SECONDS, whichever comes first (the
 * time bound is the one that matters under AddressSanitizer). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ignis/ckpt.h"
#include "fuzzutil.h"
#include "testutil.h"

#define MAX_ITERS 400000
#define MAX_SECONDS 15.0

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) { return fuzz_splitmix64(&rng); }
static size_t below(size_t n) { return n ? (size_t)(next() % n) : 0; }


static uint64_t header_len(const fuzz_buf *b) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b->p[i];
    return n;
}
static void set_header_len(fuzz_buf *b, uint64_t n) {
    for (int i = 0; i < 8; i++) b->p[i] = (unsigned char)(n >> (8 * i));
}

/* Replaces len bytes at pos with the bytes of s, keeping the prefix in step
 * with the header when the edit is inside it. */
static void splice(fuzz_buf *b, size_t pos, size_t len, const char *s, size_t slen) {
    fuzz_splice(b, pos, len, s, slen);
    uint64_t h = header_len(b);
    if (pos >= 8 && pos < 8 + h) set_header_len(b, h - len + slen);
}

/* A random position inside the JSON text whose byte is in `set`, or 0. */
static size_t find_in_header(const fuzz_buf *b, const char *set) {
    uint64_t h = b->n >= 8 ? header_len(b) : 0;
    if (h == 0 || h > b->n - 8) return 0;
    for (int tries = 0; tries < 16; tries++) {
        size_t pos = 8 + below(h);
        if (b->p[pos] && strchr(set, b->p[pos])) return pos;
    }
    return 0;
}

static void mutate(fuzz_buf *b) {
    static const char *numbers[] = {"0", "-1", "7", "4294967296", "9223372036854775807",
                                    "18446744073709551616", "1e3", "2.5", "-0", "99999999"};
    static const char *structural[] = {"[", "]", "{", "}", "\"", ",", ":", "", "[]", "{}",
                                       "\"\"", "null", "\"F32\"", "\"U8\"", "\"BOOL\"", "\\u0000"};
    size_t pos;
    char tmp[2];
    switch (below(9)) {
    case 0: /* flip a byte of the header */
        pos = 8 + below(b->n > 8 ? b->n - 8 : 1);
        if (pos < b->n) b->p[pos] ^= (unsigned char)(1u << below(8));
        break;
    case 1: /* replace a digit run with another number */
        if ((pos = find_in_header(b, "0123456789"))) {
            size_t len = 1;
            while (pos + len < b->n && b->p[pos + len] >= '0' && b->p[pos + len] <= '9') len++;
            const char *s = numbers[below(sizeof numbers / sizeof *numbers)];
            splice(b, pos, len, s, strlen(s));
        }
        break;
    case 2: /* replace or insert structural text */
        if ((pos = find_in_header(b, "[]{}\",:"))) {
            const char *s = structural[below(sizeof structural / sizeof *structural)];
            splice(b, pos, below(2), s, strlen(s));
        }
        break;
    case 3: /* the length prefix: small change, random, huge */
        switch (below(3)) {
        case 0: set_header_len(b, header_len(b) + below(17) - 8); break;
        case 1: set_header_len(b, below(b->n + 16)); break;
        default: set_header_len(b, next()); break;
        }
        break;
    case 4: /* truncate */
        b->n = below(b->n + 1);
        break;
    case 5: /* append bytes to the data */
        fuzz_reserve(b, b->n + 16);
        for (size_t i = 0, k = 1 + below(15); i < k; i++) b->p[b->n++] = (unsigned char)next();
        break;
    case 6: /* delete a span of the header */
        if ((pos = find_in_header(b, "\",:[]{}0123456789abcdefghijklmnopqrstuvwxyz_."))) {
            size_t len = 1 + below(12);
            if (pos + len <= b->n) splice(b, pos, len, "", 0);
        }
        break;
    case 7: /* duplicate a span of the header (duplicate names, repeated keys) */
        if ((pos = find_in_header(b, "\"{,"))) {
            size_t len = 1 + below(60);
            if (pos + len <= b->n) {
                char *copy = malloc(len);
                memcpy(copy, b->p + pos, len);
                splice(b, pos, 0, copy, len);
                free(copy);
            }
        }
        break;
    default: /* a random printable byte in the header */
        if ((pos = find_in_header(b, "\"[]{},:0123456789FUI"))) {
            tmp[0] = (char)(32 + below(95));
            splice(b, pos, 1, tmp, 1);
        }
        break;
    }
}

/* The valid files mutants start from. */
static int make_seeds(const char *path, fuzz_buf *seeds) {
    ig_scope *s = ig_scope_begin();
    int n = 0;
    for (int k = 0; k < 4; k++) {
        ig_tensor *ts[4] = {
            ig_randn(IG_SHAPE(2, 3), IG_F32, IG_CPU, NULL),
            ig_zeros(IG_SHAPE(3), k % 2 ? IG_BF16 : IG_I64, IG_CPU),
            ig_zeros(0, NULL, IG_U8, IG_CPU),
            ig_zeros(IG_SHAPE(0, 5), IG_F16, IG_CPU),
        };
        const char *names[4] = {"layer.0.weight", "b", "scalar", "empty"};
        const char *meta[] = {"format", "pt", "step", "12", NULL};
        int cnt = 1 + k; /* 1..4 tensors */
        assert_int_equal(ig_safetensors_save(path, cnt, names, ts, k % 2 ? meta : NULL), IG_OK);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        fuzz_buf *b = &seeds[n++];
        memset(b, 0, sizeof *b);
        fuzz_reserve(b, 4096);
        b->n = fread(b->p, 1, b->cap, f);
        fclose(f);
    }
    ig_scope_end(s);
    return n;
}

/* What rejections were about, by the first matching part of the message. */
static const char *const kinds[] = {"header: size", "invalid JSON", "'{'", "__metadata__",
                                    "dtype", "shape", "data_offsets", "header: data", ""};
#define NKINDS (sizeof kinds / sizeof *kinds)

static void check_open(const char *path, int64_t *ok, int64_t *rejected) {
    ig_safetensors *f = NULL;
    ig_status st = ig_safetensors_open(path, &f);
    if (st != IG_OK) {
        assert_null(f);
        if ((st != IG_ERR_FORMAT && st != IG_ERR_NOMEM) ||
            strncmp(ig_last_error(), path, strlen(path)))
            fail_msg("open failed with %s and message '%s'", ig_status_name(st), ig_last_error());
        size_t k = 0;
        while (!strstr(ig_last_error(), kinds[k])) k++;
        rejected[k]++;
        return;
    }
    (*ok)++;
    ig_scope *s = ig_scope_begin();
    for (int i = 0; i < ig_safetensors_count(f); i++) {
        const char *name = ig_safetensors_name(f, i);
        assert_int_equal(ig_safetensors_find(f, name), i);
        ig_tensor *t = ig_safetensors_get(f, name, IG_CPU); /* reads every byte */
        if (!t) { /* a dtype of the format that ignis lacks ("I8") */
            assert_int_equal(ig_last_status(), IG_ERR_UNSUPPORTED);
            continue;
        }
        ig_tensor *d = ig_empty(ig_tensor_ndim(t), ig_tensor_shape(t), IG_F64, IG_CPU);
        assert_int_equal(ig_safetensors_read_into(f, name, d, true), IG_OK);
    }
    ig_safetensors_metadata(f, "format");
    ig_scope_end(s);
    ig_safetensors_close(f);
}

static void test_mutated_files_open_or_fail_cleanly(void **state) {
    (void)state;
    char path[64];
    /* tmpfs when there is one: rewriting a file on ext4 waits for the disk */
    snprintf(path, sizeof path, "%s/ig_fuzz_safetensors_%d",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    fuzz_buf seeds[4], cur = {0};
    int ns = make_seeds(path, seeds);
    int64_t iters = 0, ok = 0, rejected[NKINDS] = {0}, nrej = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double elapsed = 0;
    for (; iters < MAX_ITERS && elapsed < MAX_SECONDS; iters++) {
        const fuzz_buf *seed = &seeds[below((size_t)ns)];
        fuzz_reserve(&cur, seed->n);
        memcpy(cur.p, seed->p, seed->n);
        cur.n = seed->n;
        for (size_t m = 0, k = 1 + below(4); m < k; m++) mutate(&cur);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        if (cur.n) assert_int_equal(fwrite(cur.p, 1, cur.n, f), cur.n);
        fclose(f);
        check_open(path, &ok, rejected);
        if (iters % 256 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            elapsed = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        }
    }
    for (size_t k = 0; k < NKINDS; k++) nrej += rejected[k];
    printf("fuzz_safetensors: %lld iterations in %.1f s: %lld opened, %lld rejected (",
           (long long)iters, elapsed, (long long)ok, (long long)nrej);
    for (size_t k = 0; k < NKINDS; k++)
        printf("%s%s %lld", k ? ", " : "", k + 1 < NKINDS ? kinds[k] : "other",
               (long long)rejected[k]);
    printf(")\n");
    fflush(stdout);
    assert_true(nrej > 0 && ok > 0);
    unlink(path);
    for (int i = 0; i < ns; i++) free(seeds[i].p);
    free(cur.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutated_files_open_or_fail_cleanly),
    };
    return TU_RUN(tests);
}

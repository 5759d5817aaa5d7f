/* tests/fuzz_readers.c: a bounded, deterministic mutation fuzzer for the file
 * readers (llm.c shards, text, MNIST idx). Valid files are mutated (bit flips,
 * byte overwrites, header fields set to edge values, truncation, appended
 * bytes), written to a temporary directory and opened. A reader must either
 * succeed, and then every token / pixel / label read stays in bounds and in
 * range, or fail with a status and a non-empty one-line message. A crash or
 * an out-of-bounds read (under AddressSanitizer) fails the run; the loop
 * stops after a fixed number of iterations or 20 s. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ignis/data.h"
#include "ignis/ignis.h"
#include "tests/fuzzutil.h"

#define ITERATIONS 6000
#define MAX_SECONDS 20.0

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_u64(void) { return fuzz_splitmix64(&rng); }

static size_t below(size_t n) { return n ? (size_t)(next_u64() % n) : 0; }

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void set_len(buf *b, size_t len) {
    if (len > b->cap) {
        b->cap = len * 2;
        b->p = realloc(b->p, b->cap);
    }
    if (len > b->len) memset(b->p + b->len, 0, len - b->len);
    b->len = len;
}

static void put32(uint8_t *p, uint32_t v, bool big_endian) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (big_endian ? 24 - 8 * i : 8 * i));
}

/* One random mutation; header fields are 4-byte words at 0, 4, ... below
 * `header` bytes, written in the file's byte order. */
static void mutate(buf *b, size_t header, bool big_endian) {
    static const uint32_t edge[] = {0, 1, 2, 0xff, 0xffff, 0x7fffffff, 0x80000000u,
                                    0xffffffffu, 20240520, 0x801, 0x803, 28, 60000, 512};
    switch (below(6)) {
    case 0: /* bit flip, mostly in the header */
        if (b->len) {
            size_t at = header && header <= b->len && below(2) ? below(header) : below(b->len);
            b->p[at] ^= (uint8_t)(1u << below(8));
        }
        break;
    case 1: /* byte overwrite with 0, 0xff or anything */
        if (b->len) {
            uint8_t v[] = {0, 0xff, 0x7f, 0x80, (uint8_t)next_u64()};
            b->p[below(b->len)] = v[below(5)];
        }
        break;
    case 2: /* a header field set to an edge value or one off the file's sizes */
    case 3: {
        size_t field = below(header / 4) * 4;
        if (field + 4 > b->len) break;
        uint32_t v = edge[below(sizeof edge / sizeof edge[0])];
        if (below(3) == 0) v = (uint32_t)(b->len + below(5) - 2); /* near the length */
        put32(b->p + field, v, big_endian);
        break;
    }
    case 4: /* truncation, often near the header's end */
        set_len(b, below(2) ? below(b->len + 1) : below(header + 8) % (b->len + 1));
        break;
    default: { /* appended bytes */
        size_t n = b->len, extra = 1 + below(64);
        set_len(b, n + extra);
        for (size_t i = n; i < b->len; i++) b->p[i] = (uint8_t)next_u64();
        break;
    }
    }
}

static void write_file(const char *path, const buf *b) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->len, f) != b->len) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static int failures;

static void expect(bool ok, const char *what, const char *path) {
    if (ok) return;
    fprintf(stderr, "fuzz: %s: %s (last error \"%s\")\n", path, what, ig_last_error());
    failures++;
}

/* A reader's failure: a status and a one-line, non-empty message. */
static void check_failure(ig_status s, const char *path) {
    expect(s != IG_OK && ig_last_error()[0] != 0, "failure without a status or message", path);
    expect(!strchr(ig_last_error(), '\n'), "message spans lines", path);
}

/* Returns whether the file was rejected. */
static bool fuzz_tokens(const char *path, const buf *b, bool text) {
    ig_tokens *t = NULL;
    ig_clear_error();
    ig_status s = text ? ig_tokens_open_text(path, &t) : ig_tokens_open_shards(path, &t);
    if (s != IG_OK) {
        check_failure(s, path);
        expect(t == NULL, "stream returned on failure", path);
        return true;
    }
    int64_t n = ig_tokens_count(t);
    expect(text ? n == (int64_t)b->len : 1024 + 2 * n == (int64_t)b->len,
           "token count disagrees with the file's size", path);
    int64_t *v = malloc(sizeof *v * (size_t)(n + 1));
    ig_tokens_read(t, 0, n, v);
    for (int64_t i = 0; i < n; i++) {
        int64_t want = text ? b->p[i] : b->p[1024 + 2 * i] | b->p[1024 + 2 * i + 1] << 8;
        if (v[i] != want) {
            expect(false, "token differs from the file's bytes", path);
            break;
        }
    }
    if (n) expect(ig_tokens_get(t, n - 1) == v[n - 1], "last token", path);
    free(v);
    ig_tokens_free(t);
    return false;
}

static bool fuzz_mnist(const char *ip, const buf *bi, const char *lp, const buf *bl) {
    ig_tensor *x = NULL, *y = NULL;
    ig_clear_error();
    ig_status s = ig_mnist_load(ip, lp, &x, &y);
    if (s != IG_OK) {
        check_failure(s, ip);
        expect(!x && !y, "tensors returned on failure", ip);
        return true;
    }
    int64_t n = ig_tensor_size(x, 0), pixels = ig_tensor_size(x, 1);
    expect(ig_tensor_numel(y) == n, "label count", lp);
    expect(16 + n * pixels == (int64_t)bi->len && 8 + n == (int64_t)bl->len,
           "sizes disagree with the files", ip);
    const float *px = ig_tensor_data(x);
    for (int64_t i = 0; i < n * pixels; i++)
        if (px[i] != bi->p[16 + i] / 255.0f) {
            expect(false, "pixel differs from the file", ip);
            break;
        }
    const int64_t *py = ig_tensor_data(y);
    for (int64_t i = 0; i < n; i++)
        if (py[i] != bl->p[8 + i]) {
            expect(false, "label differs from the file", lp);
            break;
        }
    ig_tensor_free(x);
    ig_tensor_free(y);
    return false;
}

int main(void) {
    char dir[] = "/tmp/ignis-fuzz-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char shard_path[64], text_path[64], img_path[64], lab_path[64];
    snprintf(shard_path, sizeof shard_path, "%s/shard.bin", dir);
    snprintf(text_path, sizeof text_path, "%s/text.txt", dir);
    snprintf(img_path, sizeof img_path, "%s/images.idx3", dir);
    snprintf(lab_path, sizeof lab_path, "%s/labels.idx1", dir);

    /* the valid seeds: a 300-token shard, 64 bytes of text, 5 images of 4x6 */
    buf shard = {0}, text = {0}, img = {0}, lab = {0};
    set_len(&shard, 1024 + 600);
    put32(shard.p, 20240520, false);
    put32(shard.p + 4, 1, false);
    put32(shard.p + 8, 300, false);
    for (size_t i = 1024; i < shard.len; i++) shard.p[i] = (uint8_t)(i * 37);
    set_len(&text, 64);
    for (size_t i = 0; i < text.len; i++) text.p[i] = (uint8_t)('a' + i % 26);
    set_len(&img, 16 + 5 * 24);
    put32(img.p, 0x803, true);
    put32(img.p + 4, 5, true);
    put32(img.p + 8, 4, true);
    put32(img.p + 12, 6, true);
    for (size_t i = 16; i < img.len; i++) img.p[i] = (uint8_t)(i * 11);
    set_len(&lab, 8 + 5);
    put32(lab.p, 0x801, true);
    put32(lab.p + 4, 5, true);
    for (size_t i = 8; i < lab.len; i++) lab.p[i] = (uint8_t)i;

    buf m = {0}, m2 = {0};
    int iterations = 0, rejected[3] = {0}, tried[3] = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double elapsed = 0;
    for (; iterations < ITERATIONS && elapsed < MAX_SECONDS; iterations++) {
        int kind = iterations % 3; /* shard, MNIST, text */
        int n_mut = 1 + (int)below(3);
        tried[kind]++;
        if (kind == 0) {
            set_len(&m, 0);
            set_len(&m, shard.len);
            memcpy(m.p, shard.p, shard.len);
            for (int k = 0; k < n_mut; k++) mutate(&m, 12, false);
            write_file(shard_path, &m);
            rejected[0] += fuzz_tokens(shard_path, &m, false);
        } else if (kind == 1) {
            /* mutate the images, the labels, or both */
            int which = (int)below(3);
            set_len(&m, 0);
            set_len(&m, img.len);
            memcpy(m.p, img.p, img.len);
            set_len(&m2, 0);
            set_len(&m2, lab.len);
            memcpy(m2.p, lab.p, lab.len);
            for (int k = 0; k < n_mut; k++) {
                if (which != 1) mutate(&m, 16, true);
                if (which != 0) mutate(&m2, 8, true);
            }
            write_file(img_path, &m);
            write_file(lab_path, &m2);
            rejected[1] += fuzz_mnist(img_path, &m, lab_path, &m2);
        } else {
            set_len(&m, 0);
            set_len(&m, text.len);
            memcpy(m.p, text.p, text.len);
            for (int k = 0; k < n_mut; k++) mutate(&m, 0, false);
            write_file(text_path, &m);
            rejected[2] += fuzz_tokens(text_path, &m, true);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        elapsed = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    printf("fuzz_readers: %d iterations in %.2f s; rejected: shards %d/%d, mnist %d/%d, "
           "text %d/%d; %d check failures\n", iterations, elapsed, rejected[0], tried[0],
           rejected[1], tried[1], rejected[2], tried[2], failures);
    unlink(shard_path);
    unlink(text_path);
    unlink(img_path);
    unlink(lab_path);
    rmdir(dir);
    free(shard.p), free(text.p), free(img.p), free(lab.p), free(m.p), free(m2.p);
    return failures ? 1 : 0;
}

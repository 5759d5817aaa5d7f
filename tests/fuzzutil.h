/* tests/fuzzutil.h: what the fuzz harnesses (tests/fuzz_*.c) share: a seeded
 * splitmix64 generator, so every run mutates the same way, and a growable
 * byte buffer with the splice that mutations are made of. Header-only:
 * each harness keeps its own seed and buffers. */
#ifndef IGNIS_TESTS_FUZZUTIL_H
#define IGNIS_TESTS_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The next number of the splitmix64 sequence in *state. */
static inline uint64_t fuzz_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct fuzz_buf {
    unsigned char *p;
    size_t n, cap;
} fuzz_buf;

/* Room for n bytes (aborts when out of memory: a test). */
static inline void fuzz_reserve(fuzz_buf *b, size_t n) {
    if (n <= b->cap) return;
    b->cap = n * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
}

/* Replaces len bytes at pos with s[0..slen). */
static inline void fuzz_splice(fuzz_buf *b, size_t pos, size_t len, const char *s, size_t slen) {
    fuzz_reserve(b, b->n - len + slen + 1);
    memmove(b->p + pos + slen, b->p + pos + len, b->n - pos - len);
    memcpy(b->p + pos, s, slen);
    b->n = b->n - len + slen;
}

#endif

/* tests/fuzz_proto.c: deterministic mutation fuzzing of the wire protocol
 * decoder (no external tool; fixed seed). Valid encoded messages of every
 * type (tests/proto_samples.h) are mutated: header bits, version and type
 * fields, header truncation, numbers swapped in the JSON, structural text
 * inserted, spans deleted or duplicated, random bytes, body truncation,
 * frames dropped or added. Every mutant must either decode, and then its
 * body re-encodes and decodes to the same value, or fail with IG_ERR_FORMAT
 * and a one-line ASCII message. Bounded by MAX_ITERS mutants or MAX_SECONDS,
 * whichever comes first (the time bound matters under AddressSanitizer).
 * Prints how many mutants of each type were accepted and rejected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ignis/proto.h"
#include "tests/fuzzutil.h"
#include "tests/proto_samples.h"
#include "tests/testutil.h"

#define MAX_ITERS 2000000
#define MAX_SECONDS 15.0

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t next(void) { return fuzz_splitmix64(&rng); }
static size_t below(size_t n) { return n ? (size_t)(next() % n) : 0; }


static void set(fuzz_buf *b, const void *p, size_t n) {
    fuzz_reserve(b, n + 1);
    memcpy(b->p, p, n);
    b->n = n;
}


/* A random position in b whose byte is in `set`, or SIZE_MAX. */
static size_t find(const fuzz_buf *b, const char *set) {
    for (int tries = 0; tries < 16 && b->n; tries++) {
        size_t pos = below(b->n);
        if (b->p[pos] && strchr(set, b->p[pos])) return pos;
    }
    return SIZE_MAX;
}

typedef struct mutant {
    fuzz_buf header, body;
    size_t frames; /* 1: header only, 2: header and body, 3: and an extra frame */
} mutant;

static void mutate(mutant *m) {
    static const char *numbers[] = {"0", "-1", "-3", "1", "7", "255", "256", "65535", "65536", "4294967296",
                                    "9223372036854775807", "18446744073709551616", "1e3", "2.5", "-0", "1e999"};
    static const char *structural[] = {"[", "]", "{", "}", "\"", ",", ":", "", "[]", "{}", "\"\"", "null",
                                       "true", "\"AA==\"", "\"A\"", "\\u0000", "\\ud800", "\xc3", "\xff"};
    fuzz_buf *h = &m->header, *b = &m->body;
    size_t pos;
    switch (below(11)) {
    case 0: /* flip a bit of the header */
        if (h->n) h->p[below(h->n)] ^= (unsigned char)(1u << below(8));
        break;
    case 1: /* another version or type */
        if (h->n >= 8) h->p[4 + below(4)] = (unsigned char)(below(4) ? below(20) : next());
        break;
    case 2: /* truncate or extend the header */
        if (below(2)) h->n = below(h->n + 1);
        else {
            fuzz_reserve(h, h->n + 1);
            h->p[h->n++] = (unsigned char)next();
        }
        break;
    case 3: /* replace a digit run with another number */
        if ((pos = find(b, "0123456789")) != SIZE_MAX) {
            size_t len = 1;
            while (pos + len < b->n && strchr("0123456789.-e", b->p[pos + len])) len++;
            const char *s = numbers[below(sizeof numbers / sizeof *numbers)];
            fuzz_splice(b, pos, len, s, strlen(s));
        }
        break;
    case 4: /* replace or insert structural text */
        if ((pos = find(b, "[]{}\",:")) != SIZE_MAX) {
            const char *s = structural[below(sizeof structural / sizeof *structural)];
            fuzz_splice(b, pos, below(2), s, strlen(s));
        }
        break;
    case 5: /* truncate the body */
        b->n = below(b->n + 1);
        break;
    case 6: /* delete a span (a field, a quote, part of a number) */
        if ((pos = find(b, "\",:[]{}0123456789abcdefghijklmnopqrstuvwxyz_.")) != SIZE_MAX) {
            size_t len = 1 + below(16);
            if (pos + len <= b->n) fuzz_splice(b, pos, len, "", 0);
        }
        break;
    case 7: /* duplicate a span (repeated keys, longer arrays) */
        if ((pos = find(b, "\"{[,")) != SIZE_MAX) {
            size_t len = 1 + below(60);
            if (pos + len <= b->n) {
                char *copy = malloc(len);
                memcpy(copy, b->p + pos, len);
                fuzz_splice(b, pos, 0, copy, len);
                free(copy);
            }
        }
        break;
    case 8: /* any byte anywhere in the body */
        if (b->n) b->p[below(b->n)] = (unsigned char)next();
        break;
    case 9: /* a character inside a string (base64 blobs, names) */
        if ((pos = find(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")) != SIZE_MAX)
            b->p[pos] = "A=+/-_ *\\\"Zz0"[below(13)];
        break;
    default: /* drop the body or add a frame */
        m->frames = below(2) ? 1 : 3;
        break;
    }
}

static bool one_ascii_line(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if ((unsigned char)*s < 32 || (unsigned char)*s >= 127) return false;
    return true;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_mutated_messages_are_decoded_or_rejected_with_a_message(void **state) {
    ig_proto_wire seeds[IG_MSG_COUNT];
    for (int t = 1; t < IG_MSG_COUNT; t++) {
        json_t *body = json_loads(proto_samples[t], 0, NULL);
        assert_non_null(body);
        if (ig_proto_encode(t, body, &seeds[t])) fail_msg("seed %s: %s", ig_msg_name(t), ig_last_error());
        json_decref(body);
    }
    long accepted[IG_MSG_COUNT] = {0}, rejected[IG_MSG_COUNT] = {0};
    mutant m = {0};
    double t0 = now_s();
    long iters = 0;
    for (; iters < MAX_ITERS && (iters % 256 || now_s() - t0 < MAX_SECONDS); iters++) {
        int t = 1 + (int)below(IG_MSG_COUNT - 1);
        set(&m.header, seeds[t].header, IG_PROTO_HEADER_SIZE);
        set(&m.body, seeds[t].body, seeds[t].body_size);
        m.frames = 2;
        for (size_t k = 0, nk = 1 + below(3); k < nk; k++) mutate(&m);
        bool routed = below(2); /* a ROUTER's identity frame first */
        ig_proto_frame f[4] = {{"peer", 4}, {m.header.p, m.header.n}, {m.body.p, m.body.n}, {"{}", 2}};
        ig_proto_msg msg = {0};
        ig_status st = ig_proto_decode(routed ? f : f + 1, m.frames + routed, routed, &msg);
        if (st == IG_OK) {
            accepted[t]++;
            ig_proto_wire w;
            if (ig_proto_encode(msg.type, msg.body, &w)) fail_msg("accepted but not re-encodable: %s", ig_last_error());
            ig_proto_msg again = {0};
            ig_proto_frame g[2] = {{w.header, 8}, {w.body, w.body_size}};
            assert_int_equal(ig_proto_decode(g, 2, 0, &again), IG_OK);
            assert_int_equal(again.type, msg.type);
            assert_true(json_equal(again.body, msg.body));
            ig_proto_msg_clear(&again);
            ig_proto_wire_free(&w);
        } else {
            if (st != IG_ERR_FORMAT || !one_ascii_line(ig_last_error()) || msg.body)
                fail_msg("mutant of %s: %s \"%s\"", ig_msg_name(t), ig_status_name(st), ig_last_error());
            rejected[t]++;
        }
        ig_proto_msg_clear(&msg);
    }
    long acc = 0, rej = 0;
    for (int t = 1; t < IG_MSG_COUNT; t++) {
        printf("  %-17s accepted %7ld  rejected %7ld\n", ig_msg_name(t), accepted[t], rejected[t]);
        acc += accepted[t], rej += rejected[t];
    }
    printf("fuzz_proto: %ld mutants in %.1f s: %ld accepted, %ld rejected\n", iters, now_s() - t0, acc, rej);
    assert_true(acc > 0 && rej > 0);
    free(m.header.p);
    free(m.body.p);
    for (int t = 1; t < IG_MSG_COUNT; t++) ig_proto_wire_free(&seeds[t]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutated_messages_are_decoded_or_rejected_with_a_message),
    };
    return TU_RUN(tests);
}

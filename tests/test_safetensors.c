/* tests/test_safetensors.c: safetensors files (round trips, the exact byte
 * layout, every malformed header rejected with a message naming the tensor
 * and field, atomic saves) and checkpoint directories (begin, commit, latest,
 * keep). Files go to a fresh directory under /tmp, removed at the end. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ignis/ckpt.h"
#include "testutil.h"

static char base[256];

/* base/name, in a rotating static buffer */
static const char *at(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", base, name);
    return p;
}

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static unsigned char *slurp(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void put(const char *p, const void *data, size_t n) {
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A tensor whose bytes are random (every bit pattern, NaN payloads included). */
static ig_tensor *random_bits(int ndim, const int64_t *shape, ig_dtype dt) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    size_t nb = (size_t)n * ig_dtype_size(dt);
    unsigned char *b = malloc(nb + 1);
    for (size_t i = 0; i < nb; i++) b[i] = (unsigned char)(rand() >> 7);
    ig_tensor *t = ig_from_data(b, ndim, shape, dt, IG_CPU);
    free(b);
    return t;
}

static void assert_same_bytes(ig_tensor *a, ig_tensor *b, const char *what) {
    assert_int_equal(ig_tensor_dtype(a), ig_tensor_dtype(b));
    assert_int_equal(ig_tensor_ndim(a), ig_tensor_ndim(b));
    for (int d = 0; d < ig_tensor_ndim(a); d++)
        assert_int_equal(ig_tensor_size(a, d), ig_tensor_size(b, d));
    size_t nb = (size_t)ig_tensor_numel(a) * ig_dtype_size(ig_tensor_dtype(a));
    unsigned char *x = malloc(nb + 1), *y = malloc(nb + 1);
    assert_int_equal(ig_tensor_to_host(a, x), IG_OK);
    assert_int_equal(ig_tensor_to_host(b, y), IG_OK);
    if (memcmp(x, y, nb)) fail_msg("%s: bytes differ after the round trip", what);
    free(x);
    free(y);
}

static void assert_error_names(ig_status got, ig_status want, const char *path, const char *a,
                               const char *b) {
    const char *m = ig_last_error();
    if (got != want || !strstr(m, path) || (a && !strstr(m, a)) || (b && !strstr(m, b)))
        fail_msg("expected %s naming '%s' and '%s', got %s: %s", ig_status_name(want),
                 a ? a : "", b ? b : "", ig_status_name(got), m);
}

/* ---- round trips ---- */

static void test_round_trip_of_every_dtype_and_layout_is_bit_exact(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    enum { N = IG_DTYPE_COUNT + 5 };
    const char *names[N];
    ig_tensor *ts[N];
    char nbuf[N][32];
    for (int d = 0; d < IG_DTYPE_COUNT; d++) {
        snprintf(nbuf[d], 32, "t.%s", ig_dtype_name((ig_dtype)d));
        ts[d] = random_bits(IG_SHAPE(3, 5), (ig_dtype)d);
    }
    int k = IG_DTYPE_COUNT;
    snprintf(nbuf[k], 32, "scalar");
    ts[k++] = random_bits(0, NULL, IG_BF16);
    snprintf(nbuf[k], 32, "empty");
    ts[k++] = random_bits(IG_SHAPE(0, 4), IG_F32);
    snprintf(nbuf[k], 32, "transposed");
    ts[k++] = ig_transpose(random_bits(IG_SHAPE(4, 6), IG_F16), 0, 1);
    snprintf(nbuf[k], 32, "sliced");
    ts[k++] = ig_slice(random_bits(IG_SHAPE(7, 3), IG_F64), 0, 1, 7, 2);
    snprintf(nbuf[k], 32, "expanded");
    ts[k++] = ig_expand(random_bits(IG_SHAPE(1, 3), IG_I64), IG_SHAPE(4, 3));
    assert_false(ig_tensor_is_contiguous(ts[N - 3]));
    for (int i = 0; i < N; i++) names[i] = nbuf[i];

    const char *p = at("all.safetensors");
    assert_int_equal(ig_safetensors_save(p, N, names, ts, NULL), IG_OK);
    ig_safetensors *f;
    assert_int_equal(ig_safetensors_open(p, &f), IG_OK);
    assert_int_equal(ig_safetensors_count(f), N);
    for (int i = 0; i < N; i++) {
        assert_string_equal(ig_safetensors_name(f, i), names[i]); /* in data order */
        assert_int_equal(ig_safetensors_find(f, names[i]), i);
        assert_same_bytes(ig_safetensors_get(f, names[i], IG_CPU), ts[i], names[i]);
        ig_tensor *dst = ig_empty(ig_tensor_ndim(ts[i]), ig_tensor_shape(ts[i]),
                                  ig_tensor_dtype(ts[i]), IG_CPU);
        assert_int_equal(ig_safetensors_read_into(f, names[i], dst, false), IG_OK);
        assert_same_bytes(dst, ts[i], names[i]);
    }
    assert_int_equal(ig_safetensors_find(f, "nope"), -1);
    assert_null(ig_safetensors_metadata(f, "format"));
    ig_safetensors_close(f);
    ig_scope_end(s);
}

static void test_metadata_round_trips_and_zero_tensors_is_a_valid_file(void **state) {
    (void)state;
    const char *meta[] = {"format", "pt", "note", "ünïcode \"quoted\"", "empty", "", NULL};
    const char *p = at("meta.safetensors");
    assert_int_equal(ig_safetensors_save(p, 0, NULL, NULL, meta), IG_OK);
    ig_safetensors *f;
    assert_int_equal(ig_safetensors_open(p, &f), IG_OK);
    assert_int_equal(ig_safetensors_count(f), 0);
    for (int i = 0; meta[i]; i += 2)
        assert_string_equal(ig_safetensors_metadata(f, meta[i]), meta[i + 1]);
    assert_null(ig_safetensors_metadata(f, "missing"));
    ig_safetensors_close(f);
}

/* ---- the exact layout ---- */

static void test_file_layout_matches_the_spec_byte_for_byte(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    const float a[2] = {1.0f, -2.0f};
    const uint8_t b[3] = {1, 2, 3};
    ig_tensor *ts[2] = {ig_from_data(a, IG_SHAPE(2, 1), IG_F32, IG_CPU),
                        ig_from_data(b, IG_SHAPE(3), IG_U8, IG_CPU)};
    const char *names[2] = {"a", "b"};
    const char *meta[] = {"format", "pt", NULL};
    const char *p = at("layout.safetensors");
    assert_int_equal(ig_safetensors_save(p, 2, names, ts, meta), IG_OK);

    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]}}";
    size_t len = strlen(json); /* 140: padded with 4 spaces to 144 */
    assert_int_equal(len, 140);
    unsigned char want[8 + 144 + 11];
    const unsigned char prefix[8] = {144, 0, 0, 0, 0, 0, 0, 0};
    const unsigned char data[11] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 1, 2, 3};
    memcpy(want, prefix, 8);
    memset(want + 8, ' ', 144);
    memcpy(want + 8, json, len);
    memcpy(want + 8 + 144, data, 11);

    size_t n;
    unsigned char *got = slurp(p, &n);
    assert_int_equal(n, sizeof want);
    if (memcmp(got, want, n)) fail_msg("layout differs: got header %.*s", 144, (char *)got + 8);
    free(got);
    ig_scope_end(s);
}

/* ---- malformed files ---- */

/* Writes prefix N (or `hlen` when >= 0) + header + `nbuf` zero bytes. */
static void write_raw(const char *p, const char *header, long long hlen, size_t nbuf) {
    size_t len = strlen(header);
    uint64_t n = hlen >= 0 ? (uint64_t)hlen : len;
    unsigned char *b = calloc(8 + len + nbuf + 1, 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, header, len);
    put(p, b, 8 + len + nbuf);
    free(b);
}

typedef struct bad_case {
    const char *header;
    size_t nbuf;
    const char *a, *b; /* must appear in the message */
} bad_case;

#define E8(name) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static const bad_case bad_cases[] = {
    {"{\"a\":", 0, "header", "invalid JSON"},
    {"[1, 2]", 0, "header", "'{'"},
    {"{\"a\":{\"dtype\":\"F32\"}} trailing", 0, "header", "invalid JSON"},
    {"{\"a\":5}", 0, "tensor 'a'", "got 5"},
    {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': dtype", "got nothing"},
    {"{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': dtype", "got 7"},
    {"{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1, "tensor 'a': dtype", "got \"F4\""},
    {"{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': dtype", "got \"f32\""},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "tensor 'a': shape", "got nothing"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, "tensor 'a': shape", "got \"2\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': shape[0]", "got -2"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1, 2.0],\"data_offsets\":[0,8]}}", 8, "tensor 'a': shape[1]", "got a real 2"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': shape", "got 9"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,8]}}", 8, "tensor 'a': shape", "2^64"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'a': data_offsets", "got nothing"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "tensor 'a': data_offsets", "got [0]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "tensor 'a': data_offsets", "got [8,0]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8, "tensor 'a': data_offsets", "got [\"0\",8]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "tensor 'a': data_offsets", "got [-8,0]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "tensor 'a': data_offsets", "8-byte data buffer, got 16"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "tensor 'a': data_offsets", "expected 12 bytes (shape [3] of F32), got 8"},
    {"{" E8("a") ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "tensor 'b': data_offsets", "overlapping tensor 'a'"},
    {"{" E8("a") ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, "tensor 'b': data_offsets", "expected begin 8"},
    {"{" E8("a") "}", 12, "header: data", "12-byte data buffer, got 8"},
    {"{" E8("a") "," E8("a") "}", 8, "duplicate", "\"a\""},
    {"{\"__metadata__\":[1]," E8("a") "}", 8, "__metadata__", "got [1]"},
    {"{\"__metadata__\":{\"k\":1}," E8("a") "}", 8, "__metadata__: key 'k'", "got 1"},
    {"{\"a\xff\":{}}", 0, "header", "invalid JSON"},
};

static void test_every_malformed_header_is_rejected_naming_the_field(void **state) {
    (void)state;
    const char *p = at("bad.safetensors");
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const bad_case *c = &bad_cases[i];
        write_raw(p, c->header, -1, c->nbuf);
        ig_safetensors *f = (ig_safetensors *)1;
        ig_status st = ig_safetensors_open(p, &f);
        assert_null(f);
        if (st != IG_ERR_FORMAT || !strstr(ig_last_error(), p) || !strstr(ig_last_error(), c->a) ||
            !strstr(ig_last_error(), c->b))
            fail_msg("case %zu (%s): expected IG_ERR_FORMAT naming '%s' and '%s', got %s: %s", i,
                     c->header, c->a, c->b, ig_status_name(st), ig_last_error());
    }
}

static void test_bad_length_prefix_and_short_files_are_rejected(void **state) {
    (void)state;
    const char *p = at("short.safetensors");
    ig_safetensors *f;
    put(p, "\x02\0\0\0\0", 5);
    assert_error_names(ig_safetensors_open(p, &f), IG_ERR_FORMAT, p, "header: size", "5-byte");
    write_raw(p, "{}", 1000, 0); /* longer than the file */
    assert_error_names(ig_safetensors_open(p, &f), IG_ERR_FORMAT, p, "header: size", "got 1000");
    write_raw(p, "{}", 200000000, 0); /* absurd */
    assert_error_names(ig_safetensors_open(p, &f), IG_ERR_FORMAT, p, "header: size",
                       "got 200000000");
    write_raw(p, "{}", 0, 0);
    assert_error_names(ig_safetensors_open(p, &f), IG_ERR_FORMAT, p, "header", "empty header");
    write_raw(p, "{}      ", -1, 0); /* padding is fine */
    assert_int_equal(ig_safetensors_open(p, &f), IG_OK);
    ig_safetensors_close(f);
    const char *missing = at("missing");
    assert_error_names(ig_safetensors_open(missing, &f), IG_ERR_IO, missing, NULL, NULL);
}

static void test_a_dtype_ignis_lacks_opens_but_does_not_read(void **state) {
    (void)state;
    const char *p = at("bool.safetensors");
    write_raw(p, "{\"mask\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}," 
                 "\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]}}", -1, 4);
    ig_safetensors *f;
    assert_int_equal(ig_safetensors_open(p, &f), IG_OK);
    assert_int_equal(ig_safetensors_find(f, "mask"), 0);
    ig_scope *s = ig_scope_begin();
    assert_null(ig_safetensors_get(f, "mask", IG_CPU));
    assert_error_names(ig_last_status(), IG_ERR_UNSUPPORTED, p, "tensor 'mask'", "BOOL");
    assert_int_equal(ig_tensor_item(ig_safetensors_get(f, "x", IG_CPU)), 0);
    ig_scope_end(s);
    ig_safetensors_close(f);
}

/* ---- reading into tensors ---- */

static void test_read_into_checks_shape_and_dtype_and_converts_on_request(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *w = ig_arange(0, 6, 1, IG_F32, IG_CPU);
    w = ig_reshape(w, IG_SHAPE(2, 3));
    const char *names[] = {"w"};
    const char *p = at("w.safetensors");
    assert_int_equal(ig_safetensors_save(p, 1, names, &w, NULL), IG_OK);
    ig_safetensors *f;
    assert_int_equal(ig_safetensors_open(p, &f), IG_OK);

    ig_tensor *wrong_shape = ig_zeros(IG_SHAPE(3, 2), IG_F32, IG_CPU);
    assert_error_names(ig_safetensors_read_into(f, "w", wrong_shape, false), IG_ERR_INVALID, p,
                       "tensor 'w': shape", "got [2, 3]");
    ig_tensor *wrong_dtype = ig_zeros(IG_SHAPE(2, 3), IG_F64, IG_CPU);
    assert_error_names(ig_safetensors_read_into(f, "w", wrong_dtype, false), IG_ERR_INVALID, p,
                       "tensor 'w': dtype", "got F32");
    assert_error_names(ig_safetensors_read_into(f, "v", wrong_dtype, true), IG_ERR_INVALID, p,
                       "'v'", NULL);
    assert_null(ig_safetensors_get(f, "v", IG_CPU));

    assert_int_equal(ig_safetensors_read_into(f, "w", wrong_dtype, true), IG_OK);
    tu_assert_close(wrong_dtype, ig_to(w, IG_F64, IG_CPU), 0, 0, "converted read");
    /* a non-contiguous destination */
    ig_tensor *t = ig_zeros(IG_SHAPE(3, 2), IG_F32, IG_CPU);
    assert_int_equal(ig_safetensors_read_into(f, "w", ig_transpose(t, 0, 1), false), IG_OK);
    tu_assert_close(t, ig_transpose(w, 0, 1), 0, 0, "read into a transposed view");
    ig_safetensors_close(f);
    ig_scope_end(s);
}

static void test_cuda_tensors_save_and_load(void **state) {
    (void)state;
    if (ig_cuda_device_count() == 0) skip();
    ig_scope *s = ig_scope_begin();
    ig_tensor *h = random_bits(IG_SHAPE(5, 4), IG_BF16);
    ig_tensor *d = ig_transpose(ig_to(h, IG_BF16, IG_CUDA(0)), 0, 1);
    const char *names[] = {"d"};
    const char *p = at("cuda.safetensors");
    assert_int_equal(ig_safetensors_save(p, 1, names, &d, NULL), IG_OK);
    ig_safetensors *f;
    assert_int_equal(ig_safetensors_open(p, &f), IG_OK);
    assert_same_bytes(ig_safetensors_get(f, "d", IG_CUDA(0)), ig_transpose(h, 0, 1), "get on cuda");
    ig_tensor *dst = ig_zeros(IG_SHAPE(4, 5), IG_F32, IG_CUDA(0));
    assert_int_equal(ig_safetensors_read_into(f, "d", dst, true), IG_OK);
    tu_assert_close(dst, ig_to(ig_transpose(h, 0, 1), IG_F32, IG_CPU), 0, 0, "read_into cuda");
    ig_safetensors_close(f);
    ig_scope_end(s);
}

/* ---- atomic saves ---- */

static bool tmp_left(const char *p) {
    char t[600];
    snprintf(t, sizeof t, "%s.tmp.%d", p, (int)getpid());
    return exists(t);
}

static void test_failed_save_leaves_no_file(void **state) {
    (void)state;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_ones(IG_SHAPE(4), IG_F32, IG_CPU);
    const char *names[] = {"x"};
    const char *p = at("no_such_dir/x.safetensors");
    assert_error_names(ig_safetensors_save(p, 1, names, &x, NULL), IG_ERR_IO, p, NULL, NULL);
    assert_false(exists(p));
    /* renaming over a directory fails after the data was written */
    const char *d = at("a_directory");
    assert_int_equal(mkdir(d, 0777), 0);
    assert_error_names(ig_safetensors_save(d, 1, names, &x, NULL), IG_ERR_IO, d, NULL, NULL);
    assert_false(tmp_left(d));
    /* a NULL tensor (a failed op) writes nothing, and an older file survives */
    const char *q = at("keep.safetensors");
    assert_int_equal(ig_safetensors_save(q, 1, names, &x, NULL), IG_OK);
    ig_tensor *none = NULL;
    assert_int_not_equal(ig_safetensors_save(q, 1, names, &none, NULL), IG_OK);
    assert_false(tmp_left(q));
    ig_safetensors *f;
    assert_int_equal(ig_safetensors_open(q, &f), IG_OK);
    assert_same_bytes(ig_safetensors_get(f, "x", IG_CPU), x, "the older file");
    ig_safetensors_close(f);
    ig_scope_end(s);
}

/* ---- checkpoint directories ---- */

static void begin_with_file(const char *dir, int64_t step, const char *content) {
    char tmp[512], file[600];
    assert_int_equal(ig_ckpt_begin(dir, step, tmp, sizeof tmp), IG_OK);
    snprintf(file, sizeof file, "%s/state.json", tmp);
    put(file, content, strlen(content));
}

static void test_checkpoint_begin_commit_latest_and_keep(void **state) {
    (void)state;
    char dir[300], tmp[512], path[512];
    snprintf(dir, sizeof dir, "%s", at("run/ckpt")); /* mkdir -p */
    int64_t step = -1;
    assert_int_equal(ig_ckpt_latest(dir, path, sizeof path, &step), IG_ERR_IO);

    assert_int_equal(ig_ckpt_begin(dir, 100, tmp, sizeof tmp), IG_OK);
    assert_string_equal(tmp, at("run/ckpt/.tmp_step_00000100"));
    assert_int_equal(ig_ckpt_latest(dir, path, sizeof path, &step), IG_ERR_IO); /* not committed */
    put(at("run/ckpt/.tmp_step_00000100/state.json"), "{}", 2);
    assert_int_equal(ig_ckpt_commit(dir, 100, 2), IG_OK);
    assert_false(exists(tmp));
    assert_true(exists(at("run/ckpt/step_00000100/state.json")));
    assert_int_equal(ig_ckpt_latest(dir, path, sizeof path, &step), IG_OK);
    assert_string_equal(path, at("run/ckpt/step_00000100"));
    assert_int_equal(step, 100);

    /* a crash mid-write leaves a temporary directory, never loaded */
    begin_with_file(dir, 300, "partial");
    put(at("run/ckpt/step_00000900"), "a file, not a checkpoint", 24);
    assert_int_equal(mkdir(at("run/ckpt/step_12x"), 0777), 0);
    assert_int_equal(ig_ckpt_latest(dir, path, sizeof path, &step), IG_OK);
    assert_int_equal(step, 100);

    begin_with_file(dir, 200, "200");
    assert_int_equal(ig_ckpt_commit(dir, 200, 2), IG_OK);
    /* beginning 300 again replaces the stale one */
    assert_true(exists(at("run/ckpt/.tmp_step_00000300/state.json")));
    assert_int_equal(ig_ckpt_begin(dir, 300, tmp, sizeof tmp), IG_OK);
    assert_false(exists(at("run/ckpt/.tmp_step_00000300/state.json")));
    put(at("run/ckpt/.tmp_step_00000300/model.safetensors"), "x", 1);
    assert_int_equal(ig_ckpt_commit(dir, 300, 2), IG_OK); /* keep 2: 100 goes */
    assert_false(exists(at("run/ckpt/step_00000100")));
    assert_true(exists(at("run/ckpt/step_00000200/state.json")));
    assert_true(exists(at("run/ckpt/step_00000300/model.safetensors")));
    assert_true(exists(at("run/ckpt/step_00000900"))); /* not ours: untouched */
    assert_int_equal(ig_ckpt_latest(dir, path, sizeof path, &step), IG_OK);
    assert_int_equal(step, 300);

    /* committing a step again replaces it; keep <= 0 keeps everything */
    begin_with_file(dir, 200, "again");
    assert_int_equal(ig_ckpt_commit(dir, 200, 0), IG_OK);
    size_t n;
    unsigned char *b = slurp(at("run/ckpt/step_00000200/state.json"), &n);
    assert_memory_equal(b, "again", 5);
    free(b);
    assert_true(exists(at("run/ckpt/step_00000300")));
    /* commit without begin */
    assert_error_names(ig_ckpt_commit(dir, 400, 2), IG_ERR_STATE, "tmp_step_00000400", NULL, NULL);
    /* a buffer too small for the path */
    assert_int_equal(ig_ckpt_latest(dir, path, 8, &step), IG_ERR_INVALID);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int main(void) {
    snprintf(base, sizeof base, "/tmp/ig_test_safetensors_XXXXXX");
    if (!mkdtemp(base)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_of_every_dtype_and_layout_is_bit_exact),
        cmocka_unit_test(test_metadata_round_trips_and_zero_tensors_is_a_valid_file),
        cmocka_unit_test(test_file_layout_matches_the_spec_byte_for_byte),
        cmocka_unit_test(test_every_malformed_header_is_rejected_naming_the_field),
        cmocka_unit_test(test_bad_length_prefix_and_short_files_are_rejected),
        cmocka_unit_test(test_a_dtype_ignis_lacks_opens_but_does_not_read),
        cmocka_unit_test(test_read_into_checks_shape_and_dtype_and_converts_on_request),
        cmocka_unit_test(test_cuda_tensors_save_and_load),
        cmocka_unit_test(test_failed_save_leaves_no_file),
        cmocka_unit_test(test_checkpoint_begin_commit_latest_and_keep),
    };
    int r = TU_RUN(tests);
    nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return r;
}

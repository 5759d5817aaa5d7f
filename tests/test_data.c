/* tests/test_data.c: training data. llm.c shards written here and read back
 * through a glob (and rejected when malformed, with a message naming file and
 * field), text as bytes, the window loader (epochs, shuffling, cursor resume,
 * rank split) and MNIST idx files. Fixture files live in a temporary
 * directory made by the group setup and removed by its teardown. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ignis/data.h"
#include "tests/testutil.h"

static char dir[64];

static const char *path_in(const char *name) {
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i);
}

static void put_be32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* An llm.c shard: header (magic, version, count) then the n tokens given (n
 * may differ from count) and `extra` zero bytes. */
static void write_shard(const char *path, int32_t magic, int32_t version, int32_t count,
                        const uint16_t *tok, int n, int extra) {
    size_t len = 1024 + 2 * (size_t)n + (size_t)extra;
    uint8_t *b = calloc(1, len);
    put_le32(b, (uint32_t)magic);
    put_le32(b + 4, (uint32_t)version);
    put_le32(b + 8, (uint32_t)count);
    for (int i = 0; i < n; i++) {
        b[1024 + 2 * i] = (uint8_t)tok[i];
        b[1024 + 2 * i + 1] = (uint8_t)(tok[i] >> 8);
    }
    write_bytes(path, b, len);
    free(b);
}

static int make_dir(void **state) {
    (void)state;
    strcpy(dir, "/tmp/ignis-test-data-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state) {
    (void)state;
    DIR *d = opendir(dir);
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(path_in(e->d_name));
    closedir(d);
    return rmdir(dir);
}

static uint16_t token_at(int i) { return (uint16_t)(i * 40503u + 7); } /* all 16 bits used */

/* ---- shards ---- */

static void shards_read_back_as_one_stream_through_a_glob(void **state) {
    (void)state;
    uint16_t tok[150];
    for (int i = 0; i < 150; i++) tok[i] = token_at(i);
    /* written out of order; an empty shard in the middle; a non-matching file */
    write_shard(path_in("s_002.bin"), 20240520, 1, 50, tok + 100, 50, 0);
    write_shard(path_in("s_000.bin"), 20240520, 1, 100, tok, 100, 0);
    write_shard(path_in("s_001.bin"), 20240520, 1, 0, NULL, 0, 0);
    write_bytes(path_in("t_000.bin"), "junk", 4);
    ig_tokens *t = NULL;
    assert_int_equal(ig_tokens_open_shards(path_in("s_*.bin"), &t), IG_OK);
    assert_int_equal(ig_tokens_count(t), 150);
    for (int i = 0; i < 150; i++) assert_int_equal(ig_tokens_get(t, i), tok[i]);
    int64_t span[20];
    ig_tokens_read(t, 90, 20, span); /* crosses into the third file */
    for (int i = 0; i < 20; i++) assert_int_equal(span[i], tok[90 + i]);
    ig_tokens_free(t);
    /* a plain path is a glob matching itself */
    assert_int_equal(ig_tokens_open_shards(path_in("s_002.bin"), &t), IG_OK);
    assert_int_equal(ig_tokens_count(t), 50);
    assert_int_equal(ig_tokens_get(t, 0), tok[100]);
    ig_tokens_free(t);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "s_00%d.bin", i);
        unlink(path_in(name));
    }
    unlink(path_in("t_000.bin"));
}

/* Opening the shard at `path` fails with IG_ERR_FORMAT naming the path and
 * every fragment given. */
static void assert_shard_rejected(const char *path, const char *frag1, const char *frag2) {
    ig_tokens *t = (ig_tokens *)1;
    assert_int_equal(ig_tokens_open_shards(path, &t), IG_ERR_FORMAT);
    assert_null(t);
    const char *msg = ig_last_error();
    if (!strstr(msg, path) || !strstr(msg, frag1) || (frag2 && !strstr(msg, frag2)))
        fail_msg("message \"%s\" should name %s, \"%s\" and \"%s\"", msg, path, frag1,
                 frag2 ? frag2 : "");
    assert_null(strchr(msg, '\n'));
}

static void malformed_shards_fail_naming_the_file_and_field(void **state) {
    (void)state;
    uint16_t tok[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const char *p = path_in("bad.bin");
    write_shard(p, 20240521, 1, 8, tok, 8, 0);
    assert_shard_rejected(p, "byte 0 (magic): expected 20240520", "got 20240521");
    write_shard(p, 20240520, 7, 8, tok, 8, 0);
    assert_shard_rejected(p, "byte 4 (version): expected 1", "got 7");
    write_shard(p, 20240520, 1, 9, tok, 8, 0); /* one token more than the file has */
    assert_shard_rejected(p, "byte 8 (token count)", "the 8 tokens");
    assert_shard_rejected(p, "got 9", NULL);
    write_shard(p, 20240520, 1, -1, tok, 8, 0);
    assert_shard_rejected(p, "byte 8 (token count)", "got -1");
    write_shard(p, 20240520, 1, 8, tok, 8, 3); /* trailing bytes */
    assert_shard_rejected(p, "byte 1040", "3 more bytes");
    write_bytes(p, "\x88\xd8\x34\x01", 4); /* the magic alone: truncated header */
    assert_shard_rejected(p, "header: expected 1024 bytes", "got a file of 4 bytes");
    write_bytes(p, "{\"a\": 1}", 8); /* another kind of file */
    assert_shard_rejected(p, "byte 0 (magic)", NULL);
    unlink(p);
}

static void a_glob_without_a_match_is_an_io_error_naming_the_pattern(void **state) {
    (void)state;
    ig_tokens *t = NULL;
    const char *pattern = path_in("nothing_*.bin");
    assert_int_equal(ig_tokens_open_shards(pattern, &t), IG_ERR_IO);
    assert_null(t);
    assert_non_null(strstr(ig_last_error(), pattern));
}

/* ---- text ---- */

static void text_bytes_are_the_tokens_and_an_empty_file_is_an_error(void **state) {
    (void)state;
    const char *p = path_in("text.txt");
    write_bytes(p, "Hi!\n\xff\x80", 6);
    ig_tokens *t = NULL;
    assert_int_equal(ig_tokens_open_text(p, &t), IG_OK);
    assert_int_equal(ig_tokens_count(t), 6);
    int want[6] = {'H', 'i', '!', '\n', 255, 128};
    for (int i = 0; i < 6; i++) assert_int_equal(ig_tokens_get(t, i), want[i]);
    ig_tokens_free(t);
    write_bytes(p, "", 0);
    assert_int_equal(ig_tokens_open_text(p, &t), IG_ERR_FORMAT);
    assert_null(t);
    assert_non_null(strstr(ig_last_error(), p));
    unlink(p);
    assert_int_equal(ig_tokens_open_text(p, &t), IG_ERR_IO);
}

/* ---- loader ---- */

/* tokens 0..n-1: a token names its own position */
static ig_tokens *positions(int n) {
    uint16_t *v = malloc(sizeof *v * (size_t)n);
    for (int i = 0; i < n; i++) v[i] = (uint16_t)i;
    ig_tokens *t = ig_tokens_from_array(v, n);
    free(v);
    return t;
}

static ig_loader *loader(const ig_tokens *t, int B, int T, bool shuffle, uint64_t seed,
                         int rank, int world) {
    ig_loader_config c = IG_LOADER_CONFIG_INIT;
    c.batch = B;
    c.seq_len = T;
    c.shuffle = shuffle;
    c.seed = seed;
    c.rank = rank;
    c.world = world;
    ig_loader *l = NULL;
    assert_int_equal(ig_loader_new(t, &c, &l), IG_OK);
    return l;
}

/* The start token of each of the batch's rows into starts[]; checks targets
 * are the inputs shifted by one. */
static void next_starts(ig_loader *l, int64_t *starts) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x, *y;
    assert_int_equal(ig_loader_next(l, IG_CPU, &x, &y), IG_OK);
    assert_int_equal(ig_tensor_dtype(x), IG_I64);
    int64_t B = ig_tensor_size(x, 0), T = ig_tensor_size(x, 1);
    const int64_t *px = ig_tensor_data(x), *py = ig_tensor_data(y);
    for (int64_t b = 0; b < B; b++) {
        starts[b] = px[b * T];
        for (int64_t i = 0; i < T; i++) {
            assert_int_equal(px[b * T + i], starts[b] + i);
            assert_int_equal(py[b * T + i], starts[b] + i + 1);
        }
    }
    ig_scope_end(s);
}

/* The order of one epoch's windows (as window indices), read in batches of B
 * that divide the window count. */
static void epoch_order(ig_loader *l, int B, int T, int64_t *order) {
    int64_t W = ig_loader_windows(l);
    for (int64_t k = 0; k < W; k += B) {
        next_starts(l, order + k);
        for (int b = 0; b < B; b++) order[k + b] /= T;
    }
}

static void an_epoch_visits_every_window_once_with_and_without_shuffle(void **state) {
    (void)state;
    enum { T = 4, W = 12 };
    ig_tokens *t = positions(W * T + 3); /* 2 tokens left after the last window */
    for (int shuffle = 0; shuffle <= 1; shuffle++) {
        ig_loader *l = loader(t, 3, T, shuffle, 5, 0, 1);
        assert_int_equal(ig_loader_windows(l), W);
        int64_t order[W];
        epoch_order(l, 3, T, order);
        int seen[W] = {0};
        for (int k = 0; k < W; k++) {
            assert_true(order[k] >= 0 && order[k] < W);
            seen[order[k]]++;
            if (!shuffle) assert_int_equal(order[k], k);
        }
        for (int k = 0; k < W; k++) assert_int_equal(seen[k], 1);
        ig_loader_cursor c = ig_loader_get_cursor(l);
        assert_int_equal(c.epoch, 1);
        assert_int_equal(c.position, 0);
        ig_loader_free(l);
    }
    ig_tokens_free(t);
}

static void a_batch_runs_on_into_the_next_epoch(void **state) {
    (void)state;
    ig_tokens *t = positions(5 * 2 + 1); /* 5 windows of T = 2 */
    ig_loader *l = loader(t, 3, 2, false, 0, 0, 1);
    int64_t s[3];
    next_starts(l, s);
    next_starts(l, s); /* windows 3, 4 of epoch 0, then window 0 of epoch 1 */
    assert_int_equal(s[0], 6);
    assert_int_equal(s[1], 8);
    assert_int_equal(s[2], 0);
    ig_loader_cursor c = ig_loader_get_cursor(l);
    assert_int_equal(c.epoch, 1);
    assert_int_equal(c.position, 1);
    ig_loader_free(l);
    ig_tokens_free(t);
}

static void shuffled_orders_differ_between_epochs_and_repeat_for_a_seed(void **state) {
    (void)state;
    enum { T = 3, W = 40 };
    ig_tokens *t = positions(W * T + 1);
    int64_t a[3][W], b[2][W], c[W];
    ig_loader *la = loader(t, 4, T, true, 1234, 0, 1), *lb = loader(t, 4, T, true, 1234, 0, 1);
    ig_loader *lc = loader(t, 4, T, true, 999, 0, 1);
    for (int e = 0; e < 3; e++) epoch_order(la, 4, T, a[e]);
    for (int e = 0; e < 2; e++) epoch_order(lb, 4, T, b[e]);
    epoch_order(lc, 4, T, c);
    assert_memory_equal(a[0], b[0], sizeof a[0]);
    assert_memory_equal(a[1], b[1], sizeof a[1]);
    assert_memory_not_equal(a[0], a[1], sizeof a[0]);
    assert_memory_not_equal(a[1], a[2], sizeof a[0]);
    assert_memory_not_equal(a[0], c, sizeof c);
    int64_t identity[W];
    for (int k = 0; k < W; k++) identity[k] = k;
    assert_memory_not_equal(a[0], identity, sizeof identity);
    ig_loader_free(la);
    ig_loader_free(lb);
    ig_loader_free(lc);
    ig_tokens_free(t);
}

static void targets_are_the_inputs_shifted_by_one_token(void **state) {
    (void)state;
    enum { T = 5, N = 4 * T + 1 };
    uint16_t v[N];
    for (int i = 0; i < N; i++) v[i] = token_at(i);
    ig_tokens *t = ig_tokens_from_array(v, N);
    ig_loader *l = loader(t, 4, T, false, 0, 0, 1);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x, *y;
    assert_int_equal(ig_loader_next(l, IG_CPU, &x, &y), IG_OK);
    assert_int_equal(ig_tensor_size(y, 0), 4);
    assert_int_equal(ig_tensor_size(y, 1), T);
    const int64_t *px = ig_tensor_data(x), *py = ig_tensor_data(y);
    for (int b = 0; b < 4; b++)
        for (int i = 0; i < T; i++) {
            assert_int_equal(px[b * T + i], v[b * T + i]);
            assert_int_equal(py[b * T + i], v[b * T + i + 1]);
        }
    ig_scope_end(s);
    ig_loader_free(l);
    ig_tokens_free(t);
}

static void a_restored_cursor_reproduces_the_following_batches(void **state) {
    (void)state;
    enum { T = 2, B = 3, STEPS = 9 };
    ig_tokens *t = positions(7 * T + 1); /* 7 windows: batches straddle epochs */
    for (int shuffle = 0; shuffle <= 1; shuffle++) {
        ig_loader *run = loader(t, B, T, shuffle, 42, 0, 1);
        int64_t want[STEPS][B];
        ig_loader_cursor saved = {0, 0};
        for (int i = 0; i < STEPS; i++) {
            if (i == 4) saved = ig_loader_get_cursor(run);
            next_starts(run, want[i]);
        }
        ig_loader *resumed = loader(t, B, T, shuffle, 42, 0, 1);
        ig_loader_set_cursor(resumed, saved);
        for (int i = 4; i < STEPS; i++) {
            int64_t got[B];
            next_starts(resumed, got);
            assert_memory_equal(got, want[i], sizeof got);
        }
        ig_loader_cursor a = ig_loader_get_cursor(run), b = ig_loader_get_cursor(resumed);
        assert_int_equal(a.epoch, b.epoch);
        assert_int_equal(a.position, b.position);
        /* a position past the epoch's end carries into the next epochs */
        ig_loader_set_cursor(resumed, (ig_loader_cursor){1, 7 * 2 + 3});
        b = ig_loader_get_cursor(resumed);
        assert_int_equal(b.epoch, 3);
        assert_int_equal(b.position, 3);
        ig_loader_free(run);
        ig_loader_free(resumed);
    }
    ig_tokens_free(t);
}

static void the_ranks_rows_concatenate_to_the_single_process_batch(void **state) {
    (void)state;
    enum { T = 3, B = 2, WORLD = 3, STEPS = 5 };
    ig_tokens *t = positions(17 * T + 1);
    ig_loader *whole = loader(t, B * WORLD, T, true, 7, 0, 1), *rank[WORLD];
    for (int r = 0; r < WORLD; r++) rank[r] = loader(t, B, T, true, 7, r, WORLD);
    for (int i = 0; i < STEPS; i++) {
        int64_t want[B * WORLD], got[B * WORLD];
        next_starts(whole, want);
        for (int r = 0; r < WORLD; r++) next_starts(rank[r], got + r * B);
        assert_memory_equal(got, want, sizeof got);
    }
    for (int r = 0; r < WORLD; r++) {
        ig_loader_cursor a = ig_loader_get_cursor(whole), b = ig_loader_get_cursor(rank[r]);
        assert_int_equal(a.epoch, b.epoch);
        assert_int_equal(a.position, b.position);
        ig_loader_free(rank[r]);
    }
    ig_loader_free(whole);
    ig_tokens_free(t);
}

static void the_loader_stays_inside_its_token_range(void **state) {
    (void)state;
    ig_tokens *t = positions(100);
    ig_loader_config c = IG_LOADER_CONFIG_INIT;
    c.batch = 1;
    c.seq_len = 4;
    c.begin = 10;
    c.end = 50;
    ig_loader *l = NULL;
    assert_int_equal(ig_loader_new(t, &c, &l), IG_OK);
    assert_int_equal(ig_loader_windows(l), 9); /* starts 10, 14, ..., 42: 42 + 5 <= 50 */
    int seen[9] = {0};
    for (int k = 0; k < 9; k++) {
        int64_t s;
        next_starts(l, &s);
        assert_true(s >= 10 && s + 5 <= 50 && (s - 10) % 4 == 0);
        seen[(s - 10) / 4]++;
    }
    for (int k = 0; k < 9; k++) assert_int_equal(seen[k], 1);
    ig_loader_free(l);
    c.end = 14; /* 4 tokens: no window of 5 */
    assert_int_equal(ig_loader_new(t, &c, &l), IG_ERR_INVALID);
    assert_null(l);
    assert_non_null(strstr(ig_last_error(), "no window"));
    c.end = 101; /* past the stream */
    assert_int_equal(ig_loader_new(t, &c, &l), IG_ERR_INVALID);
    assert_non_null(strstr(ig_last_error(), "outside a stream of 100 tokens"));
    ig_tokens_free(t);
}

static void a_batch_allocates_only_its_two_outputs(void **state) {
    (void)state;
    ig_tokens *t = positions(1000);
    ig_loader *l = loader(t, 4, 8, true, 3, 0, 1);
    ig_scope *s = ig_scope_begin();
    ig_memory_stats a, b;
    ig_tensor *x, *y;
    assert_int_equal(ig_loader_next(l, IG_CPU, &x, &y), IG_OK); /* warms the allocator */
    ig_memory_stats_get(&a);
    assert_int_equal(ig_loader_next(l, IG_CPU, &x, &y), IG_OK);
    ig_memory_stats_get(&b);
    assert_int_equal(b.live_tensors - a.live_tensors, 2);
    ig_scope_end(s);
    ig_loader_free(l);
    ig_tokens_free(t);
}

static void cuda_batches_equal_the_cpu_batches(void **state) {
    (void)state;
    if (ig_cuda_device_count() == 0) skip();
    ig_tokens *t = positions(500);
    ig_loader *a = loader(t, 4, 8, true, 3, 0, 1), *b = loader(t, 4, 8, true, 3, 0, 1);
    ig_scope *s = ig_scope_begin();
    ig_tensor *xa, *ya, *xb, *yb;
    assert_int_equal(ig_loader_next(a, IG_CPU, &xa, &ya), IG_OK);
    assert_int_equal(ig_loader_next(b, IG_CUDA(0), &xb, &yb), IG_OK);
    assert_int_equal(ig_tensor_device(xb).kind, IG_DEV_CUDA);
    tu_assert_close(xb, xa, 0, 0, "cuda inputs");
    tu_assert_close(yb, ya, 0, 0, "cuda targets");
    ig_scope_end(s);
    ig_loader_free(a);
    ig_loader_free(b);
    ig_tokens_free(t);
}

/* ---- MNIST ---- */

/* An idx file: magic 0x800 + ndim, the dims, then `data_len` bytes of data. */
static void write_idx(const char *path, int ndim, const uint32_t *dims, const uint8_t *data,
                      size_t data_len) {
    size_t header = 4 + 4 * (size_t)ndim;
    uint8_t *b = malloc(header + data_len);
    put_be32(b, 0x800u + (uint32_t)ndim);
    for (int d = 0; d < ndim; d++) put_be32(b + 4 + 4 * d, dims[d]);
    if (data_len) memcpy(b + header, data, data_len);
    write_bytes(path, b, header + data_len);
    free(b);
}

static void mnist_images_scale_to_unit_range_and_labels_are_i64(void **state) {
    (void)state;
    uint8_t px[3 * 2 * 3], lab[3] = {7, 0, 200}; /* any label byte is kept */
    for (int i = 0; i < 18; i++) px[i] = (uint8_t)(i * 15);
    const char *ip = path_in("img.idx3"), *lp = path_in("lab.idx1");
    write_idx(ip, 3, (uint32_t[]){3, 2, 3}, px, sizeof px);
    write_idx(lp, 1, (uint32_t[]){3}, lab, sizeof lab);
    ig_scope *s = ig_scope_begin(); /* the outputs are kept: they outlive it */
    ig_tensor *x = NULL, *y = NULL;
    assert_int_equal(ig_mnist_load(ip, lp, &x, &y), IG_OK);
    ig_scope_end(s);
    assert_int_equal(ig_tensor_ndim(x), 2);
    assert_int_equal(ig_tensor_size(x, 0), 3);
    assert_int_equal(ig_tensor_size(x, 1), 6);
    assert_int_equal(ig_tensor_dtype(x), IG_F32);
    assert_int_equal(ig_tensor_dtype(y), IG_I64);
    assert_int_equal(ig_tensor_numel(y), 3);
    const float *fx = ig_tensor_data(x);
    for (int i = 0; i < 18; i++) assert_true(fx[i] == (float)px[i] / 255.0f);
    assert_true(fx[17] == 1.0f);
    for (int i = 0; i < 3; i++) assert_int_equal(((int64_t *)ig_tensor_data(y))[i], lab[i]);
    ig_tensor_free(x);
    ig_tensor_free(y);
    unlink(ip);
    unlink(lp);
}

static void assert_mnist_rejected(const char *ip, const char *lp, const char *path,
                                  const char *frag) {
    ig_tensor *x = NULL, *y = NULL;
    assert_int_equal(ig_mnist_load(ip, lp, &x, &y), IG_ERR_FORMAT);
    assert_null(x);
    assert_null(y);
    const char *msg = ig_last_error();
    if (!strstr(msg, path) || !strstr(msg, frag))
        fail_msg("message \"%s\" should name %s and \"%s\"", msg, path, frag);
}

static void malformed_mnist_files_fail_naming_the_file_and_field(void **state) {
    (void)state;
    uint8_t px[2 * 4 * 4] = {0}, lab[2] = {1, 2};
    const char *ip = path_in("img.idx3"), *lp = path_in("lab.idx1");
    write_idx(lp, 1, (uint32_t[]){2}, lab, 2);
    /* labels given as images: magic 0x801 where 0x803 is expected */
    assert_mnist_rejected(lp, lp, lp, "byte 0 (magic): expected 0x00000803, got 0x00000801");
    write_idx(ip, 3, (uint32_t[]){2, 4, 4}, px, sizeof px - 1); /* one pixel short */
    assert_mnist_rejected(ip, lp, ip, "byte 16: expected 2 x 4 x 4 bytes");
    write_idx(ip, 3, (uint32_t[]){2, 4, 4}, px, sizeof px);
    write_idx(lp, 1, (uint32_t[]){3}, (uint8_t[]){1, 2, 3}, 3); /* 3 labels for 2 images */
    assert_mnist_rejected(ip, lp, lp, "byte 4 (count): expected 2 labels");
    write_bytes(ip, "\0\0\x08\x03\0\0", 6); /* truncated header */
    assert_mnist_rejected(ip, lp, ip, "header: expected 16 bytes");
    write_idx(ip, 3, (uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu}, px, sizeof px);
    assert_mnist_rejected(ip, lp, ip, "byte 16");
    unlink(ip);
    unlink(lp);
    ig_tensor *x = NULL, *y = NULL;
    assert_int_equal(ig_mnist_load(ip, lp, &x, &y), IG_ERR_IO);
    assert_non_null(strstr(ig_last_error(), ip));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shards_read_back_as_one_stream_through_a_glob),
        cmocka_unit_test(malformed_shards_fail_naming_the_file_and_field),
        cmocka_unit_test(a_glob_without_a_match_is_an_io_error_naming_the_pattern),
        cmocka_unit_test(text_bytes_are_the_tokens_and_an_empty_file_is_an_error),
        cmocka_unit_test(an_epoch_visits_every_window_once_with_and_without_shuffle),
        cmocka_unit_test(a_batch_runs_on_into_the_next_epoch),
        cmocka_unit_test(shuffled_orders_differ_between_epochs_and_repeat_for_a_seed),
        cmocka_unit_test(targets_are_the_inputs_shifted_by_one_token),
        cmocka_unit_test(a_restored_cursor_reproduces_the_following_batches),
        cmocka_unit_test(the_ranks_rows_concatenate_to_the_single_process_batch),
        cmocka_unit_test(the_loader_stays_inside_its_token_range),
        cmocka_unit_test(a_batch_allocates_only_its_two_outputs),
        cmocka_unit_test(cuda_batches_equal_the_cpu_batches),
        cmocka_unit_test(mnist_images_scale_to_unit_range_and_labels_are_i64),
        cmocka_unit_test(malformed_mnist_files_fail_naming_the_file_and_field),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}

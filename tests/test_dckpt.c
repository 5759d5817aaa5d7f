/* tests/test_dckpt.c: sharded checkpoints, run under mpirun at 1, 2 and 4
 * ranks (tests/run_mpi.sh); every rank runs every test in the same order.
 * Round trips at the job's world size are bit exact on every rank (every
 * dtype kind, 0-d, empty, non-contiguous, tensors with fewer elements than
 * ranks) and each rank writes only its 1/W; keep; checkpoints written by any
 * number of ranks (the real one, and 1, 3, 4 simulated in one process with
 * ig__dckpt_save_as) read back whole and in every rank's range at any other
 * world size; a failure on one rank fails the save on all and commits
 * nothing; every kind of corrupt checkpoint is refused at open, naming the
 * tensor and the file; half-written steps are ignored; async saves keep the
 * values of when they were called; export to safetensors. Files go to a
 * fresh directory under /tmp (rank 0 makes it, broadcasts its name, removes
 * it at the end); each rank has a private subdirectory for the tests that
 * need no collectives. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ignis/dckpt.h"
#include "sharding/dckpt_impl.h"
#include "tests/testutil.h"

static ig_pg *pg; /* NULL: one process without MPI */
static int rank, world = 1;
static char base[256];

static void barrier(void) {
    if (pg) assert_int_equal(ig_pg_barrier(pg), IG_OK);
}

/* base/name (shared by the ranks) or base/p<rank>/name (this rank's), in a
 * rotating static buffer. */
static const char *shared(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", base, name);
    return p;
}

static const char *mine(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/p%d/%s", base, rank, name);
    return p;
}

static const char *step_dir(const char *dir, int64_t step) {
    static char buf[4][600];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 600, "%s/step_%08lld", dir, (long long)step);
    return p;
}

static int64_t file_size(const char *dir, const char *name) {
    char p[700];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* ---- the tensors saved: the same on every rank (same seed) ---- */

enum { NT = 7 };
typedef struct set {
    const char *names[NT];
    ig_tensor *t[NT];
} set;

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

/* "opt.m" comes last: it is the last chunk of every rank's file. */
static void make_set(set *s, unsigned seed) {
    srand(seed);
    static const char *const names[NT] = {"model.w",     "model.b", "opt.step", "model.t",
                                          "model.empty", "model.h", "opt.m"};
    memcpy(s->names, names, sizeof names);
    s->t[0] = random_bits(IG_SHAPE(5, 7), IG_F32);
    s->t[1] = random_bits(IG_SHAPE(3), IG_BF16); /* fewer elements than 4 ranks */
    s->t[2] = random_bits(0, NULL, IG_I64);      /* 0-d */
    s->t[3] = ig_transpose(random_bits(IG_SHAPE(4, 6), IG_F16), 0, 1);
    s->t[4] = random_bits(IG_SHAPE(2, 0), IG_F32);
    s->t[5] = random_bits(IG_SHAPE(2, 3, 2), IG_U8);
    s->t[6] = random_bits(IG_SHAPE(33), IG_F64);
    assert_false(ig_tensor_is_contiguous(s->t[3]));
}

static unsigned char *host_bytes(ig_tensor *t) {
    size_t nb = (size_t)ig_tensor_numel(t) * ig_dtype_size(ig_tensor_dtype(t));
    unsigned char *b = malloc(nb + 1);
    assert_int_equal(ig_tensor_to_host(t, b), IG_OK);
    return b;
}

static void assert_same_bytes(ig_tensor *a, ig_tensor *b, const char *what) {
    assert_int_equal(ig_tensor_dtype(a), ig_tensor_dtype(b));
    assert_int_equal(ig_tensor_numel(a), ig_tensor_numel(b));
    size_t nb = (size_t)ig_tensor_numel(a) * ig_dtype_size(ig_tensor_dtype(a));
    unsigned char *x = host_bytes(a), *y = host_bytes(b);
    if (memcmp(x, y, nb)) fail_msg("%s: bytes differ after the round trip (rank %d)", what, rank);
    free(x);
    free(y);
}

/* Every tensor of the checkpoint read whole, and, for every world size M in
 * 1..4, every rank's range of it: what a job of M ranks resuming reads. */
static void assert_holds(const char *stepdir, const set *s) {
    ig_dckpt *c;
    assert_int_equal(ig_dckpt_open(stepdir, &c), IG_OK);
    assert_int_equal(ig_dckpt_count(c), NT);
    for (int i = 0; i < NT; i++) {
        ig_tensor *t = s->t[i];
        assert_string_equal(ig_dckpt_name(c, i), s->names[i]);
        ig_tensor *whole =
            ig_empty(ig_tensor_ndim(t), ig_tensor_shape(t), ig_tensor_dtype(t), IG_CPU);
        assert_int_equal(ig_dckpt_read(c, s->names[i], whole), IG_OK);
        assert_same_bytes(whole, t, s->names[i]);
        int64_t n = ig_tensor_numel(t);
        ig_tensor *flat = ig_reshape(ig_contiguous(t), 1, &n);
        for (int m = 1; m <= 4; m++)
            for (int r = 0; r < m; r++) {
                int64_t lo = n * r / m, len = n * (r + 1) / m - lo;
                ig_tensor *part = ig_empty(IG_SHAPE(len), ig_tensor_dtype(t), IG_CPU);
                assert_int_equal(ig_dckpt_read_range(c, s->names[i], lo, part), IG_OK);
                assert_same_bytes(part, ig_narrow(flat, 0, lo, len), s->names[i]);
            }
    }
    ig_dckpt_close(c);
}

/* ---- round trips at the job's world size ---- */

static void test_round_trip_at_the_world_size_is_bit_exact_on_every_rank(void **state) {
    (void)state;
    ig_scope *sc = ig_scope_begin();
    set s;
    make_set(&s, 1);
    const char *dir = shared("rt");
    const char *json = "{\"step\": 7, \"rng\": [1, 2]}";
    assert_int_equal(ig_dckpt_save(pg, dir, 7, NT, s.names, s.t, json, 0), IG_OK);
    char latest[600];
    int64_t step = -1;
    assert_int_equal(ig_ckpt_latest(dir, latest, sizeof latest, &step), IG_OK);
    assert_int_equal(step, 7);
    assert_string_equal(latest, step_dir(dir, 7));
    assert_holds(latest, &s);

    ig_dckpt *c;
    assert_int_equal(ig_dckpt_open(latest, &c), IG_OK);
    assert_string_equal(ig_dckpt_state(c), json);
    /* into a non-contiguous destination; wrong dtype, shape, range refused */
    ig_tensor *dt = ig_transpose(ig_zeros(IG_SHAPE(7, 5), IG_F32, IG_CPU), 0, 1);
    assert_int_equal(ig_dckpt_read(c, "model.w", dt), IG_OK);
    assert_same_bytes(dt, s.t[0], "model.w into a transposed view");
    assert_int_equal(ig_dckpt_read(c, "model.w", ig_empty(IG_SHAPE(5, 7), IG_F64, IG_CPU)),
                     IG_ERR_INVALID);
    assert_int_equal(ig_dckpt_read(c, "model.w", ig_empty(IG_SHAPE(7, 5), IG_F32, IG_CPU)),
                     IG_ERR_INVALID);
    assert_int_equal(ig_dckpt_read_range(c, "model.w", 30, ig_empty(IG_SHAPE(6), IG_F32, IG_CPU)),
                     IG_ERR_INVALID);
    assert_int_equal(ig_dckpt_read(c, "nope", ig_empty(IG_SHAPE(1), IG_F32, IG_CPU)),
                     IG_ERR_INVALID);
    ig_dckpt_close(c);

    /* each rank wrote exactly its 1/W of every tensor, and no one else did */
    for (int r = 0; r < world; r++) {
        char f[32];
        snprintf(f, sizeof f, "rank_%05d.bin", r);
        int64_t want = 0;
        for (int i = 0; i < NT; i++) {
            int64_t n = ig_tensor_numel(s.t[i]);
            want += (n * (r + 1) / world - n * r / world) *
                    (int64_t)ig_dtype_size(ig_tensor_dtype(s.t[i]));
        }
        assert_int_equal(file_size(latest, f), want);
    }
    char extra[32];
    snprintf(extra, sizeof extra, "rank_%05d.bin", world);
    assert_int_equal(file_size(latest, extra), -1);
    /* no state: "" */
    assert_int_equal(ig_dckpt_save(pg, dir, 8, 1, s.names, s.t, NULL, 0), IG_OK);
    assert_int_equal(ig_dckpt_open(step_dir(dir, 8), &c), IG_OK);
    assert_string_equal(ig_dckpt_state(c), "");
    ig_dckpt_close(c);
    barrier();
    ig_scope_end(sc);
}

static void test_keep_two_leaves_the_two_newest_steps(void **state) {
    (void)state;
    ig_scope *sc = ig_scope_begin();
    set s;
    make_set(&s, 2);
    const char *dir = shared("keep");
    for (int step = 1; step <= 3; step++)
        assert_int_equal(ig_dckpt_save(pg, dir, step * 10, NT, s.names, s.t, "{}", 2), IG_OK);
    struct stat sb;
    assert_int_not_equal(stat(step_dir(dir, 10), &sb), 0);
    assert_int_equal(stat(step_dir(dir, 20), &sb), 0);
    assert_int_equal(stat(step_dir(dir, 30), &sb), 0);
    char latest[600];
    int64_t step;
    assert_int_equal(ig_ckpt_latest(dir, latest, sizeof latest, &step), IG_OK);
    assert_int_equal(step, 30);
    assert_holds(step_dir(dir, 20), &s);
    barrier();
    ig_scope_end(sc);
}

/* ---- N ranks write, M ranks read ---- */

static void test_a_checkpoint_of_any_world_size_reads_back_at_any_other(void **state) {
    (void)state;
    ig_scope *sc = ig_scope_begin();
    set s;
    make_set(&s, 3);
    /* written by this job's ranks, read by each */
    assert_int_equal(ig_dckpt_save(pg, shared("nm"), 1, NT, s.names, s.t, NULL, 0), IG_OK);
    assert_holds(step_dir(shared("nm"), 1), &s);
    /* written as by 1, 3 and 4 ranks */
    static const int sizes[] = {1, 3, 4};
    for (int k = 0; k < 3; k++) {
        int n = sizes[k];
        assert_int_equal(ig__dckpt_save_as(mine("sim"), n, n, NT, s.names, s.t, NULL, 0), IG_OK);
        const char *sd = step_dir(mine("sim"), n);
        for (int r = 0; r < 5; r++) {
            char f[32];
            snprintf(f, sizeof f, "rank_%05d.bin", r);
            assert_true((file_size(sd, f) >= 0) == (r < n));
        }
        assert_holds(sd, &s);
    }
    /* the layout is exactly the one a real save of that size writes */
    if (world > 1) {
        assert_int_equal(ig__dckpt_save_as(mine("same"), 1, world, NT, s.names, s.t, NULL, 0),
                         IG_OK);
        static const char *const files[] = {"metadata.json", "rank_00000.bin", "rank_00001.bin"};
        for (int i = 0; i < 3; i++) {
            char a[700], b[700], cmd[1500];
            snprintf(a, sizeof a, "%s/%s", step_dir(shared("nm"), 1), files[i]);
            snprintf(b, sizeof b, "%s/%s", step_dir(mine("same"), 1), files[i]);
            snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
            assert_int_equal(system(cmd), 0);
        }
    }
    barrier();
    ig_scope_end(sc);
}

/* ---- failures ---- */

static void
test_a_failure_on_one_rank_fails_the_save_on_every_rank_and_commits_nothing(void **state) {
    (void)state;
    ig_scope *sc = ig_scope_begin();
    set s;
    make_set(&s, 4);
    if (rank == world - 1) s.t[2] = NULL; /* a failed op, on the last rank only */
    ig_clear_error();
    const char *dir = shared("fail");
    assert_int_equal(ig_dckpt_save(pg, dir, 5, NT, s.names, s.t, "{}", 0), IG_ERR_INVALID);
    if (rank != world - 1) {
        char want[64];
        snprintf(want, sizeof want, "failed on rank %d", world - 1);
        if (!strstr(ig_last_error(), want))
            fail_msg("expected '%s', got: %s", want, ig_last_error());
    } else if (!strstr(ig_last_error(), "opt.step")) {
        fail_msg("expected the NULL tensor named, got: %s", ig_last_error());
    }
    barrier();
    char latest[600];
    assert_int_equal(ig_ckpt_latest(dir, latest, sizeof latest, NULL), IG_ERR_IO);

    /* the same through the async writer: every rank's wait fails */
    ig_dckpt_writer *w = ig_dckpt_writer_new(pg);
    assert_non_null(w);
    ig_clear_error();
    assert_int_equal(ig_dckpt_save_async(w, dir, 6, NT, s.names, s.t, "{}", 0), IG_OK);
    assert_int_equal(ig_dckpt_wait(w), IG_ERR_INVALID);
    assert_int_equal(ig_dckpt_wait(w), IG_OK); /* collected once */
    ig_dckpt_writer_free(w);
    assert_int_equal(ig_ckpt_latest(dir, latest, sizeof latest, NULL), IG_ERR_IO);
    barrier();
    ig_scope_end(sc);
}

static json_t *load_meta(const char *stepdir) {
    char p[700];
    snprintf(p, sizeof p, "%s/metadata.json", stepdir);
    json_error_t e;
    json_t *root = json_load_file(p, 0, &e);
    assert_non_null(root);
    return root;
}

static void store_meta(const char *stepdir, json_t *root) {
    char p[700];
    snprintf(p, sizeof p, "%s/metadata.json", stepdir);
    assert_int_equal(json_dump_file(root, p, JSON_COMPACT), 0);
    json_decref(root);
}

static json_t *tensor_of(json_t *root, const char *name) {
    json_t *t = json_object_get(json_object_get(root, "tensors"), name);
    assert_non_null(t);
    return t;
}

static json_t *chunk_of(json_t *root, const char *name, int k) {
    json_t *c = json_array_get(json_object_get(tensor_of(root, name), "chunks"), (size_t)k);
    assert_non_null(c);
    return c;
}

/* Opening fails with IG_ERR_FORMAT naming a, b and c, and loads nothing. */
static void assert_refused(const char *stepdir, const char *a, const char *b, const char *c) {
    ig_dckpt *ck = (ig_dckpt *)&ck;
    ig_status st = ig_dckpt_open(stepdir, &ck);
    const char *m = ig_last_error();
    if (st != IG_ERR_FORMAT || !strstr(m, a) || !strstr(m, b) || (c && !strstr(m, c)))
        fail_msg("expected IG_ERR_FORMAT naming '%s', '%s' and '%s', got %s: %s", a, b, c ? c : "",
                 ig_status_name(st), m);
    assert_null(ck);
}

static void test_a_corrupt_checkpoint_is_refused_at_open_naming_the_tensor_and_file(void **state) {
    (void)state;
    ig_scope *sc = ig_scope_begin();
    set s;
    make_set(&s, 5);
    const char *dir = mine("bad");
    int64_t step = 0;
    /* a fresh good checkpoint of 2 ranks */
#define FRESH()                                                                                    \
    (assert_int_equal(ig__dckpt_save_as(dir, ++step, 2, NT, s.names, s.t, "{}", 0), IG_OK),        \
     step_dir(dir, step))
    const char *sd = FRESH();
    assert_holds(sd, &s);

    /* a truncated rank file: its last chunk (opt.m) lies past its end */
    sd = FRESH();
    char p[700];
    snprintf(p, sizeof p, "%s/rank_00001.bin", sd);
    assert_int_equal(truncate(p, file_size(sd, "rank_00001.bin") - 1), 0);
    assert_refused(sd, "tensor 'opt.m'", "rank_00001.bin", "truncated");

    /* a missing rank file */
    sd = FRESH();
    snprintf(p, sizeof p, "%s/rank_00000.bin", sd);
    assert_int_equal(unlink(p), 0);
    assert_refused(sd, "tensor 'model.w'", "rank_00000.bin", "cannot stat");

    /* a chunk pointing past its file */
    sd = FRESH();
    json_t *m = load_meta(sd);
    json_object_set_new(chunk_of(m, "model.w", 1), "offset", json_integer(100000));
    store_meta(sd, m);
    assert_refused(sd, "tensor 'model.w': chunk 1", "rank_00001.bin", "past the end");

    /* chunks that leave a hole, or overlap */
    sd = FRESH();
    m = load_meta(sd);
    json_array_remove(json_object_get(tensor_of(m, "opt.m"), "chunks"), 0);
    store_meta(sd, m);
    assert_refused(sd, "tensor 'opt.m'", "metadata.json", "in no chunk");
    sd = FRESH();
    m = load_meta(sd);
    json_array_remove(json_object_get(tensor_of(m, "opt.m"), "chunks"), 1);
    store_meta(sd, m);
    assert_refused(sd, "tensor 'opt.m'", "metadata.json", "in no chunk");
    sd = FRESH();
    m = load_meta(sd);
    json_object_set_new(chunk_of(m, "model.w", 1), "start", json_integer(10));
    store_meta(sd, m);
    assert_refused(sd, "tensor 'model.w'", "metadata.json", "in another chunk too");
    sd = FRESH();
    m = load_meta(sd);
    json_object_set_new(chunk_of(m, "model.w", 1), "start", json_integer(30));
    store_meta(sd, m);
    assert_refused(sd, "tensor 'model.w': chunk 1", "metadata.json", "outside the tensor");

    /* lengths that do not match the dtype */
    sd = FRESH();
    m = load_meta(sd);
    json_object_set_new(chunk_of(m, "opt.m", 0), "length", json_integer(13));
    store_meta(sd, m);
    assert_refused(sd, "tensor 'opt.m': chunk 0", "metadata.json", "multiple of 8");

    /* a bad dtype; a dtype whose size does not match the chunks */
    sd = FRESH();
    m = load_meta(sd);
    json_object_set_new(tensor_of(m, "model.b"), "dtype", json_string("F33"));
    store_meta(sd, m);
    assert_refused(sd, "tensor 'model.b'", "metadata.json", "dtype");
    sd = FRESH();
    m = load_meta(sd);
    json_object_set_new(tensor_of(m, "model.w"), "dtype", json_string("F64"));
    store_meta(sd, m);
    assert_refused(sd, "tensor 'model.w'", "metadata.json", NULL);

    /* a shape whose product the chunks do not cover */
    sd = FRESH();
    m = load_meta(sd);
    json_object_set_new(tensor_of(m, "model.w"), "shape", json_pack("[i, i]", 5, 8));
    store_meta(sd, m);
    assert_refused(sd, "tensor 'model.w'", "metadata.json", "in no chunk");

    /* file names outside the directory, or not a rank file */
    static const char *const names[] = {"../rank_00001.bin", "/etc/passwd", "rank_1.bin",
                                        "rank_00001.bin/x", "metadata.json"};
    for (int i = 0; i < 5; i++) {
        sd = FRESH();
        m = load_meta(sd);
        json_object_set_new(chunk_of(m, "model.w", 1), "file", json_string(names[i]));
        store_meta(sd, m);
        assert_refused(sd, "tensor 'model.w': chunk 1", names[i], "rank_NNNNN.bin");
    }

    /* fields of the wrong type, missing, or a wrong format */
    sd = FRESH();
    m = load_meta(sd);
    json_object_set_new(chunk_of(m, "model.w", 0), "offset", json_string("0"));
    store_meta(sd, m);
    assert_refused(sd, "tensor 'model.w': chunk 0", "metadata.json", "offset");
    sd = FRESH();
    m = load_meta(sd);
    json_object_del(tensor_of(m, "model.b"), "chunks");
    store_meta(sd, m);
    assert_refused(sd, "tensor 'model.b'", "metadata.json", "chunks");
    sd = FRESH();
    m = load_meta(sd);
    json_object_set_new(m, "version", json_integer(2));
    store_meta(sd, m);
    assert_refused(sd, "metadata.json", "version", NULL);
    sd = FRESH();
    snprintf(p, sizeof p, "%s/metadata.json", sd);
    assert_int_equal(truncate(p, 20), 0);
    assert_refused(sd, "metadata.json", "invalid JSON", NULL);
#undef FRESH
    ig_scope_end(sc);
}

static void test_a_half_written_step_is_ignored_by_latest(void **state) {
    (void)state;
    ig_scope *sc = ig_scope_begin();
    set s;
    make_set(&s, 6);
    const char *dir = mine("half");
    assert_int_equal(ig__dckpt_save_as(dir, 1, 2, NT, s.names, s.t, "{}", 0), IG_OK);
    assert_int_equal(ig__dckpt_save_as(dir, 2, 2, NT, s.names, s.t, "{}", 0), IG_OK);
    /* killed while saving step 3: one rank file, half written, no metadata */
    char tmp[600], p[700];
    assert_int_equal(ig_ckpt_begin(dir, 3, tmp, sizeof tmp), IG_OK);
    snprintf(p, sizeof p, "%s/rank_00000.bin", tmp);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs("half", f);
    fclose(f);
    char latest[600];
    int64_t step;
    assert_int_equal(ig_ckpt_latest(dir, latest, sizeof latest, &step), IG_OK);
    assert_int_equal(step, 2);
    assert_holds(latest, &s);
    /* the rerun of step 3 replaces the leftovers */
    assert_int_equal(ig__dckpt_save_as(dir, 3, 4, NT, s.names, s.t, "{}", 0), IG_OK);
    assert_int_equal(ig_ckpt_latest(dir, latest, sizeof latest, &step), IG_OK);
    assert_int_equal(step, 3);
    assert_holds(latest, &s);
    ig_scope_end(sc);
}

/* ---- async ---- */

static void test_an_async_save_holds_the_values_of_when_it_was_called(void **state) {
    (void)state;
    ig_scope *sc = ig_scope_begin();
    set s, old;
    make_set(&s, 7);
    for (int i = 0; i < NT; i++) {
        old.names[i] = s.names[i];
        old.t[i] = ig_clone(s.t[i]);
    }
    ig_dckpt_writer *w = ig_dckpt_writer_new(pg);
    assert_non_null(w);
    const char *dir = shared("async");
    assert_int_equal(ig_dckpt_save_async(w, dir, 1, NT, s.names, s.t, "{\"a\": 1}", 0), IG_OK);
    for (int i = 0; i < NT; i++)
        assert_int_equal(ig_fill_(s.t[i], 42), IG_OK); /* training goes on */
    assert_int_equal(ig_dckpt_wait(w), IG_OK);
    assert_holds(step_dir(dir, 1), &old);

    /* a second save first waits for the one in flight; free waits too */
    assert_int_equal(ig_dckpt_save_async(w, dir, 2, NT, s.names, s.t, "{\"a\": 2}", 0), IG_OK);
    assert_int_equal(ig_dckpt_save_async(w, dir, 3, NT, s.names, s.t, "{\"a\": 3}", 2), IG_OK);
    for (int i = 0; i < NT; i++) assert_int_equal(ig_fill_(s.t[i], 7), IG_OK);
    ig_dckpt_writer_free(w);
    for (int i = 0; i < NT; i++) assert_int_equal(ig_fill_(s.t[i], 42), IG_OK);
    assert_holds(step_dir(dir, 2), &s);
    assert_holds(step_dir(dir, 3), &s);
    ig_dckpt *c;
    assert_int_equal(ig_dckpt_open(step_dir(dir, 3), &c), IG_OK);
    assert_string_equal(ig_dckpt_state(c), "{\"a\": 3}");
    ig_dckpt_close(c);
    struct stat sb;
    assert_int_not_equal(stat(step_dir(dir, 1), &sb), 0); /* keep 2 */
    barrier();
    ig_scope_end(sc);
}

/* ---- export ---- */

static void test_export_writes_the_prefixed_tensors_to_one_safetensors_file(void **state) {
    (void)state;
    ig_scope *sc = ig_scope_begin();
    set s;
    make_set(&s, 8);
    const char *dir = shared("export");
    assert_int_equal(ig_dckpt_save(pg, dir, 4, NT, s.names, s.t, NULL, 0), IG_OK);
    const char *out = mine("model.safetensors");
    assert_int_equal(ig_dckpt_export(step_dir(dir, 4), "model.", out), IG_OK);
    ig_safetensors *f;
    assert_int_equal(ig_safetensors_open(out, &f), IG_OK);
    int models = 0;
    for (int i = 0; i < NT; i++) {
        if (strncmp(s.names[i], "model.", 6)) {
            assert_int_equal(ig_safetensors_find(f, s.names[i] + 4), -1);
            continue;
        }
        models++;
        ig_tensor *t = ig_safetensors_get(f, s.names[i] + 6, IG_CPU);
        assert_non_null(t);
        assert_int_equal(ig_tensor_ndim(t), ig_tensor_ndim(s.t[i]));
        for (int d = 0; d < ig_tensor_ndim(t); d++)
            assert_int_equal(ig_tensor_size(t, d), ig_tensor_size(s.t[i], d));
        assert_same_bytes(t, s.t[i], s.names[i]);
    }
    assert_int_equal(ig_safetensors_count(f), models);
    ig_safetensors_close(f);
    /* "" exports everything */
    assert_int_equal(ig_dckpt_export(step_dir(dir, 4), "", out), IG_OK);
    assert_int_equal(ig_safetensors_open(out, &f), IG_OK);
    assert_int_equal(ig_safetensors_count(f), NT);
    assert_int_not_equal(ig_safetensors_find(f, "opt.m"), -1);
    ig_safetensors_close(f);
    assert_int_equal(ig_dckpt_export(step_dir(dir, 4), "none.", out), IG_ERR_INVALID);
    barrier();
    ig_scope_end(sc);
}

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int main(void) {
    ig_pg_opts po = IG_PG_OPTS_INIT;
    po.timeout_s = 120; /* a failed assertion on one rank ends the job, not the CI */
    ig_status st = ig_pg_init_world(&po, &pg);
    if (st == IG_ERR_UNSUPPORTED) { /* no MPI: one process only */
        ig_dist_env env;
        ig_dist_env_detect(&env);
        if (env.world > 1) return 77;
        pg = NULL;
    } else if (st != IG_OK) {
        fprintf(stderr, "ig_pg_init_world: %s\n", ig_last_error());
        return 1;
    } else {
        rank = ig_pg_rank(pg);
        world = ig_pg_size(pg);
    }

    /* rank 0 makes the directory and tells the others its name */
    ig_tensor *name = ig_zeros(IG_SHAPE(sizeof base), IG_U8, IG_CPU);
    if (rank == 0) {
        snprintf(base, sizeof base, "/tmp/ig_dckpt_XXXXXX");
        if (!mkdtemp(base)) return 1;
        memcpy(ig_tensor_data(name), base, sizeof base);
    }
    if (pg && ig_pg_broadcast(pg, name, 0, NULL) != IG_OK) return 1;
    memcpy(base, ig_tensor_data(name), sizeof base);
    ig_tensor_free(name);
    if (mkdir(mine(""), 0777) != 0) return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_at_the_world_size_is_bit_exact_on_every_rank),
        cmocka_unit_test(test_keep_two_leaves_the_two_newest_steps),
        cmocka_unit_test(test_a_checkpoint_of_any_world_size_reads_back_at_any_other),
        cmocka_unit_test(
            test_a_failure_on_one_rank_fails_the_save_on_every_rank_and_commits_nothing),
        cmocka_unit_test(test_a_corrupt_checkpoint_is_refused_at_open_naming_the_tensor_and_file),
        cmocka_unit_test(test_a_half_written_step_is_ignored_by_latest),
        cmocka_unit_test(test_an_async_save_holds_the_values_of_when_it_was_called),
        cmocka_unit_test(test_export_writes_the_prefixed_tensors_to_one_safetensors_file),
    };
    int failed = TU_RUN(tests);
    if (pg) ig_pg_barrier(pg);
    if (rank == 0) nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    ig_pg_free(pg);
    return failed ? 1 : 0;
}

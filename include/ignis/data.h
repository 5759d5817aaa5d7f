/* ignis/data.h: training data. Token streams (llm.c's .bin shards, or raw text
 * read as bytes), the loader of (B, T) windows with deterministic shuffling
 * and a resumable cursor, and MNIST idx files.
 *
 * Every reader distrusts its file: a bad magic, a count beyond the file's
 * end, a truncated header give IG_ERR_FORMAT with a one-line message naming
 * the file, the byte offset or field, and what was expected. */
#ifndef IGNIS_DATA_H
#define IGNIS_DATA_H

#include "ignis/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- token streams ---- */
typedef struct ig_tokens ig_tokens;

/* llm.c shards: a 256 x int32 header (magic 20240520, version 1, token count),
 * then uint16 tokens. `pattern` is a path or a glob; shards are taken in
 * sorted order and read as one stream. Files are memory-mapped. */
ig_status ig_tokens_open_shards(const char *pattern, ig_tokens **out);
/* Raw text at byte level: token = byte value (vocabulary 256). An empty file
 * is IG_ERR_FORMAT. The file is memory-mapped. */
ig_status ig_tokens_open_text(const char *path, ig_tokens **out);
/* Tokens held in memory (copied). NULL when memory runs out. */
ig_tokens *ig_tokens_from_array(const uint16_t *tokens, int64_t n);
int64_t ig_tokens_count(const ig_tokens *t);
/* Token i of the stream (asserts 0 <= i < count). */
int ig_tokens_get(const ig_tokens *t, int64_t i);
/* Tokens [start, start + n) into dst, across shard boundaries (asserts the
 * range lies in the stream). */
void ig_tokens_read(const ig_tokens *t, int64_t start, int64_t n, int64_t *dst);
/* NULL is allowed. Files mapped by the stream must not shrink while open. */
void ig_tokens_free(ig_tokens *t);

/* ---- the (B, T) window loader ----
 * Windows of T+1 tokens start at multiples of T within [begin, end) of the
 * stream (the last window may not run past end). An epoch visits every
 * window once, in an order shuffled from (seed, epoch) when shuffle is set.
 * The cursor (epoch, position) identifies the next batch exactly, so a
 * resumed run reads the batches it would have read. A batch takes the next
 * windows of the epoch and runs on into the next epoch when this one ends.
 * Data parallelism: the global batch is batch * world windows and rank r takes
 * its rows [r * batch, (r + 1) * batch), so every world size reads the same
 * global batches; the cursor counts global windows and is the same on every
 * rank. */
typedef struct ig_loader_config {
    int batch, seq_len;
    int64_t begin, end; /* token range; end <= 0: to the end of the stream */
    bool shuffle;
    uint64_t seed;
    int rank, world;
} ig_loader_config;
#define IG_LOADER_CONFIG_INIT {8, 256, 0, 0, true, 0, 0, 1}

typedef struct ig_loader_cursor {
    int64_t epoch;
    int64_t position; /* windows consumed in this epoch */
} ig_loader_cursor;

typedef struct ig_loader ig_loader;

/* Fails (IG_ERR_INVALID) when [begin, end) leaves the stream or holds no full
 * window. Asserts batch, seq_len > 0 and 0 <= rank < world. The loader reads
 * `tokens`, which must outlive it. */
ig_status ig_loader_new(const ig_tokens *tokens, const ig_loader_config *cfg, ig_loader **out);
void ig_loader_free(ig_loader *l);
/* The next batch: inputs = window[0, T) and targets = window[1, T] as (B, T)
 * i64 on dev, in the current scope. Allocates nothing but the two outputs. */
ig_status ig_loader_next(ig_loader *l, ig_device dev, ig_tensor **inputs, ig_tensor **targets);
ig_loader_cursor ig_loader_get_cursor(const ig_loader *l);
/* A position past the epoch's end carries into later epochs. */
void ig_loader_set_cursor(ig_loader *l, ig_loader_cursor c);
int64_t ig_loader_windows(const ig_loader *l); /* windows per epoch */

/* ---- MNIST idx files ----
 * images: idx3-ubyte (magic 0x00000803, N, rows, cols) -> (N, rows*cols) f32
 * scaled to [0, 1]; labels: idx1-ubyte (magic 0x00000801, N) -> (N) i64. Both
 * kept (caller frees). The counts must agree, N and rows * cols must be > 0 and
 * each file must end exactly after its data. Label bytes are kept as they are
 * (not checked against 10 classes): the loss checks its targets. */
ig_status ig_mnist_load(const char *images_path, const char *labels_path, ig_tensor **images,
                        ig_tensor **labels);

#ifdef __cplusplus
}
#endif
#endif

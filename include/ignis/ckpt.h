/* ignis/ckpt.h: safetensors files and single-process checkpoints.
 *
 * safetensors: 8-byte little-endian header length, a JSON header (parsed and
 * written with Jansson) mapping names to {dtype, shape, data_offsets} plus an
 * optional "__metadata__" object of strings, then the data. Every offset,
 * size, dtype and shape is validated against the file; a bad file gives
 * IG_ERR_FORMAT naming the file, the tensor or field and what was expected.
 * Files are written to a temporary name, fsynced and renamed: never half
 * written.
 *
 * Checkpoint directories (single process; the sharded format comes with DDP):
 * DIR/step_NNNNNNNN/ holding model.safetensors, optim.safetensors and
 * state.json (step, schedule, RNG and data cursor, as the trainer writes it),
 * made under a temporary name and committed by an atomic rename; only
 * committed directories are ever loaded. */
#ifndef IGNIS_CKPT_H
#define IGNIS_CKPT_H

#include "ignis/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes tensors (any device; copied to host) under names. metadata: NULL or
 * pairs of strings key, value, ..., NULL. */
ig_status ig_safetensors_save(const char *path, int n, const char *const *names,
                              ig_tensor *const *tensors, const char *const *metadata);

typedef struct ig_safetensors ig_safetensors;
ig_status ig_safetensors_open(const char *path, ig_safetensors **out);
void ig_safetensors_close(ig_safetensors *f);
int ig_safetensors_count(const ig_safetensors *f);
const char *ig_safetensors_name(const ig_safetensors *f, int i);
/* Index of name, or -1. */
int ig_safetensors_find(const ig_safetensors *f, const char *name);
/* Value of a __metadata__ key, or NULL. */
const char *ig_safetensors_metadata(const ig_safetensors *f, const char *key);
/* A new tensor (current scope) with the stored dtype and shape on dev. */
ig_tensor *ig_safetensors_get(const ig_safetensors *f, const char *name, ig_device dev);
/* Copies the stored tensor into dst, which must have its shape; the dtype
 * must match unless convert is set. Errors name the tensor and the file. */
ig_status ig_safetensors_read_into(const ig_safetensors *f, const char *name, ig_tensor *dst,
                                   bool convert);

/* ---- checkpoint directories ---- */
/* The committed checkpoint with the highest step in dir (path written to out),
 * or IG_ERR_IO when there is none. Directories still under a temporary name
 * are ignored. */
ig_status ig_ckpt_latest(const char *dir, char *out, size_t cap, int64_t *step);
/* Makes dir/.tmp_step_N (removing a stale one) for writing; path in out. */
ig_status ig_ckpt_begin(const char *dir, int64_t step, char *out, size_t cap);
/* fsyncs the files of the temporary directory and renames it to
 * dir/step_N, then removes all but the newest `keep` committed ones
 * (keep <= 0: keep all). */
ig_status ig_ckpt_commit(const char *dir, int64_t step, int keep);

#ifdef __cplusplus
}
#endif
#endif

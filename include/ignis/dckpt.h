/* ignis/dckpt.h: sharded checkpoints (sharding/ckpt_sharded.c), the format
 * of DESIGN.md: one directory per step,
 *
 *   DIR/step_NNNNNNNN/metadata.json   per tensor: global shape, dtype, and its
 *                                     chunks {file, byte offset, length,
 *                                     element offset in the flattened tensor}
 *                     rank_NNNNN.bin  the bytes each rank wrote
 *                     state.json      the caller's JSON (step, cursors, RNG)
 *
 * metadata.json is {"format": "ignis-dckpt", "version": 1, "step": S,
 * "world": W, "tensors": {NAME: {"dtype": "F32" (safetensors' names), "shape":
 * [...], "chunks": [{"file": "rank_00001.bin", "offset": bytes, "length":
 * bytes, "start": element}, ...]}, ...}} (tensors in the order saved; a rank
 * with no element of a tensor has no chunk of it). A step is written under
 * DIR/.tmp_step_N, every file fsynced, committed by rank 0 with an atomic
 * rename once all ranks have written (barriers over the group); the last
 * `keep` are kept. Saving splits every tensor's flattened elements
 * evenly over the ranks (rank r writes [r n / W, (r+1) n / W)), so a DDP
 * checkpoint costs each rank 1/W of the bytes. Loading maps any requested
 * element range onto the saved chunks, so a checkpoint written by N ranks
 * loads on M. Only committed directories are ever read (ig_ckpt_latest).
 * Every field of metadata.json and every chunk is validated against the data
 * files: a bad checkpoint is an error naming the tensor and the file, and
 * nothing is loaded. */
#ifndef IGNIS_DCKPT_H
#define IGNIS_DCKPT_H

#include "ignis/ckpt.h"
#include "ignis/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Collective over pg (NULL: a single process). Tensors (any device) are
 * named; state_json (may be NULL) is stored as state.json. Blocking. */
ig_status ig_dckpt_save(ig_pg *pg, const char *dir, int64_t step, int n,
                        const char *const *names, ig_tensor *const *tensors,
                        const char *state_json, int keep);

/* Asynchronous save: copies the tensors to host memory now (this rank's 1/W
 * of each), then writes and commits on a background thread while training
 * goes on. At most one save is in flight: a second call first waits for the
 * first, and if that one failed returns its status without starting (every
 * rank sees the same failure). The thread's collectives go over the writer's
 * own subgroup of all of pg's ranks, made by ig_dckpt_writer_new (collective
 * over pg; NULL pg: a single process), never over pg itself, whose
 * collectives belong to the training thread. Free writers before pg. */
typedef struct ig_dckpt_writer ig_dckpt_writer;
ig_dckpt_writer *ig_dckpt_writer_new(ig_pg *pg);
ig_status ig_dckpt_save_async(ig_dckpt_writer *w, const char *dir, int64_t step, int n,
                              const char *const *names, ig_tensor *const *tensors,
                              const char *state_json, int keep);
/* Waits for the save in flight; returns its status. */
ig_status ig_dckpt_wait(ig_dckpt_writer *w);
void ig_dckpt_writer_free(ig_dckpt_writer *w); /* waits first */

/* An opened checkpoint step directory. */
typedef struct ig_dckpt ig_dckpt;
ig_status ig_dckpt_open(const char *stepdir, ig_dckpt **out);
void ig_dckpt_close(ig_dckpt *c);
int ig_dckpt_count(const ig_dckpt *c);
const char *ig_dckpt_name(const ig_dckpt *c, int i);
/* state.json's text ("" when none). */
const char *ig_dckpt_state(const ig_dckpt *c);
/* Reads the whole tensor `name` into dst (its global shape and dtype; any
 * device and layout). Errors name the directory and the tensor. */
ig_status ig_dckpt_read(const ig_dckpt *c, const char *name, ig_tensor *dst);
/* Reads elements [offset, offset + numel(dst)) of the flattened tensor. */
ig_status ig_dckpt_read_range(const ig_dckpt *c, const char *name, int64_t offset,
                              ig_tensor *dst);
/* Writes every tensor whose name starts with prefix (prefix stripped; "" for
 * all) into one safetensors file. */
ig_status ig_dckpt_export(const char *stepdir, const char *prefix, const char *out_path);

#ifdef __cplusplus
}
#endif
#endif

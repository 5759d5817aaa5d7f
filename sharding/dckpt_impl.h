/* sharding/dckpt_impl.h: the test hooks of sharding/ckpt_sharded.c. Not
 * installed. */
#ifndef IGNIS_SHARDING_DCKPT_IMPL_H
#define IGNIS_SHARDING_DCKPT_IMPL_H

#include "ignis/dckpt.h"

/* Saves, in this one process, the checkpoint that `world` ranks would write
 * with ig_dckpt_save (every rank_N.bin, then metadata.json and the commit),
 * byte for byte: how the tests make checkpoints of other world sizes. */
ig_status ig__dckpt_save_as(const char *dir, int64_t step, int world, int n,
                            const char *const *names, ig_tensor *const *tensors,
                            const char *state_json, int keep);

#endif

/* core/ckpt_impl.h: the durability helpers shared by safetensors.c and
 * ckpt_dir.c (core/ckpt_dir.c implements them). Not installed. */
#ifndef IGNIS_CORE_CKPT_IMPL_H
#define IGNIS_CORE_CKPT_IMPL_H

#include "ignis/status.h"

/* fsync of a file or a directory; IG_ERR_IO naming path on failure. */
ig_status ig__fsync_path(const char *path);
/* fsync of the directory holding path (its entries: a rename made durable). */
ig_status ig__fsync_parent(const char *path);

#endif

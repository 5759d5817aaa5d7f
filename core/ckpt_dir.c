/* core/ckpt_dir.c: placeholder, being written. */
typedef int ig__placeholder_core_ckpt_dir_c;

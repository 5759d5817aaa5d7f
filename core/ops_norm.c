/* core/ops_norm.c: placeholder, being written. */
typedef int ig__placeholder_core_ops_norm_c;

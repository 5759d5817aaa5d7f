/* core/ops_index.c: placeholder, being written. */
typedef int ig__placeholder_core_ops_index_c;

/* core/ops_join.c: placeholder, being written. */
typedef int ig__placeholder_core_ops_join_c;

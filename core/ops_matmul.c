/* core/ops_matmul.c: placeholder, being written. */
typedef int ig__placeholder_core_ops_matmul_c;

/* core/ops_dropout.c: placeholder, being written. */
typedef int ig__placeholder_core_ops_dropout_c;

/* core/ops_conv.c: placeholder, being written. */
typedef int ig__placeholder_core_ops_conv_c;

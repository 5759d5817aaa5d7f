/* core/ops_attention.c: placeholder, being written. */
typedef int ig__placeholder_core_ops_attention_c;

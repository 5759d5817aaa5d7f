/* core/data_tokens.c: placeholder, being written. */
typedef int ig__placeholder_core_data_tokens_c;

/* core/model_gpt.c: placeholder, being written. */
typedef int ig__placeholder_core_model_gpt_c;

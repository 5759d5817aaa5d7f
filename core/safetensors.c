/* core/safetensors.c: placeholder, being written. */
typedef int ig__placeholder_core_safetensors_c;

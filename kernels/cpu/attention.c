/* kernels/cpu/attention.c: placeholder, being written. */
typedef int ig__placeholder_kernels_cpu_attention_c;

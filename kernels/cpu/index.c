/* kernels/cpu/index.c: placeholder, being written. */
typedef int ig__placeholder_kernels_cpu_index_c;

/* kernels/cpu/norm.c: placeholder, being written. */
typedef int ig__placeholder_kernels_cpu_norm_c;

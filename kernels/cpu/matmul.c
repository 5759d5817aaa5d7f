/* kernels/cpu/matmul.c: placeholder, being written. */
typedef int ig__placeholder_kernels_cpu_matmul_c;

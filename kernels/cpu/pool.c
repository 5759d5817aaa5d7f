/* kernels/cpu/pool.c: placeholder, being written. */
typedef int ig__placeholder_kernels_cpu_pool_c;

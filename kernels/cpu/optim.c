/* kernels/cpu/optim.c: placeholder, being written. */
typedef int ig__placeholder_kernels_cpu_optim_c;

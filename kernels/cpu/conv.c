/* kernels/cpu/conv.c: placeholder, being written. */
typedef int ig__placeholder_kernels_cpu_conv_c;

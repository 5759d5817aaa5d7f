/* core/optim.c: placeholder, being written. */
typedef int ig__placeholder_core_optim_c;

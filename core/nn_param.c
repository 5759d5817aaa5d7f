/* core/nn_param.c: placeholder, being written. */
typedef int ig__placeholder_core_nn_param_c;

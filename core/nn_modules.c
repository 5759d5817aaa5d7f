/* core/nn_modules.c: placeholder, being written. */
typedef int ig__placeholder_core_nn_modules_c;

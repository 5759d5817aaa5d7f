/* core/data_mnist.c: placeholder, being written. */
typedef int ig__placeholder_core_data_mnist_c;

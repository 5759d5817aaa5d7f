/* core/data_loader.c: placeholder, being written. */
typedef int ig__placeholder_core_data_loader_c;

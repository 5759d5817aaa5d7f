/* core/model_mlp_cnn.c: placeholder, being written. */
typedef int ig__placeholder_core_model_mlp_cnn_c;

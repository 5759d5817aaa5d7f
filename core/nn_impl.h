/* core/nn_impl.h: the model struct shared by the model files (model_gpt.c,
 * model_mlp_cnn.c) and the generic model functions (nn_param.c).
 *
 * Invariants: the modules' tensor pointers are the tensors of `params`
 * (which owns them); `dev` is the device of every parameter. */
#ifndef IGNIS_CORE_NN_IMPL_H
#define IGNIS_CORE_NN_IMPL_H

#include "ignis/nn.h"

typedef enum ig__model_kind { IG__MODEL_GPT, IG__MODEL_MLP, IG__MODEL_CNN } ig__model_kind;

struct ig_model {
    ig__model_kind kind;
    ig_param_list params;
    ig_device dev;
    bool training;
    union {
        struct {
            ig_gpt_config cfg;
            ig_nn_embedding wte, wpe;
            ig_nn_gpt_block *h; /* n_layer blocks */
            ig_nn_layer_norm ln_f;
        } gpt;
        struct {
            ig_mlp_config cfg;
            ig_nn_linear *layers; /* n_hidden_layers + 1 */
        } mlp;
        struct {
            ig_cnn_config cfg;
            ig_nn_conv2d conv1, conv2;
            ig_nn_linear fc;
        } cnn;
    };
};

/* Registers a new uninitialized parameter `prefix.name` (just `name` when
 * prefix is NULL or "") of shape on dev: kept, requiring grad. NULL when out
 * of memory (registered all the same, for ig__model_check). */
ig_tensor *ig__nn_param(ig_param_list *reg, const char *prefix, const char *name, int ndim,
                        const int64_t *shape, ig_device dev);

/* A zeroed model of kind on dev, in training mode; NULL when out of memory. */
ig_model *ig__model_alloc(ig__model_kind kind, ig_device dev);
/* m when every registered parameter was allocated; else frees m, returns
 * NULL (the last error says what failed). */
ig_model *ig__model_check(ig_model *m);

#endif

/* examples/gpt2_124m.c: the GPT-2 124M configuration (12 layers, 12 heads,
 * 768 wide, 1024 context, 50257 tokens) built with the public API. Prints the
 * state dict as Hugging Face's GPT2LMHeadModel names it, runs a few training
 * steps on llm.c token shards (e.g. from ../shared/reference/mkbin.py) or on
 * random tokens, and can load GPT-2 weights from a safetensors file.
 *
 *     ./build/examples/gpt2_124m [SHARDS_GLOB|-] [WEIGHTS.safetensors] [DEVICE] */
#include <stdio.h>
#include <string.h>

#include "ignis/ckpt.h"
#include "ignis/data.h"
#include "ignis/ignis.h"
#include "ignis/nn.h"
#include "ignis/optim.h"

int main(int argc, char **argv) {
    const char *shards = argc > 1 ? argv[1] : "-";
    ig_device dev = ig_device_parse(argc > 3 ? argv[3] : "cpu");
    ig_gpt_config cfg = IG_GPT_CONFIG_INIT;
    ig_model *gpt = ig_gpt_new(&cfg, dev, NULL);
    if (!gpt) {
        fprintf(stderr, "gpt2_124m: %s\n", ig_last_error());
        return 1;
    }
    const ig_param_list *p = ig_model_params(gpt);
    for (int i = 0; i < p->n && i < 16; i++) {
        printf("%-40s [", p->names[i]);
        for (int d = 0; d < ig_tensor_ndim(p->tensors[i]); d++)
            printf(d ? ", %lld" : "%lld", (long long)ig_tensor_size(p->tensors[i], d));
        printf("]\n");
    }
    printf("... %d tensors, %lld parameters\n", p->n, (long long)ig_param_list_numel(p));
    if (argc > 2 && ig_model_load_safetensors(gpt, argv[2]) != IG_OK) {
        fprintf(stderr, "gpt2_124m: %s\n", ig_last_error());
        return 1;
    }
    ig_tokens *tokens = NULL;
    ig_loader *loader = NULL;
    ig_loader_config lc = IG_LOADER_CONFIG_INIT;
    lc.batch = 4;
    lc.seq_len = 64;
    if (strcmp(shards, "-") != 0 &&
        (ig_tokens_open_shards(shards, &tokens) != IG_OK || ig_loader_new(tokens, &lc, &loader) != IG_OK)) {
        fprintf(stderr, "gpt2_124m: %s\n", ig_last_error());
        return 1;
    }
    ig_optim_config oc = IG_OPTIM_CONFIG_INIT;
    oc.lr = 6e-4;
    ig_optim *opt = ig_optim_new(p, &oc);
    ig_generator g = {0, 0};
    for (int step = 0; step < 3; step++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x, *y;
        if (loader) {
            ig_loader_next(loader, dev, &x, &y);
        } else {
            ig_tensor *r = ig_to(ig_mul_scalar(ig_rand(IG_SHAPE(lc.batch, lc.seq_len + 1), IG_F64, IG_CPU, &g),
                                               cfg.vocab_size - 1), IG_I64, dev);
            x = ig_narrow(r, 1, 0, lc.seq_len);
            y = ig_contiguous(ig_narrow(r, 1, 1, lc.seq_len));
        }
        ig_tensor *loss = ig_gpt_loss(gpt, x, y);
        if (!loss || ig_backward(loss) != IG_OK) {
            fprintf(stderr, "gpt2_124m: %s\n", ig_last_error());
            return 1;
        }
        ig_optim_step(opt);
        ig_optim_zero_grad(opt, true);
        printf("step %d  loss %.4f\n", step, ig_tensor_item(loss));
        ig_scope_end(s);
    }
    ig_optim_free(opt);
    ig_loader_free(loader);
    ig_tokens_free(tokens);
    ig_model_free(gpt);
    return 0;
}

/* examples/char_gpt.c: a character-level GPT in a short C program: bytes of a
 * text file are the tokens, a loader cuts (B, T) windows, AdamW with a cosine
 * schedule trains, and the model writes a sample. `ignis train
 * examples/char_gpt.json` does the same from a job spec, with checkpoints.
 *
 *     ./build/examples/char_gpt /usr/share/games/fortunes/computers */
#include <stdio.h>
#include <stdlib.h>

#include "ignis/data.h"
#include "ignis/ignis.h"
#include "ignis/nn.h"
#include "ignis/optim.h"

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/usr/share/games/fortunes/computers";
    int steps = argc > 2 ? atoi(argv[2]) : 300;
    ig_tokens *text;
    if (ig_tokens_open_text(path, &text) != IG_OK) {
        fprintf(stderr, "char_gpt: %s\n", ig_last_error());
        return 1;
    }
    ig_loader_config lc = IG_LOADER_CONFIG_INIT;
    lc.batch = 16;
    lc.seq_len = 64;
    ig_loader *loader;
    if (ig_loader_new(text, &lc, &loader) != IG_OK) {
        fprintf(stderr, "char_gpt: %s\n", ig_last_error());
        return 1;
    }
    ig_gpt_config cfg = {.n_layer = 2, .n_head = 4, .n_embd = 64, .block_size = 64, .vocab_size = 256};
    ig_model *gpt = ig_gpt_new(&cfg, IG_CPU, NULL);
    ig_optim_config oc = IG_OPTIM_CONFIG_INIT;
    oc.lr = 3e-3;
    ig_optim *opt = ig_optim_new(ig_model_params(gpt), &oc);
    ig_lr_schedule sched = {IG_LR_COSINE, oc.lr, 20, steps, oc.lr / 10};
    for (int step = 0; step < steps; step++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x, *y;
        ig_loader_next(loader, IG_CPU, &x, &y);
        ig_tensor *loss = ig_gpt_loss(gpt, x, y);
        ig_backward(loss);
        ig_clip_grad_norm(ig_model_params(gpt), 1.0);
        ig_optim_set_lr(opt, ig_lr_at(&sched, step));
        ig_optim_step(opt);
        ig_optim_zero_grad(opt, true);
        if (step % 50 == 0 || step == steps - 1) printf("step %4d  loss %.4f\n", step, ig_tensor_item(loss));
        ig_scope_end(s);
    }
    int64_t tok[201] = {'\n'};
    ig_generator g = {7, 0};
    ig_gpt_generate(gpt, tok, 1, 200, 0.8, 40, &g, tok);
    for (int i = 0; i < 201; i++) putchar((int)tok[i]);
    putchar('\n');
    ig_optim_free(opt);
    ig_model_free(gpt);
    ig_loader_free(loader);
    ig_tokens_free(text);
    return 0;
}

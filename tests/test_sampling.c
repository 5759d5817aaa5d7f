/* tests/test_sampling.c: ig_gpt_generate draws from the distribution it
 * claims: with temperature 1 and no top-k, token frequencies over many draws
 * match softmax(logits) of the last position; with top-k they match the
 * renormalized top k and never leave it; temperature 0 is the argmax. */
#include <math.h>

#include "tests/testutil.h"
#include "ignis/nn.h"

enum { V = 12, DRAWS = 6000 };

static void draws_follow_softmax_of_the_last_position(void **state) {
    (void)state;
    ig_gpt_config cfg = {1, 2, 16, 8, V, 0.0};
    ig_generator init = {3, 0};
    ig_model *m = ig_gpt_new(&cfg, IG_CPU, &init);
    /* spread the logits: scale the tied embedding */
    ig_tensor *wte = ig_param_list_find(ig_model_params(m), "transformer.wte.weight");
    ig_scope *s = ig_scope_begin();
    ig_copy_(wte, ig_mul_scalar(ig_detach(wte), 6.0));
    int64_t prompt[3] = {1, 5, 2};
    ig_model_train(m, false);
    bool g = ig_grad_set_enabled(false);
    ig_tensor *logits = ig_gpt_forward(m, ig_from_data(prompt, IG_SHAPE(1, 3), IG_I64, IG_CPU));
    ig_tensor *p = ig_contiguous(ig_to(ig_softmax(ig_narrow(logits, 1, 2, 1), -1), IG_F64, IG_CPU));
    ig_grad_set_enabled(g);
    const double *pp = ig_tensor_data(p);
    int best = 0;
    for (int i = 1; i < V; i++)
        if (pp[i] > pp[best]) best = i;
    print_message("p[best] = %.3f\n", pp[best]);
    assert_true(pp[best] < 0.9); /* a distribution worth sampling */
    for (int k = 0; k <= 3; k += 3) { /* top_k 0 (all), then 3 */
        double q[V] = {0}, keep = 0;
        int order[V];
        for (int i = 0; i < V; i++) order[i] = i;
        for (int i = 0; i < V; i++) /* selection sort by probability */
            for (int j = i + 1; j < V; j++)
                if (pp[order[j]] > pp[order[i]]) {
                    int t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
        for (int i = 0; i < (k ? k : V); i++) keep += pp[order[i]];
        for (int i = 0; i < (k ? k : V); i++) q[order[i]] = pp[order[i]] / keep;
        int count[V] = {0};
        ig_generator gen = {11, 0};
        for (int d = 0; d < DRAWS; d++) {
            int64_t out[4];
            assert_int_equal(ig_gpt_generate(m, prompt, 3, 1, 1.0, k, &gen, out), IG_OK);
            assert_true(out[3] >= 0 && out[3] < V);
            count[out[3]]++;
        }
        for (int i = 0; i < V; i++) {
            double f = (double)count[i] / DRAWS;
            if (q[i] == 0) assert_int_equal(count[i], 0);
            if (fabs(f - q[i]) > 0.025) {
                print_error("top_k %d: token %d drawn %.4f of the time, expected %.4f\n", k, i, f, q[i]);
                fail();
            }
        }
    }
    int64_t out[4];
    ig_generator gen = {1, 0};
    assert_int_equal(ig_gpt_generate(m, prompt, 3, 1, 0.0, 0, &gen, out), IG_OK);
    assert_int_equal(out[3], best);
    ig_scope_end(s);
    ig_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(draws_follow_softmax_of_the_last_position),
    };
    return TU_RUN(tests);
}

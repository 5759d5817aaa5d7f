/* core/lr_schedule.c: learning rate as a function of the step (0-based).
 * Every schedule first warms up linearly over `warmup` steps, lr (step+1) /
 * warmup as nanoGPT; then constant stays at lr, cosine goes from lr down to
 * min_lr along half a cosine and linear along a line, reaching min_lr at step
 * `total` and staying there. */
#include <math.h>

#include "core/impl.h"
#include "ignis/optim.h"

double ig_lr_at(const ig_lr_schedule *s, int64_t step) {
    IG_CHECK(s->kind >= 0 && s->kind < IG_LR_KIND_COUNT, "lr_at: unknown schedule kind %d",
             (int)s->kind);
    IG_CHECK(step >= 0 && s->warmup >= 0, "lr_at: negative step %lld or warmup %lld",
             (long long)step, (long long)s->warmup);
    if (step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    if (s->kind == IG_LR_CONSTANT) return s->lr;
    if (step >= s->total) return s->min_lr;
    double ratio = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    double coef = s->kind == IG_LR_COSINE ? 0.5 * (1 + cos(M_PI * ratio)) : 1 - ratio;
    return s->min_lr + coef * (s->lr - s->min_lr);
}

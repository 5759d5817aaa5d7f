/* worker/train_log.c: what the trainer shows and records: a line per logged
 * step, a progress bar with ETA when the output is a terminal, and metrics as
 * JSON lines (one object per logged step or evaluation) for tools. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "worker/trainer_impl.h"

double train_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* mkdir -p of the directory part of path */
void train_make_parent(const char *path) {
    char buf[IG_JOB_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(buf, 0777);
        *p = '/';
    }
}

ig_status train_log_open(train_log *l, const ig_job_spec *spec, const ig_train_opts *opts) {
    memset(l, 0, sizeof *l);
    l->out = opts->log ? opts->log : stdout;
    l->progress = opts->progress;
    l->start = train_now();
    if (spec->metrics[0]) {
        train_make_parent(spec->metrics);
        l->metrics = fopen(spec->metrics, opts->resume ? "a" : "w");
        if (!l->metrics)
            return ig_set_error(IG_ERR_IO, "%s: cannot open the metrics file: %s", spec->metrics,
                                strerror(errno));
    }
    return IG_OK;
}

void train_log_close(train_log *l) {
    if (l->progress) fputc('\n', l->out);
    if (l->metrics) fclose(l->metrics);
    l->metrics = NULL;
}

static void clear_bar(train_log *l) {
    if (l->progress) fprintf(l->out, "\r\033[K");
}

static void human(char *buf, size_t cap, double v) {
    if (v >= 1e6) snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, cap, "%.1fk", v / 1e3);
    else snprintf(buf, cap, "%.0f", v);
}

void train_log_step(train_log *l, const ig_job_spec *spec, int64_t step, double loss, double lr,
                    double norm, double items_per_s, double ms, bool line) {
    const char *unit = spec->data_format == IG_DATA_MNIST ? "ex/s" : "tok/s";
    char rate[32];
    human(rate, sizeof rate, items_per_s);
    if (line) {
        clear_bar(l);
        fprintf(l->out, "step %6lld/%lld | loss %.4f | lr %.2e | norm %.3f | %s %s | %.1f ms\n",
                (long long)step, (long long)spec->steps, loss, lr, norm, rate, unit, ms);
        if (l->metrics) {
            fprintf(l->metrics,
                    "{\"step\": %lld, \"loss\": %.6f, \"lr\": %.6e, \"grad_norm\": %.6f, "
                    "\"%s\": %.1f, \"ms\": %.3f}\n",
                    (long long)step, loss, lr, norm, spec->data_format == IG_DATA_MNIST
                    ? "examples_per_s" : "tokens_per_s", items_per_s, ms);
            fflush(l->metrics);
        }
    }
    if (l->progress) {
        double frac = (double)step / (double)spec->steps, elapsed = train_now() - l->start;
        double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
        char bar[31];
        int filled = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
        bar[30] = 0;
        fprintf(l->out, "\r[%s] %3.0f%%  step %lld/%lld  loss %.4f  eta %dm%02ds", bar,
                frac * 100, (long long)step, (long long)spec->steps, loss, (int)eta / 60,
                (int)eta % 60);
    }
    fflush(l->out);
}

void train_log_eval(train_log *l, int64_t step, double loss, double accuracy) {
    clear_bar(l);
    if (isnan(accuracy)) fprintf(l->out, "step %6lld | val loss %.4f\n", (long long)step, loss);
    else fprintf(l->out, "step %6lld | val loss %.4f | val accuracy %.2f%%\n", (long long)step,
                 loss, 100 * accuracy);
    if (l->metrics) {
        if (isnan(accuracy)) fprintf(l->metrics, "{\"step\": %lld, \"val_loss\": %.6f}\n",
                                     (long long)step, loss);
        else fprintf(l->metrics, "{\"step\": %lld, \"val_loss\": %.6f, \"val_accuracy\": %.6f}\n",
                     (long long)step, loss, accuracy);
        fflush(l->metrics);
    }
    fflush(l->out);
}

void train_log_text(train_log *l, const char *fmt, ...) {
    clear_bar(l);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(l->out, fmt, ap);
    va_end(ap);
    fflush(l->out);
}

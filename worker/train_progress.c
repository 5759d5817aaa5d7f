/* worker/train_progress.c: the progress a rank started by a worker shows to
 * it. Rank 0 of a job started by `ignis worker` (IGNIS_JOB is set) rewrites
 * progress.json, next to its job.json (the attempt directory), with
 * {step, loss, tokens_per_s, ms, ckpt_step (the last checkpoint committed,
 * -1 for none)}; the worker reads it into its heartbeats
 * and the coordinator into `ignis status`.
 *
 * Invariants: the file is replaced atomically (written under a temporary
 * name, then renamed), so a reader sees a whole previous or new version; it
 * is written at most every PROGRESS_EVERY_S seconds, plus the first and
 * last steps, so that tiny steps do not turn into file writes. Failures are
 * ignored: progress is advisory and never stops training. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/trainer_impl.h"

#define PROGRESS_EVERY_S 0.5

void train_progress(const ig_job_spec *spec, int rank, int64_t step, double loss,
                    double items_per_s, double ms, int64_t ckpt_step) {
    static double last = -1;
    if (rank != 0 || !getenv("IGNIS_JOB")) return;
    double now = train_now();
    if (last >= 0 && now - last < PROGRESS_EVERY_S && step != spec->steps) return;
    last = now;
    const char *slash = strrchr(spec->path, '/');
    int dir_len = slash ? (int)(slash - spec->path) : 1;
    const char *dir = slash ? spec->path : ".";
    char path[IG_JOB_PATH_MAX + 32], tmp[IG_JOB_PATH_MAX + 32];
    snprintf(path, sizeof path, "%.*s/progress.json", dir_len, dir);
    snprintf(tmp, sizeof tmp, "%.*s/.progress.json.tmp", dir_len, dir);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "{\"step\": %lld, \"loss\": %.6g, \"tokens_per_s\": %.1f, \"ms\": %.3f, \"ckpt_step\": %lld}\n",
            (long long)step, loss, items_per_s, ms, (long long)ckpt_step);
    if (fclose(f) == 0) rename(tmp, path);
    else remove(tmp);
}

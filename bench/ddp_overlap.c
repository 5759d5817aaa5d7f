/* bench/ddp_overlap.c: when DDP's bucket all-reduces start and end relative
 * to backward, for the small GPT of the trainer issue (L=6, C=256, H=8,
 * T=256, vocab 256, f32, CPU). Two warm-up steps, then rank 0 prints the
 * trace of the third: per bucket, its size and the times (ms from the start
 * of backward) it was issued (its last gradient ready) and seen done by
 * ig_ddp_finish, with the time backward returned and finish was called.
 *     mpirun -np 2 ./build-rel/bench/bench_ddp_overlap [bucket_MiB B] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ignis/ddp.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    double mib = argc > 1 ? atof(argv[1]) : 4.0;
    int B = argc > 2 ? atoi(argv[2]) : 4;
    enum { T = 256 };
    ig_pg *pg;
    ig_pg_opts po = IG_PG_OPTS_INIT;
    if (ig_pg_init_world(&po, &pg) != IG_OK) {
        fprintf(stderr, "ig_pg_init_world: %s\n", ig_last_error());
        return 1;
    }
    int rank = ig_pg_rank(pg);
    ig_gpt_config cfg = {6, 8, 256, T, 256, 0.0};
    ig_generator gen = {1, 0};
    ig_model *m = ig_gpt_new(&cfg, IG_CPU, &gen);
    const ig_param_list *params = ig_model_params(m);
    ig_ddp_opts o = IG_DDP_OPTS_INIT;
    o.bucket_bytes = (size_t)(mib * (1 << 20));
    o.trace = true;
    ig_ddp *d;
    if (ig_ddp_new(params, pg, &o, &d) != IG_OK) {
        fprintf(stderr, "ig_ddp_new: %s\n", ig_last_error());
        return 1;
    }
    ig_generator data = {100 + (uint64_t)rank, 0};
    double t0 = 0, t1 = 0, t_fwd = 0;
    for (int step = 0; step < 3; step++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = ig_rand(IG_SHAPE(B, T + 1), IG_F32, IG_CPU, &data);
        x = ig_to(ig_mul_scalar(x, cfg.vocab_size), IG_I64, IG_CPU);
        double tf = now();
        ig_tensor *loss = ig_gpt_loss(m, ig_narrow(x, 1, 0, T), ig_narrow(x, 1, 1, T));
        t0 = now();
        t_fwd = t0 - tf;
        ig_status st = ig_backward(loss);
        t1 = now();
        if (st == IG_OK) st = ig_ddp_finish(d);
        ig_scope_end(s);
        if (st != IG_OK) {
            fprintf(stderr, "step %d: %s\n", step, ig_last_error());
            return 1;
        }
        for (int i = 0; i < params->n; i++) ig_tensor_zero_grad(params->tensors[i], false);
    }
    if (rank == 0) {
        ig_ddp_trace_info tr;
        ig_ddp_trace(d, &tr);
        printf("GPT L=6 C=256 T=%d B=%d per rank, %d ranks, %lld parameters, buckets of %.3g MiB\n",
               T, B, ig_pg_size(pg), (long long)ig_param_list_numel(params), mib);
        printf("forward %.1f ms; times in ms from the start of backward\n", 1e3 * t_fwd);
        printf("bucket   MiB   ready    done\n");
        for (int i = 0; i < tr.n; i++) {
            ig_tensor *b = ig_ddp_bucket(d, tr.events[i].bucket);
            printf("%6d %5.2f %7.1f %7.1f\n", tr.events[i].bucket,
                   (double)ig_tensor_numel(b) * 4 / (1 << 20), 1e3 * (tr.events[i].ready - t0),
                   1e3 * (tr.events[i].done - t0));
        }
        printf("backward returned %.1f, finish called (backward_end) %.1f\n", 1e3 * (t1 - t0),
               1e3 * (tr.backward_end - t0));
    }
    ig_ddp_free(d);
    ig_model_free(m);
    ig_pg_free(pg);
    return 0;
}

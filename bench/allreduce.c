/* bench/allreduce.c: all_reduce bus bandwidth through ignis process groups,
 * f32 sums of 1 MiB .. 256 MiB, computed as nccl-tests does: busbw = bytes *
 * 2 (n - 1) / n / time, time the slowest rank's mean over back-to-back
 * all_reduces issued with work handles and then waited. NCCL on CUDA tensors
 * (a GPU per rank) when built with NCCL; MPI on CPU tensors otherwise.
 *     mpirun -np 2 -x NCCL_NVLS_ENABLE=0 build/bench/bench_allreduce
 * The PyTorch twin: bench/allreduce_torch.py (same sizes, same formula). */
#include <stdio.h>
#include <time.h>

#include "ignis/comm.h"
#include "ignis/cuda.h"
#include "ignis/ignis.h"

enum { MAX_ITERS = 50 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ig_status check(ig_status st) {
    if (st != IG_OK) fprintf(stderr, "bench_allreduce: %s\n", ig_last_error());
    return st;
}

int main(void) {
    ig_pg_opts o = IG_PG_OPTS_INIT;
#ifdef IG_HAVE_NCCL
    o.backend = IG_BACKEND_NCCL;
#endif
    ig_pg *pg;
    if (check(ig_pg_init_world(&o, &pg)) != IG_OK) return 1;
    int n = ig_pg_size(pg), rank = ig_pg_rank(pg);
    ig_device dev = o.backend == IG_BACKEND_NCCL ? IG_CUDA(ig_pg_device(pg)) : IG_CPU;
    if (rank == 0) {
        printf("ignis all_reduce (%s, %d ranks, f32 sum, %s tensors)\n",
               o.backend == IG_BACKEND_NCCL ? "NCCL" : "MPI", n, ig_device_name(dev));
        printf("%10s %6s %12s %12s %12s\n", "bytes", "iters", "time (us)", "algbw GB/s",
               "busbw GB/s");
    }
    ig_tensor *slowest = ig_zeros(IG_SHAPE(1), IG_F64, IG_CPU);
    for (int64_t bytes = 1 << 20; bytes <= 256 << 20; bytes *= 2) {
        ig_tensor *t = ig_ones(IG_SHAPE(bytes / 4), IG_F32, dev);
        int iters = dev.kind == IG_DEV_CUDA ? (bytes <= 16 << 20 ? 50 : 20)
                                             : (bytes <= 4 << 20 ? 10 : 3);
        for (int i = 0; i < 3; i++)
            if (check(ig_pg_all_reduce(pg, t, IG_REDUCE_SUM, NULL)) != IG_OK) return 1;
        if (check(ig_pg_barrier(pg)) != IG_OK) return 1;
        ig_work *w[MAX_ITERS];
        double t0 = now();
        for (int i = 0; i < iters; i++)
            if (check(ig_pg_all_reduce(pg, t, IG_REDUCE_SUM, &w[i])) != IG_OK) return 1;
        for (int i = 0; i < iters; i++)
            if (check(ig_work_wait(w[i])) != IG_OK) return 1;
        *(double *)ig_tensor_data(slowest) = (now() - t0) / iters;
        if (check(ig_pg_all_reduce(pg, slowest, IG_REDUCE_MAX, NULL)) != IG_OK) return 1;
        double sec = *(double *)ig_tensor_data(slowest);
        if (rank == 0)
            printf("%10ld %6d %12.1f %12.2f %12.2f\n", (long)bytes, iters, sec * 1e6,
                   (double)bytes / sec * 1e-9, (double)bytes * 2 * (n - 1) / n / sec * 1e-9);
        ig_tensor_free(t);
    }
    ig_tensor_free(slowest);
    ig_pg_free(pg);
    return 0;
}

"""bench/allreduce_torch.py: the PyTorch twin of bench/allreduce.c:
torch.distributed all_reduce (NCCL, f32 sum) bus bandwidth for 1 MiB .. 256
MiB, busbw = bytes * 2 (n - 1) / n / time as nccl-tests computes it, time the
slowest rank's mean over back-to-back all_reduces.

    NCCL_NVLS_ENABLE=0 torchrun --standalone --nproc_per_node 2 bench/allreduce_torch.py
"""
import os
import time

import torch
import torch.distributed as dist


def main():
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")  # never NVLink multicast
    local = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    n, rank = dist.get_world_size(), dist.get_rank()
    if rank == 0:
        print(f"torch {torch.__version__} all_reduce (NCCL {torch.cuda.nccl.version()}, "
              f"{n} ranks, f32 sum, cuda tensors)")
        print(f"{'bytes':>10} {'iters':>6} {'time (us)':>12} {'algbw GB/s':>12} {'busbw GB/s':>12}")
    size = 1 << 20
    while size <= 256 << 20:
        t = torch.ones(size // 4, device="cuda")
        iters = 50 if size <= 16 << 20 else 20
        for _ in range(3):
            dist.all_reduce(t)
        torch.cuda.synchronize()
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(t)
        torch.cuda.synchronize()
        sec = torch.tensor([(time.perf_counter() - t0) / iters], device="cuda")
        dist.all_reduce(sec, op=dist.ReduceOp.MAX)
        sec = sec.item()
        if rank == 0:
            print(f"{size:>10} {iters:>6} {sec * 1e6:>12.1f} {size / sec * 1e-9:>12.2f} "
                  f"{size * 2 * (n - 1) / n / sec * 1e-9:>12.2f}")
        size *= 2
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""bench/recovery_torchrun.py: the PyTorch side of bench/recovery_vs_torchrun.sh.

A small GPT-like model trained with DDP (gloo, CPU) under torchrun's elastic
agent, checkpointing every CKPT steps to DIR/ckpt.pt (written to a temporary
file, then renamed) and resuming from it on start. Rank 0 prints
"restart R step S" after each step (R = TORCHELASTIC_RESTART_COUNT), so the
driver can time kill -9 -> first step of the restarted group.
    torchrun --standalone --nproc_per_node 2 --max_restarts 1 recovery_torchrun.py DIR STEPS CKPT
"""
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn

out, steps, ckpt_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
torch.set_num_threads(1)

V, C, T, B = 64, 32, 32, 8  # the ignis job's sizes: 2 layers, 2 heads, 32 wide, 32 long, batch 8
layer = lambda: nn.TransformerEncoderLayer(C, 2, 4 * C, dropout=0.0, batch_first=True, norm_first=True)
model = nn.Sequential(nn.Embedding(V, C), layer(), layer(), nn.LayerNorm(C), nn.Linear(C, V))
ddp = nn.parallel.DistributedDataParallel(model)
opt = torch.optim.SGD(model.parameters(), lr=3e-3, momentum=0.9)
path, start = os.path.join(out, "ckpt.pt"), 0
if os.path.exists(path):
    state = torch.load(path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    start = state["step"]
restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
gen = torch.Generator().manual_seed(rank)
for step in range(start + 1, steps + 1):
    x = torch.randint(0, V, (B // world, T), generator=gen)
    loss = nn.functional.cross_entropy(ddp(x).view(-1, V), x.view(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if rank == 0:
        print(f"restart {restart} step {step} loss {loss.item():.4f}", flush=True)
        if step % ckpt_every == 0:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, path + ".tmp")
            os.replace(path + ".tmp", path)
dist.destroy_process_group()

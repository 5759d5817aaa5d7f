# bench/block_torch.py: the PyTorch CPU reference for bench/block.c — the same
# GPT-2 block (pre-LayerNorm, causal attention, tanh GELU), fp32, forward and
# forward+backward, best of 10 after warm-up. Attention both as the shared
# reference writes it (masked softmax) and as F.scaled_dot_product_attention.
#     python3 bench/block_torch.py [B T C H]   (threads: OMP_NUM_THREADS or 2)
import os, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

B, T, C, H = (int(a) for a in (sys.argv[1:] or [8, 256, 256, 8]))
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
torch.manual_seed(0)

class Block(nn.Module):
    def __init__(s, sdpa):
        super().__init__(); s.sdpa = sdpa
        s.ln1 = nn.LayerNorm(C); s.qkv = nn.Linear(C, 3 * C); s.proj = nn.Linear(C, C)
        s.ln2 = nn.LayerNorm(C); s.fc = nn.Linear(C, 4 * C); s.fc2 = nn.Linear(4 * C, C)
    def forward(s, x):
        b, t, _ = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(C, dim=2)
        q, k, v = (z.view(b, t, H, C // H).transpose(1, 2) for z in (q, k, v))
        if s.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (C // H) ** -0.5
            att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
            y = att @ v
        x = x + s.proj(y.transpose(1, 2).reshape(b, t, C))
        return x + s.fc2(F.gelu(s.fc(s.ln2(x)), approximate="tanh"))

for sdpa in (False, True) if hasattr(F, "scaled_dot_product_attention") else (False,):
    m = Block(sdpa)
    x = torch.randn(B, T, C, requires_grad=True); g = torch.randn(B, T, C)
    bf = bfb = 1e30
    for it in range(12):
        t0 = time.perf_counter(); out = m(x); t1 = time.perf_counter()
        out.backward(g); t2 = time.perf_counter()
        if it >= 2: bf, bfb = min(bf, t1 - t0), min(bfb, t2 - t0)
    name = "sdpa" if sdpa else "eager"
    print(f"torch {torch.__version__} ({name}) threads={torch.get_num_threads()} block B={B} T={T} C={C} H={H}: "
          f"forward {bf*1e3:.1f} ms, forward+backward {bfb*1e3:.1f} ms")

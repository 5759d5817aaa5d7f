#!/usr/bin/env bash
# bench/train_vs_torch.sh: `ignis train` throughput for the small GPT (L=6,
# C=256, H=8, T=256, B=8, vocab 256, AdamW, fp32) beside PyTorch CPU eager on
# the same machine in the same run (../shared/reference/torch_cpu_gpt_bench.py,
# Debian's python3-torch), 2 threads each. Prints both and the ratio.
#     bash bench/train_vs_torch.sh [BUILD_DIR=build-release]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-release}
ref=${IGNIS_REFERENCE:-../shared/reference}
export OMP_NUM_THREADS=2
# steady state: the median ms/step of steps 3..12 (warm-up excluded)
ig_ms=$("$build/launcher/ignis" train bench/gpt_small.json |
        awk '/^step +[0-9]+\/12 /{ split($2, s, "/"); if (s[1] > 2) print $(NF-1) }' |
        sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
torch=$(/usr/bin/python3 "$ref/torch_cpu_gpt_bench.py")
torch_ms=$(echo "$torch" | sed 's/.*step_ms=\([0-9.]*\).*/\1/')
echo "ignis: $ig_ms ms/step, $(awk -v m="$ig_ms" 'BEGIN { printf "%.0f", 2048 / m * 1000 }') tok/s"
echo "$torch"
awk -v a="$ig_ms" -v b="$torch_ms" 'BEGIN { printf "ignis / torch throughput: %.2fx\n", b / a }'

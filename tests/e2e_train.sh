#!/usr/bin/env bash
# tests/e2e_train.sh: `ignis train` end to end, real processes and files:
#  1. an MLP on a synthetic MNIST-format set (tests/fixtures/make_mnist.c)
#     reaches >= 97% accuracy on its held-out test files;
#  2. resume: 200 steps straight and 100 + --resume + 100 give bit-identical
#     final weights (a small GPT on text, with dropout, checkpoints every 50);
#  3. `ignis sample` reads the trained weights back and prints text;
#  4. bad input: a malformed spec exits 2, a corrupt data file exits 1, each
#     with a one-line message naming the file.
# Usage: e2e_train.sh IGNIS MAKE_MNIST
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1 MAKE_MNIST=$2
enter_work_dir

# ---- 1. MLP on synthetic MNIST ----
"$MAKE_MNIST" mnist 12000 2000 7
cat > mlp.json <<JSON
{"name": "mlp-mnist",
 "model": {"type": "mlp", "in": 784, "hidden": 256, "layers": 1, "classes": 10},
 "data": {"format": "mnist", "train": "mnist/train-images-idx3-ubyte",
          "train_labels": "mnist/train-labels-idx1-ubyte",
          "val": "mnist/t10k-images-idx3-ubyte", "val_labels": "mnist/t10k-labels-idx1-ubyte"},
 "train": {"batch_size": 64, "steps": 1200},
 "optimizer": {"name": "adamw", "lr": 2e-3, "weight_decay": 0.01},
 "schedule": {"name": "cosine", "warmup": 50},
 "eval": {"interval": 400, "batches": 1000},
 "log": {"interval": 200, "metrics": "mlp_metrics.jsonl"}}
JSON
if "$IGNIS" train mlp.json > mlp.log 2>&1; then
    acc=$(grep val_accuracy mlp_metrics.jsonl | tail -1 | sed 's/.*"val_accuracy": \([0-9.]*\).*/\1/')
    echo "mlp test accuracy: $acc"
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.97) }' && ok "mlp reaches 97% ($acc)" || bad "mlp accuracy $acc < 0.97"
else
    cat mlp.log; bad "mlp training failed"
fi

# ---- 2. resume is bit-exact ----
head -c 300000 /usr/share/games/fortunes/computers > corpus.txt 2>/dev/null || write_corpus corpus.txt
for run in a b; do
    mkdir -p $run
    cat > $run/gpt.json <<JSON
{"name": "resume-$run",
 "model": {"type": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "dropout": 0.1},
 "data": {"format": "text", "train": "../corpus.txt"},
 "train": {"batch_size": 4, "steps": 200},
 "schedule": {"name": "cosine", "warmup": 20},
 "log": {"interval": 50},
 "checkpoint": {"dir": "$run/ckpt", "interval": 50, "keep": 2},
 "output": "$run/model.safetensors"}
JSON
done
"$IGNIS" train a/gpt.json > a.log 2>&1 || { cat a.log; bad "straight run failed"; }
"$IGNIS" train b/gpt.json --stop-after 100 > b1.log 2>&1 || { cat b1.log; bad "first half failed"; }
[ -e b/model.safetensors ] && bad "an interrupted run wrote final weights"
"$IGNIS" train b/gpt.json --resume > b2.log 2>&1 || { cat b2.log; bad "resumed run failed"; }
grep -q "resumed from step 100" b2.log && ok "resumed from step 100" || bad "did not resume from 100"
if cmp -s a/model.safetensors b/model.safetensors; then ok "200 straight == 100 + resume + 100, bit for bit"
else bad "resumed weights differ"; fi
n=$(ls -d b/ckpt/step_* 2>/dev/null | wc -l)
[ "$n" = 2 ] && ok "checkpoints: the last 2 kept" || bad "expected 2 checkpoints, found $n"

# ---- 3. sample ----
if "$IGNIS" sample a/model.safetensors --tokens 50 --prompt "The " > sample.txt 2>&1 &&
   [ "$(head -c 4 sample.txt)" = "The " ] && [ "$(wc -c < sample.txt)" -ge 54 ]; then ok "sample prints text"
else cat sample.txt; bad "sample"; fi

# ---- 4. bad input ----
echo '{"model": {"type": "gpt", "n_layer": 2}, "train": {"batch_size": -3}}' > badspec.json
"$IGNIS" train badspec.json > bad1.log 2>&1; rc=$?
[ $rc = 2 ] && grep -q "badspec.json" bad1.log && [ "$(wc -l < bad1.log)" -le 2 ] \
    && ok "malformed spec: exit 2, one line naming the file" || { cat bad1.log; bad "malformed spec gave rc $rc"; }
cp mnist/train-labels-idx1-ubyte mnist/short-labels
truncate -s 100 mnist/short-labels
sed 's#mnist/train-labels-idx1-ubyte#mnist/short-labels#' mlp.json > badlabels.json
"$IGNIS" train badlabels.json > bad2.log 2>&1; rc=$?
[ $rc = 1 ] && grep -q "short-labels" bad2.log \
    && ok "truncated labels file: exit 1 naming the file" || { cat bad2.log; bad "truncated labels gave rc $rc"; }

finish

#!/usr/bin/env bash
# tests/e2e_ddp.sh: direct mode, `mpirun -np N ignis train JOB`, on CPU ranks
# (oversubscribed on CI's 2 cores):
#  1. DDP on 2 and 4 ranks ends within 1e-5 (relative, per tensor) of one
#     process with the same global batch, after 50 steps of a small GPT;
#  2. kill -9 of one rank mid-run, then a relaunch with --resume: the final
#     weights equal an uninterrupted run's, bit for bit;
#  3. a checkpoint written by 4 ranks resumes on 2 and on 1, and one written by
#     1 resumes on 4, with the same following losses (within 1e-6);
#  4. a half-written checkpoint directory (.tmp_step_N) is never loaded;
#  5. `ignis export` turns a checkpoint into a safetensors file that loads.
# Usage: e2e_ddp.sh IGNIS ST_COMPARE
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1 CMP=$2
command -v mpirun > /dev/null || { echo "mpirun not found: skipped"; exit 77; }
mpirun_env
export OMP_NUM_THREADS=1
enter_work_dir

head -c 200000 /usr/share/games/fortunes/computers > corpus.txt 2>/dev/null || write_corpus corpus.txt
spec() { # name steps [ckpt interval [optimizer]]
    cat > "$1.json" <<JSON
{"name": "$1",
 "model": {"type": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32},
 "data": {"format": "text", "train": "corpus.txt"},
 "train": {"batch_size": 8, "steps": $2},
 "optimizer": {"name": "${4:-adamw}", "lr": 3e-3, "momentum": 0.9},
 "schedule": {"name": "cosine", "warmup": 5},
 "log": {"interval": 1, "metrics": "$1/metrics.jsonl"},
 "checkpoint": {"dir": "$1/ckpt", "interval": ${3:-0}, "keep": 3},
 "output": "$1/model.safetensors"}
JSON
}

# ---- 1. DDP == one process with the global batch ----
# SGD with momentum: Adam's g / (sqrt(v) + eps) turns the round-off noise on
# gradients that are exactly zero in exact arithmetic (the key biases: softmax
# ignores a constant shift) into steps of lr * O(1), so two exact-in-theory
# runs diverge at 1e-4 after one step whatever the parallelism.
spec single 50 0 sgd
"$IGNIS" train single.json --quiet > single.log 2>&1 || { cat single.log; bad "single run failed"; }
for np in 2 4; do
    spec ddp$np 50 0 sgd
    mpi $np "$IGNIS" train ddp$np.json --quiet > ddp$np.log 2>&1 || { tail -5 ddp$np.log; bad "np $np run failed"; }
    if out=$("$CMP" ddp$np/model.safetensors single/model.safetensors 1e-5); then ok "np $np == 1 process: $out"
    else bad "np $np differs: $out"; fi
done

# ---- 2. kill -9 of a rank, then --resume ----
spec straight 600 20
mpi 2 "$IGNIS" train straight.json --quiet > straight.log 2>&1 || bad "straight np 2 run failed"
spec killed 600 20
mpi 2 "$IGNIS" train killed.json --quiet > killed1.log 2>&1 &
launcher=$!
for i in $(seq 1 1200); do [ -d killed/ckpt/step_00000100 ] && break; sleep 0.02; done
sleep 0.$((RANDOM % 3))$((RANDOM % 10))  # a random step after 100
victim=$(pgrep -f "^$IGNIS train killed.json" | tail -1) # a rank, not mpirun
[ -n "$victim" ] && kill -9 "$victim"
wait $launcher; rc=$?
[ $rc -ne 0 ] && ok "a rank killed with -9: the job ended (rc $rc)" || bad "the job survived the kill (rc $rc)"
[ -e killed/model.safetensors ] && bad "the killed run wrote final weights"
mpi 2 "$IGNIS" train killed.json --resume --quiet > killed2.log 2>&1 || { tail -5 killed2.log; bad "resume failed"; }
cmp -s straight/model.safetensors killed/model.safetensors && ok "kill -9 + resume == uninterrupted, bit for bit" \
    || bad "resumed weights differ: $("$CMP" killed/model.safetensors straight/model.safetensors 0)"

# ---- 3. resume on another number of ranks ----
spec w4 40 20
mpi 4 "$IGNIS" train w4.json --quiet > w4.log 2>&1 || bad "np 4 run failed"
losses() { grep -o '"step": [0-9]*, "loss": [0-9.]*' "$1" | awk -v from="$2" '{ s = $2 + 0; if (s > from) print s, $4 }'; }
for np in 2 1; do
    spec r$np 40 20
    mkdir -p r$np/ckpt && cp -r w4/ckpt/step_00000020 r$np/ckpt/
    sed -i "s/\"name\": \"r$np\"/\"name\": \"w4\"/" r$np.json
    if [ $np = 1 ]; then "$IGNIS" train r1.json --resume --quiet > r1.log 2>&1; else mpi $np "$IGNIS" train r$np.json --resume --quiet > r$np.log 2>&1; fi
    d=$(paste <(losses w4/metrics.jsonl 20) <(losses r$np/metrics.jsonl 20) | awk '{ d = $2 - $4; if (d < 0) d = -d; if (d > m) m = d; n++ } END { printf "%d %.2g", n, m }')
    set -- $d
    [ "$1" = 20 ] && awk -v m="$2" 'BEGIN { exit !(m <= 1.01e-6) }' && ok "4 ranks -> $np: 20 following losses within 1e-6 (max diff $2)" \
        || bad "4 ranks -> $np: losses differ ($d)"
done
spec from1 40 20
"$IGNIS" train from1.json --quiet --stop-after 20 > from1a.log 2>&1
spec to4 40 20
mkdir -p to4/ckpt && cp -r from1/ckpt/step_00000020 to4/ckpt/
sed -i 's/"name": "to4"/"name": "from1"/' to4.json
mpi 4 "$IGNIS" train to4.json --resume --quiet > to4.log 2>&1
"$IGNIS" train from1.json --resume --quiet > from1b.log 2>&1
d=$(paste <(losses from1/metrics.jsonl 20) <(losses to4/metrics.jsonl 20) | awk '{ d = $2 - $4; if (d < 0) d = -d; if (d > m) m = d; n++ } END { printf "%d %.2g", n, m }')
set -- $d
[ "$1" = 20 ] && awk -v m="$2" 'BEGIN { exit !(m <= 1.01e-6) }' && ok "1 rank -> 4: 20 following losses within 1e-6 (max diff $2)" \
    || bad "1 rank -> 4: losses differ ($d)"

# ---- 4. a half-written checkpoint is never loaded ----
mkdir -p w4/ckpt/.tmp_step_00000030 && echo garbage > w4/ckpt/.tmp_step_00000030/metadata.json
spec half 40 20
sed -i 's/"name": "half"/"name": "w4"/; s#"dir": "half/ckpt"#"dir": "w4/ckpt"#' half.json
"$IGNIS" train half.json --resume > half.log 2>&1
grep -q "resumed from step 40" half.log && ok "the .tmp_step_30 directory was ignored" || { cat half.log; bad "half-written checkpoint"; }

# ---- a checkpoint of another model: a clear error, nothing trained ----
spec other 40 20
sed -i 's/"n_embd": 32/"n_embd": 48/; s#"dir": "other/ckpt"#"dir": "w4/ckpt"#' other.json
"$IGNIS" train other.json --resume > other.log 2>&1; rc=$?
[ $rc = 1 ] && grep -q "transformer" other.log && grep -q "w4/ckpt" other.log && [ ! -e other/model.safetensors ] \
    && ok "another model's checkpoint: exit 1 naming the tensor and the checkpoint" || { cat other.log; bad "other model (rc $rc)"; }

# ---- 5. export ----
"$IGNIS" export w4/ckpt exported.safetensors > export.log 2>&1 && "$CMP" exported.safetensors w4/model.safetensors 0 > /dev/null \
    && ok "ignis export == the run's final weights" || { cat export.log; bad "export"; }

finish

#!/usr/bin/env bash
# tests/e2e_gpu_workers.sh: GPU ranks started by a worker join their job over
# NCCL, bootstrapped through the coordinator's rendezvous (rank 0's unique id
# relayed as its RENDEZVOUS address). A coordinator and one worker with
# `--gpus all` on loopback; an MLP on synthetic MNIST with `device: cuda`:
#  1. a 2-rank job succeeds; rank 0's log shows a 2-rank data-parallel run on
#     a GPU (NCCL refuses two ranks on one GPU, so each rank had its own);
#  2. its losses and final weights equal (within 1e-5) those of
#     `mpirun -np 2 ignis train` of the same spec (direct mode: NCCL
#     bootstrapped through MPI);
#  3. kill -9 of one GPU rank after the first checkpoint: the job restarts
#     (attempt 2 resumes from the checkpoint) and succeeds, on the weights of
#     an uninterrupted run (within 1e-5).
# Skipped (77) with fewer than 2 GPUs or a build without NCCL. Every wait is
# bounded; every process started here is killed at exit.
# Usage: e2e_gpu_workers.sh IGNIS ST_COMPARE SUBMIT_JOB MAKE_MNIST nccl|no-nccl
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1 CMP=$2 SUBMIT=$3 MAKE_MNIST=$4 NCCL=$5
[ "$NCCL" = nccl ] || { echo "this build has no NCCL: skipped"; exit 77; }
gpus=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU')
[ "$gpus" -ge 2 ] || { echo "$gpus GPU(s) (nvidia-smi -L): 2 needed: skipped"; exit 77; }
export NCCL_NVLS_ENABLE=0 # no NVLink multicast (the worker also sets it for its ranks)
export OMP_NUM_THREADS=1
mpirun_env
enter_work_dir

"$MAKE_MNIST" mnist 6000 1000 7
spec() { # name steps ckpt_interval log_interval: absolute paths (the ranks run in the worker's directory)
    cat > "$1.json" <<JSON
{"name": "$1",
 "model": {"type": "mlp", "in": 784, "hidden": 256, "layers": 1, "classes": 10},
 "data": {"format": "mnist", "train": "$work/mnist/train-images-idx3-ubyte",
          "train_labels": "$work/mnist/train-labels-idx1-ubyte",
          "val": "$work/mnist/t10k-images-idx3-ubyte", "val_labels": "$work/mnist/t10k-labels-idx1-ubyte"},
 "train": {"batch_size": 64, "steps": $2, "device": "cuda"},
 "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
 "schedule": {"name": "cosine", "warmup": 20},
 "log": {"interval": $4, "metrics": "$work/$1/metrics.jsonl"},
 "checkpoint": {"dir": "$work/$1/ckpt", "interval": $3, "keep": 3},
 "output": "$work/$1/model.safetensors"}
JSON
}
losses() { grep -o '"step": [0-9]*, "loss": [0-9.]*' "$1" | awk '{ print $2, $4 }'; }

# ---- the coordinator on a free port, one worker with every GPU ----
coordinator_on_free_port "$work/state"
NCCL_DEBUG=INFO "$IGNIS" worker --coordinator "$endpoint" --gpus all --name gw --work-dir "$work/gw" > gw.log 2>&1 &
pids+=($!)
wait_for 10 grep -q "registered as worker" gw.log || { cat coord.log gw.log; echo "FAILED: the worker did not register"; exit 1; }
grep -q "$gpus GPU slots" coord.log && ok "the worker registered its $gpus GPUs as slots" \
    || bad "GPU slots: $(grep "registered as worker" coord.log)"

# ---- 1. a 2-rank CUDA job on the worker ----
spec job 300 0 1
t0=$(date +%s.%N)
if out=$(timeout -k 5 300 "$SUBMIT" "$endpoint" job.json 2 0 280); then ok "2 GPU ranks on the worker: $out"
else bad "the job did not succeed: $out"; tail -20 coord.log; tail -n 30 gw/job-*/attempt-*/rank-*.log; fi
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "job time: %.1f s\n", b - a }'
rank0=gw/job-1/attempt-1/rank-0.log
grep -q "on cuda:" "$rank0" && grep -q "data parallel" "$rank0" && grep -q "ranks: 2" "$rank0" \
    && ok "rank 0's log: $(grep -o '[0-9]* parameters on cuda:[0-9]* (data parallel)' "$rank0"), 2 ranks" \
    || { cat "$rank0"; bad "rank 0's log"; }
for r in 0 1; do # NCCL's own account of each rank's device (diagnostic only)
    grep -ho "rank $r nranks 2 cudaDev [0-9]*" gw/job-1/attempt-1/rank-$r.log | head -1
done
grep -q "rendezvous of 2 ranks complete" coord.log && ok "the coordinator relayed rank 0's NCCL id" \
    || bad "no complete rendezvous in the coordinator's log"

# ---- 2. == mpirun -np 2 (NCCL bootstrapped through MPI) ----
if command -v mpirun > /dev/null; then
    spec direct 300 0 1
    mpi 2 -x NCCL_NVLS_ENABLE=0 -x OMP_NUM_THREADS "$IGNIS" train direct.json --quiet > direct.log 2>&1 || { tail -20 direct.log; bad "mpirun -np 2 run failed"; }
    if out=$("$CMP" job/model.safetensors direct/model.safetensors 1e-5); then ok "workers == mpirun -np 2: $out"
    else bad "workers' weights differ from mpirun -np 2: $out"; fi
    d=$(paste <(losses job/metrics.jsonl) <(losses direct/metrics.jsonl) \
        | awk '$1 == $3 { d = $2 - $4; if (d < 0) d = -d; if (d > m) m = d; n++ } END { printf "%d %.2g", n, m }')
    set -- $d
    [ "$1" = 300 ] && awk -v m="$2" 'BEGIN { exit !(m <= 1e-5) }' \
        && ok "workers' 300 losses == mpirun -np 2's within 1e-5 (max diff $2)" || bad "losses differ ($d)"
else
    echo "mpirun not found: the comparison with mpirun -np 2 is skipped"
fi

# ---- 3. kill -9 of a GPU rank mid-run ----
spec killed 1500 100 100
spec whole 1500 100 100
timeout -k 5 300 "$SUBMIT" "$endpoint" killed.json 2 1 280 > killed.out 2>&1 &
client=$!
pids+=($client)
wait_for 120 test -d killed/ckpt/step_00000100 || bad "no first checkpoint"
victim=$(pgrep -f "$work/gw/job-2/attempt-1/job.json" | tail -1)
kill -0 $client 2> /dev/null || bad "the job ended before the kill: $(cat killed.out)"
[ -n "$victim" ] && kill -KILL "$victim"
wait $client; rc=$?
[ $rc = 0 ] && grep -qs "resumed from step" gw/job-2/attempt-2/rank-0.log \
    && ok "rank killed (pid $victim): $(cat killed.out), attempt 2 $(grep -h "resumed from step" gw/job-2/attempt-2/rank-0.log)" \
    || { cat killed.out; grep -E "job 2 " coord.log; tail -n 20 gw/job-2/attempt-*/rank-*.log; bad "the job with a killed rank (rc $rc)"; }
timeout -k 5 300 "$SUBMIT" "$endpoint" whole.json 2 0 280 > whole.out 2>&1 \
    || { cat whole.out; tail -n 20 gw/job-3/attempt-*/rank-*.log; bad "the uninterrupted job"; }
if out=$("$CMP" killed/model.safetensors whole/model.safetensors 1e-5); then ok "restarted == uninterrupted: $out"
else bad "the restarted job's weights differ from the uninterrupted one's: $out"; fi

finish

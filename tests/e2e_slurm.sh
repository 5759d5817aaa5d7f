#!/usr/bin/env bash
# tests/e2e_slurm.sh: `ignis run --slurm` under a real one-node Slurm that
# tests/fixtures/start-local-slurm.sh starts (munge, slurmctld, slurmd of
# Debian's slurm-wlm; 4 CPUs declared; configuration and state in this
# test's directory; stopped at exit):
#  1. `salloc -n 4 ignis run --slurm JOB`: a worker started with srun on the
#     node runs the job's 4 ranks; it succeeds, its losses and final weights
#     equal (1e-5) those of `mpirun -np 4 ignis train JOB`, the worker was
#     stopped through srun (SIGTERM) and nothing is left behind;
#  2. `ignis run --slurm` outside an allocation: exit 2, "not inside a Slurm
#     allocation: use salloc/sbatch", nothing started;
#  3. `ignis run --slurm` killed -9 mid-job: its srun gets SIGTERM and Slurm
#     kills the step: no worker or rank is left, the allocation is released.
# Skips (77) where Slurm cannot run: not root, slurm-wlm or munge missing, or
# the cluster does not come up (its logs are printed).
# Usage: e2e_slurm.sh IGNIS ST_COMPARE START_LOCAL_SLURM
set -u
IGNIS=$1 CMP=$2 SLURM_FIXTURE=$3
[ "$(id -u)" = 0 ] || { echo "not root: Slurm cannot be started here; skipped"; exit 77; }
for p in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged salloc srun scontrol sinfo; do
    command -v "$p" > /dev/null || { echo "$p not found (slurm-wlm, munge): skipped"; exit 77; }
done
unset $(env | grep -o '^SLURM_[A-Z_]*') # not inside anyone's allocation
export OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
work=$(mktemp -d)
cleanup() {
    "$SLURM_FIXTURE" stop "$work/slurm"
    for p in $(pgrep -f "$work/"); do kill -9 "$p" 2> /dev/null; done # workers and ranks of this test
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM
cd "$work"
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAILED: $1"; failed=$((failed + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
# wait_for SECONDS COMMAND...: until the command succeeds (1 when it never did).
wait_for() {
    local end=$((SECONDS + $1)); shift
    until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
left() { pgrep -f "$work/$1" > /dev/null && { pgrep -fa "$work/$1"; return 0; }; return 1; }

awk 'BEGIN { srand(3); for (i = 0; i < 20000; i++) printf "%s ", (rand() < 0.5 ? "the cat" : "a dog") }' > corpus.txt
spec() { # name steps
    cat > "$1.json" <<JSON
{"name": "$1",
 "model": {"type": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32},
 "data": {"format": "text", "train": "corpus.txt"},
 "train": {"batch_size": 8, "steps": $2},
 "optimizer": {"name": "sgd", "lr": 3e-3, "momentum": 0.9},
 "eval": {"batches": 1},
 "log": {"interval": 1, "metrics": "$1/metrics.jsonl"},
 "output": "$1/model.safetensors"}
JSON
}
losses() { grep -o '"step": [0-9]*, "loss": [0-9.e+-]*' "$1" | awk '{ print $2, $4 }' | tr -d ,; }
# same_losses A B: the same steps, each loss within 1e-5 (relative)
same_losses() {
    local a b
    a=$(losses "$1") b=$(losses "$2")
    [ -n "$a" ] && [ "$(echo "$a" | wc -l)" = "$(echo "$b" | wc -l)" ] && paste <(echo "$a") <(echo "$b") |
        awk '{ d = $2 - $4; if (d < 0) d = -d; if ($1 != $3 || d > 1e-5 * ($4 < 0 ? -$4 : $4) + 1e-6) bad = 1 } END { exit bad }'
}
spec job 10

# ---- 2. outside an allocation ----
err=$("$IGNIS" run --slurm job.json --state "$work/run0" 2>&1); rc=$?
check "run --slurm outside an allocation: exit 2, '$err'" \
    '[ $rc -eq 2 ] && [[ $err == "ignis run: not inside a Slurm allocation: use salloc/sbatch"* ]] && [ ! -e run0 ]'

# ---- Slurm ----
if ! "$SLURM_FIXTURE" start "$work/slurm" 4; then
    tail -n 20 "$work"/slurm/*.log
    echo "Slurm did not come up here: skipped"
    exit 77
fi
export SLURM_CONF=$work/slurm/slurm.conf
node=$(hostname -s)

# ---- 1. salloc -n 4 ignis run --slurm ----
out=$(timeout -k 5 240 salloc -n 4 "$IGNIS" run --slurm job.json --state "$work/run1" 2>&1); rc=$?
check "salloc -n 4 ignis run --slurm: exit 0 (rc $rc)" \
    '[ $rc -eq 0 ] || { echo "$out"; cat run1/worker-*.log; tail -n 5 run1/work/*/job-1/attempt-*/rank-*.log; false; }'
check "run --slurm: one worker with the allocation's 4 slots" \
    'echo "$out" | grep -q "^ignis run: coordinator at .*, 1 worker (--slurm) with 4 CPU slots"'
check "run --slurm: one attempt of 4 ranks succeeded" 'echo "$out" | grep -q "^job 1  succeeded  attempt 1 .*  4 ranks"'
check "run --slurm: the 4 rank logs in the node's work dir" \
    '[ "$(ls run1/work/$node/job-1/attempt-1 2> /dev/null | grep -c "^rank-[0-3]\.log$")" = 4 ]'
check "run --slurm: the worker ran as a job step and stopped at the end of the stdin srun forwards" \
    'grep -q "registered as worker" run1/worker-$node.log && grep -q "end of stdin: aborting" run1/worker-$node.log || { cat run1/worker-$node.log; false; }'
check "run --slurm: nothing left" '! left run1'
check "run --slurm: the allocation was released" '[ -z "$(squeue -h 2> /dev/null)" ] || { squeue; false; }'

# ---- 3. ignis run killed -9 inside the allocation ----
spec long 100000000
timeout -k 5 120 salloc -n 4 "$IGNIS" run --slurm long.json --state "$work/run2" > run2.log 2>&1 &
ranks() { [ "$(pgrep -fc "$work/run2/work/.*/job-1/attempt-1/job.json")" -ge 4 ]; }
check "run --slurm: 4 ranks of the long job run" 'wait_for 60 ranks || { cat run2.log run2/worker-*.log; false; }'
kill -9 $(pgrep -f "^$IGNIS run --slurm long.json") # ignis run itself, not salloc
t0=$SECONDS
wait_for 30 eval "! left run2 > /dev/null"
check "ignis run killed -9: srun had Slurm kill the step, no worker or rank left after $((SECONDS - t0)) s" '! left run2'
check "ignis run killed -9: salloc ended and released the allocation" \
    'wait_for 30 eval "[ -z \"\$(squeue -h)\" ]" || { squeue; false; }'

if command -v mpirun > /dev/null; then
    spec mpi 10
    timeout -k 5 240 mpirun -np 4 --bind-to none "$IGNIS" train mpi.json --quiet > mpi.log 2>&1 || { tail -5 mpi.log; bad "mpirun run failed"; }
    check "run --slurm: the losses of mpirun -np 4 (1e-5)" 'same_losses job/metrics.jsonl mpi/metrics.jsonl'
    if out=$("$CMP" job/model.safetensors mpi/model.safetensors 1e-5); then ok "run --slurm: the final weights of mpirun -np 4: $out"
    else bad "run --slurm: the final weights differ from mpirun -np 4: $out"; fi
else
    echo "mpirun not found: the comparison with mpirun -np 4 is skipped"
fi

echo "e2e_slurm: $passed passed, $failed failed"
[ $failed -eq 0 ]

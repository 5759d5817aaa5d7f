#!/usr/bin/env bash
# bench/recovery_vs_torchrun.sh: how long a 2-rank CPU training job is down
# after kill -9 of one rank, ignis against torchrun's elastic agent, side by
# side in one run on this machine. Both with default settings, both jobs a
# 2-layer, 32-wide transformer over batches of 8 x 32 tokens, checkpointing
# every 50 steps; the time is kill -9 -> the first step printed by the
# restarted ranks (so it includes noticing the death, stopping the other
# rank, starting new processes, the rendezvous and loading the checkpoint).
#   ignis: `ignis coordinator` + `ignis worker --cpus 2`, the job submitted
#          with max_restarts 3; the victim is rank 1.
#   torch: `torchrun --standalone --nproc_per_node 2 --max_restarts 3`
#          of bench/recovery_torchrun.py, with its default monitor interval
#          (5 s) and again with 0.5 s; the victim is the worker with
#          LOCAL_RANK=1. (bench/torchrun_compat.py: Debian's torchrun needs
#          one fix to start on Python 3.11.)
# Usage: bench/recovery_vs_torchrun.sh IGNIS [ROUNDS]   (results: bench/RESULTS.md)
set -u
IGNIS=$(realpath "$1") ROUNDS=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
TORCHRUN=${TORCHRUN:-"$PY $here/torchrun_compat.py"}  # see torchrun_compat.py
export OMP_NUM_THREADS=1
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null; done
    sleep 1
    for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null; done
    pkill -KILL -f "$work/" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
wait_for() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.02; done; }

# ---- ignis ----
awk 'BEGIN { srand(3); for (i = 0; i < 20000; i++) printf "%s ", (rand() < 0.5 ? "the cat" : "a dog") }' > corpus.txt
port=$((20000 + RANDOM % 40000))
endpoint=tcp://127.0.0.1:$port
"$IGNIS" coordinator --listen "$endpoint" --state "$work/state" > coord.log 2>&1 & pids+=($!)
"$IGNIS" worker --coordinator "$endpoint" --cpus 2 --name n1 --work-dir "$work/n1" > worker.log 2>&1 & pids+=($!)
wait_for 20 grep -q "registered as worker" worker.log || { cat coord.log worker.log; exit 1; }
ignis_times=()
for r in $(seq 1 "$ROUNDS"); do
    cat > job$r.json <<JSON
{"name": "job$r", "model": {"type": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32},
 "data": {"format": "text", "train": "$work/corpus.txt"}, "train": {"batch_size": 8, "steps": 100000},
 "optimizer": {"name": "sgd", "lr": 3e-3, "momentum": 0.9}, "log": {"interval": 1},
 "checkpoint": {"dir": "$work/job$r/ckpt", "interval": 50}, "output": "$work/job$r/model.safetensors"}
JSON
    j=$("$IGNIS" submit job$r.json --ranks 2 --max-restarts 3 --coordinator "$endpoint" | awk '{ print $3 }')
    wait_for 120 test -d job$r/ckpt/step_00000050 || { echo "ignis: no checkpoint"; tail coord.log; exit 1; }
    victim=$(pgrep -f "$work/n1/job-$j/attempt-1/job.json" | tail -1)
    t_kill=$(now); kill -KILL "$victim"
    wait_for 60 grep -qs "^step" n1/job-$j/attempt-2/rank-0.log && t=$(secs "$t_kill" "$(now)") || t=never
    ignis_times+=("$t")
    "$IGNIS" cancel "$j" --coordinator "$endpoint" > /dev/null
    wait_for 30 eval "! pgrep -f '$work/n1/job-$j/' > /dev/null"
done

# ---- torchrun: its default monitor interval (5 s), then 0.5 s ----
torch_times=() torch_fast=()
for r in $(seq 1 $((2 * ROUNDS))); do
    mkdir -p t$r
    monitor=5; [ $r -gt "$ROUNDS" ] && monitor=0.5
    $TORCHRUN --standalone --nproc_per_node 2 --max_restarts 3 --monitor_interval $monitor \
        "$here/recovery_torchrun.py" "$work/t$r" 100000 50 > t$r.log 2>&1 & tr=$!
    wait_for 120 test -f t$r/ckpt.pt || { echo "torchrun: no checkpoint"; tail t$r.log; exit 1; }
    victim=
    for p in $(pgrep -f "recovery_torchrun.py $work/t$r"); do
        tr '\0' '\n' < /proc/$p/environ 2> /dev/null | grep -qx LOCAL_RANK=1 && victim=$p
    done
    t_kill=$(now); kill -KILL "$victim"
    wait_for 60 grep -q "^restart 1 step" t$r.log && t=$(secs "$t_kill" "$(now)") || t=never
    if [ $r -le "$ROUNDS" ]; then torch_times+=("$t"); else torch_fast+=("$t"); fi
    kill -TERM $tr; wait $tr 2> /dev/null
    pkill -KILL -f "recovery_torchrun.py $work/t$r"
done

echo "kill -9 of rank 1 -> first step of the restarted 2-rank job, seconds ($ROUNDS rounds, $(getconf _NPROCESSORS_ONLN) cores)"
printf "  ignis (coordinator + worker, defaults):     %s\n" "${ignis_times[*]}"
printf "  torchrun (elastic agent, monitor 5 s):      %s\n" "${torch_times[*]}"
printf "  torchrun (elastic agent, monitor 0.5 s):    %s\n" "${torch_fast[*]}"

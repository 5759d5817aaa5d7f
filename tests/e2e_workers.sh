#!/usr/bin/env bash
# tests/e2e_workers.sh: ranks started by workers join their job. A
# coordinator and two workers of 2 CPU slots each, on loopback; a 4-rank job
# of a small GPT submitted to the coordinator (submit_job), its ranks joining
# through the coordinator's rendezvous over a UCX group:
#  1. the job succeeds, each worker's work dir holding the logs of its 2
#     ranks, and rank 0's log shows the 4-rank data-parallel run;
#  2. its final weights equal (within 1e-5 relative, per tensor) those of
#     `mpirun -np 4 ignis train` of the same spec, and of one process; so do
#     those of `ignis run --local 4`, whose 30 losses equal mpirun's (1e-5);
#  3. its checkpoints (written in the foreground: a UCX group has no
#     subgroup for the background writer) are committed, and resuming from
#     one ends on the same weights;
#  4. a rank whose rendezvous the coordinator refuses (no such job) exits 1
#     naming the reason, at once; with no coordinator, it gives up after
#     IGNIS_RENDEZVOUS_TIMEOUT; a world of 1 needs no rendezvous;
#  5. a coordinator killed -9 and restarted while ranks wait in the
#     rendezvous: their repeated RENDEZVOUS reach the new one; the job succeeds;
#  6. a coordinator killed -9 mid-training and restarted: the ranks train on,
#     are re-adopted, and the job succeeds in its first attempt with the
#     weights of an uninterrupted run, bit for bit; and when all the ranks finish
#     while it is away, the restarted one still sees the job succeed.
# Every wait is bounded; every process started here is killed at exit.
# Usage: e2e_workers.sh IGNIS ST_COMPARE SUBMIT_JOB
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1 CMP=$2 SUBMIT=$3
export OMP_NUM_THREADS=1 # the workers pass their environment on to the ranks
mpirun_env
enter_work_dir

write_corpus corpus.txt
spec() { # name steps ckpt_interval: absolute paths (the ranks run in the workers' directory)
    cat > "$1.json" <<JSON
{"name": "$1",
 "model": {"type": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32},
 "data": {"format": "text", "train": "$work/corpus.txt"},
 "train": {"batch_size": 8, "steps": $2},
 "optimizer": {"name": "sgd", "lr": 3e-3, "momentum": 0.9},
 "schedule": {"name": "cosine", "warmup": 5},
 "log": {"interval": 1, "metrics": "$work/$1/metrics.jsonl"},
 "checkpoint": {"dir": "$work/$1/ckpt", "interval": $3, "keep": 5},
 "output": "$work/$1/model.safetensors"}
JSON
}

# ---- the coordinator on a free port, two workers ----
coordinator_on_free_port "$work/state"
for n in n1 n2; do
    "$IGNIS" worker --coordinator "$endpoint" --cpus 2 --name $n --work-dir "$work/$n" > $n.log 2>&1 &
    pids+=($!)
done
wait_for 10 grep -q "registered as worker" n1.log && wait_for 10 grep -q "registered as worker" n2.log \
    || { cat coord.log n1.log n2.log; echo "FAILED: the workers did not register"; exit 1; }

# ---- 1. a 4-rank job on the workers ----
spec job 30 10
t0=$(date +%s.%N)
if out=$(timeout -k 5 300 "$SUBMIT" "$endpoint" job.json 4 0 280); then ok "4 ranks on 2 workers: $out"
else bad "the job did not succeed: $out"; tail -20 coord.log; tail -n 20 n*/job-*/attempt-*/rank-*.log; fi
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "job time: %.1f s\n", b - a }'
# each worker holds the logs of the 2 ranks it ran (which worker gets ranks 0-1 depends on who registered first)
logs=$(cd "$work" && for n in n1 n2; do echo "$n: $(ls $n/job-1/attempt-1 2> /dev/null | grep -c '^rank-[0-3]\.log$')"; done | tr '\n' ' ')
all=$(ls n1/job-1/attempt-1 n2/job-1/attempt-1 2> /dev/null | grep '^rank-' | sort | tr '\n' ' ')
[ "$logs" = "n1: 2 n2: 2 " ] && [ "$all" = "rank-0.log rank-1.log rank-2.log rank-3.log " ] \
    && ok "rank logs: 2 in each worker's work dir, ranks 0-3" || { ls -R n1 n2; bad "rank logs: $logs / $all"; }
rank0=$(ls n*/job-1/attempt-1/rank-0.log 2> /dev/null)
grep -q "data parallel" "$rank0" && grep -q "ranks: 4" "$rank0" && grep -q "weights: $work/job/model.safetensors" "$rank0" \
    && ok "rank 0's log ($rank0): a data-parallel run of 4 ranks" || { cat "$rank0"; bad "rank 0's log"; }
grep -q "rendezvous of 4 ranks complete" coord.log && ok "the coordinator relayed the 4 addresses" \
    || bad "no complete rendezvous in the coordinator's log"

# ---- 2. == mpirun -np 4, == one process ----
spec single 30 10
timeout -k 5 300 "$IGNIS" train single.json --quiet > single.log 2>&1 || { cat single.log; bad "single run failed"; }
if out=$("$CMP" job/model.safetensors single/model.safetensors 1e-5); then ok "workers == 1 process: $out"
else bad "workers differ from 1 process: $out"; fi
if command -v mpirun > /dev/null; then
    spec mpi 30 10
    mpi 4 "$IGNIS" train mpi.json --quiet > mpi.log 2>&1 || { tail -5 mpi.log; bad "mpirun run failed"; }
    if out=$("$CMP" job/model.safetensors mpi/model.safetensors 1e-5); then ok "workers == mpirun -np 4: $out"
    else bad "workers differ from mpirun -np 4: $out"; fi
    # `ignis run --local 4` (its own coordinator and worker): the same losses, step by step, and weights
    spec runl 30 10
    out=$(timeout -k 5 300 "$IGNIS" run --local 4 runl.json --state "$work/runl-state" 2>&1) \
        && ok "ignis run --local 4: exit 0" || { echo "$out" | tail -5; bad "ignis run --local 4 failed"; }
    if out=$("$CMP" runl/model.safetensors mpi/model.safetensors 1e-5); then ok "run --local 4 == mpirun -np 4: $out"
    else bad "run --local 4 differs from mpirun -np 4: $out"; fi
    if out=$(python3 - runl/metrics.jsonl mpi/metrics.jsonl <<'PY'
import json, sys
a, b = ({r["step"]: r["loss"] for r in map(json.loads, open(f)) if "loss" in r} for f in sys.argv[1:3])
worst = max(abs(a[s] - b[s]) / max(abs(b[s]), 1e-12) for s in b)
print(f"{len(a)} losses, largest relative difference {worst:.2e}")
sys.exit(0 if sorted(a) == sorted(b) == list(range(1, 31)) and worst <= 1e-5 else 1)
PY
    ); then ok "run --local 4 losses == mpirun -np 4: $out"; else bad "run --local 4 losses differ: $out"; fi
else
    echo "mpirun not found: the comparison with mpirun -np 4 is skipped"
fi

# ---- 3. the foreground checkpoints ----
steps=$(ls -d job/ckpt/step_* 2> /dev/null | xargs -n1 basename | tr '\n' ' ')
[ "$steps" = "step_00000010 step_00000020 step_00000030 " ] && ok "checkpoints committed: $steps" \
    || bad "checkpoints: '$steps'"
spec resumed 30 10
mkdir -p resumed/ckpt && cp -r job/ckpt/step_00000020 resumed/ckpt/
sed -i 's/"name": "resumed"/"name": "job"/' resumed.json
timeout -k 5 300 "$IGNIS" train resumed.json --resume --quiet > resumed.log 2>&1 || { cat resumed.log; bad "resume failed"; }
if out=$("$CMP" resumed/model.safetensors job/model.safetensors 1e-5); then ok "resumed from the workers' step 20: the same final weights ($out)"
else bad "resumed weights differ: $out"; fi

# ---- 4. rendezvous failures ----
spec lone 5 0
t0=$(date +%s)
IGNIS_COORDINATOR=$endpoint IGNIS_JOB=99 IGNIS_ATTEMPT=1 RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 \
    timeout -k 5 60 "$IGNIS" train lone.json --quiet > refused.log 2>&1; rc=$?
[ $rc = 1 ] && grep -q "rendezvous" refused.log && grep -q "job 99" refused.log && [ $(($(date +%s) - t0)) -le 10 ] \
    && ok "a refused rendezvous: exit 1 at once, naming the reason ($(tail -1 refused.log))" || { cat refused.log; bad "refused rendezvous (rc $rc)"; }
t0=$(date +%s)
IGNIS_COORDINATOR=tcp://127.0.0.1:1 IGNIS_JOB=1 IGNIS_ATTEMPT=1 RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 IGNIS_RENDEZVOUS_TIMEOUT=2 \
    timeout -k 5 60 "$IGNIS" train lone.json --quiet > away.log 2>&1; rc=$?
dt=$(($(date +%s) - t0))
[ $rc = 1 ] && grep -q "no reply within 2 s" away.log && [ $dt -ge 1 ] && [ $dt -le 10 ] \
    && ok "no coordinator: exit 1 after the rendezvous timeout (${dt} s)" || { cat away.log; bad "no coordinator (rc $rc, $dt s)"; }
IGNIS_COORDINATOR=tcp://127.0.0.1:1 IGNIS_JOB=1 IGNIS_ATTEMPT=1 RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 IGNIS_RENDEZVOUS_TIMEOUT=2 \
    timeout -k 5 60 "$IGNIS" train lone.json --quiet > alone.log 2>&1 && [ -s lone/model.safetensors ] \
    && ok "a world of 1 under a worker: no rendezvous, trained" || { cat alone.log; bad "world of 1"; }

# ---- 5. the coordinator restarts mid-rendezvous ----
# Another coordinator and two workers whose rank 3 starts 4 s late: ranks
# 0-2 wait in the rendezvous while the coordinator is killed (-9) and
# restarted on its journal; their RENDEZVOUS repeats reach the new one, which
# completes the rendezvous when rank 3 comes, and the job succeeds.
cat > late3.sh <<SH
#!/bin/sh
[ "\$RANK" = 3 ] && sleep 4
exec "$IGNIS" train "\$@"
SH
chmod +x late3.sh
coordinator2() { "$IGNIS" coordinator --listen "$endpoint2" --state "$work/state2" >> coord2.log 2>&1 & coord2=$!; pids+=($coord2); }
for try in 1 2 3 4 5; do
    endpoint2=tcp://127.0.0.1:$(free_port)
    coordinator2
    wait_for 5 grep -q "listening on" coord2.log && break
done
for n in n3 n4; do
    "$IGNIS" worker --coordinator "$endpoint2" --cpus 2 --name $n --work-dir "$work/$n" --rank-command "$work/late3.sh" > $n.log 2>&1 &
    pids+=($!)
done
wait_for 10 grep -q "registered as worker" n3.log && wait_for 10 grep -q "registered as worker" n4.log || bad "workers n3, n4 did not register"
spec restarted 30 0
timeout -k 5 300 "$SUBMIT" "$endpoint2" restarted.json 4 0 120 > restarted.out 2>&1 &
client=$!
pids+=($client)
wait_for 10 grep -q "attempt 1: 2 rank(s)" n3.log && wait_for 10 grep -q "attempt 1: 2 rank(s)" n4.log
sleep 1
kill -KILL $coord2
wait $coord2 2> /dev/null
coordinator2
wait $client; rc=$?
[ $rc = 0 ] && "$CMP" restarted/model.safetensors single/model.safetensors 1e-5 > /dev/null \
    && ok "coordinator killed -9 and restarted mid-rendezvous: $(cat restarted.out)" \
    || { cat restarted.out coord2.log; tail -n 20 n3/job-*/attempt-*/rank-*.log n4/job-*/attempt-*/rank-*.log; bad "restart mid-rendezvous (rc $rc)"; }

# ---- 6. the coordinator killed mid-training ----
# A 2000-step job on the same workers: at its first reported step the
# coordinator is killed (-9); the ranks keep training meanwhile; restarted on
# its journal, it re-adopts them when their workers register again, and the
# job succeeds in its first attempt with the weights (bit for bit) of the
# same job run without a kill. Then a 300-step job whose ranks all finish while the coordinator is
# away: the restarted one learns their exits from the workers' HELLOs.
spec midrun 2000 1000
timeout -k 5 300 "$SUBMIT" "$endpoint2" midrun.json 4 0 240 > midrun.out 2>&1 &
client=$!
pids+=($client)
status2() { timeout -k 2 10 "$IGNIS" status "$1" --coordinator "$endpoint2" 2> /dev/null; }
step2() { status2 2 | sed -n 's/.*  step \([0-9]*\).*/\1/p'; }
wait_for 60 eval '[ -n "$(step2)" ]'
at=$(step2)
kill -KILL $coord2
wait $coord2 2> /dev/null
sleep 2
ranks_alive=$(pgrep -fc "$work/n[34]/job-2/attempt-1/job.json" || true)
coordinator2
wait $client; rc=$?
final=$(status2 2)
spec midwhole 2000 1000
timeout -k 5 300 "$SUBMIT" "$endpoint2" midwhole.json 4 0 240 > midwhole.out 2>&1 || { cat midwhole.out; bad "the uninterrupted job failed"; }
cmpout=$("$CMP" midrun/model.safetensors midwhole/model.safetensors 0 2>&1) && same=yes || same=no
[ $rc = 0 ] && [[ $final =~ succeeded\ \ attempt\ 1 ]] && [ "$ranks_alive" -ge 1 ] && [ $same = yes ] \
    && ok "coordinator killed -9 at step $at with $ranks_alive ranks training on, restarted: $final; == uninterrupted: $cmpout" \
    || { cat midrun.out; tail -20 coord2.log; bad "coordinator killed mid-training (rc $rc, step $at, alive $ranks_alive): $final; $cmpout"; }

spec away 300 0
timeout -k 5 300 "$SUBMIT" "$endpoint2" away.json 4 0 240 > away.out 2>&1 &
client=$!
pids+=($client)
wait_for 60 eval 'grep -qs "^step" n[34]/job-4/attempt-1/rank-0.log'
kill -KILL $coord2
wait $coord2 2> /dev/null
wait_for 120 eval '! pgrep -f "$work/n[34]/job-4/attempt-1/job.json" > /dev/null' && gone=yes || gone=no
coordinator2
wait $client; rc=$?
final=$(status2 4)
[ $rc = 0 ] && [ $gone = yes ] && [[ $final =~ succeeded\ \ attempt\ 1 ]] \
    && ok "every rank finished while the coordinator was away; restarted: $final" \
    || { cat away.out; tail -20 coord2.log; bad "ranks finished while the coordinator was away (rc $rc, gone $gone): $final"; }

finish

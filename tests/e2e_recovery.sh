#!/usr/bin/env bash
# tests/e2e_recovery.sh: the queue and recovery from failures, with real
# processes. A coordinator (heartbeat timeout 2 s) and two workers of 2 CPU
# slots each, on loopback; jobs of a small GPT sent with `ignis submit`:
#  1. two 4-rank jobs run one after the other (the second starts only once
#     the first ended) and two 2-rank jobs side by side; all succeed;
#  2. kill -9 of a rank after the first checkpoint: the coordinator notices
#     at once (RANK_EXIT), no rank of attempt 1 remains, attempt 2 resumes
#     from the last committed checkpoint and the job ends on the same final
#     weights, bit for bit, as an uninterrupted job of the same spec;
#  3. kill -9 of a worker and of its ranks (a lost node): the coordinator
#     fences the node after the heartbeat timeout and the job (4 ranks, min 2)
#     goes on with 2 ranks on the other worker from its last checkpoint; no
#     rank of attempt 1 is left on the other worker.
# (0. `ignis train` creates the directory its output goes into.)
# Prints the times kill -> failure noticed -> first step of attempt 2.
# Every wait is bounded; every process started here is killed at exit.
# Usage: e2e_recovery.sh IGNIS ST_COMPARE
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1 CMP=$2
export OMP_NUM_THREADS=1 # the workers pass their environment on to the ranks
enter_work_dir
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

write_corpus corpus.txt
spec() { # name steps ckpt_interval: absolute paths (the ranks run in the workers' directory)
    cat > "$1.json" <<JSON
{"name": "$1",
 "model": {"type": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "dropout": 0},
 "data": {"format": "text", "train": "$work/corpus.txt"},
 "train": {"batch_size": 8, "steps": $2},
 "optimizer": {"name": "sgd", "lr": 3e-3, "momentum": 0.9},
 "schedule": {"name": "cosine", "warmup": 5},
 "log": {"interval": 50, "metrics": "$work/$1/metrics.jsonl"},
 "checkpoint": {"dir": "$work/$1/ckpt", "interval": $3, "keep": 3},
 "output": "$work/$1/model.safetensors"}
JSON
}
# submit SPEC OPTIONS...: prints the job id
submit() { "$IGNIS" submit --coordinator "$endpoint" "$@" | sed -n 's/^submitted job \([0-9]*\)$/\1/p'; }
state() { "$IGNIS" status --coordinator "$endpoint" "$1" | awk '{ print $3 }'; }
final() { local s; s=$(state "$1"); [ "$s" = succeeded ] || [ "$s" = failed ] || [ "$s" = cancelled ]; }
# wait_job ID SECONDS: 0 when the job succeeded
wait_job() { wait_for "$2" final "$1"; [ "$(state "$1")" = succeeded ]; }
ranks_of() { pgrep -f "$work/n[12]/job-$1/attempt-$2/job.json"; }
show() { "$IGNIS" status --coordinator "$endpoint" "$1"; tail -20 coord.log; tail -n 15 n*/job-$1/attempt-*/rank-*.log; }

# ---- 0. ignis train creates the directory of its output ----
cat > mkdir.json <<JSON
{"model": {"type": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
 "data": {"format": "text", "train": "$work/corpus.txt"}, "train": {"batch_size": 4, "steps": 3},
 "output": "$work/deep/er/model.safetensors"}
JSON
timeout -k 5 120 "$IGNIS" train mkdir.json --quiet > mkdir.log 2>&1 && [ -s deep/er/model.safetensors ] \
    && ok "ignis train created the output's directory" || { cat mkdir.log; bad "output in a new directory"; }

# ---- the coordinator on a free port, two workers ----
coordinator_on_free_port "$work/state" --heartbeat-timeout 2
declare -A worker
for n in n1 n2; do
    "$IGNIS" worker --coordinator "$endpoint" --cpus 2 --name $n --work-dir "$work/$n" > $n.log 2>&1 &
    worker[$n]=$!
    pids+=($!)
done
wait_for 10 grep -q "registered as worker" n1.log && wait_for 10 grep -q "registered as worker" n2.log \
    || { cat coord.log n1.log n2.log; echo "FAILED: the workers did not register"; exit 1; }

# ---- 1. the queue: 4 + 4 ranks in turn, 2 + 2 side by side ----
spec q1 300 0; spec q2 300 0
a=$(submit q1.json --ranks 4); b=$(submit q2.json --ranks 4)
wait_for 20 grep -q "job $a running" coord.log
sb=$(state "$b")
wait_job "$a" 300 && wait_job "$b" 300 && ok "two 4-rank jobs ($a, $b) succeeded" || { show "$a"; show "$b"; bad "4-rank jobs"; }
end_a=$(grep -n "job $a succeeded" coord.log | cut -d: -f1)
run_b=$(grep -n "job $b running" coord.log | head -1 | cut -d: -f1)
[ "$sb" = queued ] && [ -n "$end_a" ] && [ -n "$run_b" ] && [ "$end_a" -lt "$run_b" ] \
    && ok "job $b was queued while job $a ran and started after it ended: $(grep -E "job ($a succeeded|$b running)" coord.log | cut -c12-23,38- | tr '\n' ';')" \
    || bad "queue order: job $b was '$sb' while $a ran; log lines $end_a (end $a) / $run_b (start $b)"
spec p1 300 0; spec p2 300 0
a=$(submit p1.json --ranks 2); b=$(submit p2.json --ranks 2)
both_running() { [ "$(state "$a")" = running ] && [ "$(state "$b")" = running ]; }
wait_for 30 both_running && side=1 || side=0
wait_job "$a" 300 && wait_job "$b" 300 && [ $side = 1 ] \
    && ok "two 2-rank jobs ($a, $b) ran side by side and succeeded" || { show "$a"; show "$b"; bad "2-rank jobs side by side (both running seen: $side)"; }

# ---- 2. kill -9 of a rank ----
spec killed 2000 100; spec whole 2000 100
j=$(submit killed.json --ranks 4)
# the coordinator knows of a committed checkpoint (rank 0's progress, through the heartbeats)
ckpt_known() { "$IGNIS" status --coordinator "$endpoint" "$j" | grep -q "  checkpoint [0-9]"; }
wait_for 120 ckpt_known || { show "$j"; bad "the coordinator heard of no checkpoint"; }
victim=$(pgrep -f "$work/n[12]/job-$j/attempt-1/job.json" | head -1)
noticed() { grep -q "job $j restarting" coord.log; }
stepped() { grep -qs "^step" n*/job-$j/attempt-2/rank-0.log; }
t_kill=$(now); kill -KILL "$victim"
wait_for 10 noticed; t_notice=$(now)
noticed && ok "rank killed (pid $victim): failure noticed in $(secs "$t_kill" "$t_notice") s: $(grep "job $j restarting" coord.log | cut -c39-)" \
    || { show "$j"; bad "the rank's death was not noticed within 10 s"; }
wait_for 10 eval '[ -z "$(ranks_of "$j" 1)" ]' && ok "no rank of attempt 1 remains ($(secs "$t_kill" "$(now)") s after the kill)" \
    || bad "ranks of attempt 1 remain: $(ranks_of "$j" 1 | tr '\n' ' ')"
wait_for 120 stepped; t_step=$(now)
stepped && echo "rank kill: kill -> noticed $(secs "$t_kill" "$t_notice") s, -> first step of attempt 2 $(secs "$t_kill" "$t_step") s"
wait_job "$j" 300 && [ "$("$IGNIS" status --coordinator "$endpoint" "$j" | awk '{ print $5 }')" = 2 ] \
    && grep -q "resumed from step" n*/job-$j/attempt-2/rank-0.log \
    && ok "job $j succeeded at attempt 2, $(grep -h "resumed from step" n*/job-$j/attempt-2/rank-0.log)" \
    || { show "$j"; bad "the job with a killed rank"; }
grep -qE "job $j running \(attempt 2\): attempt 2 placed: 4 ranks on 2 nodes, last checkpoint step [0-9]+, after: rank [0-9] exited with signal 9" coord.log \
    && ok "attempt 2's reason names the last checkpoint and the failure" || bad "attempt 2's reason"
grep -E "job $j (running|restarting|succeeded|failed)|ABORT" coord.log | cut -c12-23,38- | sed 's/^/  /'
w=$(submit whole.json --ranks 4)
wait_job "$w" 300 || { show "$w"; bad "the uninterrupted job"; }
if out=$("$CMP" killed/model.safetensors whole/model.safetensors 0); then
    ok "restarted == uninterrupted, bit for bit: $out"
elif out=$("$CMP" killed/model.safetensors whole/model.safetensors 1e-6); then
    ok "restarted == uninterrupted within 1e-6 (not bit for bit): $out"
else bad "restarted job's weights differ from the uninterrupted one's: $out"; fi

# ---- 3. kill -9 of a worker and its ranks ----
spec lost 2000 100
j=$(submit lost.json --ranks 4 --min-ranks 2)
wait_for 120 test -d lost/ckpt/step_00000100 || { show "$j"; bad "no first checkpoint"; }
fenced() { grep -q "node n2 (worker [0-9]*) fenced" coord.log; }
restarted() { grep -qs "^step" n1/job-$j/attempt-[2-9]/rank-0.log; }
t_kill=$(now)
disown "${worker[n2]}" # no job-control notice of its death
kill -KILL "${worker[n2]}" $(pgrep -f "$work/n2/job-$j/")
wait_for 10 fenced; t_notice=$(now)
fenced && ok "worker n2 killed: fenced in $(secs "$t_kill" "$t_notice") s: $(grep "node n2 (worker" coord.log | cut -c39-)" \
    || { show "$j"; bad "node n2 was not fenced within 10 s"; }
wait_for 10 eval '[ -z "$(ranks_of "$j" 1)" ]' && ok "no rank of attempt 1 remains on n1 ($(secs "$t_kill" "$(now)") s after the kill)" \
    || bad "ranks of attempt 1 remain: $(ranks_of "$j" 1 | tr '\n' ' ')"
wait_for 120 restarted; t_step=$(now)
restarted && echo "worker kill: kill -> fenced $(secs "$t_kill" "$t_notice") s, -> first step on n1 alone $(secs "$t_kill" "$t_step") s"
wait_job "$j" 300 && last=$(ls -d n1/job-$j/attempt-* | sort -t- -k3 -n | tail -1) \
    && grep -q "ranks: 2" "$last/rank-0.log" && grep -q "resumed from step" "$last/rank-0.log" \
    && [ -z "$(ls -d n2/job-$j/attempt-[2-9] 2> /dev/null)" ] \
    && ok "job $j went on with 2 ranks on n1 ($last: $(grep "resumed from step" "$last/rank-0.log")) and succeeded" \
    || { show "$j"; bad "the job of the lost node"; }
grep -E "job $j (running|restarting|succeeded|failed)|ABORT|fenced" coord.log | cut -c12-23,38- | sed 's/^/  /'
out=$("$CMP" lost/model.safetensors whole/model.safetensors 1e-4) && echo "its weights vs 4 ranks throughout: $out"

finish

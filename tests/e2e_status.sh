#!/usr/bin/env bash
# tests/e2e_status.sh: the progress of running jobs in `ignis status`. A
# coordinator (heartbeats every second) and one worker on loopback; a
# single-rank job of a tiny GPT that trains for a while:
#  1. its rank 0 writes progress.json in its attempt directory;
#  2. `ignis status --json` shows the running job with a step > 0, a finite
#     loss and tokens_per_s > 0 (carried by the worker's heartbeats), and
#     the text form shows "step N  loss L  R tok/s";
#  3. the step grows from one heartbeat to a later one;
#  4. the job is cancelled, and its rank goes away.
# Every wait is bounded; every process started here is killed at exit.
# Usage: e2e_status.sh IGNIS
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1
export OMP_NUM_THREADS=1
enter_work_dir

write_corpus corpus.txt
cat > long.json <<JSON
{"name": "long",
 "model": {"type": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
 "data": {"format": "text", "train": "$work/corpus.txt"},
 "train": {"batch_size": 4, "steps": 100000000},
 "log": {"interval": 100}}
JSON

export IGNIS_COORDINATOR=tcp://127.0.0.1:$(free_port)
"$IGNIS" coordinator --listen "$IGNIS_COORDINATOR" --state "$work/coord" --heartbeat-timeout 3 2> coord.log & coord=$!
mkdir ranks && (cd ranks && exec "$IGNIS" worker --coordinator "$IGNIS_COORDINATOR" --cpus 1 --work-dir "$work/w" \
    --grace 2 2> ../worker.log) & worker=$!
pids+=("$coord" "$worker")
wait_for 15 grep -q "registered as worker" coord.log || { cat coord.log worker.log; echo "FAILED: the worker did not register"; exit 1; }

out=$(ig submit long.json --ranks 1 --max-restarts 0); id=$(echo "$out" | awk '/^submitted job/ { print $3 }')
[ -n "$id" ] || { echo "$out"; echo "FAILED: submit"; exit 1; }
progress=$work/w/job-$id/attempt-1/progress.json
check "rank 0 writes progress.json in its attempt directory" "wait_for 30 test -s $progress"
check "progress.json holds step, loss, tokens_per_s and ms: $(cat "$progress" 2> /dev/null)" \
    "python3 -c 'import json, sys; p = json.load(open(sys.argv[1])); assert p[\"step\"] > 0 and p[\"loss\"] > 0 and p[\"tokens_per_s\"] > 0 and p[\"ms\"] > 0' $progress"

# step > 0 with a finite loss and a rate, as seen by the coordinator
job_field() { # FIELD: the job's field in `ignis status --json` (empty when absent)
    ig status "$id" --json 2> /dev/null | python3 -c "import json, sys; print(json.load(sys.stdin)['jobs'][0].get('$1', ''))" 2> /dev/null
}
has_progress() { local s; s=$(job_field step); [ -n "$s" ] && [ "$s" -gt 0 ]; }
check "status --json shows a step > 0 within 15 s" "wait_for 15 has_progress"
json=$(ig status "$id" --json)
check "status --json: running, step > 0, a finite loss > 0, tokens_per_s > 0: $json" \
    "echo '$json' | python3 -c 'import json, sys, math; j = json.load(sys.stdin)[\"jobs\"][0]; assert j[\"state\"] == \"running\" and j[\"step\"] > 0 and math.isfinite(j[\"loss\"]) and j[\"loss\"] > 0 and j[\"tokens_per_s\"] > 0'"
line=$(ig status "$id")
check "status shows the progress: $line" \
    "[[ \$line =~ ^job\ $id\ \ running\ \ attempt\ 1.*\ \ step\ [0-9]+\ \ loss\ [0-9.]+\ \ [0-9.]+k?M?\ tok/s ]]"
first=$(job_field step)
grows() { local s; s=$(job_field step); [ -n "$s" ] && [ "$s" -gt "$first" ]; }
check "the step grows with later heartbeats (from $first)" "wait_for 15 grows"

out=$(ig cancel "$id"); rc=$?
check "cancel (rc $rc: $out)" '[ $rc -eq 0 ]'
check "the job is cancelled" 'ig status "$id" | grep -q "^job $id  cancelled"'
check "its rank is gone" "wait_for 15 eval '! pgrep -f $work/w/job-$id/ > /dev/null'"

finish || { tail -20 coord.log worker.log; exit 1; }

#!/usr/bin/env bash
# tests/e2e_logs.sh: rank output collected at the coordinator, and `ignis
# logs`, with real daemons on loopback: a coordinator and one worker of 2 CPU
# slots whose ranks run `ignis train` through a small wrapper that also prints
# a line of its own (the built-in trainer prints on rank 0 only).
#  1. a 2-rank job followed with `ignis logs J --follow` from while it runs:
#     it exits 0 when the job ends, and printed the merged view, which has
#     both ranks' lines; `ignis logs J --rank R` is byte for byte the worker's
#     rank-R.log for both ranks;
#  2. the coordinator is killed -9 while a 2-rank job runs (after some of its
#     output arrived) and restarted on the same state directory: the worker
#     reconnects by itself and, once the job ended, the coordinator's copy of
#     each rank's log is still byte for byte the worker's file (nothing lost,
#     nothing doubled);
#  3. a rank that fails (its data file is missing) has the trainer's error
#     message in `ignis logs`; `--follow` from the job's start goes through
#     both of its attempts and exits 0 once it failed for good; --attempt 1
#     reads the first one;
#  4. errors: an unknown job exits 1 with "job 999: no such job", a rank out
#     of range exits 1 naming the ranks, `--rank x` exits 2.
# Every wait is bounded; every process started here is killed at exit.
# Usage: e2e_logs.sh IGNIS
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1
export OMP_NUM_THREADS=1
ig_timeout=60 # ig (lib.sh): `ignis logs --follow` lasts as long as a job
enter_work_dir
state() { ig status "$1" | awk '{ print $3 }'; }
is_final() { [[ $(state "$1") =~ ^(succeeded|failed|cancelled)$ ]]; }
submit() { ig submit "$@" | awk '/^submitted job/ { print $3 }'; }

write_corpus corpus.txt
spec() { # name steps data
    cat > "$1.json" <<JSON
{"name": "$1", "model": {"type": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
 "data": {"format": "text", "train": "$3"},
 "train": {"batch_size": 4, "steps": $2},
 "log": {"interval": 50}}
JSON
}
spec short 1500 "$work/corpus.txt"
spec long 20000 "$work/corpus.txt"
spec nodata 10 "$work/missing.txt"
cat > rank.sh <<SH
echo "rank \$RANK of \$WORLD_SIZE starts"
"$IGNIS" train "\$1"
rc=\$?
echo "rank \$RANK ends with \$rc"
exit \$rc
SH

export IGNIS_COORDINATOR=tcp://127.0.0.1:$(free_port)
start_coordinator() {
    "$IGNIS" coordinator --listen "$IGNIS_COORDINATOR" --state "$work/coord" --heartbeat-timeout 5 2>> coord.log &
    coord=$!
    pids+=("$coord")
}
start_coordinator
mkdir ranks && (cd ranks && exec "$IGNIS" worker --coordinator "$IGNIS_COORDINATOR" --cpus 2 --work-dir "$work/w" \
    --rank-command "sh $work/rank.sh" --grace 2 2> ../worker.log) & worker=$!
pids+=("$worker")
wait_for 15 grep -q "registered as worker" coord.log || { cat coord.log worker.log; echo "FAILED: the worker did not register"; exit 1; }

# the coordinator's copy of rank R of job J equals the worker's file
same() { ig logs "$1" --rank "$2" > "got-$1-$2" && cmp "got-$1-$2" "w/job-$1/attempt-1/rank-$2.log"; }

# ---- 1. --follow while the job runs; the copies once it ended ----
id=$(submit short.json --ranks 2 --max-restarts 0)
[ -n "$id" ] || { echo "FAILED: submit"; exit 1; }
ig logs "$id" --follow > follow.out 2> follow.err & follower=$!
pids+=("$follower")
wait_for 120 is_final "$id"
check "the job succeeded" '[ "$(state $id)" = succeeded ] || { cat coord.log worker.log; false; }'
wait_for 30 eval "! kill -0 $follower 2> /dev/null"; wait "$follower"; rc=$?
check "logs --follow exits 0 when the job has ended (rc $rc)" '[ $rc -eq 0 ] || cat follow.err'
ig logs "$id" > all.out
check "logs --follow printed the merged view, as logs prints it after the end" \
    '[ -s all.out ] && cmp follow.out all.out'
check "the merged view has both ranks' lines, prefixed" \
    'grep -q "^\[rank 0\] rank 0 of 2 starts$" all.out && grep -q "^\[rank 1\] rank 1 of 2 starts$" all.out &&
     grep -q "^\[rank 0\] step   1500/1500 " all.out && grep -q "^\[rank 1\] rank 1 ends with 0$" all.out'
check "every line of the merged view is a rank's line" '! grep -v "^\[rank [01]\] " all.out'
check "logs --rank 0 is byte for byte the worker's rank-0.log" 'same $id 0'
check "logs --rank 1 is byte for byte the worker's rank-1.log" 'same $id 1'

# ---- 2. the coordinator killed -9 mid-job and restarted on its state ----
id=$(submit long.json --ranks 2 --max-restarts 0)
stored=$work/coord/logs/job-$id/attempt-1/rank-0.log
wait_for 60 grep -q "step " "$stored"
check "output arrived while the job runs" '[ "$(state $id)" = running ] && [ -s "$stored" ]'
kill -9 "$coord"; wait "$coord" 2> /dev/null
sleep 0.5
start_coordinator
wait_for 30 eval "[ \$(grep -c 'registered as worker' coord.log) -ge 2 ]"
check "the worker registered again with the restarted coordinator" '[ $(grep -c "registered as worker" coord.log) -ge 2 ]'
wait_for 180 is_final "$id"
check "the job succeeded across the restart" '[ "$(state $id)" = succeeded ] || { tail coord.log; false; }'
ig logs "$id" --rank 0 --follow > /dev/null # until its final chunk is stored
check "after the restart, rank 0's copy is the worker's file, byte for byte" 'same $id 0'
check "after the restart, rank 1's copy is the worker's file, byte for byte" 'same $id 1'
check "the copies end as the job did" \
    'grep -q "^step  20000/20000 " "got-$id-0" && tail -1 "got-$id-1" | grep -q "^rank 1 ends with 0$"'

# ---- 3. a rank that fails: its error message in the logs, every attempt ----
id=$(submit nodata.json --ranks 1 --max-restarts 1)
out=$(ig logs "$id" --follow 2>&1); rc=$?
check "a failed job followed from its start: exit 0 once it failed for good" \
    '[ $rc -eq 0 ] && [ "$(state $id)" = failed ] || { echo "$out"; false; }'
check "both attempts' output, each with the trainer's error naming the missing file" \
    '[ $(grep -c "missing.txt" <<< "$out") -ge 2 ] && [ $(grep -c "^\[rank 0\] rank 0 ends with 1$" <<< "$out") -eq 2 ]'
out=$(ig logs "$id" --attempt 1 --rank 0 2>&1); rc=$?
check "logs --attempt 1 --rank 0: the first attempt's rank 0, as the worker wrote it" \
    '[ $rc -eq 0 ] && [ "$out" = "$(cat w/job-$id/attempt-1/rank-0.log)" ]'

# ---- 4. errors ----
err=$(ig logs 999 2>&1); rc=$?
check "an unknown job: exit 1, '$err'" '[ $rc -eq 1 ] && [ "$err" = "ignis: job 999: no such job" ]'
err=$(ig logs 1 --rank 5 2>&1); rc=$?
check "a rank out of range: exit 1, '$err'" '[ $rc -eq 1 ] && [ "$err" = "ignis: job 1 attempt 1 has 2 ranks, got rank 5" ]'
err=$(ig logs 1 --attempt 4 2>&1); rc=$?
check "an attempt that never ran: exit 1, '$err'" '[ $rc -eq 1 ] && [[ $err == "ignis: job 1 has no attempt 4"* ]]'
err=$(ig logs 1 --rank x 2>&1); rc=$?
check "--rank x: exit 2, '$err'" '[ $rc -eq 2 ] && [[ $err == "ignis logs: --rank: expected a rank"* ]]'
err=$(ig logs 2>&1); rc=$?
check "no JOB: exit 2" '[ $rc -eq 2 ]'
check "the coordinator logged nothing malformed" '! grep -q "malformed" coord.log'
check "the coordinator refused no chunk" '! grep -q "LOG_DATA.*refused" coord.log worker.log'

finish

#!/usr/bin/env bash
# tests/e2e_run.sh: the client commands against real daemons on loopback.
#  1. a coordinator and a worker started by hand: `ignis submit` of a short
#     single-rank job (a world of 1 needs no rendezvous) succeeds, and
#     `ignis status` shows it (text and --json); `ignis cancel` of a long job
#     cancels it and its rank goes away; `ignis status 999` is "job 999: no
#     such job" (exit 1); a bad spec exits 2 and submits nothing; with no
#     coordinator, status exits 1 within its timeout;
#  2. `ignis run --local N JOB` exits 0 when the job succeeds (N = 1, and N = 2
#     where the ranks' rendezvous works), 1 when it fails, 1 after Ctrl-C (the
#     job cancelled), and leaves no coordinator, worker or rank behind; it
#     prints rank 0's output (relayed from the coordinator).
# Usage: e2e_run.sh IGNIS ucx|no-ucx
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1 UCX=${2:-ucx}
export OMP_NUM_THREADS=1
enter_work_dir
# stop PID: SIGTERM, 15 s, then SIGKILL; true when it stopped by itself.
stop() {
    kill -TERM "$1" 2> /dev/null
    if wait_for 15 eval "! kill -0 $1 2> /dev/null"; then wait "$1" 2> /dev/null; return 0; fi
    kill -9 "$1" 2> /dev/null; return 1
}

write_corpus corpus.txt
spec() { # name steps [output]
    cat > "$1.json" <<JSON
{"model": {"type": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
 "data": {"format": "text", "train": "corpus.txt"},
 "train": {"batch_size": 4, "steps": $2},
 "eval": {"batches": 1},
 "log": {"interval": 5},
 "output": "${3:-$1.safetensors}"}
JSON
}
spec tiny 20
spec long 100000000
spec broken 5 /dev/null/model.safetensors # fails when it writes its output (/dev/null is no directory)
echo '{"data": {"train": "corpus.txt"}, "train": {"steps": -3}}' > bad.json
mkdir sub && cp tiny.json sub/ && ln -s ../corpus.txt sub/corpus.txt

# ---- 1. submit, status, cancel against daemons started by hand ----
export IGNIS_COORDINATOR=tcp://127.0.0.1:$(free_port)
"$IGNIS" coordinator --listen "$IGNIS_COORDINATOR" --state "$work/coord" 2> coord.log & coord=$!
mkdir ranks && (cd ranks && exec "$IGNIS" worker --coordinator "$IGNIS_COORDINATOR" --cpus 2 --work-dir "$work/w" \
    --grace 2 2> ../worker.log) & worker=$!
pids+=("$coord" "$worker")
wait_for 15 grep -q "registered as worker" coord.log || { cat coord.log worker.log; bad "the worker did not register"; }

out=$(ig submit sub/tiny.json); rc=$?
id=$(echo "$out" | awk '/^submitted job/ { print $3 }')
check "submit prints the job id (rc $rc: $out)" '[ $rc -eq 0 ] && [ -n "$id" ]'
wait_for 60 eval "ig status $id | grep -q '  succeeded  '"
line=$(ig status "$id")
check "status shows the job succeeded: $line" \
    '[[ $line =~ ^job\ $id\ \ succeeded\ \ attempt\ 1\ \(.*\)\ \ 1\ ranks ]]'
check "its input paths were resolved against the spec's directory, outputs in the worker's" \
    '[ -s ranks/tiny.safetensors ]'
json=$(ig status "$id" --json)
check "status --json is the STATUS_REPLY body" \
    'echo "$json" | python3 -c "import json, sys; j = json.load(sys.stdin)[\"jobs\"][0]; assert j[\"job\"] == $id and j[\"state\"] == \"succeeded\" and j[\"name\"] == \"tiny\"" 2> /dev/null || echo "$json" | grep -q "\"state\": \"succeeded\""'

out=$(ig submit long.json --ranks 1 --max-restarts 0); long=$(echo "$out" | awk '{ print $3 }')
wait_for 30 pgrep -f "$work/w/job-$long/" > /dev/null
check "the long job runs a rank" 'ig status "$long" | grep -q "  running  "'
out=$(ig cancel "$long"); rc=$?
check "cancel answers (rc $rc: $out)" '[ $rc -eq 0 ] && [ "$out" = "cancelled job $long" ]'
check "the job is cancelled" 'ig status "$long" | grep -q "^job $long  cancelled  attempt 1 (cancelled by user)"'
check "its rank is gone" 'wait_for 10 eval "! pgrep -f $work/w/job-$long/ > /dev/null"'
err=$(ig cancel "$long" 2>&1); rc=$?
check "cancelling it again: exit 1, '$err'" '[ $rc -eq 1 ] && [[ $err == *"already cancelled"* ]]'
check "status lists both jobs" '[ "$(ig status | grep -c "^job ")" -eq 2 ]'

err=$(ig status 999 2>&1); rc=$?
check "status 999: exit 1, '$err'" '[ $rc -eq 1 ] && [ "$err" = "ignis: job 999: no such job" ]'
err=$(ig submit bad.json 2>&1); rc=$?
check "a bad spec: exit 2, '$err'" '[ $rc -eq 2 ] && [[ $err == "bad.json: train.steps: "* ]]'
err=$(ig submit missing.json 2>&1); rc=$?
check "a missing spec: exit 2, '$err'" '[ $rc -eq 2 ]'
err=$(ig submit tiny.json --ranks 0 2>&1); rc=$?
check "--ranks 0: exit 2" '[ $rc -eq 2 ]'
err=$(ig submit tiny.json --strategy fsdp 2>&1); rc=$?
check "submit --strategy fsdp: refused by the coordinator, exit 1, '$err'" \
    '[ $rc -eq 1 ] && [[ $err == *"strategy '"'"'fsdp'"'"': only ddp is supported"* ]]'
check "nothing more was submitted" '[ "$(ig status | grep -c "^job ")" -eq 2 ]'

check "the worker stops on SIGTERM" 'stop $worker'
check "the coordinator stops on SIGTERM" 'stop $coord'
t0=$SECONDS
err=$(ig status 2>&1); rc=$?
check "no coordinator: exit 1 within the timeout ($((SECONDS - t0)) s): '$err'" \
    '[ $rc -eq 1 ] && [ $((SECONDS - t0)) -le 8 ] && [[ $err == "ignis: no answer from the coordinator at $IGNIS_COORDINATOR"* ]]'
unset IGNIS_COORDINATOR
err=$(ig status 2>&1)
check "the default address is tcp://127.0.0.1:7070" '[[ $err == *"tcp://127.0.0.1:7070"* ]]'

# ---- 2. ignis run --local N ----
out=$(timeout -k 5 120 "$IGNIS" run --local 1 sub/tiny.json --state "$work/run1" 2>&1); rc=$?
check "run --local 1: exit 0 (rc $rc)" '[ $rc -eq 0 ] || { echo "$out"; false; }'
check "run --local 1: progress lines up to success" 'echo "$out" | grep -q "^job 1  succeeded  attempt 1"'
check "run --local 1: the output was written" '[ -s tiny.safetensors ]'
check "run --local 1: the coordinator on a Unix socket in a directory only this user can enter" \
    '[[ $out == *"coordinator at ipc://$work/run1/sock/coordinator,"* ]] && [ "$(stat -c %a run1/sock)" = 700 ]'
check "run --local 1: no coordinator, worker or rank left" '! left run1'

err=$(timeout -k 5 120 "$IGNIS" run --local 1 broken.json --state "$work/run2" 2>&1); rc=$?
check "run of a failing job: exit 1 with the reason" \
    '[ $rc -eq 1 ] && echo "$err" | grep -q "^ignis: job 1 failed: rank 0 exited with code 1"'
check "run of a failing job: nothing left" '! left run2'

timeout -k 5 120 "$IGNIS" run --local 1 long.json --state "$work/run3" > run3.log 2>&1 & run=$!
wait_for 30 pgrep -f "$work/run3/work/job-1/" > /dev/null
kill -INT $run
wait_for 30 eval "! kill -0 $run 2> /dev/null"; wait $run; rc=$?
check "run interrupted: the job is cancelled, exit 1 (rc $rc)" \
    '[ $rc -eq 1 ] && grep -q "^ignis: job 1 cancelled: cancelled by user" run3.log || { cat run3.log; false; }'
check "run interrupted: nothing left" '! left run3'

err=$(ig run --local 1 bad.json --state "$work/run4" 2>&1); rc=$?
check "run of a bad spec: exit 2, nothing started" '[ $rc -eq 2 ] && [ ! -e "$work/run4" ]'
sed 's/"output"/"run": {"ranks": 8}, "output"/' tiny.json > eight.json
err=$(ig run --local 2 eight.json --state "$work/run4b" 2>&1); rc=$?
check "run of a job needing more ranks (run.ranks 8) than its slots: exit 2, '$err'" \
    '[ $rc -eq 2 ] && [[ $err == *"needs 8 ranks (run.ranks in its spec) and this run has 2 slots"* ]] && [ ! -e "$work/run4b" ]'

if [ "$UCX" = ucx ]; then # CPU ranks started by workers meet over UCX
    out=$(timeout -k 5 120 "$IGNIS" run --local 2 tiny.json --state "$work/run5" 2>&1); rc=$?
    check "run --local 2 (two ranks, rendezvous through the coordinator): exit 0 (rc $rc)" \
        '[ $rc -eq 0 ] || { echo "$out"; tail -n 3 "$work"/run5/work/job-1/attempt-*/rank-*.log; false; }'
    check "run --local 2: one attempt of 2 data-parallel ranks" \
        'echo "$out" | grep -q "^job 1  succeeded  attempt 1 .*  2 ranks" && [ -e run5/work/job-1/attempt-1/rank-1.log ] && grep -q "^ranks: 2" run5/work/job-1/attempt-1/rank-0.log'
    check "run --local 2: rank 0's output relayed by ignis run (the trainer's lines)" \
        'echo "$out" | grep -q "^ranks: 2" && echo "$out" | grep -q "^step *20/20 | loss"'
    check "run --local 2: nothing left" '! left run5'
    sed 's/"corpus.txt"/"missing.txt"/; s/"output"/"run": {"max_restarts": 5}, "output"/' tiny.json > nodata.json
    err=$(timeout -k 5 120 "$IGNIS" run --local 2 nodata.json --max-restarts 0 --state "$work/run6" 2>&1); rc=$?
    check "run --local 2 --max-restarts 0 of a job whose data is missing: exit 1 at once (the flag over the spec's 5), rank 0's error relayed, rank 1's shown at the end" \
        '[ $rc -eq 1 ] && [[ $err == *"max_restarts (0) reached"* ]] && [[ $err == *"ignis: $work/missing.txt: cannot open"* ]] &&
         [[ $err == *"the last lines of the other ranks in attempt 1"*"[rank 1] ignis: $work/missing.txt: cannot open"* ]] || { echo "$err"; false; }'
else
    echo "a build without UCX: run --local 2 (CPU ranks meet over UCX) is skipped"
fi

finish

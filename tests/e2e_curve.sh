#!/usr/bin/env bash
# tests/e2e_curve.sh: CurveZMQ on the control plane, with real daemons:
#  1. `ignis keygen FILE` writes FILE (mode 0600) and FILE.pub, prints the
#     public key, and refuses to overwrite them without --force;
#  2. `--listen tcp://0.0.0.0:PORT` without --key is refused (loopback only),
#     and --key without --authorized-keys is a usage error;
#  3. a coordinator with --key on tcp://0.0.0.0:PORT (reached at 127.0.0.1):
#     `ignis status` with an authorized key works; with an unlisted key it
#     exits 1 at once saying the key was refused, and the coordinator logs the
#     refusal (address, key, file); a plaintext client exits 1 saying that a
#     key is required (the coordinator logs it too); the wrong coordinator key
#     times out naming the likely cause; one of IGNIS_KEY /
#     IGNIS_COORDINATOR_KEY alone is an error naming the other; the authorized client is still answered; a key
#     appended to authorized_keys is let in without a restart, a malformed
#     line there is logged (file:line) and skipped;
#  4. a worker with --key that is not authorized yet logs the refusal once,
#     keeps trying (every 5 s), and registers once its key is added; a 2-rank job
#     submitted with an authorized key then succeeds (its ranks' rendezvous
#     goes through the same CurveZMQ coordinator, with the worker's key).
# Every wait is bounded; every process started here is killed at exit.
# Usage: e2e_curve.sh IGNIS ucx|no-ucx (no-ucx: the 2-rank job is skipped)
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1 UCX=${2:-ucx}
export OMP_NUM_THREADS=1
unset IGNIS_KEY IGNIS_COORDINATOR_KEY
enter_work_dir
# as KEYFILE COMMAND...: a client with this key pair and the coordinator's public key
as() { local key=$1; shift; IGNIS_KEY=$key IGNIS_COORDINATOR_KEY=$work/coord.pub "$@"; }

# ---- 1. keygen ----
out=$(ig keygen coord); rc=$?
pub=$(cat coord.pub 2> /dev/null)
check "keygen writes the pair and the .pub, prints the public key (rc $rc)" \
    '[ $rc -eq 0 ] && [ ${#pub} -eq 40 ] && [[ $out == *"public key: $pub"* ]] && [ "$(stat -c %a coord)" = 600 ]'
check "the pair file is JSON with the same public key" 'grep -qF "\"public\": \"$pub\"" coord'
err=$(ig keygen coord 2>&1); rc=$?
check "keygen refuses to overwrite (rc $rc): $err" '[ $rc -eq 1 ] && [[ $err == *"exists already"* ]] && [ "$(cat coord.pub)" = "$pub" ]'
out=$(ig keygen coord --force); rc=$?
check "keygen --force overwrites" '[ $rc -eq 0 ] && [ "$(cat coord.pub)" != "$pub" ]'
for k in client other late wk; do ig keygen $k > /dev/null || bad "keygen $k"; done
cp client.pub authorized_keys

# ---- 2. plaintext only on loopback ----
port=$(free_port)
err=$(ig coordinator --listen tcp://0.0.0.0:$port --state "$work/s0" 2>&1); rc=$?
check "plaintext on tcp://0.0.0.0 is refused (rc $rc): $err" '[ $rc -eq 2 ] && [[ $err == *"loopback only"* ]]'
err=$(ig coordinator --listen tcp://0.0.0.0:$port --state "$work/s0" --key coord 2>&1); rc=$?
check "--key without --authorized-keys: usage error (rc $rc)" '[ $rc -eq 2 ] && [[ $err == *"--authorized-keys"* ]]'

# ---- 3. a CurveZMQ coordinator on all interfaces ----
"$IGNIS" coordinator --listen tcp://0.0.0.0:$port --state "$work/state" --key coord --authorized-keys authorized_keys \
    2> coord.log & coord=$!
pids+=("$coord")
wait_for 15 grep -q "listening on" coord.log || { cat coord.log; bad "the coordinator did not start"; }
export IGNIS_COORDINATOR=tcp://127.0.0.1:$port
out=$(as client ig status 2>&1); rc=$?
check "status with an authorized key (rc $rc): $out" '[ $rc -eq 0 ] && [ "$out" = "no jobs" ]'
t0=$SECONDS
err=$(as other ig status 2>&1); rc=$?
check "an unlisted key: exit 1 at once (rc $rc, $((SECONDS - t0)) s): $err" \
    '[ $rc -eq 1 ] && [ $((SECONDS - t0)) -le 3 ] && [[ $err == *"refused this client'"'"'s key (IGNIS_KEY=other)"* ]]'
opub=$(cat other.pub)
check "the coordinator logged the refusal" \
    'wait_for 5 grep -qF "refused tcp connection from 127.0.0.1: key $opub is not in $work/authorized_keys" coord.log'
err=$(ig status 2>&1); rc=$?
check "a plaintext client: exit 1 (rc $rc): $err" \
    '[ $rc -eq 1 ] && [[ $err == *"requires a CurveZMQ key"* || $err == *"does it require a CurveZMQ key"* ]]'
check "the coordinator logged the plaintext connection" \
    'wait_for 5 grep -q "failed the CurveZMQ handshake: [0-9]* plaintext (a client without IGNIS_KEY?)" coord.log'
t0=$SECONDS
err=$(IGNIS_KEY=client IGNIS_COORDINATOR_KEY=other.pub ig status 2>&1); rc=$?
check "the wrong coordinator key: exit 1 after the timeout (rc $rc, $((SECONDS - t0)) s), naming the likely cause" \
    '[ $rc -eq 1 ] && [[ $err == *"is IGNIS_COORDINATOR_KEY the coordinator'"'"'s public key?"* ]]'
check "the coordinator logged those handshakes (at most one such line every 10 s)" \
    'wait_for 15 grep -q "failed the CurveZMQ handshake since the last such line: .* a hello that did not decrypt" coord.log'
err=$(IGNIS_KEY=client ig status 2>&1); rc=$?
check "IGNIS_KEY alone: exit 1 naming IGNIS_COORDINATOR_KEY" '[ $rc -eq 1 ] && [[ $err == *"IGNIS_COORDINATOR_KEY is not"* ]]'
chmod 644 client
err=$(as client ig status 2>&1); rc=$?
chmod 600 client
check "a key pair readable by others is refused like ssh does: $err" '[ $rc -eq 1 ] && [[ $err == *"too open"* ]]'
check "the coordinator still answers the authorized client" '[ "$(as client ig status 2>&1)" = "no jobs" ]'
check "the coordinator is still running" 'kill -0 $coord'
err=$(as late ig status 2>&1)
{ echo "# added while the coordinator runs"; echo "not-a-key"; cat late.pub; } >> authorized_keys
out=$(as late ig status 2>&1); rc=$?
check "a key added to authorized_keys is let in without a restart (rc $rc: $out; before: $err)" \
    '[ $rc -eq 0 ] && [ "$out" = "no jobs" ] && [[ $err == *"refused"* ]]'
check "a malformed line is logged with its file:line and skipped" \
    'grep -qF "$work/authorized_keys:3: expected a 40-character Z85 public key, got '"'"'not-a-key'"'"'; line skipped" coord.log'

# ---- 4. a worker with a key, and a 2-rank job ----
"$IGNIS" worker --coordinator "$IGNIS_COORDINATOR" --key wk --coordinator-key coord.pub --cpus 2 --work-dir "$work/w" \
    --grace 2 2> worker.log & worker=$!
pids+=("$worker")
wait_for 15 grep -q "refused this client's key" worker.log
refusals() { [ "$(grep -cF "key $(cat wk.pub) is not in" coord.log)" -ge "$1" ]; }
check "the coordinator refused it again after 5 s" 'wait_for 15 refusals 2'
n=$(grep -c "refused this client's key" worker.log)
check "the unauthorized worker logged the refusal once ($n), and keeps running" '[ "$n" = 1 ] && kill -0 $worker'
cat wk.pub >> authorized_keys
check "once its key is added, the worker registers" 'wait_for 20 grep -q "registered as worker" worker.log'
if [ "$UCX" = ucx ]; then
    write_corpus corpus.txt
    cat > tiny.json <<JSON
{"model": {"type": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
 "data": {"format": "text", "train": "corpus.txt"},
 "train": {"batch_size": 4, "steps": 20},
 "log": {"interval": 5},
 "output": "tiny.safetensors"}
JSON
    out=$(as client ig submit tiny.json --ranks 2 --max-restarts 0); rc=$?
    id=$(echo "$out" | awk '/^submitted job/ { print $3 }')
    check "submit with an authorized key (rc $rc: $out)" '[ $rc -eq 0 ] && [ -n "$id" ]'
    wait_for 120 eval "as client ig status $id | grep -q '  succeeded  \|  failed  '"
    line=$(as client ig status "$id")
    check "the 2-rank job succeeded (its ranks met through the CurveZMQ rendezvous): $line" \
        '[[ $line == "job $id  succeeded  attempt 1"*"2 ranks"* ]] || { tail -5 w/job-*/attempt-*/rank-*.log; false; }'
    check "the rendezvous went through the coordinator" 'grep -q "rendezvous of 2 ranks complete" coord.log'
else
    echo "no UCX in this build: the 2-rank job is skipped"
fi

finish

#!/usr/bin/env bash
# tests/e2e_hosts.sh: `ignis run --hosts` through a real sshd. The test starts
# its own sshd (openssh-server) on a free loopback port, with a host key and
# an authorized client key made here by ssh-keygen, and points ignis at it
# with IGNIS_SSH (port, identity, no known-hosts file). Then:
#  1. `ignis run --hosts 127.0.0.1:2,localhost:2 JOB`: two workers over ssh
#     run a 4-rank job that succeeds, each worker's work dir holding 2 rank
#     logs, and its losses and final weights equal (1e-5) those of
#     `mpirun -np 4 ignis train JOB`; nothing is left behind;
#     the same from `--hostfile` (lines HOST slots=N or HOST:N);
#  2. `ignis run` killed -9 mid-job: its ssh processes die with it, the
#     remote workers see the end of their stdin (--stop-on-eof) and abort
#     their ranks: no worker or rank is left within 20 s;
#  3. a host whose ssh fails (nothing listens on 127.0.0.2, or no such
#     host): exit 1 naming the worker on that host, nothing left; a bad
#     --hosts list: exit 2 with the reason, nothing started;
#  4. this machine by its non-loopback address: the run sets up CurveZMQ
#     keys (the coordinator on every interface, the workers' key through
#     ssh's stdin) and succeeds.
# Skips (77) where sshd is not installed. Every wait is bounded; every process
# started here is killed at exit.
# Usage: e2e_hosts.sh IGNIS ST_COMPARE
set -u
source "$(dirname "$0")/lib.sh"
IGNIS=$1 CMP=$2
SSHD=/usr/sbin/sshd
for p in "$SSHD" ssh ssh-keygen; do
    command -v "$p" > /dev/null || { echo "$p not found (openssh-server, openssh-client): skipped"; exit 77; }
done
export OMP_NUM_THREADS=1 # passed on to the workers over ssh, like mpirun -x
mpirun_env
mpi_timeout=240 # mpi (lib.sh): within this test's 300 s
enter_work_dir

# ---- sshd on a free port, keys made here ----
mkdir -p ssh /run/sshd
ssh-keygen -q -t ed25519 -N '' -f ssh/host_key && ssh-keygen -q -t ed25519 -N '' -f ssh/client_key \
    && cp ssh/client_key.pub ssh/authorized_keys || { echo "FAILED: ssh-keygen"; exit 1; }
port=$(free_port)
ip=$(hostname -I 2> /dev/null | awk '{ print $1 }') # this machine's first non-loopback address, if any
cat > ssh/sshd_config <<CONF
Port $port
ListenAddress 127.0.0.1
${ip:+ListenAddress $ip}
HostKey $work/ssh/host_key
PidFile $work/ssh/sshd.pid
AuthorizedKeysFile $work/ssh/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
CONF
"$SSHD" -f "$work/ssh/sshd_config" -D -e 2> ssh/sshd.log &
pids+=($!)
export IGNIS_SSH="ssh -p $port -i $work/ssh/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
wait_for 10 $IGNIS_SSH -o BatchMode=yes -o ConnectTimeout=2 127.0.0.1 true \
    || { cat ssh/sshd.log; echo "FAILED: sshd did not accept our key on port $port"; exit 1; }

write_corpus corpus.txt
spec() { small_gpt_spec "$@"; }

# ---- 1. a 4-rank job on two workers over ssh, == mpirun -np 4 ----
spec job 10
out=$(timeout -k 5 240 "$IGNIS" run --hosts 127.0.0.1:2,localhost:2 job.json --state "$work/run1" 2>&1); rc=$?
check "run --hosts 127.0.0.1:2,localhost:2: exit 0 (rc $rc)" \
    '[ $rc -eq 0 ] || { echo "$out"; cat run1/worker-*.log; tail -n 5 run1/work/*/job-1/attempt-*/rank-*.log; false; }'
check "run --hosts: one attempt of 4 ranks succeeded" 'echo "$out" | grep -q "^job 1  succeeded  attempt 1 .*  4 ranks"'
logs=$(for h in 127.0.0.1 localhost; do echo "$h: $(ls run1/work/$h/job-1/attempt-1 2> /dev/null | grep -c '^rank-[0-3]\.log$')"; done | tr '\n' ' ')
check "run --hosts: 2 rank logs in each host's work dir ($logs)" '[ "$logs" = "127.0.0.1: 2 localhost: 2 " ]'
check "run --hosts: the workers came over ssh with --stop-on-eof and stopped at the end" \
    'grep -q "registered as worker" run1/worker-localhost.log && grep -q "end of stdin" run1/worker-localhost.log'
check "run --hosts: nothing left" '! left run1'
same_as_mpirun "run --hosts" job 10

# the same hosts from a hostfile (DeepSpeed's / Open MPI's "HOST slots=N", or HOST:N)
printf '# two workers\n127.0.0.1 slots=2\nlocalhost:2  # the other\n' > hosts.txt
spec hf 3
out=$(timeout -k 5 240 "$IGNIS" run --hostfile hosts.txt hf.json --state "$work/run1b" 2>&1); rc=$?
check "run --hostfile (127.0.0.1 slots=2, localhost:2): 4 ranks, exit 0 (rc $rc)" \
    '[ $rc -eq 0 ] && echo "$out" | grep -q "^job 1  succeeded  attempt 1 .*  4 ranks" || { echo "$out"; false; }'

# ---- 2. ignis run killed -9: its workers and ranks go too ----
spec long 100000000
"$IGNIS" run --hosts 127.0.0.1:2,localhost:2 long.json --state "$work/run2" > run2.log 2>&1 &
run=$! # no timeout(1) in between: the kill -9 must reach ignis run
ranks() { [ "$(pgrep -fc "$work/run2/work/.*/job-1/attempt-1/job.json")" -ge 4 ]; }
check "run --hosts: 4 ranks of the long job run" 'wait_for 60 ranks || { cat run2.log run2/worker-*.log; false; }'
kill -9 $run
wait $run 2> /dev/null
t0=$SECONDS
wait_for 20 eval "! left run2 > /dev/null"
check "ignis run killed -9: no ssh, worker or rank left after $((SECONDS - t0)) s" '! left run2'

# ---- 3. failures ----
spec short 3
err=$(timeout -k 5 60 "$IGNIS" run --hosts 127.0.0.1:1,127.0.0.2:1 short.json --state "$work/run3" 2>&1); rc=$?
check "a host whose ssh fails: exit 1 naming it (rc $rc)" \
    '[ $rc -eq 1 ] && echo "$err" | grep -q "^ignis run: the worker on 127.0.0.2 stopped: .*127.0.0.2" || { echo "$err"; false; }'
check "a host whose ssh fails: nothing left" '! left run3'
err=$(timeout -k 5 60 "$IGNIS" run --hosts 127.0.0.1:1,ignis-no-such-host.example:1 short.json --state "$work/run4" 2>&1); rc=$?
check "a host that does not resolve: exit 1 naming it (rc $rc)" \
    '[ $rc -eq 1 ] && echo "$err" | grep -q "the worker on ignis-no-such-host.example failed" || { echo "$err"; false; }'
check "a host that does not resolve: nothing left" '! left run4'
err=$("$IGNIS" run --hosts 127.0.0.1:two short.json --state "$work/run5" 2>&1); rc=$?
check "--hosts 127.0.0.1:two: exit 2, '$err'" '[ $rc -eq 2 ] && [[ $err == *"number of slots"* ]] && [ ! -e run5 ]'

# ---- 4. a host that is not loopback: CurveZMQ ----
# This machine by its non-loopback address: `ignis run` makes keys in
# STATE/keys, the coordinator listens on every interface with them, each
# worker gets its key pair through ssh's stdin (mode 0600 on its host) and the
# coordinator's public key, and the job runs as before.
if [ -n "$ip" ] && $IGNIS_SSH -o BatchMode=yes -o ConnectTimeout=2 "$ip" true 2> /dev/null; then
    spec keyed 10
    out=$(timeout -k 5 240 "$IGNIS" run --hosts "$ip:2" keyed.json --state "$work/run6" --coordinator-host "$ip" 2>&1); rc=$?
    check "run --hosts $ip:2 (not loopback): exit 0 (rc $rc)" \
        '[ $rc -eq 0 ] || { echo "$out"; cat run6/coordinator.log run6/worker-*.log; false; }'
    check "run --hosts $ip:2: rank 0's output relayed, the job succeeded" \
        'echo "$out" | grep -q "^ranks: 2" && echo "$out" | grep -q "^job 1  succeeded  attempt 1 .*  2 ranks"'
    check "run --hosts $ip:2: the coordinator listened with CurveZMQ on every interface" \
        'grep -q "listening on tcp://0.0.0.0:.*CurveZMQ" run6/coordinator.log || { cat run6/coordinator.log; false; }'
    check "run --hosts $ip:2: the worker's key pair on its host, its owner's only" \
        '[ "$(stat -c %a "run6/keys/worker-$ip.key")" = 600 ] && [ -s run6/keys/authorized_keys ]'
    check "run --hosts $ip:2: nothing left" '! left run6'
else
    echo "no non-loopback address that sshd serves: the CurveZMQ run is skipped"
fi

finish

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
source "$(dirname "$0")/lib.sh"
IGNIS=$1 CMP=$2 SLURM_FIXTURE=$3
[ "$(id -u)" = 0 ] || { echo "not root: Slurm cannot be started here; skipped"; exit 77; }
for p in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged salloc srun scontrol sinfo; do
    command -v "$p" > /dev/null || { echo "$p not found (slurm-wlm, munge): skipped"; exit 77; }
done
unset $(env | grep -o '^SLURM_[A-Z_]*') # not inside anyone's allocation
export OMP_NUM_THREADS=1
mpirun_env
mpi_timeout=240 # mpi (lib.sh): within this test's 300 s
cleanup() { # stops the Slurm cluster first, then what lib.sh's cleanup does
    "$SLURM_FIXTURE" stop "$work/slurm"
    kill_under "$work/" # workers and ranks of this test
    rm -rf "$work"
}
enter_work_dir

write_corpus corpus.txt
spec() { small_gpt_spec "$@"; }
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

same_as_mpirun "run --slurm" job 10

finish

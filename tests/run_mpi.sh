#!/usr/bin/env bash
# tests/run_mpi.sh NP PROGRAM [ARGS...]: runs PROGRAM on NP local ranks under
# Open MPI's mpirun (oversubscribed: CI has 2 cores; allowed as root, as CI
# runs), with a deadline so a hang fails the test instead of blocking CI.
# NCCL_NVLS_ENABLE=0 reaches every rank (no NVLink multicast on the GPU
# machines). Exit 77 (skip) when mpirun is missing.
np=$1
shift
command -v mpirun > /dev/null || { echo "mpirun not found: skipped"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export NCCL_NVLS_ENABLE=0
exec timeout -k 10 240 mpirun -np "$np" --bind-to none -x NCCL_NVLS_ENABLE "$@"

# tests/lib.sh: the helpers every shell end-to-end test (tests/e2e_*.sh) shares,
# so that each script holds only what it tests. A script sources it first:
#     source "$(dirname "$0")/lib.sh"
# (meson runs the scripts by their source-tree path, so lib.sh is found beside
# them whatever the working directory). It is `set -u` safe and starts nothing.
#
#  ok MSG / bad MSG       count a passed / failed check and print it
#  check MSG 'COMMANDS'   eval COMMANDS: ok MSG when they succeed, bad MSG otherwise
#  finish                 print "NAME: N passed, M failed"; true when none failed
#  wait_for SECS CMD...   run CMD every 0.1 s until it succeeds; 1 when SECS passed first
#  free_port              a TCP port free right now (0.0.0.0 and so loopback too)
#  enter_work_dir         make $work (a new temporary directory) and cd into it; an
#                         empty $pids; `cleanup` runs at exit, and on SIGINT/SIGTERM
#  cleanup                the default one: stop_pids "${pids[@]}", kill_under "$work/",
#                         remove $work (a script may define its own instead)
#  stop_pids PID...       SIGTERM, up to 5 s each to stop, then SIGKILL
#  kill_under PATTERN     SIGKILL every process whose command line matches PATTERN
#                         (ranks live in their own process groups: pids misses them)
#  left NAME              true, listing them, while processes mention $work/NAME
#  write_corpus FILE      the synthetic text corpus ("the cat" / "a dog", seed 3)
#  same_losses A B        two metrics.jsonl files: the same steps, each loss within
#                         1e-5 (relative)
#  ig ARGS...             $IGNIS ARGS under a timeout of $ig_timeout s (default 30)
#  mpirun_env             export what Open MPI's mpirun needs here: running as root,
#                         oversubscribed cores, no CMA single copy (containers)
#  mpi NP ARGS...         mpirun -np NP --bind-to none ARGS, under a timeout of
#                         $mpi_timeout s (default 300)
#  small_gpt_spec NAME STEPS
#                         NAME.json: a 2-layer, 32-wide GPT on corpus.txt, batch 8,
#                         SGD, metrics in NAME/metrics.jsonl, weights in NAME/
#  same_as_mpirun LABEL DIR STEPS
#                         `mpirun -np 4 $IGNIS train` of small_gpt_spec mpi STEPS: DIR's losses and final weights ($CMP) within
#                         1e-5 of it; says it is skipped where mpirun is missing
#  coordinator_on_free_port STATE ARGS...
#                         `$IGNIS coordinator` on a free loopback port (5 tries),
#                         logging to coord.log: sets $endpoint and $coord, adds it
#                         to $pids; exits 1 when none could listen

passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAILED: $1"; failed=$((failed + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
finish() {
    echo "$(basename "$0" .sh): $passed passed, $failed failed"
    [ $failed -eq 0 ]
}

wait_for() {
    local end=$((SECONDS + $1)); shift
    until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])' 2> /dev/null ||
        echo $((20000 + RANDOM % 30000))
}

enter_work_dir() {
    work=$(mktemp -d)
    pids=()
    trap cleanup EXIT
    trap "exit 1" INT TERM
    cd "$work" || exit 1
}
cleanup() {
    stop_pids "${pids[@]}"
    kill_under "$work/"
    rm -rf "$work"
}
stop_pids() {
    local p i
    for p in "$@"; do kill -TERM "$p" 2> /dev/null; done
    for p in "$@"; do
        for i in $(seq 1 50); do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2> /dev/null
    done
}
kill_under() {
    local p
    for p in $(pgrep -f "$1"); do kill -KILL "$p" 2> /dev/null; done
}
left() { pgrep -f "$work/$1" > /dev/null && { pgrep -fa "$work/$1"; return 0; }; return 1; }

write_corpus() {
    awk 'BEGIN { srand(3); for (i = 0; i < 20000; i++) printf "%s ", (rand() < 0.5 ? "the cat" : "a dog") }' > "$1"
}
step_losses() { grep -o '"step": [0-9]*, "loss": [0-9.e+-]*' "$1" | awk '{ print $2, $4 }' | tr -d ,; }
same_losses() {
    local a b
    a=$(step_losses "$1") b=$(step_losses "$2")
    [ -n "$a" ] && [ "$(echo "$a" | wc -l)" = "$(echo "$b" | wc -l)" ] && paste <(echo "$a") <(echo "$b") |
        awk '{ d = $2 - $4; if (d < 0) d = -d; if ($1 != $3 || d > 1e-5 * ($4 < 0 ? -$4 : $4) + 1e-6) bad = 1 } END { exit bad }'
}

ig() { timeout -k 2 "${ig_timeout:-30}" "$IGNIS" "$@"; }

mpirun_env() {
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
}
mpi() { local np=$1; shift; timeout -k 5 "${mpi_timeout:-300}" mpirun -np "$np" --bind-to none "$@"; }

small_gpt_spec() {
    cat > "$1.json" <<JSON
{"name": "$1",
 "model": {"type": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32},
 "data": {"format": "text", "train": "corpus.txt"},
 "train": {"batch_size": 8, "steps": $2},
 "optimizer": {"name": "sgd", "lr": 3e-3, "momentum": 0.9},
 "eval": {"batches": 1},
 "log": {"interval": 1, "metrics": "$1/metrics.jsonl"},
 "output": "$1/model.safetensors"}
JSON
}

same_as_mpirun() {
    local label=$1 dir=$2 steps=$3 out
    if ! command -v mpirun > /dev/null; then
        echo "mpirun not found: the comparison with mpirun -np 4 is skipped"
        return 0
    fi
    small_gpt_spec mpi "$steps"
    mpi 4 "$IGNIS" train mpi.json --quiet > mpi.log 2>&1 || { tail -5 mpi.log; bad "mpirun run failed"; }
    check "$label: the losses of mpirun -np 4 (1e-5)" "same_losses $dir/metrics.jsonl mpi/metrics.jsonl"
    if out=$("$CMP" "$dir/model.safetensors" mpi/model.safetensors 1e-5); then
        ok "$label: the final weights of mpirun -np 4: $out"
    else bad "$label: the final weights differ from mpirun -np 4: $out"; fi
}

coordinator_on_free_port() {
    local state=$1 try; shift
    for try in 1 2 3 4 5; do
        endpoint=tcp://127.0.0.1:$(free_port)
        "$IGNIS" coordinator --listen "$endpoint" --state "$state" "$@" > coord.log 2>&1 &
        coord=$!
        wait_for 5 grep -q "listening on" coord.log && break
        kill -KILL $coord 2> /dev/null; wait $coord 2> /dev/null
        coord=
    done
    [ -n "$coord" ] || { cat coord.log; echo "FAILED: no coordinator could listen"; exit 1; }
    pids+=($coord)
}

#!/usr/bin/env bash
# Integration test of `sweep slurm` on a real single-node Slurm (munged,
# slurmctld and slurmd from Debian, started by .ci/slurm-up.sh; stopped by
# their pids through .ci/slurm-down.sh when this script exits, whatever
# happens). Run as root. No fake scheduler anywhere.
#
# Scenario 1: the seed study as 4 array tasks with MaxArraySize 3, which
#   forces two arrays (tasks 0-2 and 0-0 with shard offset 3) plus the final
#   verify-and-compact job. The compacted dataset must equal a local
#   `sweep run` of the same study: same point IDs, each exactly once, same
#   parameter and metric values.
# Scenario 2: a larger study; one array task is killed with SIGKILL while it
#   runs (after it has written some parts). The final job must report the
#   study incomplete; submitting again must complete it, resuming the killed
#   shard, with no duplicates and values equal to a local run.
#
# Environment:
#   SLURM_MAX_ARRAY_SIZE  MaxArraySize of the test cluster (default 3)
#   SLURM_TEST_TIMEOUT    seconds to wait for the queue to drain, per wait (default 300)
#   SLURM_TEST_KEEP       1 = keep the work folder even on success
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd -P)

export PATH="/usr/local/go/bin:$PATH"
# as `make unit` builds: reuses its build cache (a cold build of arrow-go
# takes minutes on a small machine)
export CGO_ENABLED=0
t0=$SECONDS
say() { printf '== slurm-test: %s (%d s)\n' "$*" "$((SECONDS - t0))"; }
die() { printf 'slurm-test: FAIL: %s\n' "$*" >&2; exit 1; }

timeout_s=${SLURM_TEST_TIMEOUT:-300}
case $timeout_s in ''|*[!0-9]*) die "SLURM_TEST_TIMEOUT must be a number of seconds";; esac
[ "$(id -u)" = 0 ] || die "must run as root (it starts the Slurm daemons)"

work=$(mktemp -d "${TMPDIR:-/tmp}/sweep-slurm-test.XXXXXX")
chmod 0755 "$work"
export SLURM_SCRATCH="$work/slurm"
export SLURM_MAX_ARRAY_SIZE=${SLURM_MAX_ARRAY_SIZE:-3}

show_logs() {
  for f in "$work"/*/slurm/*.out "$SLURM_SCRATCH/slurmctld.log" "$SLURM_SCRATCH/slurmd.log"; do
    [ -f "$f" ] || continue
    printf -- '--- tail of %s\n' "$f" >&2
    tail -n 25 "$f" >&2
  done
}
cleanup() {
  local rc=$?
  trap - EXIT
  if [ $rc -ne 0 ]; then
    if command -v squeue >/dev/null; then squeue >&2 2>/dev/null || true; fi
    show_logs
  fi
  # stop the daemons by their pid files, always
  bash "$root/.ci/slurm-down.sh" || rc=1
  if [ $rc -eq 0 ] && [ "${SLURM_TEST_KEEP:-}" != 1 ]; then
    rm -rf "$work"
  else
    printf 'slurm-test: work folder kept: %s\n' "$work" >&2
  fi
  say "total $((SECONDS - t0)) s, exit $rc"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "bringing Slurm up (MaxArraySize=$SLURM_MAX_ARRAY_SIZE)"
bash "$root/.ci/slurm-up.sh"
t_up=$SECONDS

say "building sweep"
go build -o "$work/sweep" ./cmd/sweep
sweep=$work/sweep
# compile the comparison test now, so that its build time is not counted below
go test ./sweep -run '^TestCompareDatasets$' -count=1 >/dev/null
t_built=$SECONDS

# wait_drained JOBID...: wait, bounded, until none of the jobs is queued or
# running (squeue lists array jobs by their master id too)
wait_drained() {
  local ids start=$SECONDS left
  ids=$(IFS=,; echo "$*")
  while :; do
    left=$(squeue -h -j "$ids" -o '%i %T' 2>/dev/null || true)
    [ -z "$left" ] && return 0
    if [ $((SECONDS - start)) -ge "$timeout_s" ]; then
      printf '%s\n' "$left" >&2
      die "jobs $ids still queued after $timeout_s s"
    fi
    sleep 0.5
  done
}

# job_exit JOBID: "STATE EXITCODE" of a finished job, from slurmctld's memory
job_exit() {
  scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p; s/^ExitCode=//p' | head -n 2 | tr '\n' ' '
}

# submit LOG ARGS...: run `sweep slurm --submit ARGS`, print the output into
# LOG, and set arrays (ids) and finish (id)
submit() {
  local log=$1; shift
  "$sweep" slurm --submit "$@" | tee "$log"
  arrays=$(sed -n 's/^submitted job array \([0-9][0-9]*\):.*/\1/p' "$log" | tr '\n' ' ')
  finish=$(sed -n 's/^submitted job \([0-9][0-9]*\): verify and compact.*/\1/p' "$log")
  if [ -z "$arrays" ] || [ -z "$finish" ]; then die "no job ids in the output of sweep slurm"; fi
}

# compare A B: the Go comparison of two datasets (IDs, once each, values)
compare() {
  SWEEP_COMPARE_A=$1 SWEEP_COMPARE_B=$2 go test ./sweep -run '^TestCompareDatasets$' -count=1 -v | grep -E '^(=== RUN|--- |ok|FAIL|\s+slurm_compare)' || die "datasets $1 and $2 differ"
}

count_parts() { find "$1" -maxdepth 1 -name '*.parquet' | wc -l; }

# --- scenario 1: the seed study, split into two arrays -------------------------
study=$root/studies/seed-moe.toml
out1=$work/array
say "scenario 1: sweep slurm $study --tasks 4 (MaxArraySize $SLURM_MAX_ARRAY_SIZE)"
s1=$SECONDS
submit "$work/submit1.txt" "$study" --tasks 4 --cpus 1 --out "$out1"
n_arrays=$(wc -w <<<"$arrays")
expect_arrays=$(( (4 + SLURM_MAX_ARRAY_SIZE - 1) / SLURM_MAX_ARRAY_SIZE ))
[ "$n_arrays" -eq "$expect_arrays" ] || die "$n_arrays arrays submitted, want $expect_arrays"
grep -q "MaxArraySize $SLURM_MAX_ARRAY_SIZE, from scontrol show config" "$work/submit1.txt" || die "MaxArraySize was not read from scontrol"
# shellcheck disable=SC2086
wait_drained $arrays "$finish"
say "scenario 1: queue drained in $((SECONDS - s1)) s"
st=$(job_exit "$finish")
[ "$st" = "COMPLETED 0:0 " ] || die "final job $finish ended '$st' (want COMPLETED 0:0); log: $(cat "$out1"/slurm/*finish*.out)"
grep -q 'verify:  ok' "$out1"/slurm/sweep-seed-moe-finish-"$finish".out || die "final job did not verify"
n_logs=$(find "$out1/slurm" -name 'sweep-seed-moe-*_*.out' | wc -l)
[ "$n_logs" -eq 4 ] || die "$n_logs array task logs, want 4"
for i in 0 1 2 3; do
  grep -qh "shard $i/4" "$out1"/slurm/sweep-seed-moe-*_*.out || die "no task ran shard $i/4"
done
[ "$(count_parts "$out1")" -eq 1 ] || die "$(count_parts "$out1") parts after compaction, want 1"
[ ! -e "$out1/.compact-journal" ] || die "compaction journal left behind"
"$sweep" run "$study" --out "$work/local1" --progress none --quiet
compare "$out1" "$work/local1"
"$sweep" status "$out1" --study "$study" --verify
say "scenario 1 passed in $((SECONDS - s1)) s"

# --- scenario 2: kill one array task, resubmit ---------------------------------
study2=$work/kill.toml
cat >"$study2" <<'EOF'
# A study large enough that a shard runs for a few seconds on one CPU.
[study]
name = "slurm-kill"
engine = "moe"
seed = 1
where = ["top_k <= num_experts"]

[base]
model = "gpt3-7B"
hardware = "neupims"

[axes]
num_experts = [8, 16, 32, 64, 128]
moe_ffn_scaling = ["balanced", "compute", "capacity"]
batch_size = [32768, 65536]
top_k = [1, 2, 4]
seq_len = {from = 8, to = 4096, step = 8}
EOF
out2=$work/kill
say "scenario 2: $("$sweep" plan "$study2" --count) points in 4 tasks; one is killed mid-run"
s2=$SECONDS
submit "$work/submit2.txt" "$study2" --tasks 4 --cpus 1 --out "$out2" -- --flush-rows 100
first=${arrays%% *}
victim="${first}_1" # shard 1/4
# wait until the victim runs and has written a part, then SIGKILL it
start=$SECONDS
until compgen -G "$out2/part-s1of4-*.parquet" >/dev/null; do
  [ $((SECONDS - start)) -lt "$timeout_s" ] || die "shard 1/4 wrote no part in $timeout_s s"
  sleep 0.1
done
state=$(squeue -h -j "$victim" -o %T 2>/dev/null || true)
[ "$state" = RUNNING ] || die "task $victim is '$state' when it should be running: the study is too small to kill it mid-run"
# SIGKILL the task's sweep process, as if its node died (scancel would send
# SIGTERM first, which sweep handles gracefully: a softer test)
jobid=$(squeue -h -j "$victim" -o %A)
pids=$(scontrol listpids "$jobid" 2>/dev/null | awk 'NR > 1 { print $1 }')
killed=
for pid in $pids; do
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sweep ]; then
    kill -KILL "$pid" && killed="$killed $pid"
  fi
done
[ -n "$killed" ] || die "found no sweep process of task $victim (job $jobid; pids: ${pids:-none})"
say "scenario 2: SIGKILLed task $victim (shard 1/4, pid$killed) after it wrote $(find "$out2" -maxdepth 1 -name 'part-s1of4-*.parquet' | wc -l) part(s)"
# shellcheck disable=SC2086
wait_drained $arrays "$finish"
grep -q 'interrupted after' "$out2"/slurm/sweep-slurm-kill-"$first"_1.out && die "the killed task shut down gracefully; it should have been SIGKILLed"
st=$(job_exit "$finish")
case $st in "COMPLETED 0:0 "|"") die "final job $finish ended '$st'; it should have failed verification" ;; esac
grep -q '^missing: ' "$out2"/slurm/sweep-slurm-kill-finish-"$finish".out || die "final job did not list missing points"
grep -q 'submitting again runs what is missing' "$out2"/slurm/sweep-slurm-kill-finish-"$finish".out || die "final job did not say how to resume"
if "$sweep" status "$out2" --study "$study2" --verify >"$work/status2.txt"; then die "status --verify passed on an incomplete study"; fi
grep -q 'duplicates' "$work/status2.txt" && die "duplicates after the kill"
say "scenario 2: incomplete as expected ($(sed -n 's/^study: *//p' "$work/status2.txt")); resubmitting"
submit "$work/submit3.txt" "$study2" --tasks 4 --cpus 1 --out "$out2" -- --flush-rows 100
# shellcheck disable=SC2086
wait_drained $arrays "$finish"
st=$(job_exit "$finish")
[ "$st" = "COMPLETED 0:0 " ] || die "final job $finish after resubmission ended '$st'"
first=${arrays%% *}
resumed=$(sed -n 's/^resuming: \([0-9]*\) of.*/\1/p' "$out2"/slurm/sweep-slurm-kill-"$first"_1.out)
if [ -z "$resumed" ] || [ "$resumed" -eq 0 ]; then die "the killed shard did not resume from its saved rows"; fi
say "scenario 2: shard 1/4 resumed with $resumed points already done"
[ "$(count_parts "$out2")" -eq 1 ] || die "$(count_parts "$out2") parts after compaction, want 1"
"$sweep" run "$study2" --out "$work/local2" --progress none --quiet
compare "$out2" "$work/local2"
say "scenario 2 passed in $((SECONDS - s2)) s"
say "timings: Slurm up $((t_up)) s, build $((t_built - t_up)) s, scenario 1 $((s2 - s1)) s, scenario 2 $((SECONDS - s2)) s"

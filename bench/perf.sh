#!/usr/bin/env bash
# Performance figures of the orchestrator, measured side by side in one run:
#   - engine-only throughput for the seed point on one core (go benchmark);
#   - `sweep run --jobs 2` end to end on a 1M-point study: wall time, points/s,
#     and end-to-end / (2 x engine-only);
#   - `sweep run --discard` on the same study (engine + runner, no writing);
#   - peak RSS of a run at 100k, 1M and 10M points (10M only with FULL=1);
#   - a resume of the finished 1M-point study that has nothing to do;
#   - `sweep report` on the 1M-row dataset: wall time and peak RSS.
# The machines are shared and a single run varies by a few %: the engine
# benchmark runs 5 times and the 1M-point run 3 times (RUNS=N to change), and
# their medians give the ratio; every run is printed.
# Usage: bash bench/perf.sh [WORKDIR]      (FULL=1 adds the 10M-point run;
#        without WORKDIR a temporary folder, removed at the end unless KEEP=1)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# without WORKDIR the data sets go to a temporary folder that is removed at
# the end (the 10M one is 440 MB); KEEP=1 keeps it
if [ -n "${1:-}" ]; then
  work=$1
else
  work=$(mktemp -d)
  [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
bin=$work/sweep
CGO_ENABLED=0 go build -o "$bin" ./cmd/sweep

# measure CMD...: prints "wall_s rss_mb" (GNU time); the command's stdout goes to $work/last.out
measure() {
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >"$work/last.out" 2>"$work/last.err" || {
    cat "$work/last.err" >&2; return 1; }
  awk '{printf "%s %.0f\n", $1, $2/1024}' "$work/time.txt"
}

echo "== engine only (one core)"
# median of 5 runs of the benchmark
median() { sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
eng=$(CGO_ENABLED=0 go test ./engine/moe -run '^$' -bench 'SeedPoint$' -benchmem -benchtime 100000x -count 5 -cpu 1 | tee /dev/stderr | awk '/^BenchmarkSeedPoint(-[0-9]+)? /{print $3}' | median)
eng_pps=$(awk -v ns="$eng" 'BEGIN{printf "%.0f", 1e9/ns}')
echo "engine-only: $eng ns/point (median of 5) = $eng_pps points/s on one core (routing memoised, as in a sweep)"

printf '\n%-28s %10s %12s %8s\n' "run" "wall_s" "points/s" "rss_MB"
row() { printf '%-28s %10s %12s %8s\n' "$1" "$2" "$3" "$4"; }
pps() { awk -v n="$1" -v s="$2" 'BEGIN{printf "%.0f", n/s}'; }

sizes="100k 1m"
[ "${FULL:-0}" = 1 ] && sizes="100k 1m 10m"
for n in $sizes; do
  pts=$("$bin" plan "bench/perf-$n.toml" --count --out "$work/none")
  runs=1
  [ "$n" = 1m ] && runs=${RUNS:-3}
  walls=""
  for r in $(seq "$runs"); do
    rm -rf "$work/ds-$n"
    read -r wall rss < <(measure "$bin" run "bench/perf-$n.toml" --out "$work/ds-$n" --jobs 2 --progress none --quiet)
    row "run $n ($pts points)" "$wall" "$(pps "$pts" "$wall")" "$rss"
    walls="$walls $wall"
  done
  if [ "$n" = 1m ]; then
    wall=$(printf '%s\n' $walls | median)
    e2e=$(pps "$pts" "$wall")
    [ "$runs" -gt 1 ] && row "run 1m: median of $runs" "$wall" "$e2e" "-"
    read -r dwall drss < <(measure "$bin" run "bench/perf-$n.toml" --out "$work/discard" --jobs 2 --progress none --quiet --discard)
    row "run 1m --discard" "$dwall" "$(pps "$pts" "$dwall")" "$drss"
    read -r rwall rrss < <(measure "$bin" run "bench/perf-$n.toml" --out "$work/ds-$n" --jobs 2 --progress none --quiet)
    row "resume 1m (nothing to do)" "$rwall" "-" "$rrss"
    read -r pwall prss < <(measure "$bin" report "$work/ds-$n" -o "$work/report-1m")
    row "report 1m rows" "$pwall" "-" "$prss"
  fi
done
echo
awk -v e="$e2e" -v g="$eng_pps" 'BEGIN{printf "end-to-end / (2 x engine-only) = %.3f\n", e/(2*g)}'
if [ -n "${1:-}" ] || [ "${KEEP:-0}" = 1 ]; then echo "work folder: $work"; fi

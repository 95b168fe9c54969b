#!/usr/bin/env bash
# Per-point overhead of the command engine next to the process-spawn floor
# (xargs -P) and GNU parallel, all running the same trivial program over the
# same points with the same parallelism, in one run.
#
#   bench/command-overhead.sh            # 2000 points, nproc jobs, best of 3
#   POINTS=10000 JOBS=8 REPEAT=5 bench/command-overhead.sh
#
# The program is /bin/echo printing one JSON object per point. The command
# engine does everything a real study does: load and plan the study, make a
# work folder per point, render the arguments, run the program in its own
# process group with stdout and stderr captured in files, parse the JSON
# metric, remove the folder, and stream the rows into a Parquet dataset.
# xargs and parallel only run the program. Figures are wall time divided by
# the number of points; the target is the command engine within 1.2x of
# xargs. Needs go, xargs and GNU parallel (Debian package `parallel`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

POINTS=${POINTS:-2000}
JOBS=${JOBS:-$(nproc)}
REPEAT=${REPEAT:-3}
PROG=${PROG:-/bin/echo}

for tool in go xargs parallel; do
	if ! command -v "$tool" >/dev/null; then
		echo "command-overhead: $tool not found (GNU parallel: apt-get install parallel)" >&2
		exit 1
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/sweep" ./cmd/sweep

cat >"$tmp/study.toml" <<TOML
[study]
name = "command-overhead"
engine = "command"
max_points = 100000000

[command]
binary = "$PROG"
args = ['{"x": {{.i}}}']

[metrics]
x = "int"

[axes]
i = { from = 1, to = $POINTS, step = 1 }
TOML

# wall time of one run of a command, in seconds
timed() {
	local t0 t1
	rm -rf "$tmp/out" "$tmp/log"
	t0=$(date +%s.%N)
	"$@"
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}
# keep the smaller of two times ("" = none yet)
minof() {
	if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi
}

run_sweep() {
	"$tmp/sweep" run "$tmp/study.toml" --out "$tmp/out" --jobs "$JOBS" --progress none --quiet
	# every point must have a row
	"$tmp/sweep" status "$tmp/out" >"$tmp/status.txt" 2>&1 || { cat "$tmp/status.txt" >&2; exit 1; }
}
run_xargs() {
	seq 1 "$POINTS" | xargs -P "$JOBS" -I{} "$PROG" '{"x": {}}' >"$tmp/log"
}
run_parallel() {
	seq 1 "$POINTS" | parallel --will-cite -j "$JOBS" "$PROG" '{"x": {}}' >"$tmp/log"
}

echo "command engine overhead: $POINTS points of $PROG, $JOBS jobs, best of $REPEAT ($(nproc) CPUs)"
# interleaved, so that drift in the machine's load hits all three alike
t_xargs="" t_sweep="" t_parallel=""
for _ in $(seq "$REPEAT"); do
	t_xargs=$(minof "$t_xargs" "$(timed run_xargs)")
	t_sweep=$(minof "$t_sweep" "$(timed run_sweep)")
	t_parallel=$(minof "$t_parallel" "$(timed run_parallel)")
	[ "$(wc -l <"$tmp/log")" = "$POINTS" ] || { echo "parallel lost output" >&2; exit 1; }
done

per() { echo "$1 * 1000000 / $POINTS" | bc -l; }
ratio() { echo "$1 / $t_xargs" | bc -l; }
printf '%-28s %10s %14s %10s\n' "runner" "wall s" "per point us" "vs xargs"
printf '%-28s %10.3f %14.1f %10.2f\n' "xargs -P (spawn floor)" "$t_xargs" "$(per "$t_xargs")" 1
printf '%-28s %10.3f %14.1f %10.2f\n' "sweep run (command engine)" "$t_sweep" "$(per "$t_sweep")" "$(ratio "$t_sweep")"
printf '%-28s %10.3f %14.1f %10.2f\n' "GNU parallel" "$t_parallel" "$(per "$t_parallel")" "$(ratio "$t_parallel")"
r=$(ratio "$t_sweep")
if [ "$(echo "$r <= 1.2" | bc -l)" = 1 ]; then verdict="within"; else verdict="OUTSIDE"; fi
printf 'command engine / xargs = %.2f: %s the 1.2x target\n' "$r" "$verdict"

#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by .ci/slurm-up.sh: slurmd,
# slurmctld and munged, each by its pid file, and wait until they are gone.
# The pid file paths of slurmd and slurmctld are read from slurm.conf.
#
# Environment:
#   SLURM_DOWN_TIMEOUT  seconds to wait for each daemon after SIGTERM before
#                       sending SIGKILL (default 20)
set -euo pipefail

conf=/etc/slurm/slurm.conf
munge_pid=/run/munge/munged.pid
timeout=${SLURM_DOWN_TIMEOUT:-20}

say() { printf 'slurm-down: %s\n' "$*"; }

conf_value() { # conf_value KEY: the value of KEY=... in slurm.conf, or nothing
  [ -f "$conf" ] || return 0
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/p" "$conf" | tail -n 1
}

alive() { # alive PID NAME: PID runs and is (still) the daemon NAME
  # A zombie counts as gone: where PID 1 reaps orphans late, it lingers a while.
  local comm stat
  kill -0 "$1" 2>/dev/null || return 1
  read -r comm <"/proc/$1/comm" 2>/dev/null || return 1
  [ "$comm" = "$2" ] || return 1
  read -r stat <"/proc/$1/stat" 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

status=0
names=() pids=() files=()
# Signal all three at once (each takes a second or two to exit), then wait.
signal() { # signal NAME PIDFILE
  local name=$1 file=$2 pid
  if [ -z "$file" ] || [ ! -f "$file" ]; then
    say "$name: no pid file${file:+ at $file}, nothing to stop"
    return 0
  fi
  pid=$(tr -dc 0-9 <"$file")
  if [ -z "$pid" ] || ! alive "$pid" "$name"; then
    say "$name: not running (stale pid file $file)"
    rm -f "$file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  names+=("$name") pids+=("$pid") files+=("$file")
}

any_alive() {
  local i
  for i in "${!pids[@]}"; do
    alive "${pids[$i]}" "${names[$i]}" && return 0
  done
  return 1
}

wait_all() { # wait_all TENTHS: wait up to TENTHS/10 s for all to exit
  local n
  for ((n = 0; n < $1; n++)); do
    any_alive || return 0
    sleep 0.1
  done
  ! any_alive
}

# Slurm's own defaults apply where slurm.conf names no pid file.
d=$(conf_value SlurmdPidFile); signal slurmd "${d:-/run/slurmd.pid}"
c=$(conf_value SlurmctldPidFile); signal slurmctld "${c:-/run/slurmctld.pid}"
signal munged "$munge_pid"

if ! wait_all $((timeout * 10)); then
  for i in "${!pids[@]}"; do
    if alive "${pids[$i]}" "${names[$i]}"; then
      say "${names[$i]} (pid ${pids[$i]}) still running after ${timeout} s: SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  wait_all 50 || true
fi
for i in "${!pids[@]}"; do
  if alive "${pids[$i]}" "${names[$i]}"; then
    say "error: ${names[$i]} (pid ${pids[$i]}) would not stop" >&2
    status=1
  else
    rm -f "${files[$i]}"
    say "${names[$i]} (pid ${pids[$i]}) stopped"
  fi
done
exit $status

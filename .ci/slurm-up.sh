#!/usr/bin/env bash
# Bring up a single-node Slurm cluster (munged + slurmctld + slurmd) on this
# host, for tests that submit real jobs. Debian/Ubuntu, run as root, no
# systemd needed: the daemons are started by hand.
#
# Environment:
#   SLURM_SCRATCH         folder for state, spool, logs and pid files
#                         (default: a fresh mktemp folder, printed)
#   SLURM_MAX_ARRAY_SIZE  MaxArraySize in slurm.conf (default 1001; it caps the
#                         highest array index, not the number of tasks)
#   SLURM_UP_TIMEOUT      seconds to wait for the node to become idle (default 60)
#
# Safe to run again: daemons started by an earlier run are stopped first
# (through .ci/slurm-down.sh), then everything is started with the new config.
# Stop everything with .ci/slurm-down.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
conf=/etc/slurm/slurm.conf
max_array=${SLURM_MAX_ARRAY_SIZE:-1001}
timeout=${SLURM_UP_TIMEOUT:-60}
munge_pid=/run/munge/munged.pid

say() { printf 'slurm-up: %s\n' "$*"; }
die() { printf 'slurm-up: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"
case $max_array in ''|*[!0-9]*) die "SLURM_MAX_ARRAY_SIZE must be a positive integer, got '$max_array'";; esac
case $timeout in ''|*[!0-9]*) die "SLURM_UP_TIMEOUT must be a positive integer, got '$timeout'";; esac

# --- 1. packages -------------------------------------------------------------
pkgs=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get install -y -q --no-install-recommends "${missing[@]}"; }
  # Refresh the package lists only when they don't know the packages, or when
  # the install fails with them (stale lists point at files gone from the mirror).
  if ! apt-cache show --no-all-versions slurmctld >/dev/null 2>&1; then
    say "package lists lack slurmctld: apt-get update"
    apt-get update -q || die "apt-get update failed"
    apt_install || die "apt-get install ${missing[*]} failed"
  elif ! apt_install; then
    say "install failed with the current package lists: apt-get update and retry"
    apt-get update -q || die "apt-get update failed"
    apt_install || die "apt-get install ${missing[*]} failed"
  fi
  say "installed ${missing[*]} in $((SECONDS - t0)) s"
fi
for b in munged munge unmunge slurmctld slurmd sinfo sbatch scontrol; do
  command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || die "$b not found after install"
done

# --- 2. stop daemons left by an earlier run -----------------------------------
if [ -f "$conf" ] || [ -f "$munge_pid" ]; then
  bash "$here/slurm-down.sh" || die "could not stop the daemons of an earlier run"
fi
# A daemon we have no pid file for would hold the ports: refuse rather than guess.
# (Zombies are skipped: where PID 1 reaps orphans late, daemonizing leaves some.)
for f in /proc/[0-9]*/stat; do
  read -r stat <"$f" 2>/dev/null || continue
  comm=${stat#*(}; comm=${comm%) *}
  st=${stat##*) }; st=${st%% *}
  [ "$st" = Z ] && continue
  case $comm in
    slurmctld|slurmd|munged)
      pid=${f#/proc/}; pid=${pid%/stat}
      die "a $comm not started by this script is running (pid $pid); stop it first" ;;
  esac
done

# --- 3. hostname must resolve -------------------------------------------------
host=$(hostname -s)
[ -n "$host" ] || die "hostname -s printed nothing"
if ! getent hosts "$host" >/dev/null; then
  say "$host does not resolve: adding '127.0.0.1 $host' to /etc/hosts"
  printf '127.0.0.1\t%s\n' "$host" >>/etc/hosts || die "cannot write /etc/hosts"
  getent hosts "$host" >/dev/null || die "$host still does not resolve"
fi

# --- 4. scratch folder and slurm.conf -----------------------------------------
if [ -n "${SLURM_SCRATCH:-}" ]; then
  scratch=$SLURM_SCRATCH
  mkdir -p "$scratch"
else
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/slurm.XXXXXX")
fi
scratch=$(cd "$scratch" && pwd -P)
chmod 0755 "$scratch"
rm -rf "$scratch/state" "$scratch/spool"
rm -f "$scratch/slurmctld.log" "$scratch/slurmd.log" "$scratch/slurmctld.pid" "$scratch/slurmd.pid"
mkdir -p "$scratch/state" "$scratch/spool"

cpus=$(nproc)
mkdir -p /etc/slurm
tmpconf=$(mktemp /etc/slurm/.slurm.conf.XXXXXX)
cat >"$tmpconf" <<EOF
# Written by .ci/slurm-up.sh: single-node test cluster, no cgroups, no accounting.
ClusterName=test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MaxArraySize=$max_array
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$scratch/state
SlurmdSpoolDir=$scratch/spool
SlurmctldPidFile=$scratch/slurmctld.pid
SlurmdPidFile=$scratch/slurmd.pid
SlurmctldLogFile=$scratch/slurmctld.log
SlurmdLogFile=$scratch/slurmd.log
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
chmod 0644 "$tmpconf"
mv -f "$tmpconf" "$conf"

show_logs() {
  for f in "$scratch/slurmctld.log" "$scratch/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] || continue
    printf '%s\n' "--- tail of $f" >&2
    tail -n 30 "$f" >&2
  done
}
fail() {
  printf 'slurm-up: error: %s\n' "$*" >&2
  show_logs
  printf 'slurm-up: stopping what was started\n' >&2
  bash "$here/slurm-down.sh" >&2 || true
  exit 1
}
died() { # died NAME PIDFILE: the daemon wrote its pid file and is gone since
  local pid
  [ -s "$2" ] || return 1
  pid=$(tr -dc 0-9 <"$2")
  [ -n "$pid" ] || return 1
  ! kill -0 "$pid" 2>/dev/null && return 0
  read -r stat <"/proc/$pid/stat" 2>/dev/null || return 0
  stat=${stat##*) }
  [ "${stat%% *}" = Z ]
}

# --- 5. munge -----------------------------------------------------------------
key=/etc/munge/munge.key
if [ ! -s "$key" ]; then
  say "creating $key"
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile="$key" --force
  else
    dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
  fi
fi
chown munge:munge "$key" && chmod 0400 "$key"
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
runuser -u munge -- /usr/sbin/munged || fail "munged did not start"
ok=
for _ in $(seq 1 50); do
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || fail "munge -n | unmunge does not work"

# --- 6. slurmctld and slurmd --------------------------------------------------
slurmctld || fail "slurmctld did not start"
slurmd || fail "slurmd did not start"

t0=$SECONDS
state=
while [ $((SECONDS - t0)) -lt "$timeout" ]; do
  state=$(timeout 5 sinfo -h -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  for d in slurmctld slurmd; do
    died "$d" "$scratch/$d.pid" && fail "$d exited during start-up"
  done
  sleep 0.5
done
[ "$state" = idle ] || fail "node not idle after ${timeout} s (sinfo says '${state:-nothing}')"

say "up: node $host idle ($cpus CPUs), MaxArraySize=$max_array"
say "scratch folder: $scratch"
say "pid files: $munge_pid $scratch/slurmctld.pid $scratch/slurmd.pid"
say "logs: $scratch/slurmctld.log $scratch/slurmd.log"

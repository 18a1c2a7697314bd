# shellcheck shell=bash disable=SC2034  # (variables used by the scripts that source this)
# The development Slurm's layout and process helpers, sourced by setup.sh and stop.sh.
# Everything lives under one lab directory; only processes recorded there are touched.

LAB=${BAI_SLURM_LAB:-/var/tmp/bai-slurm}
case "$LAB" in
  /*) ;;
  *) echo "slurm: error: BAI_SLURM_LAB must be an absolute path, got '$LAB'" >&2; exit 2 ;;
esac
LAB=${LAB%/}
CONF=$LAB/etc/slurm.conf
MUNGE_DIR=$LAB/munge
MUNGE_SOCKET=$MUNGE_DIR/run/munge.socket.2
MUNGE_PID=$MUNGE_DIR/run/munged.pid
CTLD_PID=$LAB/run/slurmctld.pid
SLURMD_PID=$LAB/run/slurmd.pid
SPOOL=$LAB/state/d
NODE=localhost
ETC_LINK=/etc/slurm/slurm.conf
# Every Slurm tool this script runs talks to the lab's cluster, whatever the caller's environment.
export SLURM_CONF=$CONF
unset SLURM_JWT

say() { printf 'slurm: %s\n' "$*"; }
die() { printf 'slurm: error: %s\n' "$*" >&2; exit 1; }

# Seconds since $1 (an $EPOCHREALTIME value), with one decimal.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# Prints the pid recorded in pid file $1 when that process is alive and named $2.
# A zombie counts as dead: PID 1 may reap a killed daemon only seconds later.
live_pid() {
  local file=$1 comm=$2 pid stat
  [ -r "$file" ] || return 1
  read -r pid <"$file" 2>/dev/null || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  echo "$pid"
}

# True while process $1 exists and is not a zombie.
pid_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Sends SIGTERM to pid $1 (named $2), waits up to $3 seconds, then SIGKILLs it.
stop_pid() {
  local pid=$1 name=$2 wait=${3:-10} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < wait * 20; i++)); do
    pid_running "$pid" || { say "stopped $name (pid $pid)"; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  say "killed $name (pid $pid) after ${wait} s without exiting on SIGTERM"
}

# Prints the pids of slurmstepd processes serving this lab (they hold its slurmd.log open).
lab_stepds() {
  local comm pid fd
  for comm in /proc/[0-9]*/comm; do
    [ "$(cat "$comm" 2>/dev/null)" = slurmstepd ] || continue
    pid=${comm#/proc/}
    pid=${pid%/comm}
    for fd in /proc/"$pid"/cwd /proc/"$pid"/fd/*; do
      case $(readlink "$fd" 2>/dev/null) in "$LAB"/*) echo "$pid"; break ;; esac
    done
  done
}

# Prints the job ids whose steps this lab's slurmstepd processes run ("slurmstepd: [ID.batch]").
lab_step_jobs() {
  local pid cmd
  for pid in $(lab_stepds); do
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
    [[ $cmd =~ \[([0-9]+)\. ]] && echo "${BASH_REMATCH[1]}"
  done
}

# Prints pid $1 and all its descendants, parents first.
process_tree() {
  local pid=$1 child
  echo "$pid"
  for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do process_tree "$child"; done
}

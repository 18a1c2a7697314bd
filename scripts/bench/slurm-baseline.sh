#!/usr/bin/env bash
# The ceiling of the plain Slurm tools, the baseline of issue 7's benchmark: N trivial jobs
# (`true`) submitted by `sbatch` in a shell loop (jobs/s accepted and completed), the same N as
# one job array throttled to the node's CPUs (`--array=0-(N-1)%CPUS`), and the latency of one
# trivial job from sbatch to COMPLETED.  Each job writes its stdout file, as bai's jobs do.
# Needs a running Slurm (scripts/slurm/setup.sh).  The last lines are "key=value" for scripts.
#
# Usage: scripts/bench/slurm-baseline.sh [N]        (N defaults to 1000)
set -euo pipefail
N=${1:-1000}
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "slurm-baseline: N must be a positive integer, got '$N'" >&2; exit 2; }
LAB=${BAI_SLURM_LAB:-/var/tmp/bai-slurm}
if [ -z "${SLURM_CONF:-}" ] && [ -r "$LAB/env.sh" ]; then . "$LAB/env.sh"; fi
unset SLURM_JWT

sinfo --noheader >/dev/null 2>&1 || { echo "slurm-baseline: no Slurm answers (run scripts/slurm/setup.sh)" >&2; exit 1; }
cpus=$(sinfo --noheader --format=%C | awk -F/ '{ print $4 }')
name=bai-bench-$$
out=$(mktemp -d /tmp/bai-slurm-bench.XXXXXX)
trap 'scancel --name="$name" 2>/dev/null || true; rm -rf "$out"' EXIT

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", n / (b - a) }'; }

# Waits until no job named $1 is pending, running or completing.
wait_done() {
  while [ -n "$(squeue --noheader --name="$1" --states=PD,R,CG,CF,S --format=%i 2>/dev/null | head -n 1)" ]; do
    sleep 0.05
  done
}

# Prints how many jobs (array tasks included) named $1 ended COMPLETED.
count_completed() { squeue --noheader --array --name="$1" --states=CD --format=%i | wc -l; }

echo "slurm-baseline: $N trivial jobs on $(sinfo --noheader --format=%N) ($cpus CPUs), Slurm $(sinfo --version | awk '{ print $2 }')"

# 1. sbatch in a shell loop.
t0=$(now)
for ((i = 0; i < N; i++)); do
  sbatch --parsable --job-name="$name-loop" --output="$out/%j.out" --wrap=true >/dev/null
done
t1=$(now)
wait_done "$name-loop"
t2=$(now)
done_loop=$(count_completed "$name-loop")
loop_accept=$(rate "$N" "$t0" "$t1")
loop_complete=$(rate "$N" "$t0" "$t2")
printf '  sbatch loop:  accepted %d in %s s = %s jobs/s (%.1f ms per sbatch); completed %d in %s s = %s jobs/s\n' \
  "$N" "$(secs "$t0" "$t1")" "$loop_accept" "$(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { print (b - a) * 1000 / n }')" \
  "$done_loop" "$(secs "$t0" "$t2")" "$loop_complete"

# 2. One job array, at most $cpus tasks at a time (what a sweep's max_running maps to).
t0=$(now)
sbatch --parsable --job-name="$name-array" --array="0-$((N - 1))%$cpus" --output="$out/%A_%a.out" --wrap=true >/dev/null
t1=$(now)
wait_done "$name-array"
t2=$(now)
done_array=$(count_completed "$name-array")
array_complete=$(rate "$N" "$t0" "$t2")
printf '  job array:    accepted %d tasks in %s s; completed %d in %s s = %s jobs/s\n' \
  "$N" "$(secs "$t0" "$t1")" "$done_array" "$(secs "$t0" "$t2")" "$array_complete"

# 3. Latency of one trivial job, submitted at a random moment (slurmctld starts batch jobs on a 1 s tick).
lat=()
for ((i = 0; i < 10; i++)); do
  sleep "0.$((RANDOM % 10))"
  t0=$(now)
  id=$(sbatch --parsable --job-name="$name-latency" --output="$out/%j.out" --wrap=true)
  until [ "$(squeue --noheader --states=all --jobs="$id" --format=%T 2>/dev/null)" = COMPLETED ]; do sleep 0.01; done
  lat+=("$(secs "$t0" "$(now)")")
done
read -r lat_p50 lat_max < <(printf '%s\n' "${lat[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[NR] }')
echo "  latency:      sbatch to COMPLETED p50 $lat_p50 s, max $lat_max s over 10 jobs"

[ "$done_loop" -eq "$N" ] && [ "$done_array" -eq "$N" ] ||
  echo "slurm-baseline: warning: not every job COMPLETED (loop $done_loop, array $done_array of $N)" >&2
echo "sbatch_loop_accepted_per_s=$loop_accept"
echo "sbatch_loop_completed_per_s=$loop_complete"
echo "array_completed_per_s=$array_complete"
echo "latency_p50_s=$lat_p50"

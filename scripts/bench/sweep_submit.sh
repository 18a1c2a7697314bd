#!/usr/bin/env bash
# Benchmark: a 10,000-trial sweep from script start to all submitted, against
# bai serve with --slots 0 (jobs are stored and queued, never run), compared
# in the same run with the client's raw submission benchmark
# (scripts/bench/client_create.lua: the same number of typed base:with{} jobs
# created through the client with the same concurrency, nothing else).  The
# sweep also plans every trial (validation, names, collision check), keeps its
# manifest on disk and checks the experiment's jobs before submitting.  Then
# the same sweep run again: the resume path, which finds everything submitted.
# Prints wall time, jobs/s and peak RSS of each, and the ratios.
# Usage: scripts/bench/sweep_submit.sh [JOBS=10000] [CONCURRENCY=32]
# Needs: build/bin/bai, curl, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=${1:-10000}
CONC=${2:-32}
. scripts/bench/bench_serve.sh
bench_init sweep
rate() { awk -v n="$JOBS" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }

cat > "$WORK/sweep.lua" <<LUA
local bai = require "batchai"
local exp = bai.experiment { workspace = "$WS", name = "sweep", concurrency = $CONC }
local base = bai.JobProperties { cluster = { id = "local" }, nodeCount = 1,
  stdOutErrPathPrefix = "\$AZ_BATCHAI_MOUNT_ROOT/logs",
  customToolkitSettings = { commandLine = "python3 train.py --lr 0.01 --batch 64" } }
local space = bai.sweep.grid { seed = bai.sweep.range(1, $JOBS) }
local run = exp:submit(space, function(p)
  return base:with { customToolkitSettings = { commandLine = "python3 train.py --lr 0.01 --batch 64 --seed " .. p.seed } }
end, { name = "bench", job_name = "b{seed:05d}", concurrency = $CONC, progress = false })
local counts = run:counts()
assert(counts.total == $JOBS and (counts.queued or 0) == $JOBS, "not all submitted")
LUA

echo "== sweep submit benchmark: $JOBS trials, $CONC requests in flight, bai serve --slots 0 ($(nproc) cores)"
start_server "$WORK/s1" exp
measure env BAI_ENDPOINT="$URL" BAI_TOKEN="$TOKEN" "$BAI" scripts/bench/client_create.lua "$URL" "$TOKEN" "$WS" exp "$JOBS" "$CONC"
RAW_WALL=$WALL RAW_RSS=$RSS
stop_server
start_server "$WORK/s2" sweep
measure env BAI_ENDPOINT="$URL" BAI_TOKEN="$TOKEN" BAI_SWEEP_DIR="$WORK/sweeps" "$BAI" "$WORK/sweep.lua"
SWEEP_WALL=$WALL SWEEP_RSS=$RSS
measure env BAI_ENDPOINT="$URL" BAI_TOKEN="$TOKEN" BAI_SWEEP_DIR="$WORK/sweeps" "$BAI" "$WORK/sweep.lua"
RESUME_WALL=$WALL RESUME_RSS=$RSS
stop_server
printf '%-44s %9s %9s %12s\n' "" "wall s" "jobs/s" "peak RSS MB"
printf '%-44s %9s %9s %12s\n' "client raw creates (client_create.lua)" "$RAW_WALL" "$(rate "$RAW_WALL")" "$RAW_RSS"
printf '%-44s %9s %9s %12s\n' "bai sweep: start to all submitted" "$SWEEP_WALL" "$(rate "$SWEEP_WALL")" "$SWEEP_RSS"
printf '%-44s %9s %9s %12s\n' "bai sweep re-run (resume, nothing to submit)" "$RESUME_WALL" "$(rate "$RESUME_WALL")" "$RESUME_RSS"
echo "sweep/raw wall time: $(ratio "$SWEEP_WALL" "$RAW_WALL")x; memory: $(ratio "$SWEEP_RSS" "$RAW_RSS")x; resume/raw: $(ratio "$RESUME_WALL" "$RAW_WALL")x"

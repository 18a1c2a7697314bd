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
BAI=$PWD/build/bin/bai
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bai-bench-sweep.XXXXXX")
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
SUB=00000000-0000-0000-0000-000000000000
RG=default
WS=ws

start_server() { # $1 state dir, $2 experiment
  "$BAI" serve --state "$1" --listen 127.0.0.1:0 --slots 0 --retry-after 0 > "$1.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do grep -q "bai serve: ready" "$1.out" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'url=[^ ]*' "$1.out" | cut -d= -f2)
  TOKEN=$(cat "$1/token")
  local ws="$URL/subscriptions/$SUB/resourceGroups/$RG/providers/Microsoft.BatchAI/workspaces/$WS"
  curl -sf -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"location":"local"}' \
    "$ws?api-version=2018-05-01" >/dev/null
  curl -sf -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"properties":{}}' \
    "$ws/experiments/$2?api-version=2018-05-01" >/dev/null
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

measure() { # runs a command under /usr/bin/time; sets WALL (s) and RSS (MB)
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" > "$WORK/out" 2>"$WORK/err" || { cat "$WORK/out" "$WORK/err" >&2; return 1; }
  WALL=$(cut -d' ' -f1 "$WORK/time")
  RSS=$(awk '{printf "%.1f", $2/1024}' "$WORK/time")
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
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

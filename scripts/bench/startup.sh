#!/usr/bin/env bash
# Start-up time: `bai -e ''` against `lua5.4 -e ''` measured in the same run
# (hyperfine, many repetitions, medians), and the ratio.  Goal: within 1.5x.
# Usage: scripts/bench/startup.sh [path/to/bai] [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
BAI=${1:-build/bin/bai}
RUNS=${2:-500}
command -v hyperfine >/dev/null || { echo "startup.sh: hyperfine is not installed (scripts/setup.sh)" >&2; exit 1; }
[ -x "$BAI" ] || { echo "startup.sh: $BAI not built (make)" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
hyperfine -N --style none -w 50 -r "$RUNS" --export-json "$out" \
  "lua5.4 -e ''" "$BAI -e ''" "$BAI -e 'require[[batchai]]'" >/dev/null 2>&1
"$BAI" - "$out" <<'LUA'
local cjson = require "cjson"
local f = assert(io.open(arg[1]))
local results = cjson.decode(f:read("a")).results
f:close()
local base = results[1].median
-- CPU time (user + system, means) moves less than wall time on a loaded machine.
local function cpu(r) return r.user + r.system end
print(("%-38s %9s %9s %7s %9s %7s"):format("command", "median", "mean", "ratio", "cpu", "ratio"))
for _, r in ipairs(results) do
  print(("%-38s %7.2fms %7.2fms %6.2fx %7.2fms %6.2fx"):format(r.command, r.median * 1e3, r.mean * 1e3,
    r.median / base, cpu(r) * 1e3, cpu(r) / cpu(results[1])))
end
print(("bai -e '' / lua5.4 -e '' = %.2fx wall (median), %.2fx CPU (goal <= 1.5x)"):format(
  results[2].median / base, cpu(results[2]) / cpu(results[1])))
LUA

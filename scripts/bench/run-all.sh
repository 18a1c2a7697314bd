#!/bin/sh
# Every benchmark of scripts/bench, one after the other (make bench).  Each
# prints its own figures and ratios against a baseline measured in the same run.
# The other files of scripts/bench are their parts (wrk scripts, baselines,
# the client's creator), not benchmarks of their own.
set -eu
cd "$(dirname "$0")/../.."
BAI=${BAI:-build/bin/bai}
for bench in startup.sh schema.lua serve.sh client.sh sweep_points.lua sweep_submit.sh slurm.lua; do
  echo "== scripts/bench/$bench"
  case "$bench" in
    *.sh) bash "scripts/bench/$bench" ;;
    *.lua) "$BAI" "scripts/bench/$bench" ;;
  esac
done

#!/bin/sh
# Every benchmark of scripts/bench, one after the other (make bench).  Each
# prints its own figures and ratios against a baseline measured in the same run.
set -eu
cd "$(dirname "$0")/../.."
BAI=${BAI:-build/bin/bai}
for bench in scripts/bench/*; do
  case "$bench" in
    */run-all.sh) ;;
    *.sh) echo "== $bench"; bash "$bench" ;;
    *.lua) echo "== $bench"; "$BAI" "$bench" ;;
  esac
done

#!/usr/bin/env bash
# Benchmark of the client (issue 5) against bai serve (slots = 0), one fresh
# server per contender, all in the same run:
#   1. JOBS job creates with CONCURRENCY in flight, three ways: bai (a Lua
#      script building each job as a typed value; also with every answer
#      decoded), a minimal C program on libcurl multi with pre-built bodies
#      (the practical ceiling), and the official JavaScript SDK
#      (@azure/arm-batchai) with CONCURRENCY promises in flight; all over TCP
#      with the token (bai also over the unix socket, its default for the
#      local endpoint).  Requests per
#      second and peak memory (max RSS): medians of ROUNDS interleaved rounds;
#      the ratios of the medians.
#   2. `bai job list` of JOBS jobs (tsv and table), against curl fetching the
#      same pages.
#   3. `bai job show` from start to exit (median of 20), against `bai -e ''`.
# Usage: scripts/bench/client.sh [JOBS=10000] [CONCURRENCY=32] [ROUNDS=3]
# Needs: build/bin/bai, cc, curl, /usr/bin/time, node + scripts/npm/node_modules
# (scripts/setup.sh installs them; the SDK row is skipped without them).
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=${1:-10000}
CONC=${2:-32}
ROUNDS=${3:-3}
. scripts/bench/bench_serve.sh
bench_init client
EXP_PATH="/subscriptions/$SUB/resourceGroups/$RG/providers/Microsoft.BatchAI/workspaces/$WS/experiments/exp"

echo "== client benchmark: $JOBS job creates, $CONC in flight, against bai serve --slots 0 ($(nproc) cores)"
cc -O2 -o "$WORK/client_baseline" scripts/bench/client_baseline.c -lcurl

# Each contender runs ROUNDS times, interleaved (C, bai, bai decoding, SDK, C,
# ...), each time against a fresh server; the figures are the medians, so a
# burst of load from elsewhere on the machine does not decide a ratio.
declare -A RATES MEMS
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
run_once() { # key, then the command (the server of start_server runs; stopped after)
  local key=$1
  shift
  measure "$@"
  local inner rate
  inner=$(grep -o 'in [0-9.]* s' "$WORK/out" | awk '{print $2}')
  rate=$(awk -v n="$JOBS" -v s="$inner" 'BEGIN { printf "%.0f", n / s }')
  RATES[$key]="${RATES[$key]:-} $rate"
  MEMS[$key]="${MEMS[$key]:-} $RSS"
  printf "  round %d  %-8s %8s s  %6s creates/s  peak RSS %6s MB\n" "$round" "$key" "$inner" "$rate" "$RSS"
  stop_server
}
SDK=no
if command -v node >/dev/null && [ -d scripts/npm/node_modules/@azure/arm-batchai ]; then SDK=yes; fi
for round in $(seq "$ROUNDS"); do
  start_server "$WORK/c$round" exp
  run_once C "$WORK/client_baseline" "$URL" "$TOKEN" "$EXP_PATH" "$JOBS" "$CONC"
  start_server "$WORK/bai$round" exp
  run_once bai "$BAI" scripts/bench/client_create.lua "$URL" "$TOKEN" "$WS" exp "$JOBS" "$CONC"
  start_server "$WORK/bais$round" exp
  run_once bai-sock "$BAI" scripts/bench/client_create.lua "$SOCKET" - "$WS" exp "$JOBS" "$CONC"
  start_server "$WORK/baid$round" exp
  run_once bai-dec "$BAI" scripts/bench/client_create.lua "$URL" "$TOKEN" "$WS" exp "$JOBS" "$CONC" decode
  if [ "$SDK" = yes ]; then
    start_server "$WORK/sdk$round" exp
    run_once sdk env NODE_PATH="$PWD/scripts/npm/node_modules" node scripts/bench/client_sdk.js \
      "$URL" "$TOKEN" "$SUB" "$RG" "$WS" exp "$JOBS" "$CONC"
  fi
done
[ "$SDK" = yes ] || echo "official JS SDK: skipped (node or scripts/npm/node_modules missing: run scripts/setup.sh)"
echo "medians of $ROUNDS rounds:"
row() { printf "%-34s %6s creates/s  peak RSS %6s MB\n" "$1" "$(echo "${RATES[$2]}" | median)" "$(echo "${MEMS[$2]}" | median)"; }
row "libcurl multi, C (the ceiling)" C
row "bai, typed jobs" bai
row "bai, typed jobs, answers decoded" bai-dec
row "bai, typed jobs, unix socket" bai-sock
[ "$SDK" = yes ] && row "official JS SDK" sdk
R_C=$(echo "${RATES[C]}" | median); R_BAI=$(echo "${RATES[bai]}" | median); R_DEC=$(echo "${RATES[bai-dec]}" | median)
echo "ratio bai / libcurl multi:            $(ratio "$R_BAI" "$R_C")  (goal >= 0.8)"
echo "ratio bai decoding / libcurl multi:   $(ratio "$R_DEC" "$R_C")"
if [ "$SDK" = yes ]; then
  echo "ratio bai / official JS SDK:          $(ratio "$R_BAI" "$(echo "${RATES[sdk]}" | median)")  (goal >= 3)"
fi
echo "bai client peak memory:               $(echo "${MEMS[bai]}" | median) MB  (goal < 50 MB)"

echo "== listing the $JOBS jobs of one experiment (pages of 1000)"
start_server "$WORK/list" exp
"$WORK/client_baseline" "$URL" "$TOKEN" "$EXP_PATH" "$JOBS" "$CONC" > /dev/null
export BAI_ENDPOINT=$URL BAI_TOKEN=$TOKEN BAI_RESOURCE_GROUP=$RG BAI_WORKSPACE=$WS BAI_EXPERIMENT=exp
measure "$BAI" job list -o tsv
LIST_TSV=$WALL
printf "bai job list -o tsv     %6s s  peak RSS %6s MB  (%s lines)\n" "$WALL" "$RSS" "$(wc -l < "$WORK/out")"
measure "$BAI" job list -o table
printf "bai job list -o table   %6s s  peak RSS %6s MB\n" "$WALL" "$RSS"
cat > "$WORK/pages.sh" <<SH
next="$URL$EXP_PATH/jobs?api-version=2018-05-01"
while [ -n "\$next" ]; do
  curl -sf -H "Authorization: Bearer $TOKEN" "\$next" > "$WORK/page.json"
  next=\$(grep -o '"nextLink":"[^"]*"' "$WORK/page.json" | cut -d'"' -f4 | sed 's#\\\\/#/#g' || true)
done
SH
measure bash "$WORK/pages.sh"
printf "curl, page by page      %6s s   ratio bai tsv / curl: %s\n" "$WALL" "$(ratio "$LIST_TSV" "$WALL")"

echo "== bai job show, start to exit (median of 20)"
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for _ in $(seq 20); do
  s=$(date +%s.%N); "$BAI" job show c00001 -o json > /dev/null; e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f\n", e - s }'
done | median > "$WORK/show"
for _ in $(seq 20); do
  s=$(date +%s.%N); "$BAI" -e '' > /dev/null; e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f\n", e - s }'
done | median > "$WORK/empty"
printf "bai job show            %6.1f ms   (bai -e '': %.1f ms)\n" "$(awk '{print $1 * 1000}' "$WORK/show")" "$(awk '{print $1 * 1000}' "$WORK/empty")"

# Shared by the client benchmarks (client.sh, sweep_submit.sh), sourced after
# `cd` to the repository root: a scratch directory removed at exit, one bai
# serve (--slots 0) at a time with a workspace and experiment, and timing.
#   bench_init NAME          WORK=a fresh scratch directory; BAI, SUB, RG, WS
#   start_server DIR EXP     sets SERVER_PID, URL, SOCKET, TOKEN; creates $WS and experiment EXP
#   stop_server
#   measure CMD...           runs CMD under /usr/bin/time: WALL (s), RSS (MB); output in $WORK/out
#   ratio A B                A / B with two decimals
BAI=$PWD/build/bin/bai
SUB=00000000-0000-0000-0000-000000000000
RG=default
WS=ws
SERVER_PID=

bench_init() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/bai-bench-$1.XXXXXX")
  trap bench_cleanup EXIT
}
bench_cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}

start_server() {
  "$BAI" serve --state "$1" --listen 127.0.0.1:0 --slots 0 --retry-after 0 > "$1.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do grep -q "bai serve: ready" "$1.out" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'url=[^ ]*' "$1.out" | cut -d= -f2)
  SOCKET=$(grep -o 'socket=[^ ]*' "$1.out" | cut -d= -f2)
  TOKEN=$(cat "$1/token")
  local ws="$URL/subscriptions/$SUB/resourceGroups/$RG/providers/Microsoft.BatchAI/workspaces/$WS"
  curl -sf -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"location":"local"}' \
    "$ws?api-version=2018-05-01" >/dev/null
  curl -sf -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"properties":{}}' \
    "$ws/experiments/$2?api-version=2018-05-01" >/dev/null
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

measure() {
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" > "$WORK/out" 2>"$WORK/err" || { cat "$WORK/out" "$WORK/err" >&2; return 1; }
  WALL=$(cut -d' ' -f1 "$WORK/time")
  RSS=$(awk '{printf "%.1f", $2/1024}' "$WORK/time")
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

#!/usr/bin/env bash
# Overhead of a trivial job (`true`) in bai serve, from create to seen succeeded
# (the client polls every 1 ms), one job at a time, slots = 2.  With a baseline
# binary, both endpoints run side by side and blocks of ten jobs alternate
# between them (each block after three unmeasured jobs), so that both see the
# same load on a shared machine; the ratio is against the baseline's.  The bare cost of `sh -c true` is measured in the same run.
# Usage: scripts/bench/serve_overhead.sh [BASELINE_BAI] [JOBS=100]
#   BAI=path/to/bai picks the binary measured (default build/bin/bai).
# Needs: build/bin/bai, curl, python3 (standard library).
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${1:-}
JOBS=${2:-100}
BAI=${BAI:-$PWD/build/bin/bai}
for tool in curl python3; do
  command -v $tool >/dev/null || { echo "serve_overhead.sh: $tool is not installed" >&2; exit 2; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bai-bench.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
SUB=00000000-0000-0000-0000-000000000000
EXP="/subscriptions/$SUB/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/experiments/exp"

start_server() { # $1 binary, $2 state dir; prints URL,TOKEN
  "$1" serve --state "$2" --listen 127.0.0.1:0 --slots 2 --retry-after 0 > "$2.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do grep -q "bai serve: ready" "$2.out" 2>/dev/null && break; sleep 0.05; done
  local url token
  url=$(grep -o 'url=[^ ]*' "$2.out" | cut -d= -f2)
  token=$(cat "$2/token")
  curl -sf -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"location":"eastus"}' \
    "$url/subscriptions/$SUB/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws?api-version=2018-05-01" >/dev/null
  curl -sf -X PUT -H "Authorization: Bearer $token" "$url$EXP?api-version=2018-05-01" >/dev/null
  ENDPOINT="$url,$token"
}

start_server "$BAI" "$WORK/new"
ENDPOINTS=("$ENDPOINT")
if [ -n "$BASE" ]; then
  start_server "$BASE" "$WORK/base"
  ENDPOINTS+=("$ENDPOINT")
fi
echo "== trivial-job overhead ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $JOBS jobs per endpoint, alternating blocks of 10)"
python3 - "$EXP" "$JOBS" "${ENDPOINTS[@]}" <<'PY'
import json, statistics, subprocess, sys, time, http.client, urllib.parse
exp, n = sys.argv[1], int(sys.argv[2])
eps = []
for arg in sys.argv[3:]:
    url, token = arg.split(",")
    u = urllib.parse.urlparse(url)
    eps.append((http.client.HTTPConnection(u.hostname, u.port), {"Authorization": "Bearer " + token, "Content-Type": "application/json"}))
body = json.dumps({"properties": {"cluster": {"id": "local"}, "nodeCount": 1, "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
                                  "customToolkitSettings": {"commandLine": "true"}}})
def job(c, h, name):
    t = time.time()
    c.request("PUT", "%s/jobs/%s?api-version=2018-05-01" % (exp, name), body, h); c.getresponse().read()
    accepted = time.time()
    while True:  # a client polling every millisecond
        c.request("GET", "%s/jobs/%s?api-version=2018-05-01" % (exp, name), headers=h)
        j = json.loads(c.getresponse().read())
        if j["properties"]["executionState"] in ("succeeded", "failed"): break
        time.sleep(0.001)
    assert j["properties"]["executionState"] == "succeeded", j
    return (time.time() - t) * 1000, (accepted - t) * 1000
rows = [[] for _ in eps]
BLOCK = 10
for b in range((n + BLOCK - 1) // BLOCK):
    for k, (c, h) in enumerate(eps):
        for i in range(-3, BLOCK):  # three jobs first: the other endpoint's spares settle, this one's are used
            r = job(c, h, "j%d-%d" % (b, i))
            if i >= 0: rows[k].append(r)
t = time.time()
for i in range(n): subprocess.run(["/bin/sh", "-c", "true"])
bare = (time.time() - t) / n * 1000
print("bare sh -c true: %.2f ms" % bare)
p50 = []
for k, r in enumerate(rows):
    total = [x[0] for x in r]
    p50.append(statistics.median(total))
    print("%s: create -> seen succeeded p50 %.2f ms, mean %.2f ms (overhead ~%.2f ms); durable create answered p50 %.2f ms"
          % ("bai" if k == 0 else "baseline", p50[-1], statistics.mean(total), statistics.mean(total) - bare,
             statistics.median(x[1] for x in r)))
if len(p50) > 1: print("ratio of p50s (bai / baseline): %.2f" % (p50[0] / p50[1]))
PY

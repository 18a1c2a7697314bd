#!/usr/bin/env bash
# Benchmarks of bai serve (issue 4), with nginx serving a static JSON body of the
# same size on the same loopback as the practical ceiling, in the same run:
#   1. durable job creates per second (slots = 0, many concurrent clients, wrk)
#   2. GET job requests per second, p50/p99 latency, vs nginx
#   3. listing 100,000 jobs in pages of 1,000; the endpoint's memory with them stored
#   4. end-to-end overhead per trivial job (`true`) from create to succeeded (slots = 2)
# Usage: scripts/bench/serve.sh [JOBS=100000] [SECONDS=5] [CONNECTIONS=64]
# Needs: build/bin/bai, wrk, nginx, curl, python3 (standard library).
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=${1:-100000}
DURATION=${2:-5}
CONNS=${3:-64}
BAI=$PWD/build/bin/bai
for tool in wrk nginx curl python3; do
  command -v $tool >/dev/null || { echo "serve.sh: $tool is not installed (scripts/setup.sh installs it)" >&2; exit 2; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bai-bench.XXXXXX")
SERVER_PID= NGINX_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
SUB=00000000-0000-0000-0000-000000000000

start_server() { # $1 state dir, $2 slots
  "$BAI" serve --state "$1" --listen 127.0.0.1:0 --slots "$2" --retry-after 0 > "$1.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do grep -q "bai serve: ready" "$1.out" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'url=[^ ]*' "$1.out" | cut -d= -f2)
  TOKEN=$(cat "$1/token")
  EXP="/subscriptions/$SUB/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/experiments/exp"
  curl -sf -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"location":"eastus"}' \
    "$URL/subscriptions/$SUB/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws?api-version=2018-05-01" >/dev/null
  curl -sf -X PUT -H "Authorization: Bearer $TOKEN" "$URL$EXP?api-version=2018-05-01" >/dev/null
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
rss_kb() { awk '/VmRSS/{print $2}' /proc/$1/status; }
hwm_kb() { awk '/VmHWM/{print $2}' /proc/$1/status; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wrk_field() { # $1 wrk output file, prints req/s p50 p99 (ms)
  python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v, u): return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p = {k: ms(v, u) for k, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)", t)}
print("%.0f %.3f %.3f" % (rps, p.get("50", 0), p.get("99", 0)))
PY
}

echo "== bai serve benchmark ($(nproc) cores; wrk -t2 -c$CONNS -d${DURATION}s; $JOBS jobs for listing)"
BODY=$WORK/body.json
cat > "$BODY" <<'JSON'
{"properties":{"cluster":{"id":"local"},"nodeCount":1,"stdOutErrPathPrefix":"$AZ_BATCHAI_MOUNT_ROOT/logs","customToolkitSettings":{"commandLine":"python3 train.py --lr 0.01 --batch 64"},"environmentVariables":[{"name":"EPOCHS","value":"10"}],"outputDirectories":[{"id":"MODEL","pathPrefix":"$AZ_BATCHAI_MOUNT_ROOT/models"}]}}
JSON

# ---- 1. durable creates
start_server "$WORK/s1" 0
BAI_TOKEN=$TOKEN BAI_EXP_PATH=$EXP BAI_BODY=$BODY wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency \
  -s scripts/bench/serve_create.wrk.lua "$URL" > "$WORK/create.txt"
read -r CREATE_RPS CREATE_P50 CREATE_P99 < <(wrk_field "$WORK/create.txt")
CREATE_ERR=$(grep -o 'errors=[0-9]*' "$WORK/create.txt" | cut -d= -f2)
echo "creates (durable, synchronous=FULL, group commit): $CREATE_RPS/s  p50 ${CREATE_P50}ms p99 ${CREATE_P99}ms  non-200: $CREATE_ERR"

# ---- 2. GET job vs nginx
JOB=$(curl -sf -H "Authorization: Bearer $TOKEN" "$URL$EXP/jobs?api-version=2018-05-01&maxresults=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"][0]["name"])')
JOB_PATH="$EXP/jobs/$JOB?api-version=2018-05-01"
curl -sf -H "Authorization: Bearer $TOKEN" "$URL$JOB_PATH" > "$WORK/job.json"
BAI_TOKEN=$TOKEN BAI_PATH=$JOB_PATH wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s scripts/bench/serve_get.wrk.lua "$URL" > "$WORK/get.txt"
read -r GET_RPS GET_P50 GET_P99 < <(wrk_field "$WORK/get.txt")
mkdir -p "$WORK/nginx/html" "$WORK/nginx/tmp"
cp "$WORK/job.json" "$WORK/nginx/html/job.json"
NPORT=$(free_port)
cat > "$WORK/nginx/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $WORK/nginx/tmp; proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp; uwsgi_temp_path $WORK/nginx/tmp; scgi_temp_path $WORK/nginx/tmp;
  default_type application/json;
  server { listen 127.0.0.1:$NPORT; root $WORK/nginx/html; keepalive_requests 1000000; } }
CONF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" & NGINX_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$NPORT/job.json" >/dev/null && break; sleep 0.05; done
BAI_PATH=/job.json wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s scripts/bench/serve_get.wrk.lua "http://127.0.0.1:$NPORT" > "$WORK/nginx.txt"
read -r NG_RPS NG_P50 NG_P99 < <(wrk_field "$WORK/nginx.txt")
kill $NGINX_PID; wait $NGINX_PID 2>/dev/null || true; NGINX_PID=
echo "GET one job ($(wc -c < "$WORK/job.json") bytes, cached body): bai serve $GET_RPS/s p50 ${GET_P50}ms p99 ${GET_P99}ms | nginx (1 worker, same body) $NG_RPS/s p50 ${NG_P50}ms p99 ${NG_P99}ms | ratio $(python3 -c "print('%.2f' % ($GET_RPS/$NG_RPS))")"

# ---- 3. list 100,000 jobs, memory
HAVE=$(python3 - "$WORK/create.txt" <<'PY'
import re,sys; print(re.search(r"creates_total=(\d+)", open(sys.argv[1]).read()).group(1))
PY
)
if [ "$HAVE" -lt "$JOBS" ]; then
  BAI_TOKEN=$TOKEN BAI_EXP_PATH=$EXP BAI_BODY=$BODY python3 - "$URL" "$(( JOBS - HAVE ))" <<'PY' > /dev/null
import os, sys, threading, http.client, urllib.parse
url, n = sys.argv[1], int(sys.argv[2])
host = urllib.parse.urlparse(url)
body = open(os.environ["BAI_BODY"], "rb").read()
def worker(k, count):
    c = http.client.HTTPConnection(host.hostname, host.port)
    for i in range(count):
        c.request("PUT", "%s/jobs/fill%d-%d?api-version=2018-05-01" % (os.environ["BAI_EXP_PATH"], k, i), body,
                  {"Authorization": "Bearer " + os.environ["BAI_TOKEN"], "Content-Type": "application/json"})
        c.getresponse().read()
ts = [threading.Thread(target=worker, args=(k, n // 16 + (1 if k < n % 16 else 0))) for k in range(16)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
fi
LIST=$(BAI_TOKEN=$TOKEN python3 - "$URL$EXP/jobs?api-version=2018-05-01&maxresults=1000" <<'PY'
import json, os, sys, time, http.client, urllib.parse
u = urllib.parse.urlparse(sys.argv[1]); c = http.client.HTTPConnection(u.hostname, u.port)
path = u.path + "?" + u.query; n = pages = 0; t = time.time()
while path:
    c.request("GET", path, headers={"Authorization": "Bearer " + os.environ["BAI_TOKEN"]})
    d = json.loads(c.getresponse().read()); n += len(d["value"]); pages += 1
    nl = d.get("nextLink"); path = (urllib.parse.urlparse(nl).path + "?" + urllib.parse.urlparse(nl).query) if nl else None
print("%d %d %.3f" % (n, pages, time.time() - t))
PY
)
read -r LISTED PAGES LIST_S <<< "$LIST"
echo "list: $LISTED jobs in $PAGES pages of 1000 in ${LIST_S}s ($(python3 -c "print('%.0f' % ($LISTED/$LIST_S))") jobs/s)"
FILL=$(( JOBS - HAVE ))
if [ "$FILL" -ge 16000 ]; then
  BAI_TOKEN=$TOKEN BAI_EXP_PATH=$EXP BAI_PER_WORKER=$(( FILL / 16 )) wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency \
    -s scripts/bench/serve_get_random.wrk.lua "$URL" > "$WORK/getr.txt"
  read -r GR_RPS GR_P50 GR_P99 < <(wrk_field "$WORK/getr.txt")
  echo "GET random jobs among $FILL (mostly uncached: SQLite lookups): $GR_RPS/s p50 ${GR_P50}ms p99 ${GR_P99}ms | ratio to nginx $(python3 -c "print('%.2f' % ($GR_RPS/$NG_RPS))")"
fi
echo "memory with $LISTED jobs stored: RSS $(( $(rss_kb $SERVER_PID) / 1024 )) MB (peak $(( $(hwm_kb $SERVER_PID) / 1024 )) MB); database $(du -sm "$WORK/s1" | cut -f1) MB on disk"
stop_server

# ---- 4. per-job overhead, slots = 2
start_server "$WORK/s2" 2
OVER=$(BAI_TOKEN=$TOKEN python3 - "$URL" "$EXP" <<'PY'
import json, os, sys, time, http.client, urllib.parse, subprocess
u = urllib.parse.urlparse(sys.argv[1]); exp = sys.argv[2]
c = http.client.HTTPConnection(u.hostname, u.port)
H = {"Authorization": "Bearer " + os.environ["BAI_TOKEN"], "Content-Type": "application/json"}
body = json.dumps({"properties": {"cluster": {"id": "local"}, "nodeCount": 1, "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
                                  "customToolkitSettings": {"commandLine": "true"}}})
N = 100; lat = []
for i in range(N):
    t = time.time()
    c.request("PUT", "%s/jobs/o%d?api-version=2018-05-01" % (exp, i), body, H); c.getresponse().read()
    while True:
        c.request("GET", "%s/jobs/o%d?api-version=2018-05-01" % (exp, i), headers=H)
        j = json.loads(c.getresponse().read())
        if j["properties"]["executionState"] in ("succeeded", "failed"): break
    lat.append(time.time() - t)
t = time.time()
for i in range(N): subprocess.run(["/bin/sh", "-c", "true"])
bare = (time.time() - t) / N
lat.sort()
print("%.2f %.2f %.2f" % (sum(lat) / N * 1000, lat[N // 2] * 1000, bare * 1000))
PY
)
read -r OV_MEAN OV_P50 OV_BARE <<< "$OVER"
echo "trivial job (true), create -> succeeded, one at a time: mean ${OV_MEAN}ms p50 ${OV_P50}ms; bare sh -c true ${OV_BARE}ms; overhead ~$(python3 -c "print('%.2f' % ($OV_MEAN-$OV_BARE))")ms per job"
THRU=$(BAI_TOKEN=$TOKEN python3 - "$URL" "$EXP" <<'PY'
import json, os, sys, time, threading, http.client, urllib.parse, subprocess
u = urllib.parse.urlparse(sys.argv[1]); exp = sys.argv[2]
H = {"Authorization": "Bearer " + os.environ["BAI_TOKEN"], "Content-Type": "application/json"}
body = json.dumps({"properties": {"cluster": {"id": "local"}, "nodeCount": 1, "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
                                  "customToolkitSettings": {"commandLine": "true"}}})
N = 400
t = time.time()
def submit(k):
    c = http.client.HTTPConnection(u.hostname, u.port)
    for i in range(k, N, 8):
        c.request("PUT", "%s/jobs/t%d?api-version=2018-05-01" % (exp, i), body, H); c.getresponse().read()
ts = [threading.Thread(target=submit, args=(k,)) for k in range(8)]
[x.start() for x in ts]; [x.join() for x in ts]
c = http.client.HTTPConnection(u.hostname, u.port)
while True:
    c.request("GET", "/bai/status", headers=H); st = json.loads(c.getresponse().read())["jobs"]
    if st.get("queued", 0) == 0 and st.get("running", 0) == 0: break
    time.sleep(0.005)
wall = time.time() - t
t = time.time()
subprocess.run("seq %d | xargs -P 2 -n 1 sh -c true" % N, shell=True)
bare = time.time() - t
print("%.0f %.2f %.2f" % (N / wall, wall / N * 1000, (wall - bare) / N * 1000))
PY
)
read -r TH_RATE TH_PER TH_OVER <<< "$THRU"
echo "400 trivial jobs submitted at once, slots = 2: $TH_RATE jobs/s completed, ${TH_PER}ms per job; overhead vs running them with xargs -P2: ${TH_OVER}ms per job"
stop_server

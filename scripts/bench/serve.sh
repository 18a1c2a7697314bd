#!/usr/bin/env bash
# Benchmarks of bai serve (issue 4), with nginx serving a static JSON body of the
# same size on the same loopback as the practical ceiling, in the same run:
#   1. durable job creates per second (slots = 0, many concurrent clients, wrk)
#   2. GET job requests per second, p50/p99 latency, vs nginx
#   3. listing 100,000 jobs in pages of 1,000; GET of random jobs among them
#      (mostly not in the endpoint's body cache) vs nginx; the endpoint's memory
#   4. end-to-end overhead per trivial job (`true`) from create to succeeded (slots = 2)
# The machine is shared: every GET figure is measured ROUNDS times, alternating
# bai serve and nginx run by run, and the ratio printed is the median of the
# rounds' ratios (each bai run against the nginx run right after it).
# Usage: scripts/bench/serve.sh [JOBS=100000] [SECONDS=5] [CONNECTIONS=64] [ROUNDS=3]
#   BAI=path/to/bai picks the binary; SERVE_BENCH=overhead runs only part 4.
# Needs: build/bin/bai, wrk, nginx, curl, python3 (standard library).
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=${1:-100000}
DURATION=${2:-5}
CONNS=${3:-64}
ROUNDS=${4:-3}
BAI=${BAI:-$PWD/build/bin/bai}
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
status_kb() { awk -v k="$2:" '$1 == k {print $2}' /proc/$1/status; } # $1 pid, $2 field
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
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

echo "== bai serve benchmark ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t2 -c$CONNS -d${DURATION}s; $ROUNDS rounds per GET ratio; $JOBS jobs for listing)"
FSYNC=$(python3 - "$WORK" <<'PY'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "fsync-probe"), os.O_WRONLY | os.O_CREAT)
ts = []
for i in range(40):
    os.write(fd, b"x" * 16384)
    t = time.time(); os.fdatasync(fd); ts.append(time.time() - t)
ts.sort(); print("%.2f %.2f" % (ts[20] * 1000, ts[36] * 1000))
PY
)
read -r FSYNC_P50 FSYNC_P90 <<< "$FSYNC"
echo "disk: fdatasync of 16 KiB p50 ${FSYNC_P50}ms p90 ${FSYNC_P90}ms (the floor of a durable create's latency)"
BODY=$WORK/body.json
cat > "$BODY" <<'JSON'
{"properties":{"cluster":{"id":"local"},"nodeCount":1,"stdOutErrPathPrefix":"$AZ_BATCHAI_MOUNT_ROOT/logs","customToolkitSettings":{"commandLine":"python3 train.py --lr 0.01 --batch 64"},"environmentVariables":[{"name":"EPOCHS","value":"10"}],"outputDirectories":[{"id":"MODEL","pathPrefix":"$AZ_BATCHAI_MOUNT_ROOT/models"}]}}
JSON

if [ "${SERVE_BENCH:-all}" != overhead ]; then
# ---- 1. durable creates
start_server "$WORK/s1" 0
BAI_TOKEN=$TOKEN BAI_EXP_PATH=$EXP BAI_BODY=$BODY wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency \
  -s scripts/bench/serve_create.wrk.lua "$URL" > "$WORK/create.txt"
read -r CREATE_RPS CREATE_P50 CREATE_P99 < <(wrk_field "$WORK/create.txt")
CREATE_ERR=$(grep -o 'errors=[0-9]*' "$WORK/create.txt" | cut -d= -f2)
echo "creates (durable: answered once the WAL is fdatasynced; group commit): $CREATE_RPS/s  p50 ${CREATE_P50}ms p99 ${CREATE_P99}ms  non-200: $CREATE_ERR  (goal >= 2000/s)"

# ---- nginx: the same body as a static file, one worker
JOB=$(curl -sf -H "Authorization: Bearer $TOKEN" "$URL$EXP/jobs?api-version=2018-05-01&maxresults=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"][0]["name"])')
JOB_PATH="$EXP/jobs/$JOB?api-version=2018-05-01"
curl -sf -H "Authorization: Bearer $TOKEN" "$URL$JOB_PATH" > "$WORK/job.json"
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

# Alternates bai serve (wrk env and script given) and nginx ROUNDS times.
# Prints: median bai req/s, p50, p99 | median nginx req/s, p50, p99 | median ratio.
versus_nginx() { # $1 label (file prefix), $2 wrk script for bai, then VAR=value... for bai's run
  local label=$1 script=$2; shift 2
  local rates=() ratios=() p50s=() p99s=() nrates=() np50s=() np99s=()
  for r in $(seq "$ROUNDS"); do
    env "$@" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$script" "$URL" > "$WORK/$label-$r.txt"
    read -r rps p50 p99 < <(wrk_field "$WORK/$label-$r.txt")
    BAI_PATH=/job.json wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s scripts/bench/serve_get.wrk.lua \
      "http://127.0.0.1:$NPORT" > "$WORK/$label-nginx-$r.txt"
    read -r nrps np50 np99 < <(wrk_field "$WORK/$label-nginx-$r.txt")
    rates+=("$rps"); p50s+=("$p50"); p99s+=("$p99"); nrates+=("$nrps"); np50s+=("$np50"); np99s+=("$np99")
    ratios+=("$(python3 -c "print($rps/$nrps)")")
  done
  printf '%.0f %.3f %.3f %.0f %.3f %.3f %.2f %s\n' "$(median "${rates[@]}")" "$(median "${p50s[@]}")" \
    "$(median "${p99s[@]}")" "$(median "${nrates[@]}")" "$(median "${np50s[@]}")" "$(median "${np99s[@]}")" \
    "$(median "${ratios[@]}")" "$(printf '%.2f,' "${ratios[@]}" | sed 's/,$//')"
}

# ---- 2. GET one job vs nginx
read -r GET_RPS GET_P50 GET_P99 NG_RPS NG_P50 NG_P99 GET_RATIO GET_RATIOS < <(versus_nginx get scripts/bench/serve_get.wrk.lua \
  BAI_TOKEN="$TOKEN" BAI_PATH="$JOB_PATH")
echo "GET one job ($(wc -c < "$WORK/job.json") bytes, cached body): bai serve $GET_RPS/s p50 ${GET_P50}ms p99 ${GET_P99}ms | nginx (1 worker, same body) $NG_RPS/s p50 ${NG_P50}ms p99 ${NG_P99}ms | ratio $GET_RATIO (rounds: $GET_RATIOS; goal >= 0.5)"

# ---- 3. list 100,000 jobs, GET random ones, memory
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
  read -r GR_RPS GR_P50 GR_P99 NGR_RPS _ _ GR_RATIO GR_RATIOS < <(versus_nginx getr scripts/bench/serve_get_random.wrk.lua \
    BAI_TOKEN="$TOKEN" BAI_EXP_PATH="$EXP" BAI_PER_WORKER=$(( FILL / 16 )))
  echo "GET random jobs among $FILL (mostly not in the body cache): bai serve $GR_RPS/s p50 ${GR_P50}ms p99 ${GR_P99}ms | nginx $NGR_RPS/s | ratio $GR_RATIO (rounds: $GR_RATIOS; goal >= 0.5)"
fi
echo "memory with $LISTED jobs stored: RSS $(( $(status_kb $SERVER_PID VmRSS) / 1024 )) MB (peak $(( $(status_kb $SERVER_PID VmHWM) / 1024 )) MB): private $(( $(status_kb $SERVER_PID RssAnon) / 1024 )) MB, mapped database pages (the OS page cache, shared) $(( $(status_kb $SERVER_PID RssFile) / 1024 )) MB; database $(du -sm "$WORK/s1" | cut -f1) MB on disk"
stop_server
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
fi

# ---- 4. per-job overhead, slots = 2
start_server "$WORK/s2" 2
OVER=$(BAI_TOKEN=$TOKEN python3 - "$URL" "$EXP" <<'PY'
import datetime, json, os, sys, time, http.client, urllib.parse, subprocess
u = urllib.parse.urlparse(sys.argv[1]); exp = sys.argv[2]
c = http.client.HTTPConnection(u.hostname, u.port)
H = {"Authorization": "Bearer " + os.environ["BAI_TOKEN"], "Content-Type": "application/json"}
body = json.dumps({"properties": {"cluster": {"id": "local"}, "nodeCount": 1, "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
                                  "customToolkitSettings": {"commandLine": "true"}}})
def stamp(s): return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
def job(name):
    t = time.time()
    c.request("PUT", "%s/jobs/%s?api-version=2018-05-01" % (exp, name), body, H); c.getresponse().read()
    accepted = time.time()
    while True:  # a client polling every millisecond (a tighter loop would take the job's CPU on 2 cores)
        c.request("GET", "%s/jobs/%s?api-version=2018-05-01" % (exp, name), headers=H)
        j = json.loads(c.getresponse().read())
        if j["properties"]["executionState"] in ("succeeded", "failed"): break
        time.sleep(0.001)
    done = time.time()
    p = j["properties"]; info = p.get("executionInfo", {})
    assert p["executionState"] == "succeeded", j
    # the endpoint's own timestamps (ms): create -> start, start -> recorded end
    return (done - t, accepted - t, done - accepted, stamp(info["startTime"]) - stamp(p["creationTime"]),
            stamp(p["executionStateTransitionTime"]) - stamp(info["startTime"]))
for i in range(5): job("warm%d" % i)
N = 100
rows = [job("o%d" % i) for i in range(N)]
t = time.time()
for i in range(N): subprocess.run(["/bin/sh", "-c", "true"])
bare = (time.time() - t) / N
def mean(k): return sum(r[k] for r in rows) / N * 1000
def p50(k): return sorted(r[k] for r in rows)[N // 2] * 1000
print("%.2f %.2f %.2f %.2f %.2f %.2f %.2f" % (mean(0), p50(0), p50(1), p50(2), p50(3), p50(4), bare * 1000))
PY
)
read -r OV_MEAN OV_P50 OV_PUT OV_ACC OV_START OV_RUN OV_BARE <<< "$OVER"
echo "trivial job (true), create -> succeeded, one at a time (client polls every 1 ms): mean ${OV_MEAN}ms p50 ${OV_P50}ms; bare sh -c true ${OV_BARE}ms; overhead ~$(python3 -c "print('%.2f' % ($OV_MEAN-$OV_BARE))")ms per job (goal < 5 ms)"
echo "  of which (p50): durable create answered ${OV_PUT}ms, then accepted -> seen succeeded ${OV_ACC}ms; endpoint's timestamps: create -> started ${OV_START}ms, started -> succeeded ${OV_RUN}ms"
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

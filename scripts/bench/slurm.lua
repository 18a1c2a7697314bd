-- Benchmark of issue 7: N trivial jobs (`true`) through bai serve's Slurm
-- executor, against the plain tools in the same run (scripts/bench/slurm-baseline.sh:
-- sbatch in a shell loop, and one job array).  Jobs are created over HTTP (16 in
-- flight); "accepted" counts a job once Slurm gave it a job id (sbatch answered),
-- "completed" once bai serve reports it succeeded.  Prints both rates and their
-- ratios to the baseline's.  The executor runs with its default settings.
-- Needs the development Slurm (scripts/slurm/setup.sh) and build/bin/bai.
-- Usage: build/bin/bai scripts/bench/slurm.lua [N=1000]
-- (BAI_BENCH_SLURM_OPTIONS=', submit_parallel = 8' adds options to the cluster's
-- configuration; BAI_BENCH_SKIP_BASELINE=1 skips the baseline, for experiments.)
local http = require "batchai._http"
local proc = require "batchai._proc"
local sys = require "batchai._sys"
local cjson = require "cjson"

local N = math.tointeger(tonumber(arg[1] or "1000"))
assert(N and N > 0, "usage: slurm.lua [N]")
local root = sys.realpath(arg[0]:match("^(.*)/scripts/bench/[^/]+$") or ".")
local bai = root .. "/build/bin/bai"

local read = require("batchai.util").read_file

-- 1. The baseline, same run.
print(("== Slurm executor benchmark: %d trivial jobs"):format(N))
local base = {}
local baseline = os.getenv("BAI_BENCH_SKIP_BASELINE") and "echo sbatch_loop_accepted_per_s=1; echo sbatch_loop_completed_per_s=1; echo array_completed_per_s=1"
  or ("bash %s/scripts/bench/slurm-baseline.sh %d"):format(root, N)
local pipe = assert(io.popen(baseline))
for line in pipe:lines() do
  local k, v = line:match("^([%w_]+)=([%d.]+)$")
  if k then base[k] = tonumber(v) else print(line) end
end
if not pipe:close() or not base.sbatch_loop_accepted_per_s then
  io.stderr:write("slurm.lua: the baseline failed (is Slurm running? scripts/slurm/setup.sh)\n")
  os.exit(1)
end

-- 2. bai serve with a Slurm cluster.
local work = io.popen("mktemp -d ${TMPDIR:-/tmp}/bai-bench-slurm.XXXXXX"):read("l")
local state = work .. "/state"
local lab_conf = (os.getenv("BAI_SLURM_LAB") or "/var/tmp/bai-slurm") .. "/etc/slurm.conf"
local conf = os.getenv("SLURM_CONF") or (sys.stat(lab_conf) and lab_conf) or nil
local cfg = work .. "/serve.lua"
assert(sys.write_file(cfg, ('return { clusters = { slurm = { executor = "slurm" %s } } }\n'):format(
  os.getenv("BAI_BENCH_SLURM_OPTIONS") or "")))
local env = {}
for _, k in ipairs({ "PATH", "HOME", "LANG" }) do
  if os.getenv(k) then env[#env + 1] = k .. "=" .. os.getenv(k) end
end
if conf then env[#env + 1] = "SLURM_CONF=" .. conf end
local out = work .. "/serve.out"
local pid = assert(proc.spawn{ argv = { bai, "serve", "--state", state, "--listen", "127.0.0.1:0", "--config", cfg,
  "--retry-after", "0" }, env = env, stdout = out, stderr = "stdout", parent_death_signal = "TERM" })
local url
for _ = 1, 400 do
  url = (read(out) or ""):match("bai serve: ready [^\n]*url=(%S+)")
  if url then break end
  sys.sleep(0.025)
end
assert(url, "bai serve did not start: " .. (read(out) or ""))
local token = read(state .. "/token"):match("%S+")
local function cleanup()
  proc.kill(pid, "TERM")
  for _ = 1, 500 do
    if proc.reap(pid) then break end
    sys.sleep(0.01)
  end
  -- no job of the benchmark stays in Slurm
  local ids = {}
  for _, d in ipairs(sys.list_dir(state .. "/jobs") or {}) do
    local id = (read(state .. "/jobs/" .. d .. "/slurm_id") or ""):match("%d+")
    if id then ids[#ids + 1] = id end
    if #ids >= 200 then
      os.execute("scancel " .. table.concat(ids, " ") .. " 2>/dev/null")
      ids = {}
    end
  end
  if #ids > 0 then os.execute("scancel " .. table.concat(ids, " ") .. " 2>/dev/null") end
  os.execute("rm -rf '" .. work .. "'")
end

local SUB = "00000000-0000-0000-0000-000000000000"
local ws = ("%s/subscriptions/%s/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws"):format(url, SUB)
local headers = { "Authorization: Bearer " .. token, "Content-Type: application/json" }
local m = http.multi{ max_host_connections = 16 }
local function call(method, u, body)
  m:add(true, { method = method, url = u .. "?api-version=2018-05-01", body = body, headers = headers })
  while true do
    m:perform(0.1)
    local _, status, rbody = m:next()
    if status ~= nil or rbody ~= nil then return status, rbody end
  end
end
assert(call("PUT", ws, '{"location":"local"}') == 200)
assert(call("PUT", ws .. "/experiments/exp", '{"properties":{}}') == 200)
local body = cjson.encode({ properties = { cluster = { id = "slurm" }, nodeCount = 1,
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs", customToolkitSettings = { commandLine = "true" } } })

local t0 = sys.monotime()
local sent, answered, failed_creates, inflight = 0, 0, 0, 0
local accepted_at, created_at
local seen, accepted = {}, 0
local jobs_dir = state .. "/jobs"
local function count_accepted()
  for _, d in ipairs(sys.list_dir(jobs_dir) or {}) do
    if not seen[d] and sys.stat(jobs_dir .. "/" .. d .. "/slurm_id") then
      seen[d] = true
      accepted = accepted + 1
    end
  end
end
local last_check = 0
while answered < N or accepted < N do
  while sent < N and inflight < 16 do
    sent = sent + 1
    inflight = inflight + 1
    m:add(sent, { method = "PUT", url = ("%s/experiments/exp/jobs/j%d?api-version=2018-05-01"):format(ws, sent),
      body = body, headers = headers })
  end
  m:perform(0.01)
  while true do
    local ref, status = m:next()
    if not ref then break end
    inflight = inflight - 1
    answered = answered + 1
    if status ~= 200 then failed_creates = failed_creates + 1 end
  end
  if answered == N and not created_at then created_at = sys.monotime() end
  if sys.monotime() - last_check > 0.1 or answered == N then
    count_accepted()
    last_check = sys.monotime()
  end
  if sys.monotime() - t0 > 600 then break end
end
accepted_at = sys.monotime()

-- completed: /bai/status counts jobs by state
local counts
repeat
  sys.sleep(0.05)
  local status, text = call("GET", url .. "/bai/status")
  counts = status == 200 and cjson.decode(text).jobs or {}
until (counts.succeeded or 0) + (counts.failed or 0) >= N or sys.monotime() - t0 > 900
local done_at = sys.monotime()
cleanup()

local accept_rate = N / (accepted_at - t0)
local complete_rate = N / (done_at - t0)
print(("  bai serve:    created %d over HTTP in %.2f s (%d not 200); accepted by Slurm %d in %.2f s = %.1f jobs/s; "
  .. "completed %d (%d failed) in %.2f s = %.1f jobs/s"):format(N, (created_at or accepted_at) - t0, failed_creates, accepted,
  accepted_at - t0, accept_rate, math.tointeger(counts.succeeded or 0), math.tointeger(counts.failed or 0),
  done_at - t0, complete_rate))
print(("  ratio accepted  bai / sbatch loop: %.2f"):format(accept_rate / base.sbatch_loop_accepted_per_s))
print(("  ratio completed bai / sbatch loop: %.2f   (job array: %.2f)"):format(
  complete_rate / base.sbatch_loop_completed_per_s, complete_rate / base.array_completed_per_s))
print(("bai_accepted_per_s=%.1f"):format(accept_rate))
print(("bai_completed_per_s=%.1f"):format(complete_rate))

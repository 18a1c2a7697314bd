-- Sweeps end to end against a real `bai serve`: submit, watch, results, the
-- best trial, max_running observed on the endpoint, SIGKILL and resume with
-- every trial exactly once, --retry-failed, early stopping, hooks, dry runs,
-- conflicts, and the bai sweep commands.
local T = require "testkit"
local S = require "serve"
local codec = require "batchai.sweep.codec"
local proc = require "batchai._proc"
local sys = require "batchai._sys"

local srv

-- A sweep script: header (experiment, base job) + the given body.
local function script(dir, name, body)
  return T.write(dir .. "/" .. name .. ".lua", [[
local bai = require "batchai"
local S = bai.sweep
local exp = bai.experiment { name = os.getenv("SPEC_EXPERIMENT") or "sweeps" }
local base = bai.JobProperties {
  cluster = { id = "local" }, nodeCount = 1,
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
  customToolkitSettings = { commandLine = "true" },
  outputDirectories = { { id = "METRICS", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/outputs" } },
}
-- A trial that writes metrics.json: loss = (lr - 0.3)^2 + batch / 1000.
local function trial(p, extra)
  return base:with { customToolkitSettings = { commandLine = (extra or "") ..
    "awk -v lr=" .. bai.shell.quote(p.lr) .. " -v b=" .. bai.shell.quote(p.batch or 0) ..
    " 'BEGIN { printf \"{\\\"loss\\\": %.6f}\\n\", (lr - 0.3) ^ 2 + b / 1000 }' > $AZ_BATCHAI_OUTPUT_METRICS/metrics.json" } }
end
]] .. body)
end

local function env_for(dir, extra)
  local env = { BAI_ENDPOINT = srv.url, BAI_TOKEN = srv.token, BAI_SWEEP_DIR = dir .. "/sweeps",
    SPEC_EXPERIMENT = extra and extra.experiment or "sweeps" }
  for k, v in pairs(extra or {}) do if k ~= "experiment" then env[k] = v end end
  return env
end

local function bai_run(dir, args, extra)
  return T.run(args, { env = env_for(dir, extra), cwd = dir, timeout = 120 })
end

-- The experiment's jobs as the endpoint lists them: name -> job (raw JSON).
local function endpoint_jobs(experiment)
  local jobs, count = {}, 0
  local path = ("/subscriptions/%s/resourceGroups/default/providers/Microsoft.BatchAI/workspaces/default/experiments/%s/jobs"):format(S.SUB, experiment)
  local url = path .. "?" .. S.API
  while url do
    local r = srv:request("GET", url)
    if r.status == 404 then return jobs, 0 end
    assert.are.equal(200, r.status, r.body)
    for _, job in ipairs(r.json.value) do
      assert.is_nil(jobs[job.name], "job listed twice: " .. job.name)
      jobs[job.name] = job
      count = count + 1
    end
    url = r.json.nextLink
  end
  return jobs, count
end

local function manifest_of(dir, name)
  return assert(require("batchai.sweep.manifest").load(name, { dir = dir .. "/sweeps" }))
end

-- The environment of a `bai sweep run` started with proc.spawn (T.run's, as a list).
local function spawn_env(dir, extra)
  local envp = {}
  for k, v in pairs(env_for(dir, extra)) do envp[#envp + 1] = k .. "=" .. v end
  for _, k in ipairs { "PATH", "HOME", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS" } do
    if os.getenv(k) then envp[#envp + 1] = k .. "=" .. os.getenv(k) end
  end
  envp[#envp + 1] = "XDG_CONFIG_HOME=" .. dir .. "/config"
  return envp
end

-- SIGKILLs a process and waits until it is gone (its sweep lock with it).
local function kill9(pid)
  proc.kill(pid, "KILL")
  local deadline = sys.monotime() + 30
  while not proc.reap(pid) do
    assert(sys.monotime() < deadline, "process " .. pid .. " still there 30 s after SIGKILL")
    sys.sleep(0.02)
  end
end

-- Waits (up to 60 s) until check() returns true.  (Specs wait for states, never for times.)
local function wait_for(what, check)
  local deadline = sys.monotime() + 60
  while not check() do
    assert(sys.monotime() < deadline, "timed out waiting for " .. what)
    sys.sleep(0.05)
  end
end

-- Runs sweep `name` (experiment `name`) to its end after interrupted runs and
-- checks that each of its n trials has exactly one job, succeeded, with metrics.
local function resumed_once_each(dir, file, name, n)
  local r = bai_run(dir, { "sweep", "run", file }, { experiment = name })
  assert.are.equal(0, r.status, r.stderr)
  assert.are.equal("done\t" .. n .. "\n", r.stdout)
  local jobs, count = endpoint_jobs(name)
  assert.are.equal(n, count)
  local m = manifest_of(dir, name)
  assert.are.same({ total = n, succeeded = n }, m:counts())
  for _, record in ipairs(m:trials()) do
    assert.is_table(jobs[record.name], record.name)
    assert.is_number(record.metrics.loss)
  end
end

-- Epoch seconds of the endpoint's ISO times.
local parse_time = require("batchai.sweep.run").parse_time

setup(function()
  srv = S.start { slots = 4, retry_after = 0 }
  local ws = ("/subscriptions/%s/resourceGroups/default/providers/Microsoft.BatchAI/workspaces/default"):format(S.SUB)
  local r = srv:api("PUT", ws, { location = "local" })
  assert(r.status == 200 or r.status == 201 or r.status == 202, r.body)
  for _, e in ipairs { "grid", "capped", "killed", "interrupted", "gone", "watched", "adopt", "late", "flaky", "stopping", "hooks", "dry", "invalid", "conflict", "cli", "stdout" } do
    r = srv:api("PUT", ws .. "/experiments/" .. e, { properties = {} })
    assert(r.status == 200 or r.status == 201 or r.status == 202, r.body)
  end
end)

teardown(function()
  if srv then srv:stop() end
end)

describe("a sweep against bai serve", function()
  it("runs a grid, collects metrics and finds the best trial", function()
    local dir = T.tmpdir()
    local file = script(dir, "grid", [[
local run = exp:submit(S.grid { lr = { 0.1, 0.3, 0.5 }, batch = { 10, 20 } }, function(p) return trial(p) end,
  { name = "grid", job_name = "lr{lr}-b{batch}", interval = 0.2, progress = false })
assert(run:wait())
local results = run:results()
io.write(results:format("csv"))
print("best " .. results:best("loss").name)
]])
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "grid" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal([[
index,name,state,exit_code,duration,batch,lr,loss
]], r.stdout:match("^[^\n]*\n"))
    assert.truthy(r.stdout:find("\n2,lr0_3-b10,succeeded,0,", 1, true))
    assert.truthy(r.stdout:find(",10,0.3,0.01\n", 1, true))
    assert.truthy(r.stdout:find("\nbest lr0_3-b10\n", 1, true))
    local jobs, count = endpoint_jobs("grid")
    assert.are.equal(6, count)
    assert.is_table(jobs["lr0_5-b20"])
    local m = manifest_of(dir, "grid")
    assert.are.same({ total = 6, succeeded = 6 }, m:counts())
    assert.are.equal(0.01, m:trial("lr0_3-b10").metrics.loss)
  end)

  it("reads metrics from standard output with patterns, also after the script stopped watching", function()
    local dir = T.tmpdir()
    local file = script(dir, "stdout", [[
local run = exp:submit(S.grid { lr = { 0.1, 0.2 } }, function(p)
  return base:with { customToolkitSettings = { commandLine = "echo epoch 1 loss=9; echo epoch 2 loss=" .. (p.lr * 10) .. " acc=0.5" } }
end, { name = "stdout", job_name = "lr{lr}", progress = false, metrics = { stdout = { loss = "loss=(%S+)", acc = "acc=(%S+)" } } })
]])
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "stdout" })
    assert.are.equal(0, r.status, r.stderr)
    wait_for("both jobs to end", function()
      local jobs = endpoint_jobs("stdout")
      return jobs.lr0_1 and jobs.lr0_2 and jobs.lr0_1.properties.executionState == "succeeded"
        and jobs.lr0_2.properties.executionState == "succeeded"
    end)
    r = bai_run(dir, { "sweep", "results", "stdout", "-o", "csv" }, { experiment = "stdout" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^index,name,state,exit_code,duration,lr,acc,loss\n1,lr0_1,succeeded,0,[%d.]+,0.1,0.5,1\n2,lr0_2,succeeded,0,[%d.]+,0.2,0.5,2\n$", r.stdout)
  end)

  it("never has more than max_running of its jobs queued or running on the endpoint", function()
    local dir = T.tmpdir()
    local file = script(dir, "capped", [[
local run = exp:submit(S.grid { lr = S.linspace(0, 1, 12) }, function(p) return trial(p, "sleep 0.3; ") end,
  { name = "capped", job_name = "lr{lr}", max_running = 3, interval = 0.1, progress = false })
assert(run:wait())
]])
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "capped" })
    assert.are.equal(0, r.status, r.stderr)
    local jobs, count = endpoint_jobs("capped")
    assert.are.equal(12, count)
    -- Each job occupies the endpoint from its creation until its end.
    local events = {}
    for _, job in pairs(jobs) do
      local p = job.properties
      events[#events + 1] = { parse_time(p.creationTime), 1 }
      events[#events + 1] = { parse_time(p.executionInfo.endTime), -1 }
    end
    table.sort(events, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
    local live, peak = 0, 0
    for _, e in ipairs(events) do
      live = live + e[2]
      if live > peak then peak = live end
    end
    assert.is_true(peak <= 3, "peak of " .. peak .. " jobs at once")
    assert.is_true(peak >= 2, "the cap was never approached (peak " .. peak .. ")")
  end)

  it("survives SIGKILL at random points: re-run, every trial exists exactly once", function()
    local dir = T.tmpdir()
    local file = script(dir, "killed", [[
local run = exp:submit(S.grid { lr = S.linspace(0, 1, 10), batch = { 1, 2, 3 } }, function(p) return trial(p) end,
  { name = "killed", job_name = "lr{lr}-b{batch}", max_running = 6, concurrency = 4, interval = 0.1, progress = false })
assert(run:wait())
print("done", #run:results())
]])
    local envp = spawn_env(dir, { experiment = "killed" })
    local rng = require("batchai.sweep.sampling").generator(20240501)
    for round = 1, 4 do
      local pid = assert(proc.spawn { argv = { T.bai, "sweep", "run", file }, env = envp, cwd = dir,
        stdout = dir .. "/out" .. round, stderr = "stdout" })
      sys.sleep(0.15 + rng:float() * 0.9)
      kill9(pid)
    end
    resumed_once_each(dir, file, "killed", 30)
  end)

  it("stops on Ctrl-C saying how to resume; re-run, every trial exists exactly once", function()
    local dir = T.tmpdir()
    local file = script(dir, "interrupted", [[
local run = exp:submit(S.grid { lr = S.linspace(0, 1, 8), batch = { 1, 2 } }, function(p) return trial(p, "sleep 0.2; ") end,
  { name = "interrupted", job_name = "lr{lr}-b{batch}", max_running = 4, concurrency = 2, interval = 0.1, progress = false })
assert(run:wait())
print("done", #run:results())
]])
    local envp = spawn_env(dir, { experiment = "interrupted" })
    local function submitted()
      local m = require("batchai.sweep.manifest").load("interrupted", { dir = dir .. "/sweeps" })
      local n = 0
      for _, record in ipairs(m and m:trials() or {}) do if record.state ~= "pending" then n = n + 1 end end
      return n
    end
    local rounds = 0
    for round = 1, 3 do
      local before = submitted()
      if before == 16 then break end
      local out = dir .. "/out" .. round
      local pid = assert(proc.spawn { argv = { T.bai, "sweep", "run", file }, env = envp, cwd = dir,
        stdout = out, stderr = "stdout" })
      wait_for("a trial submitted in round " .. round, function() return submitted() > before or proc.reap(pid) end)
      proc.kill(pid, "INT")
      local status
      wait_for("the interrupted run to end", function() status = proc.reap(pid) return status end)
      if status.code ~= 0 then  -- 0: the sweep ended before the signal came
        rounds = rounds + 1
        assert.are.equal(130, status.code, T.read(out))
        assert.are.equal("bai: interrupted; run the same command again to resume the sweep "
          .. "(the jobs already submitted are adopted, none is submitted twice)\n", T.read(out))
      end
    end
    assert.is_true(rounds >= 1, "no run was interrupted")
    resumed_once_each(dir, file, "interrupted", 16)
  end)

  it("fetches the metrics of trials that ended after their run was killed, once each", function()
    local dir = T.tmpdir()
    local marker = dir .. "/go"
    -- The trials end only once the marker exists: after their run was killed.
    local file = script(dir, "late", ([[
local run = exp:submit(S.grid { lr = { 0.1, 0.2 } }, function(p) return trial(p, "while ! test -e %s; do sleep 0.05; done; ") end,
  { name = "late", job_name = "lr{lr}", interval = 0.1, progress = false })
assert(run:wait())
for row in run:results():rows() do print(row.job, row.state, row.metrics.loss) end
]]):format(T.quote(marker)))
    local pid = assert(proc.spawn { argv = { T.bai, "sweep", "run", file }, env = spawn_env(dir, { experiment = "late" }),
      cwd = dir, stdout = dir .. "/out", stderr = "stdout" })
    local function states()
      local m = require("batchai.sweep.manifest").load("late", { dir = dir .. "/sweeps" })
      local out = {}
      for _, record in ipairs(m and m:trials() or {}) do out[#out + 1] = record.state end
      return table.concat(out, " ")
    end
    wait_for("both trials submitted", function() return states():match("^%a+ %a+$") and not states():find("pending") end)
    kill9(pid)
    assert.matches("^[qr][a-z]+ [qr][a-z]+$", states())
    T.write(marker, "")
    wait_for("both jobs to end", function()
      local jobs = endpoint_jobs("late")
      return jobs.lr0_1 and jobs.lr0_2 and jobs.lr0_1.properties.executionState == "succeeded"
        and jobs.lr0_2.properties.executionState == "succeeded"
    end)
    local log_before = #(T.read(srv.log_path) or "")
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "late" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("lr0_1\tsucceeded\t0.04\nlr0_2\tsucceeded\t0.01\n", r.stdout)
    -- The re-run downloaded each trial's metrics.json once (two fetches of one
    -- trial at once write the same file, and one of them loses its metrics).
    local _, downloads = T.read(srv.log_path):sub(log_before + 1):gsub('"method":"GET","us":%d+,"path":"/files/[^"]*/METRICS/metrics%.json"', "")
    assert.are.equal(2, downloads)
  end)

  it("resubmits only the failed trials with --retry-failed, keeping their history", function()
    local dir = T.tmpdir()
    local marker = dir .. "/fixed"
    local file = script(dir, "flaky", ([[
local run = exp:submit(S.grid { lr = { 0.1, 0.2, 0.3, 0.4 } }, function(p)
  -- Trials with lr >= 0.3 fail until the marker file exists.
  local guard = p.lr >= 0.3 and "test -e %s || exit 3; " or ""
  return trial(p, guard)
end, { name = "flaky", job_name = "lr{lr}", interval = 0.1, progress = false })
assert(run:wait())
for row in run:results():rows() do print(row.job, row.state, row.exit_code, row.attempt) end
]]):format(T.quote(marker)))
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "flaky" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("lr0_1\tsucceeded\t0\t0\nlr0_2\tsucceeded\t0\t0\nlr0_3\tfailed\t3\t0\nlr0_4\tfailed\t3\t0\n", r.stdout)
    -- Running again changes nothing: failed trials stay failed.
    r = bai_run(dir, { "sweep", "run", file }, { experiment = "flaky" })
    assert.are.equal("lr0_1\tsucceeded\t0\t0\nlr0_2\tsucceeded\t0\t0\nlr0_3\tfailed\t3\t0\nlr0_4\tfailed\t3\t0\n", r.stdout)
    T.write(marker, "")
    r = bai_run(dir, { "sweep", "run", file, "--retry-failed" }, { experiment = "flaky" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("lr0_1\tsucceeded\t0\t0\nlr0_2\tsucceeded\t0\t0\nlr0_3-r1\tsucceeded\t0\t1\nlr0_4-r1\tsucceeded\t0\t1\n", r.stdout)
    local jobs, count = endpoint_jobs("flaky")
    assert.are.equal(6, count)
    assert.are.equal("failed", jobs["lr0_3"].properties.executionState)
    assert.are.equal("succeeded", jobs["lr0_3-r1"].properties.executionState)
    local history = manifest_of(dir, "flaky"):trial("lr0_4").history
    assert.are.equal(1, #history)
    assert.are.equal("lr0_4", history[1].job)
    assert.are.equal("failed", history[1].state)
    assert.are.equal(3, history[1].exit_code)
  end)

  it("stops the trials that fall behind, recording why", function()
    local dir = T.tmpdir()
    local file = script(dir, "stopping", [[
-- Each trial reports loss = level / step for 12 steps, 0.25 s apart.
local run = exp:submit(S.grid { level = { 1, 1.1, 1.2, 5 } }, function(p)
  return base:with { customToolkitSettings = { commandLine =
    "for s in 1 2 3 4 5 6 7 8 9 10 11 12; do awk -v s=$s -v l=" .. p.level ..
    " 'BEGIN { printf \"{\\\"step\\\": %d, \\\"loss\\\": %.4f}\\n\", s, l / s }' >> $AZ_BATCHAI_OUTPUT_METRICS/metrics.jsonl; sleep 0.25; done" } }
end, { name = "stopping", job_name = "level{level}", interval = 0.2, progress = false,
  early_stopping = S.bandit { metric = "loss", slack_factor = 0.5, grace = 2 } })
assert(run:wait())
for row in run:results():rows() do print(row.job, row.state, row.note and row.note:match("^stopped: bandit") or "-") end
]])
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "stopping" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("level1\tsucceeded\t-\nlevel1_1\tsucceeded\t-\nlevel1_2\tsucceeded\t-\nlevel5\tstopped\tstopped: bandit\n", r.stdout)
    local record = manifest_of(dir, "stopping"):trial("level5")
    assert.are.equal("bandit", record.stopped.policy)
    assert.matches("^bandit: best loss [%d.]+ by step %d+ is outside the slack of the leader's", record.stopped.reason)
    local jobs = endpoint_jobs("stopping")
    assert.are.equal("failed", jobs.level5.properties.executionState)
  end)

  it("tells plugins of every state change", function()
    local dir = T.tmpdir()
    local log = dir .. "/changes.log"
    T.write(dir .. "/config/bai/plugins/watch.lua", ([[
return { name = "watch", setup = function(bai)
  bai.hook("on_state_change", function(job, new, old)
    local f = io.open(%q, "a"); f:write(job, " ", tostring(old), " -> ", new, "\n"); f:close()
  end)
end }
]]):format(log))
    local file = script(dir, "hooks", [[
local run = exp:submit(S.grid { lr = { 0.1 } }, function(p) return trial(p) end, { name = "hooks", job_name = "lr{lr}", interval = 0.1, progress = false })
assert(run:wait())
]])
    local r = T.run({ "sweep", "run", file }, { env = env_for(dir, { experiment = "hooks" }), cwd = dir, config_home = dir .. "/config", timeout = 60 })
    assert.are.equal(0, r.status, r.stderr)
    local text = T.read(log)
    assert.matches("^lr0_1 nil %-> queued\n", text)
    assert.matches("lr0_1 [%a]+ %-> succeeded\n$", text)
  end)

  it("previews with --dry-run and submits nothing", function()
    local dir = T.tmpdir()
    local file = script(dir, "dry", [[
local run = exp:submit(S.grid { lr = { 0.1, 0.2 }, batch = { 1 } }, function(p) return trial(p) end, { name = "dry", job_name = "lr{lr}" })
assert(run:wait())
print(#run:results(), run:results()[1].state, run.dry_run)
]])
    local r = bai_run(dir, { "sweep", "run", "--dry-run", file }, { experiment = "dry" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal([[
sweep dry: 2 trials in experiment default/default/dry
  #  name   batch   lr
  1  lr0_1      1  0.1
  2  lr0_2      1  0.2

2 jobs valid, all names distinct; nothing submitted (dry run).
2	pending	true
]], r.stdout)
    local _, count = endpoint_jobs("dry")
    assert.are.equal(0, count)
    assert.is_nil(sys.stat(dir .. "/sweeps/dry"))
  end)

  it("stops before submitting anything when a job is invalid", function()
    local dir = T.tmpdir()
    local file = script(dir, "invalid", [[
exp:submit(S.grid { n = { 1, 0 } }, function(p) return base:with { nodeCount = p.n } end, { name = "invalid" })
]])
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "invalid" })
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find('trial 2 {"n":0}: ', 1, true), r.stderr)
    local _, count = endpoint_jobs("invalid")
    assert.are.equal(0, count)
  end)

  it("reports a job that exists with other properties, and a template that changed", function()
    local dir = T.tmpdir()
    local file = script(dir, "conflict", [[
local extra = os.getenv("EXTRA") or ""
local run = exp:submit(S.grid { lr = { 0.1, 0.2 } }, function(p) return trial(p, extra) end,
  { name = "conflict", job_name = "lr{lr}", interval = 0.1, progress = false })
assert(run:wait())
for row in run:results():rows() do print(row.job, row.state) end
]])
    -- Someone else's job already holds the name of trial 2.
    local r = srv:api("PUT", ("/subscriptions/%s/resourceGroups/default/providers/Microsoft.BatchAI/workspaces/default/experiments/conflict/jobs/lr0_2"):format(S.SUB),
      { properties = { cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "/tmp", customToolkitSettings = { commandLine = "echo other" } } })
    assert.is_true(r.status == 200 or r.status == 201 or r.status == 202, r.body)
    r = bai_run(dir, { "sweep", "run", file }, { experiment = "conflict" })
    assert.are.equal(0, r.status, r.stderr)

    assert.are.equal("lr0_1\tsucceeded\nlr0_2\tconflict\n", r.stdout)
    assert.truthy(r.stderr:find("trial 2 lr0_2: conflict", 1, true), r.stderr)
    r = bai_run(dir, { "sweep", "run", file }, { experiment = "conflict", EXTRA = "true; " })
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find("sweep conflict: 2 trials changed since they were submitted (first: trial 1 'lr0_1' now gives a different job); give the sweep a new name, or delete it first (bai sweep delete conflict)", 1, true), r.stderr)
  end)

  it("waits until a deadline, watching with list calls only (no GET per job)", function()
    local dir = T.tmpdir()
    local marker = dir .. "/go"
    local file = script(dir, "watched", ([[
local run = exp:submit(S.grid { lr = { 0.1, 0.2, 0.3 } }, function(p) return trial(p, "while ! test -e %s; do sleep 0.05; done; ") end,
  { name = "watched", job_name = "lr{lr}", interval = 0.1, progress = false })
local ok, err = run:wait { timeout = 0.5 }
print(ok, err)
io.open(%q, "w"):close()
print(run:wait())
print(tostring(run))
]]):format(T.quote(marker), marker))
    local log_before = #(T.read(srv.log_path) or "")
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "watched" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("nil\tsweep watched: 3 of 3 trials still running after 0.5 s\ntrue\n"
      .. "batchai.sweep.Run(watched: 3 trials; 3 succeeded)\n", r.stdout)
    local log = T.read(srv.log_path):sub(log_before + 1)
    local jobs_path = "/experiments/watched/jobs"
    local lists, gets = 0, 0
    for method, path in log:gmatch('"method":"(%u+)","us":%d+,"path":"([^"]*)"') do
      if method == "GET" and path:sub(-#jobs_path) == jobs_path then lists = lists + 1 end
      if method == "GET" and path:find(jobs_path .. "/[^/]+$") then gets = gets + 1 end
    end
    assert.are.equal(0, gets)
    assert.is_true(lists >= 3, "only " .. lists .. " list calls")
  end)

  it("keeps the results of ended trials whose jobs were deleted, noting it, and runs none again", function()
    local dir = T.tmpdir()
    local file = script(dir, "gone", [[
local run = exp:submit(S.grid { lr = { 0.1, 0.2 } }, function(p) return trial(p) end,
  { name = "gone", job_name = "lr{lr}", interval = 0.1, progress = false })
assert(run:wait())
for row in run:results():rows() do print(row.job, row.state, row.metrics.loss, row.note) end
]])
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "gone" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("lr0_1\tsucceeded\t0.04\tnil\nlr0_2\tsucceeded\t0.01\tnil\n", r.stdout)
    local jobs = ("/subscriptions/%s/resourceGroups/default/providers/Microsoft.BatchAI/workspaces/default/experiments/gone/jobs/"):format(S.SUB)
    local d = srv:api("DELETE", jobs .. "lr0_2")
    assert.is_true(d.status == 200 or d.status == 202 or d.status == 204, d.body)
    wait_for("the job deleted", function() return srv:api("GET", jobs .. "lr0_2").status == 404 end)
    r = bai_run(dir, { "sweep", "run", file }, { experiment = "gone" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("lr0_1\tsucceeded\t0.04\tnil\nlr0_2\tsucceeded\t0.01\tjob gone from the endpoint; results kept\n", r.stdout)
    assert.are.equal("sweep gone: the jobs of 1 ended trial are no longer on the endpoint; their results are kept "
      .. "(bai sweep delete gone --keep-jobs starts the sweep over)\n", r.stderr)
    local _, count = endpoint_jobs("gone")
    assert.are.equal(1, count)
  end)

  it("adopts a job that exists with the trial's properties, created outside the sweep", function()
    local dir = T.tmpdir()
    local file = script(dir, "adopt", [[
assert(exp:create_job("lr0_1", trial({ lr = 0.1 }), { wait = false }))
local run = exp:submit(S.grid { lr = { 0.1, 0.2 } }, function(p) return trial(p) end,
  { name = "adopt", job_name = "lr{lr}", interval = 0.1, progress = false })
assert(run:wait())
for row in run:results():rows() do print(row.job, row.state, row.metrics.loss) end
]])
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "adopt" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("lr0_1\tsucceeded\t0.04\nlr0_2\tsucceeded\t0.01\n", r.stdout)
    assert.are.equal("", r.stderr)
    local _, count = endpoint_jobs("adopt")
    assert.are.equal(2, count)
  end)

  it("shows, tabulates, reports, cancels and deletes a sweep by name", function()
    local dir = T.tmpdir()
    local file = script(dir, "cli", [[
local run = exp:submit(S.grid { lr = { 0.1, 0.3 }, batch = { 1 } }, function(p) return trial(p) end,
  { name = "cli", job_name = "lr{lr}", interval = 0.1, progress = false })
assert(run:wait())
local slow = exp:submit(S.grid { n = { 1, 2 } }, function(p) return base:with { customToolkitSettings = { commandLine = "sleep 60; echo " .. p.n } } end,
  { name = "slow", job_name = "slow{n}", interval = 0.1, progress = false })
]])
    local r = bai_run(dir, { "sweep", "run", file }, { experiment = "cli" })
    assert.are.equal(0, r.status, r.stderr)

    r = bai_run(dir, { "sweep", "results", "cli", "-o", "json" }, { experiment = "cli" })
    assert.are.equal(0, r.status, r.stderr)
    local rows = assert(codec.decode(r.stdout))
    assert.are.equal(2, #rows)
    assert.are.equal(0.001, rows[2].metrics.loss)
    assert.are.same({ batch = 1, lr = 0.3 }, rows[2].params)

    r = bai_run(dir, { "sweep", "results", "cli", "--best", "loss", "-o", "csv" }, { experiment = "cli" })
    assert.are.equal("index,name,state,exit_code,duration,batch,lr,loss\n", r.stdout:match("^[^\n]*\n"))
    assert.matches("\n2,lr0_3,succeeded,0,[%d.]+,1,0.3,0.001\n$", r.stdout)

    r = bai_run(dir, { "sweep", "results", "cli", "--best", "los" }, { experiment = "cli" })
    assert.are.equal(1, r.status)
    assert.are.equal("bai: sweep cli: no trial has a numeric metric 'los' (did you mean 'loss'?)\n", r.stderr)
    r = bai_run(dir, { "sweep", "results", "cli", "--sort", "lss", "--no-refresh" }, { experiment = "cli" })
    assert.are.equal(1, r.status)
    assert.are.equal("bai: sweep cli: no column, parameter or metric 'lss' (did you mean 'loss'?)\n", r.stderr)
    r = bai_run(dir, { "sweep", "results", "cli", "--state", "succeded", "--no-refresh" }, { experiment = "cli" })
    assert.are.equal(1, r.status)
    assert.are.equal("bai: sweep cli: no trial state 'succeded' (did you mean 'succeeded'?)\n", r.stderr)
    r = bai_run(dir, { "sweep", "results", "cli", "--sort", "loss", "--desc", "--state", "succeeded", "-o", "csv" }, { experiment = "cli" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^[^\n]*\n1,lr0_1,[^\n]*,0.041\n2,lr0_3,[^\n]*,0.001\n$", r.stdout)

    r = bai_run(dir, { "sweep", "report", "cli" }, { experiment = "cli" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal(dir .. "/sweeps/cli/report.html\n", r.stdout)
    assert.truthy(T.read(dir .. "/sweeps/cli/report.html"):find("loss against lr", 1, true))

    r = bai_run(dir, { "sweep", "status", "slow" }, { experiment = "cli" })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^sweep slow: 2 trials in experiment default/default/cli\n  %d %a+", r.stdout)

    r = bai_run(dir, { "sweep", "cancel", "slow" }, { experiment = "cli" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("sweep slow: terminated 2 jobs\n", r.stdout)

    r = bai_run(dir, { "sweep", "list" }, { experiment = "cli" })
    assert.matches("^sweep +experiment +trials +states\ncli ", r.stdout)

    r = bai_run(dir, { "sweep", "delete", "cli" }, { experiment = "cli" })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("sweep cli: deleted 2 jobs and the manifest\n", r.stdout)
    local jobs = endpoint_jobs("cli")
    assert.is_nil(jobs["lr0_1"])
    assert.is_table(jobs["slow1"])
    r = bai_run(dir, { "sweep", "status", "cli" }, { experiment = "cli" })
    assert.are.equal(1, r.status)
    assert.are.equal(("bai: no sweep named 'cli' in %s/sweeps\n"):format(dir), r.stderr)
    r = bai_run(dir, { "sweep", "delete", "cli" }, { experiment = "cli" })
    assert.are.equal(1, r.status, "deleting a sweep that is not there is an error")
    assert.are.equal(("bai: no sweep named 'cli' in %s/sweeps\n"):format(dir), r.stderr)
    assert.is_nil(require("batchai._sys").stat(dir .. "/sweeps/cli"))
  end)
end)

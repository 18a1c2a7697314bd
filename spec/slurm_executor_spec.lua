-- bai serve's Slurm executor against the development Slurm (scripts/slurm/setup.sh):
-- a custom-toolkit job with the local executor's environment and layout, srun
-- tasks with their ranks, exit codes, terminate, timeout, jobs queued while
-- Slurm holds them, priorities as nice values, and an endpoint restart while
-- Slurm jobs run.  Skipped without Slurm, except under CI.
--
-- Slurm starts batch jobs on a one-second tick: every job of this file is
-- submitted up front (setup) and each test then looks at its own.
local lab = require "slurmlab"
if not lab.up then return lab.skip("bai serve's Slurm executor") end
local S = require "serve"
local T = require "testkit"
local cjson = require "cjson"
local sys = require "batchai._sys"

local job_path = S.job_path
local dir, srv, again
local created = {}

local function props(extra)
  local p = { cluster = { id = "slurm" }, nodeCount = 1, stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
    outputDirectories = { { id = "OUT", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/out" } } }
  for k, v in pairs(extra) do p[k] = v end
  return { properties = p }
end

local function create(server, name, body)
  local r = server:api("PUT", job_path("ws", "exp", name), body)
  assert(r.status == 200, name .. ": " .. tostring(r.status) .. " " .. r.body)
  created[name] = r.json
  return r.json
end

local function out_dir(server, job)
  return server.state_dir .. "/mounts/out/" .. job.properties.jobOutputDirectoryPathSegment
end

local function stdouterr(server, job, file)
  return T.read(server.state_dir .. "/mounts/logs/" .. job.properties.jobOutputDirectoryPathSegment .. "/stdouterr/" .. file)
end

local function state_is(wanted)
  return function(j) return j.properties.executionState == wanted end
end

local function wait_file(path, timeout)
  local deadline = sys.monotime() + (timeout or 20)
  while not sys.stat(path) do
    assert(sys.monotime() < deadline, "no " .. path .. " after " .. (timeout or 20) .. " s")
    sys.sleep(0.02)
  end
end

-- Reports every srun task's variables: a shell "Python script" for pyTorch/tensorFlow settings.
local TASK_PROBE = [[
role=w; case "$*" in *--ps*) role=ps;; esac
idx=${RANK:-${AZ_BATCHAI_TASK_INDEX:-0}}
printf '%s\n' "RANK=$RANK" "LOCAL_RANK=$LOCAL_RANK" "WORLD_SIZE=$WORLD_SIZE" "MASTER_ADDR=$MASTER_ADDR" \
  "MASTER_PORT=$MASTER_PORT" "SLURM_PROCID=$SLURM_PROCID" "SLURM_STEP_ID=$SLURM_STEP_ID" "TASK_INDEX=$AZ_BATCHAI_TASK_INDEX" \
  "PS_HOSTS=$AZ_BATCHAI_PS_HOSTS" "ARGS=$*" > "$AZ_BATCHAI_OUTPUT_OUT/$role$idx.txt"
if [ "$role" = ps ]; then exec sleep 600; fi
if [ -n "$FAIL_RANK" ] && [ "$RANK" = "$FAIL_RANK" ]; then sleep 0.3; exit 7; fi
if [ -n "$FAIL_RANK" ]; then exec sleep 60; fi
]]

setup(function()
  dir = T.tmpdir()
  T.write(dir .. "/probe.sh", TASK_PROBE)
  local function config(extra)
    local c = { clusters = {
      slurm = { executor = "slurm", poll_interval = 0.1, jobs_dir = dir .. "/slurm-jobs" },
      held = { executor = "slurm", poll_interval = 0.1, sbatch_args = { "--hold" } },
      nowhere = { executor = "slurm", poll_interval = 0.1, partition = "no-such-partition" },
      serial = { executor = "slurm", poll_interval = 0.1, submit_parallel = 1 },
    } }
    for k, v in pairs(extra or {}) do c[k] = v end
    return c
  end
  srv = S.start { config = config(), env = { SLURM_CONF = lab.env.SLURM_CONF } }
  -- sbatch as slurmctld answers it under load (slowly) while DIR/slow exists: jobs then wait
  -- for their sbatch when the endpoint dies (a fault the development Slurm cannot produce on demand)
  T.write(dir .. "/bin/sbatch", ("#!/bin/sh\n[ -e %s/slow ] && sleep 0.4\nexec %s \"$@\"\n"):format(dir,
    T.exec({ "sh", "-c", "command -v sbatch" }).stdout:match("%S+")))
  T.exec({ "chmod", "755", dir .. "/bin/sbatch" })
  again = S.start { config = config(), env = { SLURM_CONF = lab.env.SLURM_CONF, PATH = dir .. "/bin:" .. os.getenv("PATH") } }
  srv:make_experiment("ws", "exp")
  again:make_experiment("ws", "exp")

  -- the restart test's jobs first: they wait for files the test creates
  create(again, "survivor", props { customToolkitSettings = { commandLine =
    "touch " .. dir .. "/survivor.started; while [ ! -e " .. dir .. "/go ]; do sleep 0.05; done; echo survived" } })
  create(again, "ends-meanwhile", props { customToolkitSettings = { commandLine =
    "while [ ! -e " .. dir .. "/go ]; do sleep 0.05; done; exit 5" } })
  create(again, "pending", props { cluster = { id = "held" }, customToolkitSettings = { commandLine = "true" } })

  create(srv, "custom", props {
    customToolkitSettings = { commandLine = "echo \"$GREETING from $AZ_BATCHAI_JOB_NAME\"; env | sort > $AZ_BATCHAI_OUTPUT_OUT/env.txt; pwd; "
      .. "touch $AZ_BATCHAI_OUTPUT_OUT/made; "
      .. "cat $AZ_BATCHAI_JOB_TEMP/prepared" },
    jobPreparation = { commandLine = "echo prep-out; echo yes > $AZ_BATCHAI_JOB_TEMP/prepared" },
    environmentVariables = { { name = "GREETING", value = "hello" } },
    secrets = { { name = "TOKEN", value = "s3cret-value" } },
  })
  create(srv, "ranks", props { pyTorchSettings = { pythonInterpreterPath = "/bin/sh",
    pythonScriptFilePath = dir .. "/probe.sh", commandLineArgs = "--lr 0.1", processCount = 3 } })
  create(srv, "tf", props { tensorFlowSettings = { pythonInterpreterPath = "/bin/sh", pythonScriptFilePath = dir .. "/probe.sh",
    workerCount = 2, parameterServerCount = 1, workerCommandLineArgs = "--worker", parameterServerCommandLineArgs = "--ps" } })
  create(srv, "exit3", props { customToolkitSettings = { commandLine = "echo bad >&2; exit 3" } })
  create(srv, "rank-fails", props { environmentVariables = { { name = "FAIL_RANK", value = "1" } },
    pyTorchSettings = { pythonInterpreterPath = "/bin/sh", pythonScriptFilePath = dir .. "/probe.sh", processCount = 3 } })
  create(srv, "terminated", props { customToolkitSettings = { commandLine =
    "sleep 301 & echo $! > " .. dir .. "/pids; echo $$ >> " .. dir .. "/pids; sleep 302" } })
  create(srv, "deleted", props { customToolkitSettings = { commandLine =
    "sleep 303 & echo $! > " .. dir .. "/dpids; echo $$ >> " .. dir .. "/dpids; sleep 304" } })
  create(srv, "timeout", props { constraints = { maxWallClockTime = "PT2S" },
    customToolkitSettings = { commandLine = "sleep 300" } })
  create(srv, "no-partition", props { cluster = { id = "nowhere" }, customToolkitSettings = { commandLine = "true" } })
  create(srv, "two-nodes", props { nodeCount = 2, customToolkitSettings = { commandLine = "true" } })
  create(srv, "held-high", props { cluster = { id = "held" }, schedulingPriority = "high",
    customToolkitSettings = { commandLine = "true" } })
  create(srv, "held-low", props { cluster = { id = "held" }, schedulingPriority = "low",
    customToolkitSettings = { commandLine = "true" } })
end)

-- The job directory of a job: the "slurm" cluster has its own jobs_dir, the others the state directory's.
local function job_dir(server, job)
  local uuid = job.properties.jobOutputDirectoryPathSegment:match("([^/]+)$")
  return (job.properties.cluster.id == "slurm" and dir .. "/slurm-jobs/" or server.state_dir .. "/jobs/") .. uuid
end

teardown(function()
  for _, server in ipairs({ srv, again }) do
    if server then server:stop() end
  end
  -- nothing of this file stays in Slurm (held jobs included)
  local ids = {}
  for _, jobs in ipairs({ dir .. "/slurm-jobs", srv.state_dir .. "/jobs", again.state_dir .. "/jobs" }) do
    for _, name in ipairs(sys.list_dir(jobs) or {}) do
      local id = (T.read(jobs .. "/" .. name .. "/slurm_id") or ""):match("%d+")
      if id then ids[#ids + 1] = id end
    end
  end
  if #ids > 0 then T.exec({ "scancel", table.unpack(ids) }, { env = lab.env, timeout = 30 }) end
end)

describe("bai serve's Slurm executor", function()
  it("runs a custom toolkit job with the local executor's environment, directories and stdout layout", function()
    local j = srv:wait_job("ws", "exp", "custom", nil, 30)
    local p = j.properties
    assert.are.equal("succeeded", p.executionState, cjson.encode(p.executionInfo))
    assert.are.equal(0, p.executionInfo.exitCode)
    assert.is_string(p.executionInfo.startTime)
    assert.is_string(p.executionInfo.endTime)
    local stdout = stdouterr(srv, j, "stdout.txt")
    assert.matches("^hello from custom\n", stdout)
    assert.are.equal("prep-out\n", stdouterr(srv, j, "stdout-job_prep.txt"))
    local env = {}
    for k, v in T.read(out_dir(srv, j) .. "/env.txt"):gmatch("([%w_]+)=([^\n]*)") do env[k] = v end
    local root = srv.state_dir .. "/mounts"
    assert.are.equal(root, env.AZ_BATCHAI_MOUNT_ROOT)
    assert.are.equal(out_dir(srv, j), env.AZ_BATCHAI_OUTPUT_OUT)
    assert.are.equal("s3cret-value", env.TOKEN)
    assert.are.equal("127.0.0.1", env.AZ_BATCHAI_NODE_IP)
    -- the job directory is the cluster's (jobs_dir), and Slurm ran it
    local jd = job_dir(srv, j)
    assert.are.equal(jd .. "/temp", env.AZ_BATCHAI_JOB_TEMP)
    assert.are.equal(env.AZ_BATCHAI_JOB_TEMP .. "\nyes\n", stdout:match("\n(.*)$"))
    assert.matches("^bai%-%x+%-%d+$", env.SLURM_JOB_NAME)
    assert.are.equal(T.read(jd .. "/slurm_id"), env.SLURM_JOB_ID .. "\n")
    assert.is_nil(env.SLURM_JWT)
    assert.is_nil(T.read(jd .. "/plan.json"))
    assert.are.same({ exitCode = 0 }, cjson.decode(T.read(jd .. "/result.json")))
    assert.is_nil(T.read(srv.log_path):find("s3cret-value", 1, true))
    assert.are.equal(420, sys.stat(out_dir(srv, j) .. "/made").mode) -- 0644: umask 022, as on the local executor
  end)

  it("launches processCount srun tasks that see their ranks from Slurm", function()
    local j = srv:wait_job("ws", "exp", "ranks", nil, 30)
    assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
    local port
    for rank = 0, 2 do
      local v = {}
      for k, x in T.read(out_dir(srv, j) .. "/w" .. rank .. ".txt"):gmatch("([%w_]+)=([^\n]*)") do v[k] = x end
      assert.are.equal(tostring(rank), v.RANK)
      assert.are.equal(tostring(rank), v.SLURM_PROCID)
      assert.are.equal(tostring(rank), v.LOCAL_RANK) -- one node: local ranks are the ranks
      assert.are.equal("3", v.WORLD_SIZE)
      assert.are.equal("127.0.0.1", v.MASTER_ADDR)
      assert.are.equal("--lr 0.1", v.ARGS)
      assert.matches("^%d+$", v.SLURM_STEP_ID)
      port = port or v.MASTER_PORT
      assert.are.equal(port, v.MASTER_PORT)
    end
  end)

  it("runs distributed TensorFlow as srun tasks and stops the parameter server when the workers are done", function()
    local j = srv:wait_job("ws", "exp", "tf", nil, 30)
    assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
    local ps = T.read(out_dir(srv, j) .. "/ps0.txt")
    local w1 = T.read(out_dir(srv, j) .. "/w1.txt")
    assert.matches("ARGS=--ps\n", ps, 1, true)
    assert.matches("ARGS=--worker\n", w1, 1, true)
    assert.matches("TASK_INDEX=1\n", w1, 1, true)
    assert.matches("SLURM_PROCID=2\n", w1, 1, true) -- ps is task 0, workers 1 and 2
    assert.matches("PS_HOSTS=127.0.0.1:%d+\n", w1)
  end)

  it("fails a job with its exit code, and a multi-task job with its first failing task's", function()
    local j = srv:wait_job("ws", "exp", "exit3", nil, 30)
    local p = j.properties
    assert.are.equal("failed", p.executionState)
    assert.are.equal(3, p.executionInfo.exitCode)
    assert.are.same({ code = "JobFailed", message = "The job's process ended with exit code 3.",
      details = { { name = "exitCode", value = "3" } } }, p.executionInfo.errors[1])
    assert.are.equal("bad\n", stdouterr(srv, j, "stderr.txt"))
    j = srv:wait_job("ws", "exp", "rank-fails", nil, 30)
    p = j.properties
    assert.are.equal("failed", p.executionState)
    assert.are.equal(7, p.executionInfo.exitCode)
    assert.are.equal("The job's process (process 2 of 3) ended with exit code 7.", p.executionInfo.errors[1].message)
  end)

  it("fails a job sbatch refuses with sbatch's reason", function()
    local j = srv:wait_job("ws", "exp", "no-partition", nil, 20)
    assert.are.equal("failed", j.properties.executionState)
    assert.are.same({ code = "SlurmSubmitFailed", message = "sbatch refused the job: invalid partition specified: "
      .. "no-such-partition; Batch job submission failed: Invalid partition name specified." }, j.properties.executionInfo.errors[1])
    j = srv:wait_job("ws", "exp", "two-nodes", nil, 20) -- the development Slurm has one node
    assert.are.same({ code = "SlurmSubmitFailed", message = "sbatch refused the job: Batch job submission failed: "
      .. "Node count specification invalid." }, j.properties.executionInfo.errors[1])
    assert.is_nil(j.properties.executionInfo.startTime)
    assert.is_nil(T.read(job_dir(srv, j) .. "/plan.json")) -- it holds secrets
  end)

  it("terminates a running job: the Slurm job is cancelled and its processes are gone; its node is listed", function()
    srv:wait_job("ws", "exp", "terminated", state_is("running"), 30)
    wait_file(dir .. "/pids")
    local login = srv:api("POST", job_path("ws", "exp", "terminated") .. "/listRemoteLoginInformation")
    assert.are.equal(200, login.status, login.body)
    assert.are.same({ { nodeId = "localhost", ipAddress = "127.0.0.1", port = 22 } }, login.json.value) -- the lab's node
    local r = srv:api("POST", job_path("ws", "exp", "terminated") .. "/terminate")
    assert.are.equal(202, r.status, r.body)
    local j = srv:wait_job("ws", "exp", "terminated", nil, 20)
    assert.are.equal("failed", j.properties.executionState)
    assert.are.same({ code = "JobTerminated", message = "The job was terminated by the user." }, j.properties.executionInfo.errors[1])
    local id = T.read(job_dir(srv, j) .. "/slurm_id"):match("%d+")
    assert.are.equal("CANCELLED", lab.tool({ "squeue", "--noheader", "--states=all", "--jobs=" .. id, "-O", "State" }))
    for pid in T.read(dir .. "/pids"):gmatch("%d+") do
      local stat = T.read("/proc/" .. pid .. "/stat")
      assert(not stat or stat:match("^%d+ %b() (%u)") == "Z", "process " .. pid .. " of the terminated job still runs")
    end
  end)

  it("deletes a running job: 202, the Slurm job is cancelled, its processes are gone, then the job is", function()
    local running = srv:wait_job("ws", "exp", "deleted", state_is("running"), 30)
    wait_file(dir .. "/dpids")
    local id = T.read(job_dir(srv, running) .. "/slurm_id"):match("%d+")
    local r = srv:api("DELETE", job_path("ws", "exp", "deleted"))
    assert.are.equal(202, r.status, r.body)
    assert.matches("/operationresults/", r.headers["location"])
    local deadline = sys.monotime() + 20
    while srv:api("GET", job_path("ws", "exp", "deleted")).status ~= 404 do
      assert(sys.monotime() < deadline, "the deleted job is still there after 20 s")
      sys.sleep(0.05)
    end
    assert.are.equal(204, srv:request("GET", r.headers["location"]).status)
    assert.are.equal("CANCELLED", lab.tool({ "squeue", "--noheader", "--states=all", "--jobs=" .. id, "-O", "State" }))
    for pid in T.read(dir .. "/dpids"):gmatch("%d+") do
      local stat = T.read("/proc/" .. pid .. "/stat")
      assert(not stat or stat:match("^%d+ %b() (%u)") == "Z", "process " .. pid .. " of the deleted job still runs")
    end
  end)

  it("stops a job at its maxWallClockTime, counted from when Slurm started it", function()
    local j = srv:wait_job("ws", "exp", "timeout", nil, 30)
    local p = j.properties
    assert.are.equal("failed", p.executionState)
    assert.are.same({ code = "JobTimedOut", message = "The job exceeded its maxWallClockTime (PT2S) and was stopped." },
      p.executionInfo.errors[1])
    local parse = require("batchai.sweep.run").parse_time
    local ran = parse(p.executionInfo.endTime) - parse(p.executionInfo.startTime)
    assert(ran >= 1.9 and ran < 6, "the job ran " .. ran .. " s")
  end)

  it("keeps a job queued while Slurm holds it, with its priority as nice, and terminates it there", function()
    local high = srv:api("GET", job_path("ws", "exp", "held-high")).json
    local low = srv:api("GET", job_path("ws", "exp", "held-low")).json
    assert.are.equal("queued", high.properties.executionState)
    for job, nice in pairs({ [high] = "-10000", [low] = "10000" }) do
      local id_file = job_dir(srv, job) .. "/slurm_id"
      wait_file(id_file)
      assert.are.equal("PENDING|" .. nice, lab.tool({ "squeue", "--noheader", "--jobs=" .. T.read(id_file):match("%d+"),
        "-O", "State:0|,Nice:0" }))
    end
    for _, name in ipairs({ "held-high", "held-low" }) do
      local r = srv:api("POST", job_path("ws", "exp", name) .. "/terminate")
      assert.are.equal(202, r.status, r.body)
    end
    for _, name in ipairs({ "held-high", "held-low" }) do
      local j = srv:wait_job("ws", "exp", name, nil, 10)
      assert.are.equal("failed", j.properties.executionState)
      assert.are.equal("JobTerminated", j.properties.executionInfo.errors[1].code)
      assert.is_nil(j.properties.executionInfo.startTime)
    end
    assert.are.equal("queued", low.properties.executionState)
  end)

  it("re-attaches to its Slurm jobs after a restart, including one that ended meanwhile", function()
    again:wait_job("ws", "exp", "survivor", state_is("running"), 30)
    again:wait_job("ws", "exp", "ends-meanwhile", state_is("running"), 30)
    local before = again:api("GET", job_path("ws", "exp", "survivor")).json
    -- jobs still waiting for their sbatch (one at a time, slowly) when the endpoint dies
    T.write(dir .. "/slow", "")
    for i = 1, 12 do
      create(again, "late" .. i, props { cluster = { id = "serial" }, customToolkitSettings = { commandLine = "echo late" } })
    end
    again:kill9()
    os.remove(dir .. "/slow")
    sys.sleep(0.5) -- the sbatch running at the kill answers to nobody
    local unsubmitted = 0
    for i = 1, 12 do
      if not T.read(job_dir(again, created["late" .. i]) .. "/slurm_id") then unsubmitted = unsubmitted + 1 end
    end
    assert(unsubmitted >= 2, "only " .. unsubmitted .. " jobs were left without a Slurm job id")
    T.write(dir .. "/go", "")
    -- the second job ends while no endpoint watches
    wait_file(job_dir(again, created["ends-meanwhile"]) .. "/result.json")
    again:restart()
    local j = again:wait_job("ws", "exp", "survivor", nil, 30)
    assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
    assert.are.equal(before.properties.executionInfo.startTime, j.properties.executionInfo.startTime)
    assert.are.equal("survived\n", stdouterr(again, j, "stdout.txt"))
    j = again:wait_job("ws", "exp", "ends-meanwhile", nil, 30)
    assert.are.equal("failed", j.properties.executionState)
    assert.are.equal(5, j.properties.executionInfo.exitCode)
    -- every late job ran, exactly once: submitted before the kill, or found unsubmitted and submitted then
    local names = {}
    for i = 1, 12 do
      j = again:wait_job("ws", "exp", "late" .. i, nil, 30)
      assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
      local jd = job_dir(again, j)
      names[#names + 1] = lab.tool({ "squeue", "--noheader", "--states=all", "--jobs=" .. T.read(jd .. "/slurm_id"):match("%d+"),
        "-O", "Name:0" })
    end
    local prefix = names[1]:match("^(bai%-%x+%-)")
    local slurm_jobs = lab.jobs(prefix)
    for _, name in ipairs(names) do assert.are.equal(1, slurm_jobs[name].count, name) end
    -- a job Slurm still holds stays queued, and terminating it still cancels it
    assert.are.equal("queued", again:api("GET", job_path("ws", "exp", "pending")).json.properties.executionState)
    assert.are.equal(202, again:api("POST", job_path("ws", "exp", "pending") .. "/terminate").status)
    j = again:wait_job("ws", "exp", "pending", nil, 10)
    assert.are.equal("JobTerminated", j.properties.executionInfo.errors[1].code)
  end)
end)

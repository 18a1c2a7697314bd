-- bai serve runs jobs for real: toolkits, processes, environment, directories,
-- preparation, timeouts, terminate, output files and downloads.
local S = require "serve"
local T = require "testkit"
local cjson = require "cjson"
local sys = require "batchai._sys"
local proc = require "batchai._proc"

local job_path = S.job_path

local function props(extra)
  local p = { cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs" }
  for k, v in pairs(extra) do p[k] = v end
  return { properties = p }
end

-- A Python standard-library program that writes the variables it was given
-- as JSON to $AZ_BATCHAI_OUTPUT_OUT/<role><index>.json.  Each file appears
-- whole (written aside, then renamed): a TensorFlow worker takes the parameter
-- server's file as its sign of life, and the server is stopped as soon as the
-- workers are done, so a file that existed before it was complete could stay
-- empty.
local ENV_PROBE = [[
import json, os, sys
keys = ["RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "AZ_BATCHAI_TASK_INDEX", "TF_CONFIG",
        "AZ_BATCHAI_PS_HOSTS", "AZ_BATCHAI_WORKER_HOSTS", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"]
env = {k: os.environ.get(k) for k in keys}
env["argv"] = sys.argv[1:]
role = "ps" if "--ps" in sys.argv else "w"
idx = os.environ.get("RANK") or os.environ.get("AZ_BATCHAI_TASK_INDEX") or os.environ.get("OMPI_COMM_WORLD_RANK") or "0"
out = os.path.join(os.environ["AZ_BATCHAI_OUTPUT_OUT"], role + idx + ".json")
with open(out + ".tmp", "w") as f:
    json.dump(env, f)
os.replace(out + ".tmp", out)
import time
if role == "ps":
    time.sleep(600)
elif os.environ.get("AZ_BATCHAI_PS_HOSTS"):
    # a worker: wait until the parameter server has written its file
    deadline = time.time() + 20
    while not os.path.exists(os.path.join(os.environ["AZ_BATCHAI_OUTPUT_OUT"], "ps0.json")) and time.time() < deadline:
        time.sleep(0.01)
]]

describe("bai serve running jobs", function()
  local srv, dir
  setup(function()
    dir = T.tmpdir()
    T.write(dir .. "/probe.py", ENV_PROBE)
    srv = S.start{ slots = 4, config = { mounts = { shared = dir } } }
    srv:make_experiment("ws", "exp")
  end)
  teardown(function() srv:stop() end)

  local function create(name, body)
    local r = srv:api("PUT", job_path("ws", "exp", name), body)
    assert.are.equal(200, r.status, r.body)
    return r.json
  end

  local function run(name, body, timeout)
    create(name, body)
    return srv:wait_job("ws", "exp", name, nil, timeout)
  end

  local function run_in(ws, exp, name, body)
    local r = srv:api("PUT", job_path(ws, exp, name), body)
    assert.are.equal(200, r.status, r.body)
    return srv:wait_job(ws, exp, name)
  end

  local function out_dir(job)
    return srv.state_dir .. "/mounts/out/" .. job.properties.jobOutputDirectoryPathSegment
  end

  local function stdouterr(job, file)
    return T.read(srv.state_dir .. "/mounts/logs/" .. job.properties.jobOutputDirectoryPathSegment .. "/stdouterr/" .. file)
  end

  local OUT = { { id = "OUT", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/out" } }

  it("runs a custom toolkit command line in a shell, with the Batch AI environment and directories", function()
    local j = run("custom", props({
      customToolkitSettings = { commandLine = "echo \"$GREETING from $AZ_BATCHAI_JOB_NAME\"; env | sort > $AZ_BATCHAI_OUTPUT_OUT/env.txt; pwd" },
      environmentVariables = { { name = "GREETING", value = "hello" } },
      secrets = { { name = "TOKEN", value = "s3cret-value" } },
      inputDirectories = { { id = "DATA", path = "$AZ_BATCHAI_MOUNT_ROOT/data" } },
      outputDirectories = OUT,
    }))
    local p = j.properties
    assert.are.equal("succeeded", p.executionState)
    assert.are.equal(0, p.executionInfo.exitCode)
    assert.is_string(p.executionInfo.startTime)
    assert.is_string(p.executionInfo.endTime)
    local segment = p.jobOutputDirectoryPathSegment
    local stdout = stdouterr(j, "stdout.txt")
    assert.matches("^hello from custom\n", stdout)
    local env = {}
    for k, v in T.read(out_dir(j) .. "/env.txt"):gmatch("([%w_]+)=([^\n]*)") do env[k] = v end
    local root = srv.state_dir .. "/mounts"
    assert.are.equal(root, env.AZ_BATCHAI_MOUNT_ROOT)
    assert.are.equal(out_dir(j), env.AZ_BATCHAI_OUTPUT_OUT)
    assert.are.equal(root .. "/data", env.AZ_BATCHAI_INPUT_DATA)
    assert.are.equal(root .. "/logs/" .. segment .. "/stdouterr", env.AZ_BATCHAI_STDOUTERR_DIR)
    assert.are.equal("s3cret-value", env.TOKEN)
    assert.are.equal("0", env.AZ_BATCHAI_NUM_GPUS)
    local names = {}
    for k in pairs(env) do if k:find("^AZ_BATCHAI_") then names[#names + 1] = k end end
    table.sort(names)
    assert.are.same({ -- the set `bai help serve` documents
      "AZ_BATCHAI_INPUT_DATA", "AZ_BATCHAI_JOB_MASTER_NODE_IP", "AZ_BATCHAI_JOB_MOUNT_ROOT", "AZ_BATCHAI_JOB_NAME",
      "AZ_BATCHAI_JOB_TEMP", "AZ_BATCHAI_JOB_TEMP_DIR", "AZ_BATCHAI_MOUNT_ROOT", "AZ_BATCHAI_MPI_HOST_FILE",
      "AZ_BATCHAI_NODE_IP", "AZ_BATCHAI_NUM_GPUS", "AZ_BATCHAI_OUTPUT_OUT", "AZ_BATCHAI_SHARED_JOB_TEMP",
      "AZ_BATCHAI_STDOUTERR_DIR" }, names)
    for _, k in ipairs({ "AZ_BATCHAI_JOB_MOUNT_ROOT", "AZ_BATCHAI_JOB_TEMP", "AZ_BATCHAI_SHARED_JOB_TEMP" }) do
      assert.are.equal("directory", sys.stat(env[k]).type)
    end
    assert.are.equal(env.AZ_BATCHAI_JOB_TEMP .. "\n", stdout:match("\n(.*)$"))
    assert.is_nil(env.BAI_SPEC_TMP)
    assert.is_nil(T.read(srv.log_path):find("s3cret-value", 1, true))
  end)

  it("fails a job with its exit code and an error entry", function()
    local j = run("exit3", props({ customToolkitSettings = { commandLine = "echo bad >&2; exit 3" } }))
    local p = j.properties
    assert.are.equal("failed", p.executionState)
    assert.are.equal(3, p.executionInfo.exitCode)
    assert.are.equal("JobFailed", p.executionInfo.errors[1].code)
    assert.are.equal("The job's process ended with exit code 3.", p.executionInfo.errors[1].message)
    assert.are.equal("bad\n", stdouterr(j, "stderr.txt"))
  end)

  it("stops what a finished job left running in the background", function()
    local j = run("leftover", props({ outputDirectories = OUT,
      customToolkitSettings = { commandLine = "sleep 300 & echo $! > $AZ_BATCHAI_OUTPUT_OUT/bg.pid" } }))
    assert.are.equal("succeeded", j.properties.executionState)
    local pid = math.tointeger(tonumber(T.read(out_dir(j) .. "/bg.pid")))
    local function alive() -- (a zombie is gone)
      local stat = T.read("/proc/" .. pid .. "/stat")
      return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
    end
    local deadline = sys.monotime() + 5
    while alive() and sys.monotime() < deadline do sys.sleep(0.01) end
    assert.is_false(alive())
  end)

  it("runs jobPreparation first, its output apart, and fails the job when it fails", function()
    local j = run("prep-ok", props({ jobPreparation = { commandLine = "echo prepared > $AZ_BATCHAI_JOB_TEMP/p; echo prep-out" },
      customToolkitSettings = { commandLine = "cat $AZ_BATCHAI_JOB_TEMP/p" } }))
    assert.are.equal("succeeded", j.properties.executionState)
    assert.are.equal("prepared\n", stdouterr(j, "stdout.txt"))
    assert.are.equal("prep-out\n", stdouterr(j, "stdout-job_prep.txt"))
    j = run("prep-bad", props({ jobPreparation = { commandLine = "exit 7" },
      customToolkitSettings = { commandLine = "echo never" } }))
    assert.are.equal("failed", j.properties.executionState)
    assert.are.equal(7, j.properties.executionInfo.exitCode)
    assert.are.equal("JobPreparationFailed", j.properties.executionInfo.errors[1].code)
    assert.is_nil(stdouterr(j, "stdout.txt"))
  end)

  it("starts PyTorch with processCount processes and the rendezvous variables", function()
    local j = run("torch", props({ nodeCount = 1, outputDirectories = OUT,
      pyTorchSettings = { pythonScriptFilePath = dir .. "/probe.py", commandLineArgs = "--lr 0.1", processCount = 3 } }))
    assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
    local ranks = {}
    for r = 0, 2 do
      local e = cjson.decode(T.read(out_dir(j) .. "/w" .. r .. ".json"))
      assert.are.equal(tostring(r), e.RANK)
      assert.are.equal("3", e.WORLD_SIZE)
      assert.are.equal("127.0.0.1", e.MASTER_ADDR)
      assert.matches("^%d+$", e.MASTER_PORT)
      assert.are.same({ "--lr", "0.1" }, e.argv)
      ranks[#ranks + 1] = e.MASTER_PORT
    end
    assert.are.equal(ranks[1], ranks[3])
  end)

  it("starts distributed TensorFlow: parameter servers and workers with their own args, TF_CONFIG; stops the servers", function()
    local j = run("tf", props({ nodeCount = 2, outputDirectories = OUT,
      tensorFlowSettings = { pythonScriptFilePath = dir .. "/probe.py", workerCount = 2, parameterServerCount = 1,
        workerCommandLineArgs = "--worker", parameterServerCommandLineArgs = "--ps" } }))
    assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
    local ps = cjson.decode(T.read(out_dir(j) .. "/ps0.json"))
    local w1 = cjson.decode(T.read(out_dir(j) .. "/w1.json"))
    assert.are.same({ "--ps" }, ps.argv)
    assert.are.same({ "--worker" }, w1.argv)
    assert.are.equal("1", w1.AZ_BATCHAI_TASK_INDEX)
    local tf = cjson.decode(w1.TF_CONFIG)
    assert.are.same({ type = "worker", index = 1 }, tf.task)
    assert.are.equal(1, #tf.cluster.ps)
    assert.are.equal(2, #tf.cluster.worker)
    assert.are.equal(w1.AZ_BATCHAI_PS_HOSTS, table.concat(tf.cluster.ps, ","))
    assert.are.equal(w1.AZ_BATCHAI_WORKER_HOSTS, table.concat(tf.cluster.worker, ","))
  end)

  it("runs single-process Python toolkits (Caffe2, CNTK Python (the default language), Caffe script, TensorFlow master)", function()
    for name, settings in pairs({
      caffe2 = { caffe2Settings = { pythonScriptFilePath = dir .. "/probe.py", commandLineArgs = "c2" } },
      cntkpy = { cntkSettings = { languageType = "Python", pythonScriptFilePath = dir .. "/probe.py", commandLineArgs = "cn" } },
      cntkdefault = { cntkSettings = { pythonScriptFilePath = dir .. "/probe.py", commandLineArgs = "cd" } }, -- languageType defaults to Python
      caffepy = { caffeSettings = { pythonScriptFilePath = dir .. "/probe.py", commandLineArgs = "cf" } },
      tfsingle = { tensorFlowSettings = { pythonScriptFilePath = dir .. "/probe.py", masterCommandLineArgs = "m" } },
    }) do
      settings.outputDirectories = OUT
      local j = run(name, props(settings))
      assert.are.equal("succeeded", j.properties.executionState, name .. " " .. cjson.encode(j.properties.executionInfo))
      local e = cjson.decode(T.read(out_dir(j) .. "/w0.json"))
      assert.are.equal(1, #e.argv)
    end
  end)

  it("fails tools that are not installed at start, saying which", function()
    local j = run("caffecfg", props({ caffeSettings = { configFilePath = "/x/solver.prototxt" } }))
    assert.are.equal("failed", j.properties.executionState)
    assert.are.same({ code = "ToolNotFound", message = "'caffe' is not installed on this machine (needed by "
      .. "caffeSettings.configFilePath)." }, j.properties.executionInfo.errors[1])
    assert.is_nil(j.properties.executionInfo.startTime)
  end)

  it("runs CNTK BrainScript and Caffe configurations with their tools, found on the job's PATH", function()
    local bin = T.tmpdir()
    for _, tool in ipairs({ "cntk", "caffe" }) do
      sys.write_file(bin .. "/" .. tool, ("#!/bin/sh\nprintf '%%s\\n' %s \"$@\" > \"$AZ_BATCHAI_OUTPUT_OUT/%s.argv\"\n"):format(tool, tool), 448)
    end
    local path = { { name = "PATH", value = bin .. ":/usr/bin:/bin" } }
    local j = run("brainscript", props({ outputDirectories = OUT, environmentVariables = path,
      cntkSettings = { languageType = "BrainScript", configFilePath = "/cfg/net.cntk", commandLineArgs = "a=1 b=2" } }))
    assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
    assert.are.equal("cntk\nconfigFile=/cfg/net.cntk\na=1\nb=2\n", T.read(out_dir(j) .. "/cntk.argv"))
    j = run("caffecfg2", props({ outputDirectories = OUT, environmentVariables = path,
      caffeSettings = { configFilePath = "/cfg/solver.prototxt", commandLineArgs = "--gpu=-1" } }))
    assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
    assert.are.equal("caffe\ntrain\n--solver=/cfg/solver.prototxt\n--gpu=-1\n", T.read(out_dir(j) .. "/caffe.argv"))
  end)

  it("fails containerSettings at start with the reason (no container runtime here)", function()
    local j = run("container", props({ customToolkitSettings = { commandLine = "true" },
      containerSettings = { imageSourceRegistry = { image = "ubuntu" } } }))
    assert.are.equal("failed", j.properties.executionState)
    assert.are.equal("ContainerNotSupported", j.properties.executionInfo.errors[1].code)
  end)

  it("maps configured mounts under $AZ_BATCHAI_JOB_MOUNT_ROOT and fails unconfigured ones", function()
    T.write(dir .. "/shared-file.txt", "from the share")
    local j = run("mounted", props({ customToolkitSettings = { commandLine = "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/share/shared-file.txt" },
      mountVolumes = { azureFileShares = { { accountName = "acct", azureFileUrl = "https://acct.file.core.windows.net/shared",
        credentials = { accountKey = "key" }, relativeMountPath = "shared" } },
        unmanagedFileSystems = { { mountCommand = "ln -sfn " .. dir .. " ", relativeMountPath = "x" } } } }))
    -- the unmanaged mount's command gets the mount path appended
    assert.are.equal("failed", j.properties.executionState)
    j = run("mounted2", props({ customToolkitSettings = { commandLine = "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/shared/shared-file.txt" },
      mountVolumes = { azureFileShares = { { accountName = "acct", azureFileUrl = "https://acct.file.core.windows.net/shared",
        credentials = { accountKey = "key" }, relativeMountPath = "shared" } } } }))
    assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
    assert.are.equal("from the share", stdouterr(j, "stdout.txt"))
    j = run("unmounted", props({ customToolkitSettings = { commandLine = "true" },
      mountVolumes = { azureBlobFileSystems = { { accountName = "acct", containerName = "c",
        credentials = { accountKey = "key" }, relativeMountPath = "blob" } } } }))
    assert.are.equal("MountNotConfigured", j.properties.executionInfo.errors[1].code)
  end)

  it("enforces maxWallClockTime: the job fails with JobTimedOut", function()
    local j = run("slow", props({ customToolkitSettings = { commandLine = "sleep 30" },
      constraints = { maxWallClockTime = "PT1S" } }))
    assert.are.equal("failed", j.properties.executionState)
    assert.are.equal("JobTimedOut", j.properties.executionInfo.errors[1].code)
  end)

  it("terminates the whole process tree: 202 with Location, terminating, then failed JobTerminated; lists its node meanwhile", function()
    create("tree", props({ customToolkitSettings = {
      commandLine = "(sleep 300 & echo $! > $AZ_BATCHAI_JOB_TEMP/child.pid; wait) & sleep 300; wait" } }))
    local j = srv:wait_job("ws", "exp", "tree", function(x) return x.properties.executionState == "running" end)
    local login = srv:api("POST", job_path("ws", "exp", "tree") .. "/listRemoteLoginInformation")
    assert.are.equal(200, login.status, login.body)
    assert.are.same({ { nodeId = sys.hostname(), ipAddress = "127.0.0.1", port = 22 } }, login.json.value)
    -- the shell creates child.pid before it writes the pid in it: wait for the pid
    local child
    local deadline = sys.monotime() + 10
    repeat
      sys.sleep(0.02)
      for _, name in ipairs(sys.list_dir(srv.state_dir .. "/jobs") or {}) do
        local pid = (T.read(srv.state_dir .. "/jobs/" .. name .. "/temp/child.pid") or ""):match("^(%d+)\n")
        if pid then child = math.tointeger(tonumber(pid)) end
      end
    until child or sys.monotime() > deadline
    assert.is_string(proc.start_time(child))
    local r = srv:api("POST", job_path("ws", "exp", "tree") .. "/terminate")
    assert.are.equal(202, r.status)
    assert.matches("/operationresults/", r.headers["location"])
    assert.matches("/operationstatuses/", r.headers["azure-asyncoperation"])
    assert.are.equal("0", r.headers["retry-after"])
    j = srv:wait_job("ws", "exp", "tree")
    assert.are.equal("failed", j.properties.executionState)
    assert.are.equal("JobTerminated", j.properties.executionInfo.errors[1].code)
    local gone_by = sys.monotime() + 5
    while proc.start_time(child) and sys.monotime() < gone_by do sys.sleep(0.02) end
    assert.is_nil(proc.start_time(child)) -- gone (or a zombie nobody reaped yet)
    local op = srv:request("GET", r.headers["azure-asyncoperation"])
    assert.are.equal("Succeeded", op.json.status)
    local res = srv:request("GET", r.headers["location"])
    assert.are.equal(200, res.status)
  end)

  it("deletes a running job asynchronously (202), stopping it", function()
    create("victim", props({ customToolkitSettings = { commandLine = "sleep 300" } }))
    srv:wait_job("ws", "exp", "victim", function(x) return x.properties.executionState == "running" end)
    local r = srv:api("DELETE", job_path("ws", "exp", "victim"))
    assert.are.equal(202, r.status)
    local deadline = sys.monotime() + 10
    local status
    repeat
      sys.sleep(0.02)
      status = srv:request("GET", r.headers["location"]).status
    until status ~= 202 or sys.monotime() > deadline
    assert.are.equal(204, status)
    assert.are.equal(404, srv:api("GET", job_path("ws", "exp", "victim")).status)
  end)

  it("deletes an experiment with a running job asynchronously, cascading to its jobs", function()
    srv:make_experiment("ws", "doomed")
    -- it ignores SIGTERM: it goes only with the SIGKILL after the grace period (1 s here)
    assert.are.equal(200, srv:api("PUT", job_path("ws", "doomed", "runs"), props({ customToolkitSettings = {
      commandLine = "trap '' TERM; while true; do sleep 0.05; done" } })).status)
    assert.are.equal(200, srv:api("PUT", job_path("ws", "doomed", "done"), props({ customToolkitSettings = { commandLine = "true" } })).status)
    srv:wait_job("ws", "doomed", "runs", function(x) return x.properties.executionState == "running" end)
    local r = srv:api("DELETE", S.exp_path("ws", "doomed"))
    assert.are.equal(202, r.status)
    local e = srv:api("GET", S.exp_path("ws", "doomed"))
    assert.are.equal("deleting", e.json.properties.provisioningState)
    assert.are.equal(409, srv:api("PUT", job_path("ws", "doomed", "late"), props({ customToolkitSettings = { commandLine = "true" } })).status)
    local deadline = sys.monotime() + 10
    local status
    repeat
      sys.sleep(0.02)
      status = srv:request("GET", r.headers["location"]).status
    until status ~= 202 or sys.monotime() > deadline
    assert.are.equal(204, srv:request("GET", r.headers["location"]).status)
    assert.are.equal("Succeeded", srv:request("GET", r.headers["azure-asyncoperation"]).json.status)
    assert.are.equal(404, srv:api("GET", S.exp_path("ws", "doomed")).status)
    assert.are.equal(404, srv:api("GET", job_path("ws", "doomed", "done")).status)
  end)

  it("deletes a workspace holding only finished jobs at once (200), with its experiments and jobs", function()
    srv:make_experiment("gone", "e1")
    local j = run_in("gone", "e1", "quick", props({ customToolkitSettings = { commandLine = "true" } }))
    assert.are.equal("succeeded", j.properties.executionState)
    local r = srv:api("DELETE", S.ws_path("gone"))
    assert.are.equal(200, r.status)
    assert.are.equal(404, srv:api("GET", S.ws_path("gone")).status)
    assert.are.equal(404, srv:api("GET", S.exp_path("gone", "e1")).status)
    assert.are.equal(204, srv:api("DELETE", S.ws_path("gone")).status)
  end)

  it("lists output files with download URLs that serve ranges and expire", function()
    local j = run("files", props({ outputDirectories = OUT, customToolkitSettings = {
      commandLine = "printf 0123456789 > $AZ_BATCHAI_OUTPUT_OUT/digits.txt; mkdir $AZ_BATCHAI_OUTPUT_OUT/sub; echo x > $AZ_BATCHAI_OUTPUT_OUT/sub/a.txt" } }))
    assert.are.equal("succeeded", j.properties.executionState)
    local list = srv:api("POST", job_path("ws", "exp", "files") .. "/listOutputFiles?outputdirectoryid=OUT")
    assert.are.equal(200, list.status)
    assert.are.equal(2, #list.json.value)
    local digits, sub = list.json.value[1], list.json.value[2]
    assert.are.equal("digits.txt", digits.name)
    assert.are.equal("file", digits.fileType)
    assert.are.equal(10, digits.properties.contentLength)
    assert.are.same({ name = "sub", fileType = "directory" }, sub)
    local d = srv:request("GET", digits.downloadUrl, { token = false })
    assert.are.equal(200, d.status)
    assert.are.equal("0123456789", d.body)
    d = srv:request("GET", digits.downloadUrl, { token = false, headers = { Range = "bytes=3-5" } })
    assert.are.equal(206, d.status)
    assert.are.equal("345", d.body)
    assert.are.equal("bytes 3-5/10", d.headers["content-range"])
    d = srv:request("GET", digits.downloadUrl, { token = false, headers = { Range = "bytes=7-" } })
    assert.are.equal("789", d.body)
    d = srv:request("GET", digits.downloadUrl, { token = false, headers = { Range = "bytes=20-" } })
    assert.are.equal(416, d.status)
    local tampered = digits.downloadUrl:gsub("sig=(%x)", function(c) return "sig=" .. (c == "0" and "1" or "0") end)
    assert.are.equal(403, srv:request("GET", tampered, { token = false }).status)
    local nested = srv:api("POST", job_path("ws", "exp", "files") .. "/listOutputFiles?outputdirectoryid=OUT&directory=sub")
    assert.are.equal("sub/a.txt", nested.json.value[1].name)
    assert.are.equal("x\n", srv:request("GET", nested.json.value[1].downloadUrl, { token = false }).body)
    local logs = srv:api("POST", job_path("ws", "exp", "files") .. "/listOutputFiles?outputdirectoryid=stdouterr")
    assert.are.equal("stderr.txt", logs.json.value[1].name)
    local paged = srv:api("POST", job_path("ws", "exp", "files") .. "/listOutputFiles?outputdirectoryid=OUT&maxresults=1")
    assert.are.equal(1, #paged.json.value)
    local rest = srv:request("POST", paged.json.nextLink)
    assert.are.equal(200, rest.status)
    assert.are.equal("sub", rest.json.value[1].name)
    local expired = srv:api("POST", job_path("ws", "exp", "files") .. "/listOutputFiles?outputdirectoryid=OUT&linkexpiryinminutes=4")
    assert.are.equal(400, expired.status)
  end)

  it("refuses a directory that escapes the output directory (400) and unknown ids", function()
    for _, d in ipairs({ "..", "../..", "sub/../../x", "/etc" }) do
      local r = srv:api("POST", job_path("ws", "exp", "files") .. "/listOutputFiles?outputdirectoryid=OUT&directory=" .. d)
      assert.are.equal(400, r.status, d)
      assert.are.equal("directory", r.json.error.target)
    end
    local r = srv:api("POST", job_path("ws", "exp", "files") .. "/listOutputFiles?outputdirectoryid=NOPE")
    assert.are.equal(400, r.status)
    assert.are.equal("The job has no output directory 'NOPE' (it has: stdouterr, OUT).", r.json.error.message)
  end)

  it("fails MPI toolkits with a clear error when mpirun is not installed", function()
    local s2 = S.start{ slots = 1, config = { mpirun = "/nonexistent/mpirun" } }
    s2:make_experiment("ws", "exp")
    local r = s2:api("PUT", job_path("ws", "exp", "mpi"), props({ customMpiSettings = { commandLine = "hostname", processCount = 2 } }))
    assert.are.equal(200, r.status)
    local j = s2:wait_job("ws", "exp", "mpi")
    s2:stop()
    assert.are.equal("failed", j.properties.executionState)
    assert.are.equal("MpiNotInstalled", j.properties.executionInfo.errors[1].code)
  end)

  local has_mpirun = T.has_command("mpirun")
  ;(has_mpirun and it or pending)("runs custom MPI jobs with mpirun and processCount ranks", function()
    local j = run("mpi", props({ outputDirectories = OUT, customMpiSettings = {
      commandLine = "echo rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE > $AZ_BATCHAI_OUTPUT_OUT/r$OMPI_COMM_WORLD_RANK",
      processCount = 2 } }), 60)
    assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
    assert.are.equal("rank 1 of 2\n", T.read(out_dir(j) .. "/r1"))
  end)

  for toolkit, args in pairs({ horovodSettings = "--epochs 1", chainerSettings = "--chainer" }) do
    ;(has_mpirun and it or pending)(("runs %s scripts under mpirun, one rank per process"):format(toolkit), function()
      local j = run(toolkit:lower(), props({ outputDirectories = OUT, [toolkit] = {
        pythonScriptFilePath = dir .. "/probe.py", commandLineArgs = args, processCount = 2 } }), 60)
      assert.are.equal("succeeded", j.properties.executionState, cjson.encode(j.properties.executionInfo))
      for rank = 0, 1 do
        local e = cjson.decode(T.read(out_dir(j) .. "/w" .. rank .. ".json"))
        assert.are.equal(tostring(rank), e.OMPI_COMM_WORLD_RANK)
        assert.are.equal("2", e.OMPI_COMM_WORLD_SIZE)
        assert.are.equal(args, table.concat(e.argv, " "))
      end
    end)
  end
end)

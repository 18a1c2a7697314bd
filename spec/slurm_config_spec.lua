-- The configuration of Slurm clusters in bai serve, and what a job meets when
-- the endpoint has no Slurm to talk to.  Needs no Slurm.
local S = require "serve"
local T = require "testkit"

local function start_error(config_text)
  local dir = T.tmpdir()
  local cfg = T.write(dir .. "/serve.lua", config_text)
  local r = T.run({ "serve", "--state", dir .. "/s", "--config", cfg })
  assert.are.equal(1, r.status)
  return (r.stderr:gsub("^bai: serve: ", ""):gsub("\n$", "")), cfg
end

describe("Slurm clusters in bai serve's configuration", function()
  it("refuses unknown or ill-typed options at start, naming the cluster and the option", function()
    assert.are.equal("cluster 'hpc': executor 'slurm' failed to start: unknown option 'partiton' (did you mean 'partition'?)",
      start_error('return { clusters = { hpc = { executor = "slurm", partiton = "gpu" } } }'))
    assert.are.equal("cluster 'hpc': executor 'slurm' failed to start: option 'sbatch_args' must be a table",
      start_error('return { clusters = { hpc = { executor = "slurm", sbatch_args = "--gres=gpu:1" } } }'))
    assert.are.equal("cluster 'hpc': executor 'slurm' failed to start: nice: unknown priority 'urgent' (high, normal, low)",
      start_error('return { clusters = { hpc = { executor = "slurm", nice = { urgent = -5 } } } }'))
    local message, cfg = start_error('return { clusters = { hpc = { executor = "slurm", jobs_dir = "jobs" } } }')
    assert.are.equal(cfg .. ": clusters.hpc.jobs_dir must be an absolute path, not 'jobs'", message)
  end)

  it("refuses to run a job a second time (Slurm re-runs jobs after a controller crash)", function()
    local dir = T.tmpdir()
    T.write(dir .. "/started", "1795555830.5\n") -- the first run began, and read (deleted) its plan
    local r = T.run({ "serve", "_run", dir .. "/plan.json" })
    assert.are.equal(1, r.status)
    assert.are.equal("bai serve _run: this job's runner already started once; it does not run twice\n", r.stderr)
    assert.are.same({ exitCode = 1, errors = { { code = "JobRestarted", message = "The job was started a second time "
      .. "(Slurm re-runs a job after a node or controller failure); bai runs a job at most once, so it was not run again." } } },
      require("cjson").decode(T.read(dir .. "/result.json")))
  end)

  it("fails a job at once, saying why, when the cluster cannot reach Slurm", function()
    local srv = S.start { config = { clusters = { hpc = { executor = "slurm", slurm_conf = "/nonexistent/slurm.conf" } } } }
    srv:make_experiment("ws", "exp")
    local r = srv:api("PUT", S.job_path("ws", "exp", "j"), { properties = { cluster = { id = "hpc" }, nodeCount = 1,
      stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs", customToolkitSettings = { commandLine = "true" } } })
    assert.are.equal(200, r.status, r.body)
    local j = srv:wait_job("ws", "exp", "j")
    local bad = srv:api("PUT", S.job_path("ws", "exp", "k"), { properties = { cluster = { id = "gpu" }, nodeCount = 1,
      stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs", customToolkitSettings = { commandLine = "true" } } })
    srv:stop()
    assert.are.equal("failed", j.properties.executionState)
    assert.are.same({ code = "SlurmUnavailable", message = "The cluster 'hpc' cannot reach Slurm: no Slurm configuration at "
      .. "/nonexistent/slurm.conf (set SLURM_CONF, or slurm_conf in the cluster's configuration)." },
      j.properties.executionInfo.errors[1])
    assert.are.equal(400, bad.status)
    assert.are.equal("The cluster 'gpu' is not known to this endpoint; known clusters: local, hpc.", bad.json.error.message)
  end)
end)

describe("the Slurm job runner's view of an allocation", function()
  local runner = require "batchai.serve.slurm_runner"
  local launch = require "batchai.serve.launch"
  local config = { jobs_dir = "/jobs", mount_root = "/mnt", mounts = {}, python = "python3", mpirun = "mpirun",
    containers = "refuse" }
  local job = { segment = "s/rg/ws/exp/job/0f0f", name = "job", arm_id = "/x" }
  -- two nodes: n1 runs tasks 0 and 1, n2 task 2
  local alloc = { nodes = { "n1", "n2" }, tasks = runner.expand_counts("2,1"),
    addresses = { n1 = "10.0.0.1", n2 = "10.0.0.2" } }

  local function plan(settings)
    local p = { nodeCount = 2, stdOutErrPathPrefix = "/logs" }
    for k, v in pairs(settings) do p[k] = v end
    return assert(launch.plan(config, job, { properties = p }, { master_port = 29600 }))
  end

  it("expands Slurm's task counts and writes the hostfile from them", function()
    assert.are.same({ 2, 2, 2, 1 }, runner.expand_counts("2(x3),1"))
    assert.are.equal("n1 slots=2\nn2 slots=1\n", runner.hostfile(alloc))
  end)

  it("points PyTorch's MASTER_ADDR at the first node", function()
    local placed = runner.placed_processes(plan { pyTorchSettings = { pythonScriptFilePath = "/t.py", processCount = 3 } }, alloc)
    assert.are.equal(3, #placed)
    for _, p in ipairs(placed) do
      assert.are.equal("10.0.0.1", p.env.MASTER_ADDR)
      assert.are.equal("29600", p.env.MASTER_PORT)
    end
  end)

  it("names the node of each TensorFlow task in the host lists and TF_CONFIG", function()
    local placed = runner.placed_processes(plan { tensorFlowSettings = { pythonScriptFilePath = "/t.py", workerCount = 2,
      parameterServerCount = 1 } }, alloc)
    assert.are.equal(3, #placed)
    for _, p in ipairs(placed) do
      assert.are.equal("10.0.0.1:29601", p.env.AZ_BATCHAI_PS_HOSTS)
      assert.are.equal("10.0.0.1:29602,10.0.0.2:29603", p.env.AZ_BATCHAI_WORKER_HOSTS)
      assert.are.same({ ps = { "10.0.0.1:29601" }, worker = { "10.0.0.1:29602", "10.0.0.2:29603" } },
        require("cjson").decode(p.env.TF_CONFIG).cluster)
    end
    assert.are.equal("ps", placed[1].role)
  end)
end)

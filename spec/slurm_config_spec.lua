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

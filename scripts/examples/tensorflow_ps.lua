-- A TensorFlow parameter-server sweep: asynchronous SGD (trials/tf_ps.py)
-- with one parameter server and two workers per job.  The endpoint starts each
-- task with TF_CONFIG (its type and index), AZ_BATCHAI_PS_HOSTS and
-- AZ_BATCHAI_WORKER_HOSTS; worker 0 writes the metrics.
--   bai sweep run scripts/examples/tensorflow_ps.lua [--dry-run]
local bai = require "batchai"
local S = bai.sweep
local sys = require "batchai._sys"
local here = sys.realpath((arg and arg[0] or "."):match("^(.*)/[^/]*$") or ".")

local exp = bai.experiment { name = "examples" }
local base = bai.JobProperties {
  cluster = { id = "local" },
  nodeCount = 1,
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
  tensorFlowSettings = {
    pythonScriptFilePath = here .. "/trials/tf_ps.py",
    parameterServerCount = 1,
    workerCount = 2,
    workerCommandLineArgs = "--epochs 5",
    parameterServerCommandLineArgs = "--epochs 5",
  },
  outputDirectories = { { id = "METRICS", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/outputs" } },
}

local space = S.grid { lr = { 0.1, 0.3, 1.0 } }

local run = exp:submit(space, function(p)
  local args = bai.shell.args(p) .. " --epochs 5"
  return base:with { tensorFlowSettings = {
    workerCommandLineArgs = args, parameterServerCommandLineArgs = args,
  } }
end, { name = "tensorflow-ps", job_name = "lr{lr}", max_running = 2, interval = 0.5 })

if run.dry_run then return end  -- bai sweep run --dry-run: the preview is all
assert(run:wait())
local results = run:results()
io.write(tostring(results))
print("best: " .. tostring(results:best("val_loss")))

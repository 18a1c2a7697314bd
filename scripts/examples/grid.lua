-- A grid sweep: logistic regression (trials/logistic.py) over 3 learning
-- rates x 2 batch sizes, at most 4 jobs at once on the local endpoint, then
-- the results table and the best trial.  Safe to re-run: finished trials are
-- kept, nothing is submitted twice.
--   bai sweep run scripts/examples/grid.lua [--dry-run]
--   bai sweep results grid / bai sweep report grid
local bai = require "batchai"
local sys = require "batchai._sys"
local here = sys.realpath((arg and arg[0] or "."):match("^(.*)/[^/]*$") or ".")

local exp = bai.experiment { name = "examples" }

local base = bai.JobProperties {
  cluster = { id = "local" },
  nodeCount = 1,
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
  pyTorchSettings = { pythonScriptFilePath = here .. "/trials/logistic.py" },
  outputDirectories = { { id = "METRICS", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/outputs" } },
}

local space = bai.sweep.grid { lr = bai.sweep.logspace(0.01, 1, 3), batch = { 8, 32 } }

local run = exp:submit(space, function(p)
  return base:with { pyTorchSettings = { commandLineArgs = bai.shell.args(p) .. " --epochs 8" } }
end, { name = "grid", job_name = "lr{lr}-b{batch}", max_running = 4, interval = 0.5 })

if run.dry_run then return end  -- bai sweep run --dry-run: the preview is all
assert(run:wait())
local results = run:results()
io.write(tostring(results))
print("best: " .. tostring(results:best("val_loss")))

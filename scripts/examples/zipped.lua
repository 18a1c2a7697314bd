-- A zipped sweep: network shapes that go together (deeper and narrower, so
-- that the size stays comparable) paired with zip, crossed with a grid of
-- learning rates: 3 shapes x 2 rates = 6 trials, each point a flat table
-- { lr =, depth =, width = }.
--   bai sweep run scripts/examples/zipped.lua [--dry-run]
local bai = require "batchai"
local S = bai.sweep
local sys = require "batchai._sys"
local here = sys.realpath((arg and arg[0] or "."):match("^(.*)/[^/]*$") or ".")

local exp = bai.experiment { name = "examples" }
local base = bai.JobProperties {
  cluster = { id = "local" },
  nodeCount = 1,
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
  pyTorchSettings = { pythonScriptFilePath = here .. "/trials/mlp.py" },
  outputDirectories = { { id = "METRICS", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/outputs" } },
}

local space = S.grid {
  lr = { 0.05, 0.2 },
  shape = S.zip { depth = { 1, 2, 3 }, width = { 12, 8, 6 } },
}

local run = exp:submit(space, function(p)
  return base:with { pyTorchSettings = { commandLineArgs = bai.shell.args(p) .. " --epochs 8" } }
end, { name = "zipped", job_name = "lr{lr}-d{depth}w{width}", max_running = 4, interval = 0.5 })

if run.dry_run then return end  -- bai sweep run --dry-run: the preview is all
assert(run:wait())
local results = run:results()
io.write(tostring(results))
print("best: " .. tostring(results:best("val_accuracy", "max")))

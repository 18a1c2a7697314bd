-- A seeded random search: a small neural network (trials/mlp.py) with a
-- log-uniform learning rate, an integer width and a uniform dropout rate; 12
-- trials drawn reproducibly from seed 7 (re-running draws the same ones), with
-- median early stopping of the trials that fall behind.
--   bai sweep run scripts/examples/random_search.lua [--dry-run]
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

local space = S.random({
  lr = S.loguniform(0.005, 0.5),
  width = S.randint(4, 12),
  dropout = S.quniform(0, 0.3, 0.05),
}, { n = 12, seed = 7 })

local run = exp:submit(space, function(p)
  return base:with { pyTorchSettings = { commandLineArgs = bai.shell.args(p) .. " --epochs 10" } }
end, {
  name = "random-search", max_running = 4, interval = 0.5,
  early_stopping = S.median { metric = "val_loss", grace = 3, min_trials = 3 },
})

if run.dry_run then return end  -- bai sweep run --dry-run: the preview is all
assert(run:wait())
local results = run:results()
io.write(tostring(results:sort("val_loss")))
print("best: " .. tostring(results:best("val_loss")))

-- A resumable 1,000-trial sweep: a line fit by gradient descent in plain
-- shell (trials/linefit.sh) over 100 learning rates x 10 seeds, at most 8 jobs
-- queued or running at once.  Stop it at any point (Ctrl-C, kill -9, a reboot)
-- and run it again: it adopts what the endpoint already has and submits only
-- the missing trials, each exactly once.
--   bai sweep run scripts/examples/resumable_1000.lua
--   bai sweep status linefit-1000      (from another terminal)
local bai = require "batchai"
local S = bai.sweep
local sys = require "batchai._sys"
local here = sys.realpath((arg and arg[0] or "."):match("^(.*)/[^/]*$") or ".")

local exp = bai.experiment { name = "examples" }
local base = bai.JobProperties {
  cluster = { id = "local" },
  nodeCount = 1,
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
  customToolkitSettings = { commandLine = "true" },
  outputDirectories = { { id = "METRICS", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/outputs" } },
}

local space = S.grid { lr = S.linspace(0.01, 0.99, 100), seed = S.range(1, 10) }

local run = exp:submit(space, function(p)
  return base:with { customToolkitSettings = {
    commandLine = bai.shell.join { "sh", here .. "/trials/linefit.sh", p.lr, 200, p.seed },
  } }
end, { name = "linefit-1000", job_name = "lr{lr:.4f}-s{seed}", max_running = 8, interval = 0.5 })

if run.dry_run then return end  -- bai sweep run --dry-run: the preview is all
assert(run:wait())
local results = run:results()
print(("%d trials: %s"):format(#results, tostring(run)))
print("best: " .. tostring(results:best("loss")))

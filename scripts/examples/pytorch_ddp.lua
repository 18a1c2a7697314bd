-- A multi-process PyTorch-style sweep: data-parallel training
-- (trials/ddp.py) with 1 or 2 processes per job.  The endpoint starts
-- processCount processes with MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK;
-- they average their gradients over TCP through rank 0.
--   bai sweep run scripts/examples/pytorch_ddp.lua [--dry-run]
local bai = require "batchai"
local S = bai.sweep
local sys = require "batchai._sys"
local here = sys.realpath((arg and arg[0] or "."):match("^(.*)/[^/]*$") or ".")

local exp = bai.experiment { name = "examples" }
local base = bai.JobProperties {
  cluster = { id = "local" },
  nodeCount = 1,
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
  pyTorchSettings = { pythonScriptFilePath = here .. "/trials/ddp.py" },
  outputDirectories = { { id = "METRICS", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/outputs" } },
}

local space = S.grid { lr = { 0.01, 0.05 }, processes = { 1, 2 } }

local run = exp:submit(space, function(p)
  return base:with { pyTorchSettings = {
    processCount = p.processes,
    commandLineArgs = bai.shell.args(p, { only = { "lr" } }) .. " --epochs 5",
  } }
end, { name = "pytorch-ddp", job_name = "lr{lr}-p{processes}", max_running = 2, interval = 0.5 })

if run.dry_run then return end  -- bai sweep run --dry-run: the preview is all
assert(run:wait())
local results = run:results()
io.write(tostring(results))
print("best: " .. tostring(results:best("val_loss")))

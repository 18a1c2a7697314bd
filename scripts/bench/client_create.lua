-- The bai side of scripts/bench/client.sh: COUNT job creates with CONCURRENCY
-- in flight, each a distinct typed job (base:with{...}, as a sweep builds them).
--   bai client_create.lua ENDPOINT TOKEN WORKSPACE EXPERIMENT COUNT CONCURRENCY [decode]
-- TOKEN "-" means none (a unix socket).  With "decode", each answer is decoded
-- into a typed Job value; without it the answer is only checked.
local bai = require "batchai"
local loop = require "batchai.client.loop"
local sys = require "batchai._sys"

local endpoint, token, workspace, experiment = arg[1], arg[2], arg[3], arg[4]
local count, concurrency = tonumber(arg[5]), tonumber(arg[6])
local decode = arg[7] == "decode"

local exp = bai.experiment { endpoint = endpoint, token = token ~= "-" and token or nil,
  workspace = workspace, name = experiment, concurrency = concurrency }
local base = bai.JobProperties { cluster = { id = "local" }, nodeCount = 1,
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
  customToolkitSettings = { commandLine = "python3 train.py --lr 0.01 --batch 64" } }
local opts = { wait = false, decode = decode }

local failures = 0
local t0 = sys.monotime()
local pool = loop.pool { concurrency = concurrency }
for i = 1, count do
  pool:spawn(function()
    local props = base:with { customToolkitSettings = { commandLine = "python3 train.py --lr 0.01 --batch 64 --seed " .. i } }
    local ok, err = exp:create_job(("b%05d"):format(i), props, opts)
    if not ok then
      failures = failures + 1
      if failures <= 3 then io.stderr:write(tostring(err), "\n") end
    end
  end)
end
pool:wait()
local elapsed = sys.monotime() - t0
print(("created %d in %.3f s (%d failed)"):format(count - failures, elapsed, failures))
os.exit(failures == 0 and 0 or 1)

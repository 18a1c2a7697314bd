-- Benchmark: build, validate and encode N distinct jobs as `base:with{...}` of a
-- realistic base job, against building the same jobs as plain Lua tables and
-- cjson.encode-ing them (no validation).  Each variant runs in its own process
-- so that its peak memory (VmHWM) is its own.  All jobs are kept, as a sweep keeps them.
--   bai scripts/bench/schema.lua [N [ROUNDS]]   both variants and the ratio
--   bai scripts/bench/schema.lua --variant typed|plain [N]   one variant (internal)
local cjson = require "cjson"
local sys = require "batchai._sys"

local function peak_rss_kib()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmHWM:%s*(%d+)")) or 0
end

-- The sweep's parameters for job i: learning rate, batch size, seed.
local lrs = { 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1 }
local batches = { 16, 32, 64, 128, 256 }
local function params(i)
  return lrs[i % #lrs + 1], batches[i % #batches + 1], i
end

local function args_for(i)
  local lr, batch, seed = params(i)
  return ("--lr %g --batch-size %d --seed %d --epochs 30"):format(lr, batch, seed)
end

local function plain_job(i)
  return {
    properties = {
      schedulingPriority = "normal",
      cluster = { id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/demo/clusters/gpu" },
      nodeCount = 2,
      containerSettings = { imageSourceRegistry = { image = "pytorch/pytorch:1.0-cuda10.0-cudnn7-runtime" }, shmSize = "8g" },
      pyTorchSettings = {
        pythonScriptFilePath = "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/train.py",
        commandLineArgs = args_for(i),
        processCount = 4,
        communicationBackend = "Gloo",
      },
      mountVolumes = {
        azureFileShares = { {
          accountName = "demostorage",
          azureFileUrl = "https://demostorage.file.core.windows.net/scripts",
          credentials = { accountKey = "c2VjcmV0LWtleQ==" },
          relativeMountPath = "scripts",
        } },
      },
      stdOutErrPathPrefix = "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
      inputDirectories = { { id = "DATA", path = "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/cifar10" } },
      outputDirectories = { { id = "MODEL", pathPrefix = "$AZ_BATCHAI_JOB_MOUNT_ROOT/models", pathSuffix = "ckpt" } },
      environmentVariables = { { name = "OMP_NUM_THREADS", value = "4" }, { name = "NCCL_DEBUG", value = "WARN" } },
      constraints = { maxWallClockTime = "PT6H" },
    },
  }
end

local function run_variant(variant, n)
  local jobs, bytes = {}, 0
  collectgarbage()
  local start_mem = collectgarbage("count")
  local t0 = os.clock()
  if variant == "typed" then
    local bai = require "batchai"
    local base = bai.JobProperties(plain_job(0).properties)
    for i = 1, n do
      local job = base:with { pyTorchSettings = { commandLineArgs = args_for(i) } }
      local body = job:to_json()
      bytes = bytes + #body
      jobs[i] = job
    end
  else
    local encode = cjson.encode
    for i = 1, n do
      local job = plain_job(i)
      local body = encode(job)
      bytes = bytes + #body
      jobs[i] = job
    end
  end
  local seconds = os.clock() - t0
  local heap_kib = collectgarbage("count") - start_mem
  io.write(("%s %d %.6f %d %d %d\n"):format(variant, n, seconds, math.floor(heap_kib), peak_rss_kib(), bytes))
end

local function measure(variant, n)
  local cmd = ("%s %s --variant %s %d"):format(sys.realpath("/proc/self/exe"), arg[0], variant, n)
  local p = assert(io.popen(cmd))
  local line = p:read("l")
  p:close()
  local name, count, seconds, heap, rss, bytes = line:match("^(%S+) (%d+) (%S+) (%d+) (%d+) (%d+)$")
  assert(name == variant, "bad output from " .. cmd .. ": " .. tostring(line))
  return { seconds = tonumber(seconds), heap = tonumber(heap), rss = tonumber(rss), bytes = tonumber(bytes) }
end

if arg[1] == "--variant" then
  run_variant(arg[2], tonumber(arg[3]) or 100000)
  return
end

local n = tonumber(arg[1]) or 100000
local rounds = tonumber(arg[2]) or 3
-- The machine is shared: alternate the variants and keep each one's best round.
local plain, typed
local function best(a, b)
  if a == nil or b.seconds < a.seconds then return b end
  return a
end
for _ = 1, rounds do
  plain = best(plain, measure("plain", n))
  typed = best(typed, measure("typed", n))
end
print(("schema benchmark: %d distinct jobs built, validated and encoded (base:with{...} -> :to_json()),"
  .. " best of %d rounds"):format(n, rounds))
print(("  %-34s %10s %10s %12s %12s"):format("", "jobs/s", "seconds", "heap MiB", "peak RSS MiB"))
local function row(label, r)
  print(("  %-34s %10.0f %10.3f %12.1f %12.1f"):format(label, n / r.seconds, r.seconds, r.heap / 1024, r.rss / 1024))
end
row("plain tables + cjson.encode", plain)
row("typed: with + validate + to_json", typed)
print(("  time ratio typed/plain: %.2fx (goal <= 2x); heap ratio %.2fx; peak RSS ratio %.2fx")
  :format(typed.seconds / plain.seconds, typed.heap / plain.heap, typed.rss / plain.rss))

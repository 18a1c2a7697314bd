-- A sweep of 50 trials through bai serve's Slurm executor, with max_running:
-- every trial runs as its own Slurm job, never more than max_running of the
-- sweep's jobs are queued or running at once, and the metrics come back.
-- Skipped without Slurm, except under CI.
local lab = require "slurmlab"
if not lab.up then return lab.skip("a sweep through the Slurm executor") end
local S = require "serve"
local T = require "testkit"
local sys = require "batchai._sys"

local srv
local parse_time = require("batchai.sweep.run").parse_time

setup(function()
  srv = S.start { config = { clusters = { slurm = { executor = "slurm", poll_interval = 0.1 } } },
    env = { SLURM_CONF = lab.env.SLURM_CONF } }
  local ws = ("/subscriptions/%s/resourceGroups/default/providers/Microsoft.BatchAI/workspaces/default"):format(S.SUB)
  assert.are.equal(200, srv:api("PUT", ws, { location = "local" }).status)
  assert.are.equal(200, srv:api("PUT", ws .. "/experiments/slurm-sweep", { properties = {} }).status)
end)

teardown(function()
  if srv then srv:stop() end
end)

describe("a sweep through the Slurm executor", function()
  it("runs 50 trials as Slurm jobs, at most max_running at once, and collects their metrics", function()
    local dir = T.tmpdir()
    local file = T.write(dir .. "/sweep.lua", [[
local bai = require "batchai"
local S = bai.sweep
local exp = bai.experiment { name = "slurm-sweep" }
local base = bai.JobProperties {
  cluster = { id = "slurm" }, nodeCount = 1,
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
  customToolkitSettings = { commandLine = "true" },
  outputDirectories = { { id = "METRICS", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/outputs" } },
}
local run = exp:submit(S.grid { x = S.range(0, 49) }, function(p)
  return base:with { customToolkitSettings = { commandLine =
    "echo '{\"loss\": " .. (p.x - 20) ^ 2 .. ", \"slurm_job\": '$SLURM_JOB_ID'}' > $AZ_BATCHAI_OUTPUT_METRICS/metrics.json" } }
end, { name = "slurm-sweep", job_name = "x{x}", max_running = 8, concurrency = 8, interval = 0.1, progress = false })
assert(run:wait())
local results = run:results()
print("best " .. results:best("loss").name)
for row in results:rows() do print(row.job, row.state, row.metrics and row.metrics.slurm_job) end
]])
    local r = T.run({ "sweep", "run", file }, { env = { BAI_ENDPOINT = srv.url, BAI_TOKEN = srv.token,
      BAI_SWEEP_DIR = dir .. "/sweeps" }, cwd = dir, timeout = 100 })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^best x20\n", r.stdout)
    local slurm_ids, count = {}, 0
    for job, state, id in r.stdout:gmatch("\n(x%d+)\t(%a+)\t(%d+)") do
      assert.are.equal("succeeded", state, job)
      assert.is_nil(slurm_ids[id], "two trials ran as Slurm job " .. id)
      slurm_ids[id] = job
      count = count + 1
    end
    assert.are.equal(50, count, r.stdout)
    -- each job occupies the endpoint from its creation until its end
    local events = {}
    local path = ("/subscriptions/%s/resourceGroups/default/providers/Microsoft.BatchAI/workspaces/default/experiments/"
      .. "slurm-sweep/jobs?%s"):format(S.SUB, S.API)
    while path do
      local page = srv:request("GET", path)
      assert.are.equal(200, page.status, page.body)
      for _, job in ipairs(page.json.value) do
        events[#events + 1] = { parse_time(job.properties.creationTime), 1 }
        events[#events + 1] = { parse_time(job.properties.executionInfo.endTime), -1 }
      end
      path = page.json.nextLink
    end
    assert.are.equal(100, #events)
    table.sort(events, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
    local live, peak = 0, 0
    for _, e in ipairs(events) do
      live = live + e[2]
      peak = math.max(peak, live)
    end
    assert(peak <= 8, "peak of " .. peak .. " jobs at once")
    assert(peak >= 4, "the cap was never approached (peak " .. peak .. ")")
  end)
end)

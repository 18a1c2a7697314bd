-- Safe under failure: 1,000 creates through a fault-injecting proxy in front
-- of a real `bai serve` (429 with Retry-After, 500/503 before and after the
-- endpoint acted, connections dropped before and after, delays) end with
-- exactly 1,000 jobs, none duplicated, none lost.
local bai = require "batchai"
local loop = require "batchai.client.loop"
local S = require "serve"
local F = require "fakearm"

describe("client under injected faults", function()
  local srv, proxy
  setup(function()
    srv = S.start { slots = 0 }
    proxy = F.start { upstream = srv.url }
  end)
  teardown(function()
    proxy:stop()
    srv:stop()
  end)

  it("creates 1,000 jobs exactly once each", function()
    local direct = bai.experiment { endpoint = srv.socket, workspace = "ws", name = "faults" }
    assert(direct.workspace:create { location = "local" })
    assert(direct:create())
    proxy:faults {
      seed = 7, retry_after = "1", delay_seconds = 0.2,
      rates = { ["429"] = 0.02, ["500"] = 0.03, ["503"] = 0.03, ["503_after"] = 0.03,
        drop_before = 0.03, drop_after = 0.03, delay = 0.03 },
    }
    local exp = bai.experiment { endpoint = proxy.url, token = srv.token, workspace = "ws", name = "faults",
      retry_base_delay = 0.05, retry_max_delay = 0.5, retry_attempts = 10, timeout = 20 }
    local props = bai.JobProperties { cluster = { id = "local" }, nodeCount = 1,
      stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs", customToolkitSettings = { commandLine = "true" } }
    local failures = {}
    local pool = loop.pool { concurrency = 32 }
    for i = 1, 1000 do
      pool:spawn(function()
        local name = ("f%04d"):format(i)
        local ok, err = exp:create_job(name, props:with { customToolkitSettings = { commandLine = "echo " .. i } },
          { wait = false, decode = false })
        if not ok then failures[#failures + 1] = name .. ": " .. tostring(err) end
      end)
    end
    pool:wait()
    assert.are.same({}, failures)
    local stats = proxy:stats()
    for _, kind in ipairs { "429", "500", "503", "503_after", "drop_before", "drop_after", "delay" } do
      assert.is_true((stats[kind] or 0) > 0, "no '" .. kind .. "' fault was injected")
    end
    local seen, count = {}, 0
    for job in direct:jobs() do
      assert.is_nil(seen[job.name], "duplicate " .. job.name)
      seen[job.name] = true
      count = count + 1
      local i = tonumber(job.name:match("^f(%d+)$"))
      assert.are.equal("echo " .. i, job.properties.customToolkitSettings.commandLine)
    end
    assert.are.equal(1000, count)
  end)
end)

-- bai serve's scheduler: slots, gang scheduling, priority then submission
-- order, jobs that can never fit, slots = 0, unknown executors.
local S = require "serve"
local T = require "testkit"
local sys = require "batchai._sys"

local job_path = S.job_path

local function props(cmd, extra)
  local p = { cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
    customToolkitSettings = { commandLine = cmd } }
  for k, v in pairs(extra or {}) do p[k] = v end
  return { properties = p }
end

describe("bai serve scheduler", function()
  it("starts jobs by priority, then submission order, each when all its slots are free", function()
    local srv = S.start{ slots = 2 }
    srv:make_experiment("ws", "exp")
    local dir = T.tmpdir()
    local gate = dir .. "/gate"
    local order = dir .. "/order"
    -- a blocker holds both slots until the gate opens; meanwhile the others queue
    local wait = "while [ ! -e " .. gate .. " ]; do sleep 0.02; done"
    assert.are.equal(200, srv:api("PUT", job_path("ws", "exp", "blocker"), props(wait, { nodeCount = 2 })).status)
    srv:wait_job("ws", "exp", "blocker", function(j) return j.properties.executionState == "running" end)
    local function add(name, priority, nodes)
      local r = srv:api("PUT", job_path("ws", "exp", name), props("echo " .. name .. " >> " .. order,
        { schedulingPriority = priority, nodeCount = nodes or 1 }))
      assert.are.equal(200, r.status)
    end
    add("low1", "low")
    add("normal1", "normal")
    add("high1", "high")
    add("normal2", "normal")
    add("high2", "high", 2)
    sys.sleep(0.2)
    for _, name in ipairs({ "low1", "normal1", "high1", "normal2", "high2" }) do
      assert.are.equal("queued", srv:api("GET", job_path("ws", "exp", name)).json.properties.executionState)
    end
    T.write(gate, "")
    for _, name in ipairs({ "low1", "normal1", "high1", "normal2", "high2" }) do srv:wait_job("ws", "exp", name) end
    srv:stop()
    -- high1 and the 2-node high2 by submission; then the normal ones; low last.
    -- high2 needs both slots: it starts alone, once high1 has finished.
    local lines = {}
    for l in T.read(order):gmatch("%S+") do lines[#lines + 1] = l end
    assert.are.same({ "high1", "high2" }, { lines[1], lines[2] })
    local rest = { lines[3], lines[4] }
    table.sort(rest)
    assert.are.same({ "normal1", "normal2" }, rest)
    assert.are.equal("low1", lines[5])
  end)

  it("fails a job that can never fit at once", function()
    local srv = S.start{ slots = 2 }
    srv:make_experiment("ws", "exp")
    local r = srv:api("PUT", job_path("ws", "exp", "huge"), props("true", { nodeCount = 3 }))
    assert.are.equal(200, r.status)
    local j = srv:wait_job("ws", "exp", "huge")
    srv:stop()
    assert.are.equal("failed", j.properties.executionState)
    assert.are.same({ code = "JobCannotFit", message = "The job needs 3 nodes but the cluster 'local' has 2 slots: it "
      .. "can never run there." }, j.properties.executionInfo.errors[1])
  end)

  it("with slots = 0 accepts and queues jobs without running them", function()
    local srv = S.start{ slots = 0 }
    srv:make_experiment("ws", "exp")
    assert.are.equal(200, srv:api("PUT", job_path("ws", "exp", "q"), props("true", { nodeCount = 4 })).status)
    sys.sleep(0.2)
    local j = srv:api("GET", job_path("ws", "exp", "q")).json
    srv:stop()
    assert.are.equal("queued", j.properties.executionState)
  end)

  it("maps clusters to executors from the configuration and refuses an unknown executor at start", function()
    local dir = T.tmpdir()
    local cfg = T.write(dir .. "/serve.lua", 'return { clusters = { gpu = { executor = "warp-drive" } } }')
    local r = T.run({ "serve", "--state", dir .. "/s", "--config", cfg })
    assert.are.equal(1, r.status)
    assert.are.equal("bai: serve: cluster 'gpu': unknown executor 'warp-drive' (known: local, slurm)\n", r.stderr)
    cfg = T.write(dir .. "/bad.lua", "return { slot = 3 }")
    r = T.run({ "serve", "--state", dir .. "/s", "--config", cfg })
    assert.are.equal(1, r.status)
    assert.are.equal(("bai: serve: %s: unknown setting 'slot' (did you mean 'slots'?)\n"):format(cfg), r.stderr)
  end)

  it("runs a cluster's jobs through an executor a Lua plugin registers", function()
    local dir = T.tmpdir()
    -- a plugin executor that "runs" jobs by finishing them at once with exit code 0
    T.write(dir .. "/lib/instant.lua", [[
local executor = require "batchai.serve.executor"
executor.register("instant", function(cluster, ctx)
  return {
    capacity = function() return cluster.slots or 1 end,
    start = function(self, job, plan)
      ctx.loop:timer(0, function() ctx.finished(job.id, { exitCode = 0 }) end)
      return { instant = true }
    end,
    stop = function() end,
    reattach = function() return nil end,
    remote_login = function() return {} end,
    shutdown = function() end,
  }
end)
return true
]])
    local srv = S.start{ slots = 1, config = { executors = { "instant" }, clusters = { fast = { executor = "instant", slots = 3 } } },
      env = { LUA_PATH = dir .. "/lib/?.lua;;" } }
    srv:make_experiment("ws", "exp")
    local r = srv:api("PUT", job_path("ws", "exp", "quick"), props("true", { cluster = { id = "fast" } }))
    assert.are.equal(200, r.status, r.body)
    local j = srv:wait_job("ws", "exp", "quick")
    local bad = srv:api("PUT", job_path("ws", "exp", "nowhere"), props("true", { cluster = { id = "nope" } }))
    srv:stop()
    assert.are.equal("succeeded", j.properties.executionState)
    assert.are.equal("The cluster 'nope' is not known to this endpoint; known clusters: local, fast.", bad.json.error.message)
  end)
end)

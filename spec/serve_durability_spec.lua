-- bai serve survives kill -9 (nothing acknowledged is lost), reconciles jobs
-- at restart, and runs as a daemon that clients can start exactly once.
local S = require "serve"
local T = require "testkit"
local sys = require "batchai._sys"
local proc = require "batchai._proc"

local job_path = S.job_path

local function props(cmd)
  return { properties = { cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
    customToolkitSettings = { commandLine = cmd } } }
end

describe("bai serve durability", function()
  it("loses no acknowledged create when killed with SIGKILL under concurrent load", function()
    local srv = S.start{ slots = 0 }
    srv:make_experiment("ws", "exp")
    local dir = T.tmpdir()
    local body = T.write(dir .. "/body.json", require("cjson").encode(props("true")))
    -- 8 concurrent clients create jobs until the server dies; each records the names answered 200
    local script = T.write(dir .. "/load.sh", ([[
for c in 1 2 3 4 5 6 7 8; do
  ( i=0; while [ $i -lt 400 ]; do
      i=$((i+1)); name=c${c}-$i
      code=$(curl -s -o /dev/null -w '%%{http_code}' --unix-socket %s -X PUT -H 'Content-Type: application/json' \
        --data-binary @%s "http://localhost%s/jobs/$name?api-version=2018-05-01") || break
      [ "$code" = 200 ] && echo $name >> %s/acked.$c
    done ) &
done
wait
]]):format(srv.socket, body, S.exp_path("ws", "exp"), dir))
    local loader = assert(proc.spawn{ argv = { "sh", script }, stdout = "/dev/null", stderr = "/dev/null" })
    local deadline = sys.monotime() + 20
    repeat sys.sleep(0.05) until (#(T.read(dir .. "/acked.1") or "") > 100) or sys.monotime() > deadline
    srv:kill9()
    while proc.reap(loader) == false do sys.sleep(0.02) end
    local acked = {}
    for c = 1, 8 do
      for name in (T.read(dir .. "/acked." .. c) or ""):gmatch("%S+") do acked[#acked + 1] = name end
    end
    assert.is_true(#acked > 50)
    srv:restart()
    local present = {}
    local r = srv:api("GET", S.exp_path("ws", "exp") .. "/jobs")
    while true do
      for _, j in ipairs(r.json.value) do present[j.name] = true end
      if not r.json.nextLink then break end
      r = srv:request("GET", r.json.nextLink)
    end
    local lost = {}
    for _, name in ipairs(acked) do
      if not present[name] then lost[#lost + 1] = name end
    end
    srv:stop()
    assert.are.same({}, lost)
  end)

  it("re-attaches to running jobs after kill -9, records jobs that ended meanwhile, runs queued ones", function()
    local srv = S.start{ slots = 2 }
    srv:make_experiment("ws", "exp")
    local flag = T.tmpdir() .. "/go"
    srv:api("PUT", job_path("ws", "exp", "survivor"), props("while [ ! -e " .. flag .. " ]; do sleep 0.05; done; echo done"))
    srv:api("PUT", job_path("ws", "exp", "ends-while-down"), props("while [ ! -e " .. flag .. " ]; do sleep 0.05; done; exit 4"))
    srv:api("PUT", job_path("ws", "exp", "queued"), props("echo later"))
    for _, name in ipairs({ "survivor", "ends-while-down" }) do
      srv:wait_job("ws", "exp", name, function(j) return j.properties.executionState == "running" end)
    end
    assert.are.equal("queued", srv:api("GET", job_path("ws", "exp", "queued")).json.properties.executionState)
    srv:kill9()
    T.write(flag, "")
    sys.sleep(0.3) -- both jobs end while the endpoint is down
    srv:restart()
    local a = srv:wait_job("ws", "exp", "survivor")
    local b = srv:wait_job("ws", "exp", "ends-while-down")
    local c = srv:wait_job("ws", "exp", "queued")
    srv:stop()
    assert.are.equal("succeeded", a.properties.executionState)
    assert.are.equal("failed", b.properties.executionState)
    assert.are.equal(4, b.properties.executionInfo.exitCode)
    assert.are.equal("succeeded", c.properties.executionState)
  end)

  it("re-attaches to a job still running at restart and fails one whose processes vanished", function()
    local srv = S.start{ slots = 2 }
    srv:make_experiment("ws", "exp")
    local flag = T.tmpdir() .. "/go"
    srv:api("PUT", job_path("ws", "exp", "long"), props("while [ ! -e " .. flag .. " ]; do sleep 0.05; done"))
    srv:api("PUT", job_path("ws", "exp", "vanish"), props("sleep 300"))
    for _, name in ipairs({ "long", "vanish" }) do
      srv:wait_job("ws", "exp", name, function(j) return j.properties.executionState == "running" end)
    end
    srv:kill9()
    -- the second job's whole session dies without leaving a result
    for _, name in ipairs(sys.list_dir(srv.state_dir .. "/jobs")) do
      local pid = math.tointeger(tonumber((T.read(srv.state_dir .. "/jobs/" .. name .. "/runner.pid") or ""):match("%d+")))
      local log = T.read(srv.state_dir .. "/jobs/" .. name .. "/runner.log") or ""
      local cmd = T.read("/proc/" .. pid .. "/cmdline") or ""
      if pid and #proc.session_pids(pid) > 0 then
        local children = proc.session_pids(pid)
        local is_sleep = false
        for _, p in ipairs(children) do
          if (T.read("/proc/" .. p .. "/cmdline") or ""):find("sleep\0" .. "300") then is_sleep = true end
        end
        if is_sleep then proc.kill_session(pid, "KILL") end
      end
      local _ = log .. cmd
    end
    srv:restart()
    local v = srv:wait_job("ws", "exp", "vanish")
    assert.are.equal("failed", v.properties.executionState)
    assert.are.equal("EndpointRestarted", v.properties.executionInfo.errors[1].code)
    assert.are.equal("running", srv:api("GET", job_path("ws", "exp", "long")).json.properties.executionState)
    T.write(flag, "")
    local l = srv:wait_job("ws", "exp", "long")
    srv:stop()
    assert.are.equal("succeeded", l.properties.executionState)
  end)
end)

describe("bai serve daemon", function()
  it("runs in the background with --daemon; status and stop", function()
    local dir = T.tmpdir()
    local env = { XDG_STATE_HOME = dir .. "/state" }
    local r = T.run({ "serve", "--daemon", "--state", dir .. "/s", "--slots", "0" }, { env = env })
    assert.are.equal(0, r.status, r.stderr)
    local pid = r.stdout:match("^bai serve: ready pid=(%d+) socket=" .. (dir .. "/s/serve.sock"):gsub("%p", "%%%0") .. " url=none")
    assert.is_string(pid)
    r = T.run({ "serve", "status", "--state", dir .. "/s" })
    assert.are.equal(0, r.status)
    assert.matches("^bai serve is running: pid=" .. pid, r.stdout)
    r = T.run({ "serve", "--daemon", "--state", dir .. "/s" })
    assert.are.equal(1, r.status)
    assert.are.equal(("bai: another bai serve (pid %s) is running on the state directory %s/s\n"):format(pid, dir), r.stderr)
    r = T.run({ "serve", "stop", "--state", dir .. "/s" })
    assert.are.equal(0, r.status)
    assert.are.equal(("bai serve (pid %s) stopped\n"):format(pid), r.stdout)
    r = T.run({ "serve", "status", "--state", dir .. "/s" })
    assert.are.equal(3, r.status)
    assert.are.equal(("bai serve is not running (state %s/s)\n"):format(dir), r.stdout)
  end)

  it("listens on loopback only unless explicitly asked", function()
    local dir = T.tmpdir()
    local r = T.run({ "serve", "--state", dir, "--listen", "0.0.0.0:0" })
    assert.are.equal(1, r.status)
    assert.are.equal("bai: serve: refusing to listen on 0.0.0.0: not a loopback address (pass --allow-remote to do it anyway)\n",
      r.stderr)
    r = T.run({ "serve", "--state", dir, "--listen", "localhost" })
    assert.are.equal(1, r.status)
    assert.are.equal("bai: serve: invalid --listen address 'localhost' (expected 127.0.0.1:PORT)\n", r.stderr)
  end)

  it("refuses a second foreground server on the same state directory", function()
    local srv = S.start{ slots = 0, tcp = false }
    local r = T.run({ "serve", "--state", srv.state_dir })
    srv:stop()
    assert.are.equal(1, r.status)
    assert.are.equal(("bai: serve: another bai serve (pid %d) is running on the state directory %s\n"):format(srv.pid,
      sys.realpath(srv.state_dir)), r.stderr)
  end)

  it("ensure() starts exactly one daemon when many clients call it at once", function()
    local dir = T.tmpdir()
    local script = T.write(dir .. "/ensure.lua", [[
local ep = assert(require("batchai.serve.daemon").ensure({ state_dir = arg[1] }))
print(ep.pid, ep.socket, ep.started, #ep.token)
]])
    local pids = {}
    for i = 1, 6 do
      pids[i] = assert(proc.spawn{ argv = { T.bai, script, dir .. "/s" }, stdout = dir .. "/out" .. i, stderr = dir .. "/err" .. i })
    end
    for _, pid in ipairs(pids) do
      while proc.reap(pid) == false do sys.sleep(0.01) end
    end
    local servers, started = {}, 0
    local said = 0
    for i = 1, 6 do
      local pid, socket, was_started, token_len = (T.read(dir .. "/out" .. i) or ""):match("^(%d+)\t(%S+)\t(%a+)\t(%d+)")
      assert.is_string(pid, T.read(dir .. "/err" .. i))
      servers[pid] = true
      if was_started == "true" then started = started + 1 end
      assert.are.equal("64", token_len)
      assert.are.equal(dir .. "/s/serve.sock", socket)
      if (T.read(dir .. "/err" .. i) or ""):find("^bai: started bai serve in the background %(pid %d+, socket ") then said = said + 1 end
    end
    local n = 0
    for _ in pairs(servers) do n = n + 1 end
    local r = T.run({ "serve", "stop", "--state", dir .. "/s" })
    assert.are.equal(0, r.status)
    assert.are.equal(1, n)
    assert.are.equal(1, started)
    assert.are.equal(1, said)
  end)
end)

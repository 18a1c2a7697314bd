-- The client's Lua API against a real `bai serve`: every operation, paging,
-- long-running operations, waiting for and following a running job.
local bai = require "batchai"
local client = require "batchai.client"
local loop = require "batchai.client.loop"
local sys = require "batchai._sys"
local S = require "serve"
local T = require "testkit"

local function props(extra)
  local p = { cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
    customToolkitSettings = { commandLine = "true" } }
  for k, v in pairs(extra or {}) do p[k] = v end
  return bai.JobProperties(p)
end

-- A shell command that waits until `path` exists (the spec creates it).
local function wait_for(path)
  return ("while [ ! -e %s ]; do sleep 0.02; done"):format(T.quote(path))
end

local function names_of(iterator)
  local names = {}
  for value in iterator do names[#names + 1] = value.name end
  table.sort(names)
  return names
end

describe("client API against bai serve", function()
  local srv, ws, exp
  setup(function()
    srv = S.start { slots = 2 }
    ws = bai.workspace { endpoint = srv.socket, name = "ws", lro_interval = 0.05 }
    assert(ws:create { location = "local", tags = { team = "ml" } })
    exp = ws:experiment("api")
    assert(exp:create())
  end)
  teardown(function() srv:stop() end)

  it("creates, gets, lists and deletes workspaces", function()
    local other = bai.workspace { endpoint = srv.socket, name = "ws2" }
    local value = assert(other:create { location = "local", tags = { a = "1" } })
    assert.are.equal("ws2", value.name)
    assert.are.equal("local", value.location)
    assert.are.equal("succeeded", value.properties.provisioningState)
    assert.are.equal("1", assert(other:get()).tags.a)
    assert.are.same({ "ws", "ws2" }, names_of(bai.workspaces { endpoint = srv.socket }))
    assert.is_true(other:delete())
    local gone, err = other:get()
    assert.is_nil(gone)
    assert.are.equal(404, err.status)
    assert.are.equal("ResourceNotFound", err.code)
    assert.is_true(other:delete(), "deleting what is gone is not an error")
  end)

  it("creates experiments idempotently, lists, gets and deletes them", function()
    local e = ws:experiment("second")
    assert.are.equal("second", assert(e:create()).name)
    assert.are.equal("second", assert(e:create()).name)
    assert.are.equal("succeeded", assert(e:get()).properties.provisioningState)
    assert.are.same({ "api", "second" }, names_of(ws:experiments()))
    assert.is_true(e:delete())
    assert.are.same({ "api" }, names_of(ws:experiments()))
  end)

  it("creates a job as a typed value; the same job again is success; other properties are a conflict", function()
    local job = assert(exp:create_job("typed", props()))
    assert.are.equal("Job", bai.schema.type_of(job))
    assert.are.equal("typed", job.name)
    assert.are.equal(1, job.properties.nodeCount)
    assert.are.equal("typed", assert(exp:create_job("typed", props())).name)
    local none, err = exp:create_job("typed", props { nodeCount = 2 })
    assert.is_nil(none)
    assert.are.equal(409, err.status)
    assert.are.equal("Conflict", err.code)
    assert.matches("^create job 'typed': Conflict: ", tostring(err))
    assert.are.equal("typed", assert(exp:job("typed")).name)
  end)

  it("takes a plain table too, and returns at once with wait = false and decode = false", function()
    local plain = { cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
      customToolkitSettings = { commandLine = "true" } }
    assert.is_true(exp:create_job("plain", plain, { wait = false, decode = false }))
    assert.are.equal("plain", assert(exp:job("plain")).name)
  end)

  it("rejects bad names and options as misuse", function()
    assert.has_error(function() exp:job("bad name") end,
      "job name 'bad name' is invalid: 1 to 64 letters, digits, '-' or '_'")
    assert.has_error(function() exp:create_job("x", props(), { wiat = false }) end,
      "invalid option 'wiat' to exp:create_job (did you mean 'wait'?)")
    assert.has_error(function() bai.experiment { endpoint = srv.socket, workspace = "ws", nmae = "x" } end,
      "invalid field 'nmae' in experiment (did you mean 'name'?)")
  end)

  it("blames the caller's line for a bad workspace or experiment name", function()
    local function where(fn)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      return tostring(err):match("^(.-):(%d+): .* is invalid: ")
    end
    local file, line
    local here = debug.getinfo(1, "l").currentline
    file, line = where(function() local v = bai.workspace { endpoint = srv.socket, name = "bad name" } return v end)
    assert.are.same({ "client_api_spec.lua", here + 1 }, { file:match("[^/]+$"), tonumber(line) })
    file, line = where(function() local v = bai.experiment { endpoint = srv.socket, workspace = "ws", name = "a b" } return v end)
    assert.are.same({ "client_api_spec.lua", here + 3 }, { file:match("[^/]+$"), tonumber(line) })
    file, line = where(function() local v = ws:experiment("a b") return v end)
    assert.are.same({ "client_api_spec.lua", here + 5 }, { file:match("[^/]+$"), tonumber(line) })
  end)

  it("pages through many jobs, created concurrently, lazily and with maxresults", function()
    local e = ws:experiment("paging")
    assert(e:create())
    local pool = loop.pool { concurrency = 16 }
    for i = 1, 120 do
      pool:spawn(function() assert(e:create_job(("p%03d"):format(i), props(), { wait = false })) end)
    end
    pool:wait()
    local conn = client.connection(e)
    local before = conn.stats.requests
    local seen, count = {}, 0
    local jobs = e:jobs { maxresults = 25 }
    assert.are.equal(before, conn.stats.requests, "nothing is asked before the first item")
    local first = jobs()
    assert.are.equal(before + 1, conn.stats.requests, "the first item needs the first page only")
    seen[first.name], count = true, 1
    for job in jobs do
      assert.is_nil(seen[job.name], "listed twice: " .. job.name)
      seen[job.name] = true
      count = count + 1
    end
    assert.are.equal(120, count)
    assert.are.equal(5, conn.stats.requests - before)
  end)

  it("waits for a job, reporting each state change, and returns it with its exit code", function()
    -- The job runs until the spec has seen it running, however slowly the polls come.
    local go = T.tmpdir() .. "/go"
    assert(exp:create_job("exit3", props { customToolkitSettings = { commandLine = wait_for(go) .. "; exit 3" } }))
    local changes = {}
    local job = assert(exp:wait("exit3", { interval = 0.05, on_change = function(name, new, old)
      changes[#changes + 1] = ("%s:%s->%s"):format(name, tostring(old), new)
      if new == "running" then T.write(go, "") end
    end }))
    assert.are.equal("failed", job.properties.executionState)
    assert.are.equal(3, job.properties.executionInfo.exitCode)
    assert.are.equal("exit3:nil->", changes[1]:sub(1, 11))
    assert.are.equal("exit3:running->failed", changes[#changes])
  end)

  it("waits for many jobs with list calls and gives up at its timeout", function()
    local names = {}
    for i = 1, 10 do
      names[i] = "many" .. i
      assert(exp:create_job(names[i], props(), { wait = false }))
    end
    local jobs = assert(exp:wait(names, { interval = 0.05, timeout = 30 }))
    for _, n in ipairs(names) do assert.are.equal("succeeded", jobs[n].properties.executionState) end
    assert(exp:create_job("sleeper", props { customToolkitSettings = { commandLine = "sleep 30" } }))
    local none, err = exp:wait("sleeper", { interval = 0.05, timeout = 0.3 })
    assert.is_nil(none)
    assert.are.equal("Timeout", err.code)
    assert.is_true(exp:terminate_job("sleeper"))
    local state = assert(exp:job("sleeper")).properties.executionState
    assert.is_true(state == "failed" or state == "succeeded", state)
  end)

  it("follows a running job's stdout and stderr until it ends", function()
    -- The job writes a line, then waits until the spec has read it: the output
    -- grows in three steps whatever the speed of the machine.
    local dir = T.tmpdir()
    assert(exp:create_job("chatty", props { customToolkitSettings = { commandLine = ("echo one; %s; echo two; echo oops >&2; %s; echo three")
      :format(wait_for(dir .. "/read-one"), wait_for(dir .. "/read-two")) } }))
    local out = { stdout = {}, stderr = {} }
    local stdout_chunks = 0
    assert.is_true(exp:logs("chatty", { follow = true, interval = 0.05, on_data = function(stream, chunk)
      table.insert(out[stream], chunk)
      if stream == "stdout" then
        stdout_chunks = stdout_chunks + 1
        if chunk:find("one\n") then T.write(dir .. "/read-one", "") end
        if chunk:find("two\n") then T.write(dir .. "/read-two", "") end
      end
    end }))
    assert.are.equal("one\ntwo\nthree\n", table.concat(out.stdout))
    assert.are.equal("oops\n", table.concat(out.stderr))
    assert.are.equal(3, stdout_chunks, "stdout arrived line by line as it grew")
    assert.are.equal("succeeded", assert(exp:job("chatty")).properties.executionState)
  end)

  it("lists and downloads output files", function()
    local dir = T.tmpdir()
    assert(exp:create_job("files", props {
      outputDirectories = { { id = "OUT", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/out" } },
      customToolkitSettings = { commandLine = "printf 0123456789 > $AZ_BATCHAI_OUTPUT_OUT/digits.txt" } }))
    assert(exp:wait("files", { interval = 0.05 }))
    local files = assert(exp:output_files("files", "OUT"))
    assert.are.equal(1, #files)
    assert.are.equal("digits.txt", files[1].name)
    assert.are.equal(10, files[1].properties.contentLength)
    assert.is_true(exp:download(files[1].downloadUrl, dir .. "/d.txt"))
    assert.are.equal("0123456789", T.read(dir .. "/d.txt"))
    -- Several downloads to one path at once: each lands whole, none fails.
    local results = loop.map({ 1, 2, 3 }, function() return exp:download(files[1].downloadUrl, dir .. "/same.txt") end)
    assert.are.same({ true, true, true }, results)
    assert.are.equal("0123456789", T.read(dir .. "/same.txt"))
    assert.are.same({ "d.txt", "same.txt" }, (function()
      local names = sys.list_dir(dir)
      table.sort(names)
      return names
    end)(), "no temporary file left behind")
    local none, err = exp:output_files("files", "NOPE")
    assert.is_nil(none)
    assert.are.equal(400, err.status)
    assert.is_table(assert(exp:remote_login("files")))
  end)

  it("deletes a running job through the long-running operation", function()
    assert(exp:create_job("victim", props { customToolkitSettings = { commandLine = "sleep 300" } }))
    local deadline = sys.monotime() + 10
    repeat
      sys.sleep(0.05)
    until assert(exp:job("victim")).properties.executionState == "running" or sys.monotime() > deadline
    assert.is_true(exp:delete_job("victim"))
    local gone, err = exp:job("victim")
    assert.is_nil(gone)
    assert.are.equal(404, err.status)
  end)

  it("uses the TCP endpoint with its token, and reports a wrong token without showing it", function()
    local tcp = bai.experiment { endpoint = srv.url, token = srv.token, workspace = "ws", name = "api" }
    assert.are.equal("typed", assert(tcp:job("typed")).name)
    local wrong = bai.experiment { endpoint = srv.url, token = "wrong-token-123456", workspace = "ws", name = "api" }
    local none, err = wrong:job("typed")
    assert.is_nil(none)
    assert.are.equal(401, err.status)
    assert.is_nil(tostring(err):find("wrong-token-123456", 1, true))
  end)

  it("never shows the token when its objects, context, settings or connection are printed", function()
    local pretty = require "batchai.pretty"
    local tcp = bai.experiment { endpoint = srv.url, token = srv.token, workspace = "ws", name = "api" }
    assert(tcp:get())
    local printed = {}
    for _, v in ipairs { tcp, tcp.workspace, tcp.ctx, tcp.ctx.settings, client.connection(tcp) } do
      printed[#printed + 1] = pretty.format(v)
      printed[#printed + 1] = tostring(v)
    end
    local text = table.concat(printed, "\n")
    assert.is_nil(text:find(srv.token, 1, true), text)
    assert.are.equal(("batchai.client.Context (endpoint %s)"):format(srv.url), tostring(tcp.ctx))
    assert.matches(("endpoint=%s, "):format(srv.url):gsub("%p", "%%%0"), tostring(tcp.ctx.settings))
    assert.matches(("token=*** (%d characters)"):format(#srv.token):gsub("%p", "%%%0"), tostring(tcp.ctx.settings))
  end)
end)

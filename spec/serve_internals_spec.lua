-- The pieces under bai serve's fast paths: the WAL syncer, spawning without
-- waiting for the exec, sockets to spare runners, a spare runner's job
-- directory skeleton, signalling a session, mkdir -p.
local T = require "testkit"
local sys = require "batchai._sys"
local proc = require "batchai._proc"
local sqlite = require "batchai._sqlite"
local cjson = require "cjson"

-- Waits for a child and returns its status table.
local function wait_exit(pid)
  local deadline = sys.monotime() + 20
  while sys.monotime() < deadline do
    local st = proc.reap(pid)
    if st then return st end
    sys.sleep(0.01)
  end
  error("process " .. pid .. " did not end")
end

describe("the WAL syncer", function()
  it("makes a file durable on request and says which request it covered", function()
    local path = T.write(T.tmpdir() .. "/wal", "frames")
    local s = assert(sqlite.syncer{ path = path })
    assert.matches("^batchai.SqliteSyncer %(0 of 0 durable%)$", tostring(s))
    assert.are.equal(1, s:request())
    assert.are.equal(2, s:request())
    assert.are.same({ 2 }, { s:wait(2) })
    assert.are.same({ 2 }, { s:poll() })
    assert.is_true(math.type(s:fd()) == "integer")
    assert.has_error(function() s:wait(3) end, "bad argument #1 to 'wait' (ticket never requested)")
    s:close()
    assert.are.equal("batchai.SqliteSyncer (closed)", tostring(s))
    assert.has_error(function() s:request() end, "calling 'request' on bad self (syncer is closed)")
  end)

  it("refuses a missing file and unknown fields", function()
    local dir = T.tmpdir()
    assert.are.same({ nil, dir .. "/none: No such file or directory" }, { sqlite.syncer{ path = dir .. "/none" } })
    assert.has_error(function() sqlite.syncer{ path = dir, fsync = true } end,
      "invalid field 'fsync' in syncer (the only one is 'path')")
  end)
end)

describe("process helpers", function()
  it("spawn answers an exec failure as its error; with confirm = false and a fork, as the child's status 127", function()
    -- (posix_spawn: the exec's outcome is known when it returns)
    assert.are.same({ nil, "/nonexistent/program: No such file or directory", 2 },
      { proc.spawn{ argv = { "/nonexistent/program" }, confirm = false } })
    local dir = T.tmpdir()
    assert.are.same({ nil, dir .. "/gone: No such file or directory", 2 },
      { proc.spawn{ argv = { "true" }, cwd = dir .. "/gone" } })
    -- a parent death signal needs a fork: confirm = false returns before the exec
    local pid = assert(proc.spawn{ argv = { "/nonexistent/program" }, confirm = false, parent_death_signal = "TERM" })
    assert.are.equal(127, wait_exit(pid).code)
    assert.has_error(function() proc.spawn{ argv = { "true" }, confirm = false, detach = true } end,
      "spawn: detach needs confirm")
  end)

  it("gives a child a socket as stdin, and send reports a peer that is gone", function()
    local dir = T.tmpdir()
    local ours, theirs = proc.socketpair()
    local pid = assert(proc.spawn{ argv = { "sh", "-c", "cat > " .. dir .. "/got" }, stdin_fd = theirs })
    proc.close(theirs)
    assert.is_true(proc.send(ours, "through the socket"))
    proc.close(ours)
    assert.are.equal(0, wait_exit(pid).code)
    assert.are.equal("through the socket", T.read(dir .. "/got"))
    local a, b = proc.socketpair()
    proc.close(b)
    local ok, err = proc.send(a, "x")
    proc.close(a)
    assert.is_nil(ok)
    assert.are.equal("send: Broken pipe", err)
  end)

  it("redirect points this process's standard files and working directory elsewhere", function()
    local dir = T.tmpdir()
    local r = T.exec({ T.bai, "-e", ([[
      local proc, sys = require "batchai._proc", require "batchai._sys"
      assert(proc.redirect{ stdout = %q, stderr = "stdout", cwd = %q })
      io.stdout:setvbuf("no")
      io.write("out ", sys.getcwd(), "\n")
      io.stderr:write("err\n")
      print(proc.redirect{ stdout = "/nonexistent/x" })
      print(pcall(proc.redirect, { stdot = "x" }))]]):format(dir .. "/log", dir) })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("out " .. dir .. "\nerr\nnil\t/nonexistent/x: No such file or directory\t2\n"
      .. "false\tinvalid field 'stdot' in redirect\n", T.read(dir .. "/log"))
  end)

  it("kill_session signals every live process of a session, those in other process groups too", function()
    local dir = T.tmpdir()
    -- the leader's group gets the signal at once; the child that left it is found by its session
    local pid = assert(proc.spawn{ argv = { "sh", "-c", ("python3 -c 'import os, time; os.setpgid(0, 0); "
      .. "open(%q, \"w\").write(str(os.getpid())); time.sleep(30)' & wait"):format(dir .. "/child") }, setsid = true })
    local deadline = sys.monotime() + 10
    while not (T.read(dir .. "/child") or ""):match("%d") and sys.monotime() < deadline do sys.sleep(0.01) end
    local child = math.tointeger(tonumber(T.read(dir .. "/child")))
    local members = proc.session_pids(pid)
    table.sort(members)
    assert.are.same(pid < child and { pid, child } or { child, pid }, members)
    assert.is_true(proc.kill_session(pid, "KILL") >= 1) -- the child (the leader may be gone by then)
    assert.are.equal("KILL", wait_exit(pid).signal_name)
    deadline = sys.monotime() + 10
    while #proc.session_pids(pid) > 0 and sys.monotime() < deadline do sys.sleep(0.01) end
    assert.are.same({}, proc.session_pids(pid))
    assert.are.equal(0, proc.kill_session(pid, "KILL"))
  end)

  it("mkdir -p makes only the missing levels and names the component in the way", function()
    local dir = T.tmpdir()
    assert.is_true(sys.mkdir(dir .. "/a/b//c/", 493, true))
    assert.are.equal("directory", sys.stat(dir .. "/a/b/c").type)
    assert.is_true(sys.mkdir(dir .. "/a/b/c", 493, true))
    T.write(dir .. "/file", "")
    local ok, err = sys.mkdir(dir .. "/file/g/h", 493, true)
    assert.is_nil(ok)
    assert.are.equal(dir .. "/file: File exists", err)
  end)
end)

describe("a spare runner", function()
  local STANDBY = "os.exit(require('batchai.serve.runner').standby())"

  -- Starts a spare in jobs_dir as the local executor does; returns pid, our end of its stdin.
  local function spare(jobs_dir)
    local ours, theirs = proc.socketpair()
    local pid = assert(proc.spawn{ argv = { T.bai, "-e", STANDBY }, setsid = true, cwd = jobs_dir, stdin_fd = theirs,
      umask = 18, confirm = false })
    proc.close(theirs)
    local deadline = sys.monotime() + 20
    while not T.read(jobs_dir .. "/.spare-" .. pid .. "/result.json.tmp") and sys.monotime() < deadline do sys.sleep(0.01) end
    return pid, ours
  end

  local function plan_for(root, job_dir, stdouterr)
    stdouterr = stdouterr or root .. "/out"
    return { job = "/subscriptions/s/jobs/j", job_dir = job_dir, cwd = job_dir .. "/temp", env = { "PATH=" .. os.getenv("PATH") },
      mkdirs = { job_dir, job_dir .. "/mounts", job_dir .. "/temp", job_dir .. "/temp/shared", stdouterr },
      mounts = {}, stdouterr = stdouterr, hostfile = "localhost slots=1\n",
      processes = { { argv = { "/bin/sh", "-c", "echo $$ ran" }, role = "main", index = 0, env = {} } } }
  end

  it("keeps a job directory skeleton while it waits and removes it at end of input", function()
    local jobs = T.tmpdir()
    local pid, ours = spare(jobs)
    local skel = jobs .. "/.spare-" .. pid
    assert.are.equal(448, sys.stat(skel).mode)
    assert.are.equal(493, sys.stat(skel .. "/temp/shared").mode)
    assert.are.equal(pid .. "\n", T.read(skel .. "/runner.pid"))
    assert.are.equal(384, sys.stat(skel .. "/runner.pid").mode)
    assert.are.equal(384, sys.stat(skel .. "/runner.log").mode)
    -- the inodes a job needs, made ahead: its stdouterr directory's last levels and files
    assert.are.equal(493, sys.stat(skel .. "/.made/2/3").mode)
    assert.are.equal(420, sys.stat(skel .. "/.made-stdout.txt").mode)
    assert.are.equal(0, sys.stat(skel .. "/.made-stderr.txt").size)
    proc.close(ours)
    assert.are.equal(0, wait_exit(pid).code)
    assert.are.same({}, sys.list_dir(jobs))
  end)

  it("takes a plan from its socket and runs it in the renamed skeleton, as `bai serve _run PLAN` would", function()
    local root = T.tmpdir()
    local jobs = root .. "/jobs"
    assert(sys.mkdir(jobs, 448))
    local pid, ours = spare(jobs)
    local job_dir = jobs .. "/0a0b"
    assert.is_true(proc.send(ours, cjson.encode(plan_for(root, job_dir))))
    proc.close(ours)
    assert.are.equal(0, wait_exit(pid).code)
    assert.are.same({ "0a0b" }, sys.list_dir(jobs))
    assert.are.same({ exitCode = 0 }, cjson.decode(T.read(job_dir .. "/result.json")))
    assert.are.equal(pid .. "\n", T.read(job_dir .. "/runner.pid"))
    assert.are.equal("localhost slots=1\n", T.read(job_dir .. "/hostfile"))
    assert.is_nil(T.read(job_dir .. "/result.json.tmp"))
    assert.matches("^%d+ ran\n$", T.read(root .. "/out/stdout.txt"))
    assert.are.equal(448, sys.stat(job_dir).mode)
    assert.are.equal(384, sys.stat(job_dir .. "/runner.log").mode)
    assert.are.same({ "hostfile", "mounts", "result.json", "runner.log", "runner.pid", "temp" }, sys.list_dir(job_dir))
  end)

  it("makes the stdouterr directory's last three levels and its files from the skeleton's pre-made ones", function()
    local root = T.tmpdir()
    local jobs = root .. "/jobs"
    assert(sys.mkdir(jobs, 448))
    for _, case in ipairs({ { "0a01", "/logs/a/b/c/d/stdouterr" }, { "0a02", "/logs/a/b/c/e/stdouterr" },
      { "0a03", "/logs/a/b/c/e/stdouterr" } }) do
      local pid, ours = spare(jobs)
      local job_dir, out = jobs .. "/" .. case[1], root .. case[2]
      assert.is_true(proc.send(ours, cjson.encode(plan_for(root, job_dir, out))))
      proc.close(ours)
      assert.are.equal(0, wait_exit(pid).code)
      assert.are.same({ exitCode = 0 }, cjson.decode(T.read(job_dir .. "/result.json")))
      assert.are.same({ "hostfile", "mounts", "result.json", "runner.log", "runner.pid", "temp" }, sys.list_dir(job_dir))
      assert.are.same({ "stderr.txt", "stdout.txt" }, sys.list_dir(out))
      assert.are.equal("", T.read(out .. "/stderr.txt"))
      assert.matches(case[1] == "0a03" and "^%d+ ran\n%d+ ran\n$" or "^%d+ ran\n$", T.read(out .. "/stdout.txt"))
      assert.are.equal(420, sys.stat(out .. "/stdout.txt").mode)
      for _, d in ipairs({ "/logs", "/logs/a", "/logs/a/b", "/logs/a/b/c", "/logs/a/b/c/e", case[2] }) do
        if case[1] ~= "0a01" or not d:find("/e") then assert.are.equal(493, sys.stat(root .. d).mode, d) end
      end
    end
    assert.are.same({ "d", "e" }, sys.list_dir(root .. "/logs/a/b/c"))
  end)

  it("runs a plan whose job directory exists already there, the stale result removed", function()
    local root = T.tmpdir()
    local jobs = root .. "/jobs"
    local job_dir = jobs .. "/0a0c"
    T.write(job_dir .. "/result.json", '{"exitCode":9}')
    local pid, ours = spare(jobs)
    assert.is_true(proc.send(ours, cjson.encode(plan_for(root, job_dir))))
    proc.close(ours)
    assert.are.equal(0, wait_exit(pid).code)
    assert.are.same({ "0a0c" }, sys.list_dir(jobs))
    assert.are.same({ exitCode = 0 }, cjson.decode(T.read(job_dir .. "/result.json")))
    assert.are.equal(pid .. "\n", T.read(job_dir .. "/runner.pid"))
  end)
end)

describe("bai serve's start-up and the client's path to it", function()
  it("finding the endpoint loads no part of the server (no HTTP server, no SQLite)", function()
    local dir = T.tmpdir()
    local r = T.run({ "-e", ([[
      local daemon = require "batchai.serve.daemon"
      assert(daemon.probe(%q) == nil)
      local loaded = {}
      for name in pairs(package.loaded) do
        if name:find("^batchai%%.serve") or name == "batchai._httpd" or name == "batchai._sqlite" then loaded[#loaded + 1] = name end
      end
      table.sort(loaded)
      print(table.concat(loaded, " "))
      print(daemon.default_state_dir())
    ]]):format(dir) }, { env = { XDG_STATE_HOME = "/xdg/state" } })
    assert.are.equal("", r.stderr)
    assert.are.equal("batchai.serve.daemon\n/xdg/state/bai/serve\n", r.stdout)
  end)

  it("ensure() answers nil and the reason when the state directory cannot be made", function()
    local file = T.write(T.tmpdir() .. "/file", "")
    local daemon = require "batchai.serve.daemon"
    assert.are.same({ nil, "cannot create the state directory: " .. file .. ": File exists" },
      { daemon.ensure{ state_dir = file .. "/serve", quiet = true } })
  end)

  it("a damaged endpoint.json or a missing state directory is no endpoint, and stop says so", function()
    local daemon = require "batchai.serve.daemon"
    local dir = T.tmpdir()
    for _, text in ipairs({ "", "{", "[]", '{"pid":-1,"socket":"/x"}', '{"pid":0,"socket":"/x"}', '{"pid":1.5,"socket":"/x"}',
      '{"pid":1,"socket":true}', '{"pid":1,"socket":"/' .. ("x"):rep(200) .. '"}' }) do
      T.write(dir .. "/endpoint.json", text)
      assert.is_nil(daemon.probe(dir), text)
      assert.are.same({ false }, { daemon.stop(dir) }, text)
    end
    assert.are.same({ false }, { daemon.stop(dir .. "/none") })
    local r = T.run({ "serve", "stop", "--state", dir .. "/none" })
    assert.are.same({ 0, "bai serve is not running (state " .. dir .. "/none)\n", "" }, { r.status, r.stdout, r.stderr })
  end)

  it("a state directory it cannot use: each reason named, and what was opened closed again", function()
    local serve = require "batchai.serve"
    local umask = sys.umask(18)
    for _, case in ipairs({
      { "bai.db", "store: %s/bai.db: SQLITE_CANTOPEN: unable to open database file" },
      { "serve.log", "cannot open the log: %s/serve.log: Is a directory" },
      { "token", "cannot write the token file: %s/token: Is a directory" },
    }) do
      local dir = T.tmpdir()
      assert(sys.mkdir(dir .. "/" .. case[1], 448))
      assert.are.same({ nil, case[2]:format(dir) }, { serve.run{ state_dir = dir, slots = 0 } })
      local lock = assert(proc.lock(dir .. "/lock")) -- released
      lock:release()
      assert.are.equal(18, sys.umask(18))           -- restored
      assert.is_nil(T.read(dir .. "/endpoint.json"))
    end
    sys.umask(umask)
    local dir = T.tmpdir()
    T.write(dir .. "/bai.db/x", "")
    local r = T.run({ "serve", "--state", dir, "--slots", "0" }, { timeout = 20 })
    assert.are.equal(1, r.status)
    assert.are.equal(("bai: serve: store: %s/bai.db: SQLITE_CANTOPEN: unable to open database file\n"):format(dir), r.stderr)
  end)
end)

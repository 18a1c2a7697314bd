-- The job runner: `bai serve _run PLAN` carries out one job's plan (see
-- batchai.serve.launch) as the leader of the job's own session: directories,
-- mounts, the preparation, then the processes; it waits for them and writes
-- JOB_DIR/result.json ({ exitCode, errors }) before exiting with the job's exit
-- code.  It outlives an endpoint restart (the endpoint re-attaches by pid and
-- reads the result file), and an executor can run it anywhere (Slurm: in the
-- batch script).  The plan file holds secrets: it is deleted once read.
-- A plan with `slurm` set runs inside a Slurm allocation: batchai.serve.slurm_runner
-- supplies the hostfile, jobPreparation on every node and srun for several
-- processes.  JOB_DIR/started (the time) marks a runner of such a plan that
-- began: a second run of the same job (Slurm re-runs jobs after some failures)
-- is refused.  (A local job is started once, by the endpoint: no marker.)
--
-- The local executor also keeps a spare runner started ahead of need
-- (M.standby): it waits for a plan on its stdin, then does exactly what
-- `bai serve _run PLAN` does, so a job does not wait for a process start.
-- Creating a file or directory (a new inode) can cost ~0.5 ms (it does on the
-- ext4 disk of the machine this was tuned on) while a rename costs ~0.02 ms: a
-- spare makes ahead the inodes every job needs (JOB_DIR/.made/2/3: the last
-- three levels of its stdouterr directory; JOB_DIR/.made-stdout.txt and
-- .made-stderr.txt) and the job renames them into place.
local proc = require "batchai._proc"
local sys = require "batchai._sys"
local util = require "batchai.util"
local wire = require "batchai.serve.wire"
local cjson = require "cjson"

local M = {}

local read = util.read_file

-- result.json's text: plain cjson (wire.encode's canonical form would load a C
-- module in every runner; the endpoint only decodes it).
local function result_json(result) return cjson.encode(result) .. "\n" end

local function describe_status(st)
  if st.code then return ("exit code %d"):format(st.code) end
  return ("signal %s"):format(st.signal_name and ("SIG" .. st.signal_name) or tostring(st.signal))
end

local function exit_code(st)
  if st.code then return st.code end
  return 128 + (st.signal or 0)
end

-- The pre-made chain of directories in a spare's skeleton (JOB_DIR/.made/2/3)
-- and files (JOB_DIR/.made-NAME), moved into place by mkdir_made and take_made_file.
local MADE_LEVELS = { ".made", "2", "3" }
local MADE_FILES = { "stdout.txt", "stderr.txt" }

local function parent_of(path) return path:match("^(.+)/[^/]+$") end

-- Makes directory `path` and its missing parents (mode 0755) as sys.mkdir(path,
-- 493, true) does, taking the last (up to three) missing levels from the job
-- directory's pre-made chain by renaming when there is one (a job's own levels:
-- jobs/NAME/UUID/stdouterr).  Returns true | nil, err.
local function mkdir_made(job_dir, path)
  if not sys.stat(job_dir .. "/" .. MADE_LEVELS[1]) then return sys.mkdir(path, 493, true) end
  local missing, p = {}, path
  while p and not sys.stat(p) do
    table.insert(missing, 1, p)
    p = parent_of(p)
  end
  if not p or #missing == 0 then return sys.mkdir(path, 493, true) end
  while #missing > #MADE_LEVELS do
    local ok, err = sys.mkdir(table.remove(missing, 1), 493)
    if not ok then return nil, err end
  end
  local first = #MADE_LEVELS - #missing + 1
  local src = job_dir .. "/" .. table.concat(MADE_LEVELS, "/", 1, first)
  for i, dst in ipairs(missing) do
    if i > 1 then src = missing[i - 1] .. "/" .. MADE_LEVELS[first + i - 1] end
    if not os.rename(src, dst) then break end -- another file system: the usual way
  end
  return sys.mkdir(path, 493, true)
end

-- Moves the pre-made empty file NAME to `path` unless something is there.
local function take_made_file(job_dir, name, path)
  if sys.stat(path) then return end
  os.rename(job_dir .. "/.made-" .. name, path)
end

-- Removes what is left of the pre-made chain and files.
local function remove_made(job_dir)
  for _, name in ipairs(MADE_FILES) do os.remove(job_dir .. "/.made-" .. name) end
  for i = #MADE_LEVELS, 1, -1 do os.remove(job_dir .. "/" .. table.concat(MADE_LEVELS, "/", 1, i)) end
end

-- Spawns one process of the plan in its own process group; returns pid, pidfd | nil, err.
local function start(plan, p, stdout, stderr)
  local env = {}
  local own = p.env or {}
  for _, kv in ipairs(plan.env) do
    if own[kv:match("^[^=]*")] == nil then env[#env + 1] = kv end
  end
  for k, v in pairs(own) do env[#env + 1] = k .. "=" .. v end
  for _, kv in ipairs(plan.extra_env or {}) do env[#env + 1] = kv end
  local pid, err = proc.spawn{ argv = p.argv, env = env, cwd = plan.cwd, stdout = stdout, stderr = stderr,
    append = true, setpgid = true }
  if not pid then return nil, err end
  local fd = proc.pidfd(pid)
  return pid, fd
end

-- Waits for the processes; when a main process fails the others are stopped;
-- when every main process is done, the auxiliary ones (parameter servers) are.
-- Returns the status of the first failed main process, or of the last one.
local signal_fd -- TERM, INT and HUP arrive here: forwarded to the job's processes

local function wait_all(running)
  local first_failure, last_main
  local stopping_at
  while true do
    local mains_left, fds, by_fd = 0, {}, {}
    for _, r in ipairs(running) do
      if not r.status then
        if r.role == "main" then mains_left = mains_left + 1 end
        fds[#fds + 1] = r.fd
        by_fd[r.fd] = r
      end
    end
    if #fds == 0 then break end
    if (mains_left == 0 or first_failure) and not stopping_at then
      stopping_at = sys.monotime()
      for _, r in ipairs(running) do
        if not r.status then proc.kill(-r.pid, "TERM") end
      end
    elseif stopping_at and sys.monotime() - stopping_at > 5 then
      for _, r in ipairs(running) do
        if not r.status then proc.kill(-r.pid, "KILL") end
      end
    end
    if signal_fd then fds[#fds + 1] = signal_fd end
    for _, fd in ipairs(proc.poll(fds, 200)) do
      if fd == signal_fd then
        for _, sig in ipairs(proc.read_signals(signal_fd)) do
          for _, x in ipairs(running) do
            if not x.status then proc.kill(-x.pid, sig) end
          end
        end
      else
        local r = by_fd[fd]
        local st = proc.reap(r.pid)
        if st then
          r.status = st
          proc.close(fd)
          if r.role == "main" then
            last_main = r
            if exit_code(st) ~= 0 and not first_failure and not stopping_at then first_failure = r end
          end
        end
      end
    end
  end
  return first_failure or last_main
end

-- The outcome of a job whose processes ran as srun tasks (see slurm_runner.run_step).
-- `info` is the task count, or the message when no decisive task is known.
local function step_outcome(decisive, info)
  if not decisive then return 1, { { code = "JobFailed", message = "The job's processes ended without a result: " .. info } } end
  if decisive.code == 0 then return 0, nil end
  local ntasks = info
  local which = ntasks > 1 and (" (process %d of %d)"):format(decisive.rank + 1, ntasks) or ""
  return decisive.code, { { code = "JobFailed", message = ("The job's process%s ended with %s."):format(which,
    describe_status(decisive.signal_name and { signal_name = decisive.signal_name } or decisive)),
    details = { { name = "exitCode", value = tostring(decisive.code) } } } }
end

local function run_plan(plan)
  local slurm, alloc
  if plan.slurm then
    slurm = require "batchai.serve.slurm_runner"
    alloc = slurm.allocation(plan.job_dir)
    plan.hostfile = slurm.hostfile(alloc)
    plan.extra_env = slurm.slurm_environment()
    local master = alloc.addresses[alloc.nodes[1]]
    for i, kv in ipairs(plan.env) do
      if kv:find("^AZ_BATCHAI_NODE_IP=") or kv:find("^AZ_BATCHAI_JOB_MASTER_NODE_IP=") then
        plan.env[i] = kv:match("^[^=]*=") .. master
      end
    end
  end
  for _, d in ipairs(plan.mkdirs) do
    local ok, err
    if d == plan.stdouterr then ok, err = mkdir_made(plan.job_dir, d) else ok, err = sys.mkdir(d, 493, true) end
    if not ok then return 1, { { code = "DirectoryCreationFailed", message = "Cannot create a job directory: " .. err } } end
  end
  -- in place: nothing reads it before the job's processes start
  local wrote, werr = util.write_file(plan.job_dir .. "/hostfile", plan.hostfile)
  if not wrote then return 1, { { code = "LaunchFailed", message = "Cannot write the job's host file: " .. werr } } end
  local out_dir = plan.stdouterr
  for _, m in ipairs(plan.mounts) do
    local argv = m.command and { "/bin/sh", "-c", m.command } or { "ln", "-sfn", m.target, m.link }
    if m.dir then sys.mkdir(m.dir, 493, true) end
    local pid, err = proc.spawn{ argv = argv, env = plan.env, cwd = plan.cwd, stdout = out_dir .. "/stdout-mount.txt",
      stderr = out_dir .. "/stderr-mount.txt", append = true }
    local st = pid and proc.reap(pid)
    while pid and st == false do
      sys.sleep(0.005)
      st = proc.reap(pid)
    end
    if not pid or exit_code(st) ~= 0 then
      return 1, { { code = "MountFailed", message = ("Mounting failed (%s): %s"):format(
        m.command or (m.target .. " -> " .. m.link), err or describe_status(st)) } }
    end
  end
  if plan.preparation and slurm and #alloc.nodes > 1 then
    local decisive, info = slurm.run_step(plan, "prep", alloc, signal_fd)
    if not decisive then
      return 1, { { code = "JobPreparationFailed", message = "The job preparation ended without a result: " .. info } }
    end
    if decisive.code ~= 0 then
      return decisive.code, { { code = "JobPreparationFailed", message = ("The job preparation failed with %s on node %s; "
        .. "see stderr-job_prep.txt in the stdouterr output directory."):format(describe_status(decisive.signal_name
        and { signal_name = decisive.signal_name } or { code = decisive.code }), alloc.nodes[decisive.rank + 1]) } }
    end
  elseif plan.preparation then
    local pid, fd = start(plan, plan.preparation, out_dir .. "/stdout-job_prep.txt", out_dir .. "/stderr-job_prep.txt")
    if not pid then
      return 1, { { code = "JobPreparationFailed", message = "The job preparation could not start: " .. tostring(fd) } }
    end
    local r = { pid = pid, fd = fd, role = "main" }
    wait_all({ r })
    local code = exit_code(r.status)
    if code ~= 0 then
      return code, { { code = "JobPreparationFailed", message = ("The job preparation failed with %s; see "
        .. "stderr-job_prep.txt in the stdouterr output directory."):format(describe_status(r.status)) } }
    end
  end
  if slurm and #plan.processes > 1 then
    return step_outcome(slurm.run_step(plan, "main", alloc, signal_fd))
  end
  for _, name in ipairs(MADE_FILES) do take_made_file(plan.job_dir, name, out_dir .. "/" .. name) end
  local running = {}
  for i, p in ipairs(plan.processes) do
    local pid, fd = start(plan, p, out_dir .. "/stdout.txt", out_dir .. "/stderr.txt")
    if not pid then
      for _, r in ipairs(running) do proc.kill(-r.pid, "KILL") end
      return 127, { { code = "LaunchFailed", message = ("Process %d of the job could not start: %s"):format(i, tostring(fd)) } }
    end
    running[#running + 1] = { pid = pid, fd = fd, role = p.role, index = i }
  end
  remove_made(plan.job_dir) -- while the processes run
  local decisive = wait_all(running)
  local code = decisive and exit_code(decisive.status) or 0
  if code ~= 0 then
    local which = #running > 1 and (" (process %d of %d)"):format(decisive.index, #running) or ""
    return code, { { code = "JobFailed", message = ("The job's process%s ended with %s."):format(which, describe_status(decisive.status)),
      details = { { name = "exitCode", value = tostring(code) } } } }
  end
  return 0, nil
end

--- Entry point: bai serve _run PLANFILE.  Exit status: the job's exit code.
function M.main(args)
  local path = args[1]
  local plan = path and wire.decode(read(path) or "")
  if path then os.remove(path) end
  if type(plan) ~= "table" then
    local dir = path and path:match("^(.*)/[^/]+$")
    if dir and sys.stat(dir .. "/started") and not sys.stat(dir .. "/result.json") then
      io.stderr:write("bai serve _run: this job's runner already started once; it does not run twice\n")
      wire.write_file(dir .. "/result.json", result_json({ exitCode = 1, errors = { { code = "JobRestarted",
        message = "The job was started a second time (Slurm re-runs a job after a node or controller failure); "
          .. "bai runs a job at most once, so it was not run again." } } }))
      return 1
    end
    io.stderr:write("bai serve _run: cannot read the job plan ", tostring(path), "\n")
    return 2
  end
  return M.run(plan)
end

--- Carries out a plan (a table) and writes its result; returns the exit status.
function M.run(plan)
  if plan.slurm then wire.write_file(plan.job_dir .. "/started", ("%.6f\n"):format(sys.now())) end
  -- Stopping the job (SIGTERM to its session) must reach the job's processes and
  -- leave the runner waiting for them: it is the endpoint's handle on the job.
  signal_fd = proc.signalfd({ "TERM", "INT", "HUP" })
  local ok, code, errors = pcall(run_plan, plan)
  if not ok then
    errors = { { code = "RunnerFailed", message = "The job runner failed: " .. tostring(code) } }
    code = 1
  end
  remove_made(plan.job_dir) -- (when the job did not get to its processes)
  local result = { exitCode = code, errors = errors }
  assert(wire.write_file(plan.job_dir .. "/result.json", result_json(result)))
  return code > 255 and 255 or code
end

-- What every job directory starts with (batchai.serve.launch's layout, and the
-- files the runner and its executor put there), made ahead by a spare runner.
local SKELETON_DIRS = { "mounts", "temp", "temp/shared" }
for i = 1, #MADE_LEVELS do SKELETON_DIRS[#SKELETON_DIRS + 1] = table.concat(MADE_LEVELS, "/", 1, i) end
local SKELETON_FILES = { "runner.log", "runner.pid", "hostfile", "result.json.tmp" }
for _, name in ipairs(MADE_FILES) do SKELETON_FILES[#SKELETON_FILES + 1] = ".made-" .. name end

--- Removes a spare runner's job directory skeleton (see standby); true when
-- it is gone.  Only the skeleton's own entries: anything else keeps it.
function M.remove_skeleton(dir)
  for _, f in ipairs(SKELETON_FILES) do os.remove(dir .. "/" .. f) end
  for i = #SKELETON_DIRS, 1, -1 do os.remove(dir .. "/" .. SKELETON_DIRS[i]) end
  return os.remove(dir) ~= nil
end

-- runner.log (this process's stdout and stderr, cwd the directory) and
-- runner.pid, made as the executor makes them for a runner it starts (0600,
-- the endpoint's umask 077).  Returns true | nil, err.
local function take_job_dir(dir)
  local old = sys.umask(63)
  local ok, err = proc.redirect{ stdout = dir .. "/runner.log", stderr = "stdout", cwd = dir }
  if ok then ok, err = util.write_file(dir .. "/runner.pid", sys.getpid() .. "\n") end
  sys.umask(old)
  return ok, err
end

-- Makes DIR (mode 0700) with the skeleton: the directories (0755), runner.log
-- and runner.pid (take_job_dir), and the files the runner will write (0644,
-- empty), the pre-made chain and files among them.  Returns true, or
-- nil after cleaning up what it made.
local function make_skeleton(dir)
  local ok = sys.mkdir(dir, 448)
  for _, d in ipairs(SKELETON_DIRS) do ok = ok and sys.mkdir(dir .. "/" .. d, 493) end
  ok = ok and take_job_dir(dir)
  for _, name in ipairs(SKELETON_FILES) do
    if ok and name ~= "runner.log" and name ~= "runner.pid" then -- (take_job_dir made those two)
      ok = util.write_file(dir .. "/" .. name, "")
    end
  end
  if ok then return true end
  M.remove_skeleton(dir)
  return nil
end

--- A spare runner, started (as its session's leader, umask 022) in the jobs
-- directory with a socket as stdin.  While it waits it makes the skeleton of
-- a job directory, .spare-PID (its files are costly to create when a job
-- waits).  Then it reads a plan (JSON, as in a plan file) from stdin until end
-- of input and becomes that job's runner: the skeleton is renamed to the job
-- directory, so the runner has the standard files and working directory the
-- executor gives a runner (stdout and stderr JOB_DIR/runner.log, cwd JOB_DIR)
-- and JOB_DIR/runner.pid names it (the executor writes it for the others).
-- The plan never touches the disk.  End of input without a plan (the endpoint
-- stopped, or died) ends it with status 0, its skeleton removed.
function M.standby()
  local skeleton = sys.getcwd() .. "/.spare-" .. sys.getpid()
  local ready = make_skeleton(skeleton)
  local text = io.stdin:read("a")
  if not text or text == "" then
    if ready then M.remove_skeleton(skeleton) end
    return 0
  end
  local plan = wire.decode(text)
  if type(plan) ~= "table" or type(plan.job_dir) ~= "string" then
    io.stderr:write("bai serve _run: the job plan sent to the spare runner is not valid\n")
    return 2
  end
  if ready and os.rename(skeleton, plan.job_dir) then
    proc.redirect{ stdin = "/dev/null" }
    return M.run(plan)
  end
  -- (the job directory exists: the way a runner started the usual way finds it)
  if ready then M.remove_skeleton(skeleton) end
  sys.mkdir(plan.job_dir, 448, true)
  os.remove(plan.job_dir .. "/result.json")
  proc.redirect{ stdin = "/dev/null" }
  local ok, err = take_job_dir(plan.job_dir)
  if not ok then
    io.stderr:write("bai serve _run: cannot take the job in ", plan.job_dir, ": ", tostring(err), "\n")
    return 2
  end
  return M.run(plan)
end

return M

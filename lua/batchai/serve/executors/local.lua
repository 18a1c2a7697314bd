-- The `local` executor: runs each job's runner (`bai serve _run`) as the leader
-- of a new session on this machine; watches it with a pidfd (which also works
-- for a runner left by a previous endpoint process); stops a job by signalling
-- every process of its session.  See batchai.serve.executor for the interface.
--
-- Spare runners: starting a runner (exec, loading) and making a job directory
-- take longer than a short job, so the executor keeps up to SPARES runners
-- started ahead of need, each with a job directory skeleton and waiting for a
-- plan on a socket (batchai.serve.runner's standby); a job takes one when there
-- is one (its plan then goes through the socket, not a file, and the runner
-- makes the job directory and its runner.pid).
-- Spares are started at start, and when a job took one or ended, at the end
-- of that round (after its start or end is recorded), without waiting for them
-- to load; one that cannot run is found dead when used and the job starts the
-- usual way.  (A spare makes its skeleton's inodes while the job that took the
-- previous one runs rather than during the next create's fsync, which would
-- have to commit them too.)  A spare ends by itself when the endpoint stops or
-- dies (end of input).
local proc = require "batchai._proc"
local sys = require "batchai._sys"
local util = require "batchai.util"
local wire = require "batchai.serve.wire"
local runner = require "batchai.serve.runner"

local M = {}
local Local = {}
Local.__index = Local

-- Two: a spare started when a job starts may still be loading when the next
-- job comes soon after; the older one is ready.
local SPARES = 2

function M.new(cluster, ctx)
  local self = setmetatable({ cluster = cluster, ctx = ctx, watched = {}, spares = {}, exe = sys.realpath("/proc/self/exe") },
    Local)
  -- skeletons of spares that did not end cleanly (killed)
  for _, name in ipairs(sys.list_dir(ctx.config.jobs_dir) or {}) do
    local pid = math.tointeger(tonumber(name:match("^%.spare%-(%d+)$")))
    if pid and not proc.start_time(pid) then runner.remove_skeleton(ctx.config.jobs_dir .. "/" .. name) end
  end
  if self.cluster.slots > 0 then ctx.loop:timer(0, function() self:refill() end) end
  return self
end

local STANDBY = "os.exit(require('batchai.serve.runner').standby())"

-- Starts spare runners up to SPARES (in the jobs directory, like a runner).
function Local:refill()
  if self.closed then return end
  local jobs_dir = self.ctx.config.jobs_dir
  while #self.spares < math.min(SPARES, self.cluster.slots) do
    if not sys.mkdir(jobs_dir, 448, true) then return end
    local ours, theirs = proc.socketpair()
    if not ours then return end
    local pid = proc.spawn{ argv = { self.exe, "-e", STANDBY }, setsid = true, cwd = jobs_dir, stdin_fd = theirs, umask = 18,
      confirm = false }
    proc.close(theirs)
    if not pid then
      proc.close(ours)
      return
    end
    self.spares[#self.spares + 1] = { pid = pid, fd = ours }
  end
end

-- Hands the plan to a spare runner; returns its pid, or nil when there is none
-- (or it died: then it is collected).
function Local:use_spare(plan)
  local spare = table.remove(self.spares, 1)
  if not spare then return nil end
  local ok = proc.send(spare.fd, wire.encode(plan))
  proc.close(spare.fd)
  if ok then return spare.pid end
  proc.kill(spare.pid, "KILL")
  proc.reap(spare.pid)
  return nil
end

function Local:capacity() return self.cluster.slots end

local read = util.read_file

local function outcome_of(job_dir)
  local result = wire.decode(read(job_dir .. "/result.json") or "")
  if type(result) == "table" then return result end
  return nil
end

-- Watches the runner's pidfd; reports the outcome when it ends.
function Local:watch(job_id, handle, fd)
  local ctx = self.ctx
  self.watched[job_id] = fd
  ctx.loop:watch(fd, function()
    ctx.loop:unwatch(fd)
    proc.close(fd)
    self.watched[job_id] = nil
    local status = proc.reap(handle.pid) -- our child: collect it (not after a restart)
    -- Once this job's end is recorded (at the end of this round): nothing of
    -- the finished job keeps running (background processes it left: a scan of
    -- every process), and a new spare (forking the endpoint and the spare's
    -- start would delay the record).
    ctx.loop:defer(function()
      proc.kill_session(handle.pid, "KILL")
      self:refill()
    end)
    local outcome = outcome_of(handle.job_dir)
    if not outcome then
      local how = type(status) == "table" and (status.code and ("exit code " .. status.code)
        or ("signal " .. tostring(status.signal_name or status.signal))) or "an unknown status"
      outcome = { errors = { { code = "RunnerFailed", message = ("The job runner ended with %s without a result; see "
        .. "runner.log in %s."):format(how, handle.job_dir) } } }
    end
    ctx.finished(job_id, outcome)
  end)
end

function Local:start(job, plan)
  local pid, serr = self:use_spare(plan)
  if not pid then
    local ok, err = sys.mkdir(plan.job_dir, 448, true)
    if not ok then return nil, { code = "LaunchFailed", message = err } end
    os.remove(plan.job_dir .. "/result.json")
    local plan_path = plan.job_dir .. "/plan.json"
    ok, err = wire.write_file(plan_path, wire.encode(plan)) -- 0600: the endpoint's umask is 077
    if not ok then return nil, { code = "LaunchFailed", message = err } end
    pid, serr = proc.spawn{ argv = self.ctx.runner_argv(plan_path), setsid = true, cwd = plan.job_dir,
      stdout = plan.job_dir .. "/runner.log", stderr = "stdout", umask = 18 }
    if not pid then
      os.remove(plan_path)
      return nil, { code = "LaunchFailed", message = "The job runner could not start: " .. tostring(serr) }
    end
    util.write_file(plan.job_dir .. "/runner.pid", tostring(pid) .. "\n") -- in place: readers may see it empty for a moment
  end
  local handle = { pid = pid, start_time = proc.start_time(pid), job_dir = plan.job_dir }
  local fd = proc.pidfd(pid)
  self:watch(job.id, handle, fd)
  self.ctx.loop:defer(function() self:refill() end) -- (the replacement of the spare it took)
  return handle
end

function Local:stop(handle, signal)
  proc.kill_session(handle.pid, signal)
end

function Local:reattach(job, handle)
  if type(handle) ~= "table" or not handle.pid then return nil end
  local start = proc.start_time(handle.pid)
  if start and start == handle.start_time then
    local fd = proc.pidfd(handle.pid)
    if fd then
      self:watch(job.id, handle, fd)
      return "running"
    end
  end
  return outcome_of(handle.job_dir)
end

function Local:remote_login(handle)
  return { { nodeId = sys.hostname() or "localhost", ipAddress = "127.0.0.1", port = 22 } }
end

function Local:shutdown()
  self.closed = true
  for _, spare in ipairs(self.spares) do proc.close(spare.fd) end -- they end at end of input
  self.spares = {}
  for job_id, fd in pairs(self.watched) do
    self.ctx.loop:unwatch(fd)
    proc.close(fd)
    self.watched[job_id] = nil
  end
end

return M

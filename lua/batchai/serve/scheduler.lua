-- bai serve's scheduler: per cluster, a job occupies node_count slots and starts
-- only when all are free (gang scheduling); order is schedulingPriority (high,
-- normal, low) then submission, strictly (a job that does not fit yet holds the
-- ones behind it: no starvation).  It owns job execution state: it writes every
-- transition (queued -> running -> terminating -> succeeded/failed) through the
-- store, enforces maxWallClockTime, stops process trees (TERM, then KILL after
-- the grace period), and after a restart re-attaches to running jobs through
-- their executors.  Executors (batchai.serve.executor) do the running.
--
-- An executor whose backend queues jobs (ex.reports_start = true, e.g. Slurm)
-- gets the job at once but the job stays "queued" (with its handle stored)
-- until the executor reports ctx.started(job_id, time); the wall-clock limit
-- counts from then.
local executor_registry = require "batchai.serve.executor"
local launch = require "batchai.serve.launch"
local model = require "batchai.serve.model"
local wire = require "batchai.serve.wire"
local sys = require "batchai._sys"

local M = {}
local S = {}
S.__index = S

function M.new(ctx)
  return setmetatable({ ctx = ctx, executors = {}, used = {}, active = {}, dirty = {}, events = {}, started = false }, S)
end

-- A stable id of this endpoint (its state directory), for executors that name
-- their jobs in a shared backend (Slurm job names).
local function endpoint_id(store)
  local id = store:meta("endpoint_id")
  if not id then
    id = (require("batchai._httpd").random_bytes(6):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
    store:set_meta("endpoint_id", id)
  end
  return id
end

local function self_exe() return sys.realpath("/proc/self/exe") end

--- Loads the executor plugins and makes each cluster's executor.  Returns
-- true | nil, message (an unknown executor kind, a plugin that fails to load).
function S:load_executors()
  local ctx = self.ctx
  for _, modname in ipairs(ctx.config.executors) do
    local ok, err = pcall(require, modname)
    if not ok then return nil, ("executor plugin '%s' failed to load: %s"):format(modname, tostring(err)) end
  end
  local exe = self_exe()
  local exec_ctx = {
    loop = ctx.loop, config = ctx.config, log = ctx.log, state_dir = ctx.state_dir,
    endpoint_id = ctx.store and endpoint_id(ctx.store),
    finished = function(job_id, outcome)
      -- recorded at the end of the round, after the API's own commit
      self.events[#self.events + 1] = { "finished", job_id, outcome }
    end,
    started = function(job_id, time)
      self.events[#self.events + 1] = { "started", job_id, time }
    end,
    -- `bai serve _run PLAN` does the same; -e skips the command dispatcher's
    -- plugin loading, which would double the runner's start-up time.
    runner_argv = function(plan_path)
      return { exe, "-e", ("os.exit(require('batchai.serve.runner').main({%q}))"):format(plan_path) }
    end,
  }
  for _, cluster in ctx.clusters:each() do
    local factory = executor_registry.factory(cluster.executor)
    if not factory then
      return nil, ("cluster '%s': unknown executor '%s' (known: %s)"):format(cluster.name, cluster.executor,
        table.concat(executor_registry.kinds(), ", "))
    end
    local ok, ex = pcall(factory, cluster, exec_ctx)
    if not ok or type(ex) ~= "table" then
      return nil, ("cluster '%s': executor '%s' failed to start: %s"):format(cluster.name, cluster.executor, tostring(ex))
    end
    self.executors[cluster.name] = ex
    self.used[cluster.name] = 0
  end
  return true
end

--- Starts scheduling: re-attaches what ran before, then runs queued jobs.
function S:start()
  local ctx = self.ctx
  self:reconcile()
  self.started = true
  for name in pairs(self.executors) do self.dirty[name] = true end
end

function S:shutdown()
  for _, a in pairs(self.active) do
    if a.deadline then a.deadline.cancel() end
    if a.kill_timer then a.kill_timer.cancel() end
  end
  for _, ex in pairs(self.executors) do ex:shutdown() end
end

function S:is_active(job) return self.active[job.id] ~= nil end

-- Writes a job's changed state (and its GET body) in the current round.
local function save(st, j)
  j.body = model.job_body(j)
  st:update_job(j)
end

local function set_failed(j, errors, exit_code)
  local t = sys.now()
  j.exec_state, j.exec_time, j.ended = "failed", t, t
  j.exit_code = exit_code
  j.errors = errors and wire.encode(errors, "errors") or nil
end

--- Fails a queued job at once (terminate before start, cannot fit, launch refused).
function S:fail_queued(st, j, err)
  set_failed(j, { err })
  save(st, j)
  self.ctx.log:event("job_state", { job = j.arm_id, state = "failed", error = err.code })
end

function S:submitted(job)
  local ex = self.executors[job.cluster]
  if not ex then return end
  local cap = ex:capacity()
  if cap > 0 and job.node_count > cap then
    self.ctx.store:write(function(st)
      local j = st:job_by_id(job.id)
      if j and j.exec_state == "queued" then
        self:fail_queued(st, j, { code = "JobCannotFit", message = ("The job needs %d nodes but the cluster '%s' has %d "
          .. "slot%s: it can never run there."):format(j.node_count, job.cluster, cap, cap == 1 and "" or "s") })
      end
    end)
    return
  end
  self.dirty[job.cluster] = true
end

--- Whether process() has work (the loop must not sleep).
function S:busy() return next(self.dirty) ~= nil or #self.events > 0 end

--- The scheduler's part of a round: record ended jobs, start queued ones.
function S:process()
  while #self.events > 0 do
    local events = self.events
    self.events = {}
    for _, e in ipairs(events) do
      if e[1] == "finished" then self:finished(e[2], e[3]) else self:began(e[2], e[3]) end
    end
  end
  self:schedule_dirty()
end

function S:schedule_dirty()
  if not next(self.dirty) then return end
  local dirty = self.dirty
  self.dirty = {}
  for name in pairs(dirty) do self:schedule(name) end
end

--- Starts queued jobs of a cluster while they fit.
function S:schedule(cluster)
  local ex = self.executors[cluster]
  local ctx = self.ctx
  local cap = ex:capacity()
  if cap <= 0 then return end
  while true do
    local j = ctx.store:next_queued(cluster)
    if not j then return end
    if j.node_count > cap then
      ctx.store:write(function(st)
        self:fail_queued(st, j, { code = "JobCannotFit", message = ("The job needs %d nodes but the cluster '%s' has %d "
          .. "slots: it can never run there."):format(j.node_count, cluster, cap) })
      end)
    elseif self.used[cluster] + j.node_count > cap then
      return
    else
      self:launch(ex, j)
    end
  end
end

function S:launch(ex, j)
  local ctx = self.ctx
  local spec = wire.decode(j.spec)
  local plan, perr = launch.plan(ctx.clusters:settings(j.cluster), j, spec, { master_port = self:free_port_base() })
  local handle, err
  if plan then
    handle, err = ex:start(j, plan)
  else
    err = perr
  end
  ctx.store:write(function(st)
    if not handle then
      self:fail_queued(st, j, err)
      return
    end
    if not ex.reports_start then
      local t = sys.now()
      j.exec_state, j.exec_time, j.started = "running", t, t
    end
    j.handle = wire.encode(handle)
    save(st, j)
  end)
  if handle then
    self.used[j.cluster] = self.used[j.cluster] + j.node_count
    self:track(j, handle)
    ctx.log:event("job_state", { job = j.arm_id, state = j.exec_state, pid = handle.pid })
  end
end

-- Remembers a job handed to its executor: its handle and, once it started,
-- its wall-clock deadline.
function S:track(j, handle)
  local a = { id = j.id, cluster = j.cluster, nodes = j.node_count, handle = handle, callbacks = {} }
  self.active[j.id] = a
  if j.started then self:arm_deadline(a, j) end
  if j.exec_state == "terminating" or j.stop_reason == "delete" then
    self:signal(a, "TERM")
  end
end

function S:arm_deadline(a, j)
  if a.deadline then a.deadline.cancel() end
  local spec = wire.decode(j.spec)
  local limit = model.duration_seconds(spec.properties.constraints and spec.properties.constraints.maxWallClockTime or "P7D")
  local left = (j.started or sys.now()) + limit - sys.now()
  a.deadline = self.ctx.loop:timer(math.max(0, left), function() self:stop(j, "timeout") end)
end

--- From an executor that reports starts: the job's processes began at `time`.
-- A queued job becomes running; a job already ended only gets its start time.
function S:began(job_id, time)
  local ctx = self.ctx
  local a = self.active[job_id]
  ctx.store:write(function(st)
    local j = st:job_by_id(job_id)
    if not j then return end
    j.started = j.started or time or sys.now()
    if j.exec_state == "queued" then
      j.exec_state, j.exec_time = "running", sys.now()
      ctx.log:event("job_state", { job = j.arm_id, state = "running" })
    end
    save(st, j)
    if a then self:arm_deadline(a, j) end
  end)
end

-- TERM now, KILL after the grace period.
function S:signal(a, sig)
  local ex = self.executors[a.cluster]
  ex:stop(a.handle, sig)
  if sig == "TERM" and not a.kill_timer then
    a.kill_timer = self.ctx.loop:timer(self.ctx.config.grace_period, function() ex:stop(a.handle, "KILL") end)
  end
end

--- Stops a running job's process tree.  reason: "terminate", "delete" or
-- "timeout".  on_done() runs once its processes are gone.
function S:stop(job, reason, on_done)
  local a = self.active[job.id]
  if not a then
    if on_done then on_done() end
    return
  end
  if on_done then a.callbacks[#a.callbacks + 1] = on_done end
  if a.stopping then return end
  a.stopping = reason
  self.ctx.store:write(function(st)
    local j = st:job_by_id(job.id)
    if not j then return end
    j.stop_reason = j.stop_reason or reason
    if (j.exec_state == "running" or j.exec_state == "queued") and reason ~= "delete" then
      j.exec_state, j.exec_time = "terminating", sys.now()
    end
    save(st, j)
  end)
  self.ctx.log:event("job_stop", { job = job.arm_id, reason = reason })
  self:signal(a, "TERM")
end

local STOP_ERRORS = {
  terminate = { code = "JobTerminated", message = "The job was terminated by the user." },
  timeout = { code = "JobTimedOut", message = "The job exceeded its maxWallClockTime (%s) and was stopped." },
  delete = { code = "JobDeleted", message = "The job was deleted while it ran." },
}

--- From an executor: the job's processes are gone.
function S:finished(job_id, outcome)
  local a = self.active[job_id]
  if a then
    self.active[job_id] = nil
    if a.deadline then a.deadline.cancel() end
    if a.kill_timer then a.kill_timer.cancel() end
    self.used[a.cluster] = self.used[a.cluster] - a.nodes
    self.dirty[a.cluster] = true
  end
  local ctx = self.ctx
  ctx.store:write(function(st)
    local j = st:job_by_id(job_id)
    if not j then return end
    self:record_outcome(j, outcome)
    save(st, j)
    ctx.log:event("job_state", { job = j.arm_id, state = j.exec_state, exit_code = j.exit_code })
  end)
  if a then
    for _, cb in ipairs(a.callbacks) do cb() end
  end
end

function S:record_outcome(j, outcome)
  local t = sys.now()
  local errors = outcome and outcome.errors
  local code = outcome and math.tointeger(outcome.exitCode)
  local reason = j.stop_reason
  if reason and STOP_ERRORS[reason] then
    local e = STOP_ERRORS[reason]
    local spec = wire.decode(j.spec)
    local msg = e.message:format(spec.properties.constraints and spec.properties.constraints.maxWallClockTime or "P7D")
    errors = { { code = e.code, message = msg } }
  end
  j.exit_code = code
  j.ended = t
  j.exec_time = t
  if not errors and code == 0 then
    j.exec_state = "succeeded"
    j.errors = nil
  else
    j.exec_state = "failed"
    errors = errors or { { code = "JobFailed", message = "The job failed." } }
    j.errors = wire.encode(errors, "errors")
  end
end

--- After a restart: jobs that were running are re-attached through their
-- executor, or recorded from their result, or failed saying the endpoint restarted.
function S:reconcile()
  local ctx = self.ctx
  local jobs = {}
  for _, state in ipairs({ "queued", "running", "terminating" }) do
    for _, j in ipairs(ctx.store:jobs_in_state(state)) do
      -- queued jobs with a handle were handed to an executor that queues them
      if state ~= "queued" or j.handle then jobs[#jobs + 1] = j end
    end
  end
  for _, j in ipairs(jobs) do
    local ex = self.executors[j.cluster]
    local handle = wire.decode(j.handle or "")
    local result = ex and handle and ex:reattach(j, handle)
    if result == "running" then
      self.used[j.cluster] = self.used[j.cluster] + j.node_count
      self:track(j, handle)
      ctx.log:event("job_reattached", { job = j.arm_id })
    else
      local outcome = type(result) == "table" and result or { errors = { { code = "EndpointRestarted",
        message = "bai serve restarted while the job ran, and the job's processes were gone with no result left." } } }
      ctx.store:write(function(st)
        self:record_outcome(j, outcome)
        save(st, j)
      end)
      ctx.log:event("job_state", { job = j.arm_id, state = j.exec_state, after_restart = true })
    end
  end
end

function S:remote_login(job)
  local a = self.active[job.id]
  if not a then return {} end
  return self.executors[a.cluster]:remote_login(a.handle)
end

-- A base port for a job's rendezvous (PyTorch MASTER_PORT, TensorFlow hosts):
-- spread over 20000..59999 by job so that concurrent jobs do not collide.
local next_port = 20000
function S:free_port_base()
  next_port = next_port + 100
  if next_port > 59900 then next_port = 20000 end
  return next_port + (sys.getpid() % 97)
end

return M

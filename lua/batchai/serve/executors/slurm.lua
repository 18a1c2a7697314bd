-- The `slurm` executor: hands each job to a Slurm cluster with the command-line
-- tools (sbatch, squeue, scancel, sacct; argv lists, no shell, each with a
-- timeout), as the user running bai serve.  See batchai.serve.executor for the
-- interface and scripts/slurm/README.md for the cluster side.
--
--   clusters = { gpu = { executor = "slurm",
--     partition = "gpu", account = "proj", qos = "normal",   -- sbatch -p / -A / --qos
--     sbatch_args = { "--gres=gpu:1" },                      -- more sbatch options
--     jobs_dir = "/shared/bai/jobs", mount_root = "/shared/bai/mnt",  -- on every node
--     nice = { high = -10000, normal = 0, low = 10000 },     -- schedulingPriority -> --nice
--     poll_interval = 1, submit_parallel = 4, tool_timeout = 30,
--     slurm_conf = "/etc/slurm/slurm.conf" } }               -- default: $SLURM_CONF, then this
--
-- start writes JOB_DIR/plan.json (0600) and JOB_DIR/slurm.sh (which runs this
-- bai's job runner, `bai serve _run`, in the allocation: same environment,
-- directories and stdout layout as the local executor) and queues an
-- `sbatch --parsable --job-name=bai-<endpoint id>-<job id> ...` (at most
-- submit_parallel at a time); the handle is { name, job_dir }, the Slurm job id
-- goes to JOB_DIR/slurm_id once known.  The job stays queued until Slurm runs
-- it (ctx.started).  One `squeue --states=all --me` per poll_interval covers
-- every job (filtered by the name prefix).  The outcome is JOB_DIR/result.json
-- (the runner's), qualified by Slurm's final state (TIMEOUT, NODE_FAIL,
-- OUT_OF_MEMORY, PREEMPTED, a cancel from outside); after Slurm purged the job,
-- sacct (accounting, else the job-completion log).  Stop: scancel (TERM, then
-- Slurm's own KILL after KillWait), then `scancel --signal=KILL --full`.
-- After a restart, jobs are found by name, so a job whose sbatch answered after
-- the endpoint died is still found; one never submitted is submitted then.
local proc = require "batchai._proc"
local sys = require "batchai._sys"
local util = require "batchai.util"
local wire = require "batchai.serve.wire"
local launch = require "batchai.serve.launch"
local model = require "batchai.serve.model"
local shell_quote = require("batchai.shell").quote

local M = {}
local Slurm = {}
Slurm.__index = Slurm

local OPTIONS = {
  name = "string", executor = "string", partition = "string", account = "string", qos = "string",
  sbatch_args = "table", nice = "table", poll_interval = "number", submit_parallel = "number",
  tool_timeout = "number", slurm_conf = "string",
  jobs_dir = "string", mount_root = "string", mounts = "table", python = "string", mpirun = "string",
  containers = "string", settings = "table",
}
local DEFAULT_NICE = { high = -10000, normal = 0, low = 10000 }
local DEFAULT_WALL_CLOCK = 7 * 86400
local PRIORITY_NAMES = { [0] = "low", [1] = "normal", [2] = "high" }

-- Slurm job states (squeue, sacct): not started yet, started, and ended.
local STARTED = { RUNNING = true, COMPLETING = true, SUSPENDED = true, STOPPED = true, SIGNALING = true,
  STAGE_OUT = true, RESIZING = true }
local TERMINAL = { COMPLETED = true, FAILED = true, CANCELLED = true, TIMEOUT = true, NODE_FAIL = true,
  PREEMPTED = true, BOOT_FAIL = true, DEADLINE = true, OUT_OF_MEMORY = true, REVOKED = true }
-- Final states that say why the job ended better than its runner can.
local STATE_ERRORS = {
  TIMEOUT = { "JobTimedOut", "Slurm stopped the job at its time limit (maxWallClockTime rounded up to whole minutes)." },
  NODE_FAIL = { "NodeFailed", "A node of the Slurm job %s failed (NODE_FAIL); the job was stopped." },
  OUT_OF_MEMORY = { "OutOfMemory", "The job ran out of memory (Slurm job %s ended OUT_OF_MEMORY)." },
  PREEMPTED = { "JobPreempted", "Slurm preempted the job (job %s)." },
  BOOT_FAIL = { "NodeFailed", "A node of the Slurm job %s failed to boot (BOOT_FAIL)." },
  DEADLINE = { "JobTimedOut", "Slurm cancelled the job %s at its deadline." },
  CANCELLED = { "JobCancelled", "The Slurm job %s was cancelled outside bai (scancel, or the cluster's administrator)." },
  REVOKED = { "JobCancelled", "The Slurm job %s was revoked." },
}

local read = util.read_file

local function trim(s) return ((s or ""):gsub("^%s+", ""):gsub("%s+$", "")) end

-- The environment of the Slurm tools (and so of the batch script, sbatch
-- exports it): this process's, without SLURM_* variables (a JWT breaks srun
-- in jobs; an outer allocation's would confuse sbatch) except SLURM_CONF.
local function tool_environment(conf)
  local env = {}
  for kv in (read("/proc/self/environ") or ""):gmatch("[^%z]+") do
    if kv:sub(1, 6) ~= "SLURM_" then env[#env + 1] = kv end
  end
  if conf then env[#env + 1] = "SLURM_CONF=" .. conf end
  return env
end

-- Epoch seconds of Slurm's local time "2024-05-01T10:20:30", or nil.
local function slurm_time(s)
  local y, mo, d, h, mi, sec = (s or ""):match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)$")
  if not y then return nil end
  return os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h), min = tonumber(mi),
    sec = tonumber(sec) }) + 0.0
end

function M.new(cluster, ctx)
  for k, v in pairs(cluster) do
    if not OPTIONS[k] then
      error(("unknown option '%s'%s"):format(tostring(k), util.did_you_mean(tostring(k), OPTIONS)), 0)
    end
    if type(v) ~= OPTIONS[k] then error(("option '%s' must be a %s"):format(k, OPTIONS[k]), 0) end
  end
  local nice = {}
  for k, v in pairs(DEFAULT_NICE) do nice[k] = v end
  for k, v in pairs(cluster.nice or {}) do
    if not DEFAULT_NICE[k] then error(("nice: unknown priority '%s' (high, normal, low)"):format(tostring(k)), 0) end
    if math.type(v) ~= "integer" then error(("nice.%s must be an integer"):format(k), 0) end
    nice[k] = v
  end
  for i, a in ipairs(cluster.sbatch_args or {}) do
    if type(a) ~= "string" then error(("sbatch_args[%d] must be a string"):format(i), 0) end
  end
  local self = setmetatable({
    cluster = cluster, ctx = ctx, nice = nice,
    poll_interval = cluster.poll_interval or 1, parallel = math.max(1, math.floor(cluster.submit_parallel or 4)),
    tool_timeout = cluster.tool_timeout or 30,
    prefix = ("bai-%s-"):format(ctx.endpoint_id or "0"),
    jobs = {}, by_name = {}, queue = {}, inflight = 0, tools = {}, tool_seq = 0,
  }, Slurm)
  self.reports_start = true
  local conf = cluster.slurm_conf or os.getenv("SLURM_CONF") or "/etc/slurm/slurm.conf"
  if not sys.stat(conf) then
    self.unavailable = ("no Slurm configuration at %s (set SLURM_CONF, or slurm_conf in the cluster's configuration)"):format(conf)
  elseif not launch.which("sbatch") then
    self.unavailable = "the Slurm tools (sbatch, squeue, scancel) are not installed on this machine"
  end
  self.env = tool_environment(cluster.slurm_conf)
  self.tmp = ("%s/slurm/%s"):format(ctx.state_dir or ctx.config.state_dir or "/tmp", cluster.name)
  assert(sys.mkdir(self.tmp, 448, true))
  for _, f in ipairs(sys.list_dir(self.tmp) or {}) do os.remove(self.tmp .. "/" .. f) end
  if self.unavailable then ctx.log:event("slurm_unavailable", { cluster = cluster.name, reason = self.unavailable }, "warn") end
  return self
end

-- The executor's capacity: Slurm queues, so every job is handed over at once.
function Slurm:capacity() return math.huge end

-- ---- running the tools ---------------------------------------------------------

-- Runs a Slurm tool.  With on_done, asynchronously in the loop: on_done(ok,
-- stdout, stderr, status) later; without, waits and returns the same four.
-- ok is true for exit code 0; a tool outliving tool_timeout is killed.
function Slurm:tool(argv, on_done)
  self.tool_seq = self.tool_seq + 1
  local out = ("%s/%d.out"):format(self.tmp, self.tool_seq)
  local err = ("%s/%d.err"):format(self.tmp, self.tool_seq)
  -- umask 022: sbatch passes it on to the job, which then creates files as
  -- the local executor's runner does (the endpoint itself runs with 077)
  local pid, serr = proc.spawn{ argv = argv, env = self.env, stdout = out, stderr = err, umask = 18 }
  local function collect(status)
    local o, e = read(out) or "", read(err) or ""
    os.remove(out)
    os.remove(err)
    return type(status) == "table" and status.code == 0, o, e, status
  end
  if not pid then
    local msg = ("%s could not start: %s"):format(argv[1], tostring(serr))
    if on_done then on_done(false, "", msg, nil) return end
    return false, "", msg, nil
  end
  if not on_done then
    local deadline = sys.monotime() + self.tool_timeout
    local st = proc.reap(pid)
    while st == false do
      if sys.monotime() > deadline then
        proc.kill(pid, "KILL")
        while proc.reap(pid) == false do sys.sleep(0.005) end
        local _, o = collect(nil)
        return false, o, ("%s did not answer within %g s"):format(argv[1], self.tool_timeout), nil
      end
      sys.sleep(0.005)
      st = proc.reap(pid)
    end
    return collect(st)
  end
  local fd = proc.pidfd(pid)
  local loop = self.ctx.loop
  local t = { fd = fd, began = sys.monotime() }
  self.tools[t] = true
  t.timer = loop:timer(self.tool_timeout, function()
    proc.kill(pid, "KILL")
    t.timed_out = true
  end)
  loop:watch(fd, function()
    local st = proc.reap(pid)
    if st == false then return end
    loop:unwatch(fd)
    proc.close(fd)
    t.timer.cancel()
    self.tools[t] = nil
    local ok, o, e = collect(st)
    self.ctx.log:event("slurm_tool", { tool = argv[1], ms = math.floor((sys.monotime() - t.began) * 1000 + 0.5),
      code = type(st) == "table" and st.code or nil }, "debug")
    if t.timed_out then e = ("%s did not answer within %g s"):format(argv[1], self.tool_timeout) end
    on_done(ok and not t.timed_out, o, e, st)
  end)
end

-- ---- submitting ------------------------------------------------------------------

-- The sbatch words of a job (without the script), from its plan and spec.
function Slurm:sbatch_argv(job, plan, name)
  local c = self.cluster
  local spec = wire.decode(job.spec) or { properties = {} }
  local constraints = spec.properties.constraints or {}
  local nodes = plan.node_count or math.tointeger(job.node_count) or 1
  local argv = { "sbatch", "--parsable", "--job-name=" .. name, "--nodes=" .. nodes,
    "--ntasks=" .. math.max(plan.process_count or 1, nodes), "--no-requeue", "--export=ALL",
    "--chdir=" .. plan.job_dir, "--output=" .. plan.job_dir .. "/runner.log", "--open-mode=append" }
  local level = PRIORITY_NAMES[math.tointeger(job.priority) or 1] or "normal"
  argv[#argv + 1] = "--nice=" .. self.nice[level]
  -- Slurm's limit is whole minutes and fires late: a backstop (bai stops the
  -- job itself at maxWallClockTime), one minute after it.  The API's default
  -- (one week, which many partitions' MaxTime refuses) leaves the partition's.
  local seconds = model.duration_seconds(constraints.maxWallClockTime or "P7D") or DEFAULT_WALL_CLOCK
  if seconds ~= DEFAULT_WALL_CLOCK then argv[#argv + 1] = "--time=" .. (math.ceil(seconds / 60) + 1) end
  if c.partition then argv[#argv + 1] = "--partition=" .. c.partition end
  if c.account then argv[#argv + 1] = "--account=" .. c.account end
  if c.qos then argv[#argv + 1] = "--qos=" .. c.qos end
  for _, a in ipairs(c.sbatch_args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = plan.job_dir .. "/slurm.sh"
  return argv
end

function Slurm:start(job, plan)
  if self.unavailable then
    return nil, { code = "SlurmUnavailable", message = ("The cluster '%s' cannot reach Slurm: %s."):format(
      self.cluster.name, self.unavailable) }
  end
  local dir = plan.job_dir
  local ok, err = sys.mkdir(dir, 448, true)
  if not ok then return nil, { code = "LaunchFailed", message = err } end
  for _, f in ipairs({ "result.json", "started", "slurm_id" }) do os.remove(dir .. "/" .. f) end
  local name = self.prefix .. math.tointeger(job.id)
  plan.slurm = { name = name }
  local plan_path = dir .. "/plan.json"
  local runner = self.ctx.runner_argv(plan_path)
  local words = {}
  for i, w in ipairs(runner) do words[i] = shell_quote(w) end
  local script = ("#!/bin/sh\n# bai serve job %s (Slurm job name %s): runs the job runner in the allocation.\nexec %s\n")
    :format(job.arm_id or "?", name, table.concat(words, " "))
  local argv = self:sbatch_argv(job, plan, name)
  ok, err = wire.write_file(plan_path, wire.encode(plan)) -- 0600: the endpoint's umask is 077
  if ok then ok, err = wire.write_file(dir .. "/slurm.sh", script) end
  if ok then ok, err = wire.write_file(dir .. "/sbatch.json", wire.encode(argv)) end
  if not ok then
    os.remove(plan_path)
    return nil, { code = "LaunchFailed", message = "Cannot write the job's files: " .. tostring(err) }
  end
  local rec = { id = job.id, name = name, job_dir = dir, argv = argv, state = "queued" }
  self:add(rec)
  self:submit(rec)
  return { name = name, job_dir = dir }
end

function Slurm:add(rec)
  self.jobs[rec.id] = rec
  self.by_name[rec.name] = rec
end

-- Queues rec for sbatch and starts as many submissions as allowed.
function Slurm:submit(rec)
  rec.state = "queued"
  self.queue[#self.queue + 1] = rec
  self:pump()
end

function Slurm:pump()
  local q = self.queue
  while self.inflight < self.parallel and (q.head or 0) < #q do
    q.head = (q.head or 0) + 1
    local rec = q[q.head]
    q[q.head] = false
    if rec.state == "queued" then self:sbatch(rec) end
  end
  if (q.head or 0) >= #q then self.queue = {} end
end

-- Only operators may give a negative nice: once sbatch said so, high runs as normal.
local function without_negative_nice(argv)
  for i, a in ipairs(argv) do
    if a:find("^%-%-nice=%-") then argv[i] = "--nice=0" end
  end
end

function Slurm:sbatch(rec)
  rec.state = "submitting"
  self.inflight = self.inflight + 1
  if self.no_negative_nice then without_negative_nice(rec.argv) end
  self:tool(rec.argv, function(ok, out, err)
    self.inflight = self.inflight - 1
    local id = ok and out:match("^%s*(%d+)")
    if id then
      rec.slurm_id = id
      rec.state = "submitted"
      rec.submitted_at = sys.monotime()
      wire.write_file(rec.job_dir .. "/slurm_id", id .. "\n")
      if rec.stop then self:cancel(rec, "TERM") end
      self:schedule_poll(self.poll_interval)
    elseif err:find("did not answer within", 1, true) then
      -- it may have been submitted: the polls look for it by name
      rec.state = "submitted"
      rec.submitted_at = sys.monotime()
      rec.lost = trim(err)
      self:schedule_poll(self.poll_interval)
    elseif err:find("Invalid --nice value", 1, true) and table.concat(rec.argv, " "):find(" --nice=-", 1, true) then
      if not self.no_negative_nice then
        self.no_negative_nice = true
        self.ctx.log:event("slurm_nice_denied", { cluster = self.cluster.name, error = trim(err) }, "warn")
      end
      self:submit(rec)
    else
      local lines = {}
      for line in err:gmatch("[^\n]+") do lines[#lines + 1] = trim(line:gsub("^sbatch: error: ", "")) end
      self:finish(rec, { errors = { { code = "SlurmSubmitFailed", message = ("sbatch refused the job: %s."):format(
        #lines > 0 and table.concat(lines, "; ") or "it printed no job id") } } })
    end
    self:pump()
  end)
end

-- ---- watching --------------------------------------------------------------------

function Slurm:schedule_poll(delay)
  if self.polling or self.poll_timer or self.closed then return end
  self.poll_timer = self.ctx.loop:timer(delay, function()
    self.poll_timer = nil
    self:poll()
  end)
end

local SQUEUE_FORMAT = "JobID:0|,Name:0|,State:0|,exit_code:0|,StartTime:0|,EndTime:0|,NodeList:0|,Reason:0"

-- Parses squeue's lines into name -> entry for this endpoint's jobs (the
-- latest Slurm job of a name when a job was submitted twice).
function Slurm:parse_squeue(text)
  local entries = {}
  local prefix = self.prefix
  for line in text:gmatch("[^\n]+") do
    local id, name, state, status, started, ended, nodes, reason =
      line:match("^(%d+)|([^|]*)|(%u[%u_]*)|(%d*)|([^|]*)|([^|]*)|([^|]*)|(.*)$")
    if id and name:sub(1, #prefix) == prefix then
      local old = entries[name]
      if not old or tonumber(old.id) < tonumber(id) then
        entries[name] = { id = id, state = state, status = tonumber(status), start = started, ["end"] = ended,
          nodes = nodes, reason = trim(reason) }
      end
    end
  end
  return entries
end

function Slurm:squeue_argv()
  return { "squeue", "--noheader", "--states=all", "--me", "-O", SQUEUE_FORMAT }
end

function Slurm:poll()
  if self.unavailable then return end
  local watched = false
  for _, rec in pairs(self.jobs) do
    if rec.state == "submitted" then watched = true break end
  end
  if not watched then return end
  self.polling = true
  local began = sys.monotime()
  self:tool(self:squeue_argv(), function(ok, out, err)
    self.polling = false
    if self.closed then return end
    if not ok then
      self.failures = (self.failures or 0) + 1
      if self.failures == 1 then
        self.ctx.log:event("slurm_poll_failed", { cluster = self.cluster.name, error = trim(err) }, "warn")
      end
      self:schedule_poll(math.min(30, self.poll_interval * 2 ^ math.min(self.failures, 5)))
      return
    end
    if self.failures then
      self.ctx.log:event("slurm_poll_recovered", { cluster = self.cluster.name, failures = self.failures })
      self.failures = nil
    end
    self:observe(self:parse_squeue(out), began)
    self:schedule_poll(self.poll_interval)
  end)
end

-- Applies one squeue snapshot (taken at monotime `began`) to the watched jobs.
function Slurm:observe(entries, began)
  for _, rec in pairs(self.jobs) do
    if rec.state == "submitted" then
      local e = entries[rec.name]
      if e then
        rec.slurm_id, rec.missing, rec.entry = e.id, 0, e
        if rec.lost then
          wire.write_file(rec.job_dir .. "/slurm_id", e.id .. "\n")
          rec.lost = nil
        end
        if rec.stop and not rec.cancelled then self:cancel(rec, "TERM") end
        if not rec.started and (STARTED[e.state] or (TERMINAL[e.state] and self:ran(rec, e))) then
          rec.started = true
          self.ctx.started(rec.id, self:start_time(rec, e))
        end
        if TERMINAL[e.state] then self:finish(rec, self:outcome(rec, e)) end
      elseif rec.submitted_at and rec.submitted_at < began then
        rec.missing = (rec.missing or 0) + 1
        if rec.missing >= 2 then self:resolve_missing(rec) end
      end
    end
  end
end

-- Whether an ended Slurm job ran its runner (a job cancelled while pending did not).
function Slurm:ran(rec, e)
  if sys.stat(rec.job_dir .. "/started") then return true end
  return e.state ~= "CANCELLED" and e.state ~= "REVOKED" and e.state ~= "DEADLINE" and slurm_time(e.start) ~= nil
end

-- The job's start: the runner's own record, else Slurm's (whole seconds).
function Slurm:start_time(rec, e)
  local t = tonumber((read(rec.job_dir .. "/started") or ""):match("^%s*([%d.]+)"))
  return t or (e and slurm_time(e.start)) or sys.now()
end

-- The outcome of a job Slurm reports ended: the runner's result, qualified by
-- Slurm's final state when that says more (time limit, node failure, a cancel
-- from outside); without a result, what Slurm says.
function Slurm:outcome(rec, e)
  local result = wire.decode(read(rec.job_dir .. "/result.json") or "")
  if type(result) ~= "table" then result = nil end
  local state = e.state
  local code = result and math.tointeger(result.exitCode)
  if not code and e.status then
    code = (e.status & 0x7f) ~= 0 and 128 + (e.status & 0x7f) or (e.status >> 8)
  end
  local special = STATE_ERRORS[state]
  if special then
    local message = special[2]:format(e.id)
    if e.reason ~= "" and e.reason ~= "None" then message = message .. " Slurm's reason: " .. e.reason .. "." end
    return { exitCode = code, errors = { { code = special[1], message = message } } }
  end
  if result then return result end
  return { exitCode = code, errors = { { code = "RunnerFailed", message = ("The Slurm job %s ended %s with exit code %s "
    .. "without a result from the job runner; see runner.log in %s."):format(e.id, state, tostring(code), rec.job_dir) } } }
end

-- A watched job Slurm no longer lists (purged after MinJobAge while the
-- endpoint was away, or an sbatch that timed out and submitted nothing).
function Slurm:resolve_missing(rec)
  local result = wire.decode(read(rec.job_dir .. "/result.json") or "")
  if type(result) == "table" then
    if not rec.started then
      rec.started = true
      self.ctx.started(rec.id, self:start_time(rec))
    end
    return self:finish(rec, result)
  end
  if rec.lost and not rec.slurm_id then
    return self:finish(rec, { errors = { { code = "SlurmSubmitFailed", message = ("sbatch failed (%s) and no Slurm job "
      .. "named %s exists."):format(rec.lost, rec.name) } } })
  end
  if rec.resolving then return end
  rec.resolving = true
  self:accounting(rec, function(e)
    rec.resolving = nil
    if rec.state ~= "submitted" then return end
    if e then
      if not rec.started and self:ran(rec, e) then
        rec.started = true
        self.ctx.started(rec.id, self:start_time(rec, e))
      end
      return self:finish(rec, self:outcome(rec, e))
    end
    self:finish(rec, { errors = { { code = "SlurmJobLost", message = ("Slurm no longer knows the job %s (%s) and it left "
      .. "no result in %s."):format(rec.slurm_id or "?", rec.name, rec.job_dir) } } })
  end)
end

-- Looks an ended job up in Slurm's accounting (sacct), else its job-completion
-- log (sacct -c).  cb(entry | nil); without cb, returns it.
function Slurm:accounting(rec, cb)
  local id = rec.slurm_id or trim(read(rec.job_dir .. "/slurm_id"))
  if id == "" then
    if cb then return cb(nil) end
    return nil
  end
  local function argv(extra)
    local a = { "sacct", "--noheader", "--parsable2", "--jobs=" .. id, "--format=JobID,JobName,State,ExitCode,Start,End" }
    if extra then table.insert(a, 2, extra) end
    return a
  end
  local function parse(ok, out)
    if not ok then return nil end
    for line in out:gmatch("[^\n]+") do
      local jid, name, state, code, sig, started, ended = line:match("^(%d+)|([^|]*)|(%u[%u_]*)[^|]*|(%d+):(%d+)|([^|]*)|([^|]*)$")
      if jid == id and name == rec.name then
        local c, s = tonumber(code), tonumber(sig)
        return { id = jid, state = state, status = (c << 8) | s, start = started, ["end"] = ended, reason = "" }
      end
    end
    return nil
  end
  if not cb then
    local e = parse(self:tool(argv()))
    return e or parse(self:tool(argv("--completion")))
  end
  self:tool(argv(), function(ok, out)
    local e = parse(ok, out)
    if e then return cb(e) end
    self:tool(argv("--completion"), function(ok2, out2) cb(parse(ok2, out2)) end)
  end)
end

-- Reports a job's end and forgets it; the plan (it holds secrets) is removed
-- when the runner never read it.
function Slurm:finish(rec, outcome)
  if rec.state == "done" then return end
  rec.state = "done"
  self.jobs[rec.id] = nil
  if self.by_name[rec.name] == rec then self.by_name[rec.name] = nil end
  os.remove(rec.job_dir .. "/plan.json")
  self.ctx.finished(rec.id, outcome)
end

-- ---- stopping --------------------------------------------------------------------

function Slurm:cancel(rec, signal)
  rec.cancelled = true
  local target = rec.slurm_id
  local argv
  if signal == "KILL" then
    argv = { "scancel", "--signal=KILL", "--full" }
  else
    argv = { "scancel" }
  end
  if target then
    argv[#argv + 1] = target
  else
    argv[#argv + 1] = "--name=" .. rec.name
  end
  self:tool(argv, function(ok, _, err)
    if not ok and not err:find("already completing or completed", 1, true) and not err:find("Invalid job id", 1, true)
      and not err:find("pending execution", 1, true) then
      self.ctx.log:event("slurm_cancel_failed", { job = rec.name, error = trim(err) }, "warn")
    end
  end)
  self:schedule_poll(math.min(self.poll_interval, 0.2))
end

function Slurm:stop(handle, signal)
  local rec = type(handle) == "table" and self.by_name[handle.name]
  if not rec or rec.state == "done" then return end
  rec.stop = signal
  if rec.state == "queued" then
    -- never handed to Slurm: nothing runs
    rec.state = "cancelled"
    return self:finish(rec, {})
  end
  if rec.state == "submitting" or (not rec.slurm_id and not rec.lost) then return end -- cancelled once sbatch answers
  self:cancel(rec, signal)
end

-- ---- restart -----------------------------------------------------------------------

-- One squeue for all the re-attachments of a restart (nil when it fails:
-- asked once, since a Slurm that does not answer makes each call wait long).
function Slurm:snapshot()
  if self.snap and sys.monotime() - self.snap.at < 5 then return self.snap.entries end
  local ok, out, err = self:tool(self:squeue_argv())
  if not ok then
    self.ctx.log:event("slurm_poll_failed", { cluster = self.cluster.name, error = trim(err) }, "warn")
  end
  self.snap = { at = sys.monotime(), entries = ok and self:parse_squeue(out) or nil }
  return self.snap.entries
end

function Slurm:reattach(job, handle)
  if type(handle) ~= "table" or type(handle.name) ~= "string" or type(handle.job_dir) ~= "string" then return nil end
  local rec = { id = job.id, name = handle.name, job_dir = handle.job_dir, state = "submitted",
    submitted_at = sys.monotime(), started = job.exec_state ~= "queued" }
  local id = trim(read(rec.job_dir .. "/slurm_id"))
  rec.slurm_id = id ~= "" and id or nil
  local entries = not self.unavailable and self:snapshot()
  local e = entries and entries[rec.name]
  if e then
    if rec.slurm_id ~= e.id then wire.write_file(rec.job_dir .. "/slurm_id", e.id .. "\n") end
    rec.slurm_id, rec.entry = e.id, e
    if not rec.started and (STARTED[e.state] or (TERMINAL[e.state] and self:ran(rec, e))) then
      rec.started = true
      self.ctx.started(rec.id, self:start_time(rec, e))
    end
    if TERMINAL[e.state] then
      os.remove(rec.job_dir .. "/plan.json")
      return self:outcome(rec, e)
    end
    self:add(rec)
    self:schedule_poll(self.poll_interval)
    return "running"
  end
  local result = wire.decode(read(rec.job_dir .. "/result.json") or "")
  if type(result) == "table" then
    if not rec.started then self.ctx.started(rec.id, self:start_time(rec)) end
    return result
  end
  if not entries then
    -- Slurm does not answer now: keep the job and find out later
    self:add(rec)
    self:schedule_poll(self.poll_interval)
    return "running"
  end
  local argv = wire.decode(read(rec.job_dir .. "/sbatch.json") or "")
  if not rec.slurm_id and sys.stat(rec.job_dir .. "/plan.json") and not sys.stat(rec.job_dir .. "/started")
    and type(argv) == "table" then
    -- the endpoint stopped before sbatch ran (or answered, but no such job exists): submit it now
    rec.argv = argv
    self:add(rec)
    self:submit(rec)
    return "running"
  end
  local acct = self:accounting(rec)
  if acct then
    if not rec.started and self:ran(rec, acct) then self.ctx.started(rec.id, self:start_time(rec, acct)) end
    return self:outcome(rec, acct)
  end
  os.remove(rec.job_dir .. "/plan.json")
  return nil
end

-- ---- the rest ----------------------------------------------------------------------

function Slurm:remote_login(handle)
  local rec = type(handle) == "table" and self.by_name[handle.name]
  local list = rec and rec.entry and rec.entry.nodes
  if not list or list == "" or list == "(null)" then return {} end
  local ok, out = self:tool({ "scontrol", "show", "hostnames", list })
  local nodes = {}
  for name in (ok and out or ""):gmatch("%S+") do
    local _, addr = self:tool({ "getent", "ahostsv4", name })
    nodes[#nodes + 1] = { nodeId = name, ipAddress = (addr or ""):match("^(%d+%.%d+%.%d+%.%d+)") or name, port = 22 }
  end
  return nodes
end

function Slurm:shutdown()
  self.closed = true
  if self.poll_timer then self.poll_timer.cancel() end
  self.poll_timer = nil
  for t in pairs(self.tools) do
    self.ctx.loop:unwatch(t.fd)
    proc.close(t.fd)
    t.timer.cancel()
  end
  self.tools = {}
end

return M

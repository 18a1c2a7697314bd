-- Submitting, resuming and watching a sweep: exp:submit(space, template, opts).
--
-- Every trial is planned (validated, named) before anything is submitted, and
-- recorded in the sweep's manifest (batchai.sweep.manifest).  Submission
-- compares the plan with the manifest and with the experiment's jobs (one list
-- pass): jobs that exist are adopted, the rest are created, at most
-- `concurrency` requests in flight and at most `max_running` of the sweep's
-- jobs queued or running on the endpoint at once.  Re-running a script after a
-- crash or Ctrl-C therefore submits only what is missing; a job re-sent whose
-- twin exists with the same properties counts as created (the client), one
-- with different properties is reported as a conflict.  Watching polls with
-- list calls, fetches each finished trial's metrics through listOutputFiles
-- download URLs, applies an early-stopping policy, and shows progress.
local plan_mod = require "batchai.sweep.plan"
local manifest_mod = require "batchai.sweep.manifest"
local naming = require "batchai.sweep.naming"
local results_mod = require "batchai.sweep.results"
local metrics_mod = require "batchai.sweep.metrics"
local progress_mod = require "batchai.sweep.progress"
local stopping = require "batchai.sweep.stopping"
local codec = require "batchai.sweep.codec"
local plugins = require "batchai.plugins"
local util = require "batchai.util"
local sys = require "batchai._sys"

local M = {}

local format, concat = string.format, table.concat

--- Defaults for every submit of this process; `bai sweep run` sets dry_run
-- and retry_failed from its options.
M.defaults = {}

local ACTIVE = { queued = true, running = true, terminating = true }
-- States in which the endpoint's job of that name is not the trial's own.
local NOT_OURS = { pending = true, conflict = true, rejected = true }
local TERMINAL = { succeeded = true, failed = true, conflict = true, rejected = true }
M.ACTIVE, M.TERMINAL = ACTIVE, TERMINAL

local OPTIONS = {
  name = true, job_name = true, concurrency = true, max_running = true, max_total = true,
  retry_failed = true, dry_run = true, progress = true, interval = true, metrics = true,
  early_stopping = true, on_state_change = true, dir = true, location = true, limit = true,
}

-- ---- small helpers ------------------------------------------------------------

local function client() return require "batchai.client" end
local function loop() return require "batchai.client.loop" end
local function summary(job) return require("batchai.client.codec").job_summary(job) end

--- Epoch seconds of an ISO-8601 / RFC 3339 time ("2018-05-01T10:20:30.5Z",
-- offsets allowed), or nil.
function M.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d%.?%d*)(.*)$")
  if not y then return nil end
  local t = util.utc_time(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec))
  if rest ~= "" and rest ~= "Z" and rest ~= "z" then
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    local offset = tonumber(oh) * 3600 + tonumber(om) * 60
    t = sign == "+" and t - offset or t + offset
  end
  return t + 0.0
end

local function check_opts(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(format("exp:submit: options must be a table, got %s", type(opts)), 4) end
  for k in pairs(opts) do
    if not OPTIONS[k] then
      error(format("invalid option '%s' to exp:submit%s", tostring(k), util.did_you_mean(tostring(k), OPTIONS)), 4)
    end
  end
  return opts
end

local function positive_integer(opts, key)
  local v = opts[key]
  if v ~= nil and (math.type(v) ~= "integer" or v < 1) then
    error(format("exp:submit: '%s' must be an integer >= 1, got %s", key, tostring(v)), 4)
  end
  return v
end

-- The types of the options that are not counts (those: positive_integer).
local METRICS_OPTIONS = { output = true, file = true, lines = true, stdout = true }
local function check_types(opts)
  local function bad(key, expected)
    error(format("exp:submit: '%s' must be %s, got %s", key, expected, type(opts[key])), 5)
  end
  for _, k in ipairs { "dir", "location" } do
    if opts[k] ~= nil and (type(opts[k]) ~= "string" or opts[k] == "") then bad(k, "a non-empty string") end
  end
  if opts.interval ~= nil and (type(opts.interval) ~= "number" or not (opts.interval > 0)) then
    bad("interval", "a number of seconds > 0")
  end
  if opts.on_state_change ~= nil and type(opts.on_state_change) ~= "function" then
    bad("on_state_change", "a function(job_name, new_state, old_state, job)")
  end
  if opts.progress ~= nil and type(opts.progress) ~= "boolean" and opts.progress ~= "plain" then
    bad("progress", 'true, false or "plain"')
  end
  for _, k in ipairs { "dry_run", "retry_failed" } do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then bad(k, "a boolean") end
  end
  local metrics = opts.metrics
  if metrics == nil then return end
  if type(metrics) ~= "table" then bad("metrics", "a table { output =, file =, lines =, stdout = }") end
  for k, v in pairs(metrics) do
    if not METRICS_OPTIONS[k] then
      error(format("exp:submit: unknown key 'metrics.%s'%s", tostring(k), util.did_you_mean(tostring(k), METRICS_OPTIONS)), 4)
    end
    if k == "stdout" then
      if type(v) ~= "table" then error(format("exp:submit: 'metrics.stdout' must be a table of metric = Lua pattern, got %s", type(v)), 4) end
      for metric, pattern in pairs(v) do
        if type(metric) ~= "string" or type(pattern) ~= "string" then
          error(format("exp:submit: 'metrics.stdout' must map metric names to Lua patterns (strings), got %s = %s",
            tostring(metric), type(pattern)), 4)
        end
      end
    elseif type(v) ~= "string" or v == "" then
      error(format("exp:submit: 'metrics.%s' must be a non-empty string, got %s", k, type(v)), 4)
    end
  end
end

local function describe_experiment(exp)
  local ws = exp.workspace
  return format("%s/%s/%s", ws.resource_group, ws.name, exp.name)
end

-- The coordinates written into the manifest header (no endpoint, no token:
-- those come from the configuration of whoever reads the sweep later).
local function coordinates(exp)
  local ws = exp.workspace
  return { subscription = ws.subscription, resource_group = ws.resource_group, workspace = ws.name, experiment = exp.name }
end

--- The experiment a manifest header names.
function M.experiment_of(header)
  local e = header.experiment or {}
  return client().experiment { subscription = e.subscription, resource_group = e.resource_group,
    workspace = e.workspace, name = e.experiment }
end

-- ---- the Run object --------------------------------------------------------------

local Run = {}
Run.__index = Run
Run.__name = "batchai.sweep.Run"
M.Run = Run

function Run.__tostring(run)
  local counts = run:counts()
  local parts = {}
  for _, s in ipairs(util.sorted_keys(counts)) do
    if s ~= "total" then parts[#parts + 1] = format("%d %s", counts[s], s) end
  end
  return format("batchai.sweep.Run(%s: %d trials; %s)", run.name, counts.total, concat(parts, ", "))
end

--- Counts of the sweep's current trials by state (early-stopped ones as
-- "stopped"), plus total.
function Run:counts()
  return self.manifest:counts()
end

function Run:trials()
  local out = {}
  for _, record in ipairs(self.manifest:trials()) do
    if not record.stale then out[#out + 1] = record end
  end
  return out
end

-- Shows progress at most every 0.2 s (counting is a pass over the trials).
local function show_progress(run, phase, force)
  local now = sys.monotime()
  if not force and run.progress_shown and now - run.progress_shown < 0.2 then return end
  run.progress_shown = now
  run.progress:update(run:counts(), phase, force)
end

local function active_count(run)
  local n = 0
  for _, record in ipairs(run.manifest:trials()) do
    if not record.stale and ACTIVE[record.state] then n = n + 1 end
  end
  return n
end

-- The output directory id holding a trial's metrics files.
local function metrics_dir(run, record)
  local m = run.metrics_opts
  if m.output then return m.output end
  local dir = run.output_dirs and run.output_dirs[record.name]
  if dir ~= nil then return dir or nil end
  return record.output_dir
end

-- Tells the script's on_state_change and the plugins' hook of a change.
local function state_changed(run, job_name, new, old, job)
  if run.on_state_change then
    local ok, err = pcall(run.on_state_change, job_name, new, old, job)
    if not ok then io.stderr:write("bai: sweep ", run.name, ": on_state_change failed: ", tostring(err), "\n") end
  end
  if plugins.has_handlers("on_state_change") then plugins.emit("on_state_change", job_name, new, old, job) end
end

-- Queues a finished trial for fetch_pending_metrics, once.  A trial can be
-- queued twice (seen ending by a list pass, then found not yet fetched), and
-- two fetches of one trial in flight together download to the same file: the
-- second rename fails and the trial's metrics are lost.
local function queue_fetch(run, name)
  local queue = run.to_fetch
  if queue[name] then return end
  queue[name] = true
  queue[#queue + 1] = name
end

-- Records what the endpoint says of a job; emits state-change hooks.
local function observe(run, record, job)
  local s = summary(job)
  local fields = {}
  local old = record.state
  if s.state and s.state ~= old then fields.state = s.state end
  local started, ended = M.parse_time(s.started), M.parse_time(s.ended)
  if started and started ~= record.started then fields.started = started end
  if ended and ended ~= record.ended then fields.ended = ended end
  if s.exit_code ~= nil and s.exit_code ~= record.exit_code then fields.exit_code = s.exit_code end
  if s.errors and #s.errors > 0 and TERMINAL[s.state] then
    local e = s.errors[1]
    local message = type(e) == "table" and (e.message or e.code) or tostring(e)
    if message and message ~= record.error then fields.error = message end
  end
  if next(fields) == nil then return false end
  run.manifest:update(record.name, fields)
  if fields.state then
    local job_name = record.job or record.name
    state_changed(run, job_name, fields.state, old, job)
    if fields.state == "failed" and not record.stopped then
      local why = record.error or (record.exit_code ~= nil and ("exit code " .. tostring(record.exit_code))) or "failed"
      run.progress:event(format("sweep %s: trial %d %s failed: %s", run.name, record.index or 0, job_name, why))
    end
    if TERMINAL[fields.state] then queue_fetch(run, record.name) end
  end
  return true
end

--- One list pass over the experiment's jobs: updates every trial's record.
-- Returns true, or nil and the client's error.
function Run:refresh()
  local by_job = {}
  for _, record in ipairs(self.manifest:trials()) do
    if not record.stale and not NOT_OURS[record.state or "pending"] then by_job[record.job or record.name] = record end
  end
  local ok, err = pcall(function()
    self.manifest:batch(function()
      for job in self.exp:jobs() do
        local name = summary(job).name
        local record = name and by_job[name]
        if record then observe(self, record, job) end
      end
    end)
  end)
  self.last_refresh = sys.monotime()
  if not ok then return nil, err end
  return true
end

-- Downloads one output file of a job to `path`; nil when it is absent.
local function download(run, job_name, dir_id, file_name, path, cache)
  local url = cache and cache[job_name .. "\0" .. file_name]
  if not url then
    local files, err = run.exp:output_files(job_name, dir_id)
    if not files then return nil, err end
    for _, f in ipairs(files) do
      local name = f.name
      if name == file_name or (name and name:match("[^/]+$") == file_name) then url = f.downloadUrl end
    end
    if not url then return nil end
    if cache then cache[job_name .. "\0" .. file_name] = url end
  end
  local ok, err = run.exp:download(url, path)
  if not ok then
    if cache then cache[job_name .. "\0" .. file_name] = nil end
    return nil, err
  end
  return true
end

-- Fetches a finished trial's metrics (final JSON, JSON lines, stdout
-- patterns) into its record.  Never raises; problems go into `metrics_error`.
-- A download that failed (not a file that is absent or unreadable) leaves
-- the trial not fetched, so the next run or `bai sweep results` tries again.
local function fetch_metrics(run, record)
  local m = run.metrics_opts
  local job_name = record.job or record.name
  local dir_id = metrics_dir(run, record)
  local values, problems, failed = {}, {}, false
  local curves_dir = run.manifest.dir .. "/curves"
  if dir_id then
    sys.mkdir(curves_dir, 493, true)
    local final_path = curves_dir .. "/" .. job_name .. ".json"
    local ok, err = download(run, job_name, dir_id, m.file or metrics_mod.FINAL, final_path)
    if ok then
      local final, perr = metrics_mod.parse_final(util.read_file(final_path) or "")
      os.remove(final_path)
      if final then for k, v in pairs(final) do values[k] = v end
      else problems[#problems + 1] = (m.file or metrics_mod.FINAL) .. ": " .. tostring(perr) end
    elseif err then
      problems[#problems + 1] = tostring(err)
      failed = true
    end
    local lines_path = curves_dir .. "/" .. job_name .. ".jsonl"
    ok, err = download(run, job_name, dir_id, m.lines or metrics_mod.LINES, lines_path)
    if ok then
      if next(values) == nil then
        values = metrics_mod.last_values((metrics_mod.parse_lines(util.read_file(lines_path) or "")))
        values.step = nil
      end
    elseif err then
      problems[#problems + 1] = tostring(err)
      failed = true
    end
  end
  if m.stdout then
    local path = curves_dir .. "/" .. job_name .. ".stdout"
    sys.mkdir(curves_dir, 493, true)
    local ok, err = download(run, job_name, "stdouterr", "stdout.txt", path)
    if ok then
      for k, v in pairs(metrics_mod.from_text(util.read_file(path) or "", m.stdout)) do
        if values[k] == nil then values[k] = v end
      end
      os.remove(path)
    elseif err then
      problems[#problems + 1] = tostring(err)
      failed = true
    end
  end
  local fields, unset = {}, {}
  if failed then unset[#unset + 1] = "metrics_fetched" else fields.metrics_fetched = true end
  if next(values) ~= nil then fields.metrics = values end
  if #problems > 0 then fields.metrics_error = problems[1] else unset[#unset + 1] = "metrics_error" end
  run.manifest:update(record.name, fields, unset)
end

-- Queues every ended trial of the sweep's own whose metrics were not fetched
-- (the run that saw it end died first, or its download failed).
local function queue_unfetched(run)
  for _, record in ipairs(run:trials()) do
    if TERMINAL[record.state] and not NOT_OURS[record.state] and not record.metrics_fetched then
      queue_fetch(run, record.name)
    end
  end
end

-- Fetches the metrics of every queued trial (queue_fetch), concurrently.
local function fetch_pending_metrics(run)
  local names = run.to_fetch
  run.to_fetch = {}
  if #names == 0 then return end
  local L = loop()
  L.map(names, function(name)
    local record = run.manifest:trial(name)
    if record then fetch_metrics(run, record) end
    return true
  end, { concurrency = run.concurrency })
end

-- Early stopping: downloads the intermediate metrics of running trials,
-- asks the policy, terminates the trials it names and records why.
local function apply_stopping(run)
  local policy = run.policy
  if not policy then return end
  local running, all = {}, {}
  for _, record in ipairs(run:trials()) do
    if record.state == "running" and not record.stopped then running[#running + 1] = record end
  end
  local curves_dir = run.manifest.dir .. "/curves"
  sys.mkdir(curves_dir, 493, true)
  local L = loop()
  L.map(running, function(record)
    local job_name = record.job or record.name
    local dir_id = metrics_dir(run, record)
    if dir_id then
      download(run, job_name, dir_id, run.metrics_opts.lines or metrics_mod.LINES, curves_dir .. "/" .. job_name .. ".jsonl", run.url_cache)
    end
    return true
  end, { concurrency = run.concurrency })
  local by_name = {}
  for _, record in ipairs(run:trials()) do
    if record.state ~= "pending" then
      local job_name = record.job or record.name
      local text = util.read_file(curves_dir .. "/" .. job_name .. ".jsonl")
      local series = text and metrics_mod.series((metrics_mod.parse_lines(text)), policy.metric) or {}
      local t = { name = record.name, running = record.state == "running" and not record.stopped, series = series }
      all[#all + 1] = t
      by_name[record.name] = record
    end
  end
  local decisions = policy:decide(all)
  for _, d in ipairs(decisions) do
    local record = by_name[d.name]
    local job_name = record.job or record.name
    run.manifest:update(record.name, { stopped = { policy = policy.kind, reason = d.reason, step = d.step, time = sys.now() } })
    run.progress:event(format("sweep %s: stopping trial %d %s: %s", run.name, record.index or 0, job_name, d.reason))
    local ok, err = run.exp:terminate_job(job_name, { wait = false })
    if not ok then
      run.progress:event(format("sweep %s: could not terminate %s: %s", run.name, job_name, tostring(err)))
    end
  end
end

local function finished(run)
  for _, record in ipairs(run:trials()) do
    if not TERMINAL[record.state or "pending"] then return false end
  end
  return true
end

--- Waits until every trial has ended (or opts.timeout seconds passed),
-- watching with list calls every opts.interval seconds (default: the submit's),
-- fetching metrics and applying early stopping.  Returns true, or nil and an
-- error (a timeout says how many trials still run).
--   opts: timeout, interval, progress (false to hide)
function Run:wait(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #1 to 'wait' (table expected)", 2) end
  for k in pairs(opts) do
    if k ~= "timeout" and k ~= "interval" and k ~= "progress" then
      error(format("invalid option '%s' to run:wait%s", tostring(k), util.did_you_mean(tostring(k), { "timeout", "interval", "progress" })), 2)
    end
  end
  for _, k in ipairs { "timeout", "interval" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or not (v >= 0) or (k == "interval" and v == 0)) then
      error(format("run:wait: '%s' must be a number of seconds %s, got %s", k, k == "interval" and "> 0" or ">= 0", tostring(v)), 2)
    end
  end
  local interval = opts.interval or self.interval
  local deadline = opts.timeout and (sys.monotime() + opts.timeout)
  if opts.progress ~= nil then self.progress.enabled = opts.progress and true or false end
  local L = loop()
  while true do
    local ok, err = self:refresh()
    if not ok then
      self.progress:finish(self:counts(), "watching")
      return nil, err
    end
    fetch_pending_metrics(self)
    apply_stopping(self)
    self.progress:update(self:counts(), "watching")
    if finished(self) then break end
    if deadline and sys.monotime() >= deadline then
      local counts = self:counts()
      self.progress:finish(counts, "watching")
      local left = counts.total
      for state, n in pairs(counts) do if TERMINAL[state] or state == "stopped" then left = left - n end end
      return nil, setmetatable({ code = "Timeout", message = format("sweep %s: %d of %d trials still running after %g s", self.name, left, counts.total, opts.timeout) },
        { __tostring = function(e) return e.message end })
    end
    L.sleep(interval)
  end
  -- Once more for the trials whose metrics download failed.
  queue_unfetched(self)
  fetch_pending_metrics(self)
  local counts = self:counts()
  self.progress:finish(counts, "done")
  self.manifest:compact()
  if not self.ended_emitted and plugins.has_handlers("on_sweep_end") then
    self.ended_emitted = true
    plugins.emit("on_sweep_end", self, counts)
  end
  return true
end

--- The results table (batchai.sweep.results): parameters, state, exit code,
-- duration and metrics of every trial.
function Run:results()
  return results_mod.from_manifest(self.manifest)
end

--- Terminates every trial still queued or running.  Returns the number terminated.
function Run:cancel()
  return M.cancel(self.exp, self.manifest, self.concurrency)
end

--- Releases the manifest (final snapshot, lock).
function Run:close()
  return self.manifest:close()
end

-- ---- dry run ---------------------------------------------------------------------

local DryRun = {}
DryRun.__index = DryRun
DryRun.__name = "batchai.sweep.DryRun"

function DryRun:wait() return true end
function DryRun:counts() return { total = #self.plan, pending = #self.plan } end
function DryRun:close() return true end
function DryRun:cancel() return 0 end
function DryRun:results()
  local rows = {}
  for i, t in ipairs(self.plan.trials) do
    rows[i] = results_mod.row({ index = t.index, name = t.name, point = self.plan:point(t), state = "pending" }, self.plan.keys)
  end
  return results_mod.new(rows, self.plan.keys)
end
function DryRun.__tostring(d) return format("batchai.sweep.DryRun(%s: %d trials, nothing submitted)", d.name, #d.plan) end

-- ---- submitting ------------------------------------------------------------------

-- Makes sure the experiment (and its workspace) exist.
local function ensure_experiment(exp, location)
  local got, err = exp:get()
  if got then return true end
  if err and err.status ~= 404 then return nil, err end
  local created, cerr = exp:create()
  if created then return true end
  if cerr and (cerr.status == 404 or cerr.code == "ParentResourceNotFound" or cerr.code == "ResourceNotFound") then
    local ws_ok, ws_err = exp.workspace:create { location = location or "local" }
    if not ws_ok then return nil, ws_err end
    created, cerr = exp:create()
    if created then return true end
  end
  return nil, cerr
end

-- Brings the manifest in line with the plan: new trials added, changed ones
-- refused (when already submitted), vanished ones marked stale.
local function merge_plan(m, plan, sweep)
  local changed = {}
  local in_plan = {}
  m:batch(function()
    for _, t in ipairs(plan.trials) do
      in_plan[t.name] = true
      local record = m:trial(t.name)
      local point = plan:point(t)
      if not record then
        m:update(t.name, { index = t.index, hash = t.hash, point = point, state = "pending", attempt = 0 })
      elseif record.hash ~= t.hash then
        if record.state == "pending" and not record.history then
          m:update(t.name, { index = t.index, hash = t.hash, point = point })
        else
          changed[#changed + 1] = t
        end
      else
        local fields = {}
        if record.index ~= t.index then fields.index = t.index end
        if record.stale then fields.stale = false end
        if next(fields) then m:update(t.name, fields) end
      end
    end
    for _, name in ipairs(m.order) do
      local record = m:trial(name)
      if not in_plan[name] and not record.stale then m:update(name, { stale = true }) end
    end
  end)
  if #changed > 0 then
    local t = changed[1]
    return nil, format("sweep %s: %d trial%s changed since %s submitted (first: trial %d '%s' now gives a different job); "
      .. "give the sweep a new name, or delete it first (bai sweep delete %s)",
      sweep, #changed, #changed == 1 and "" or "s", #changed == 1 and "it was" or "they were", t.index, t.name, sweep)
  end
  return true
end

local GONE = "job gone from the endpoint; results kept"

-- Adopts what the endpoint already has (one list pass) and finds the trials
-- to submit: pending ones, and submitted ones whose job has vanished before
-- it ended (an ended one keeps its results, noted as gone).
local function reconcile(run)
  local by_job, seen = {}, {}
  for _, record in ipairs(run:trials()) do by_job[record.job or record.name] = record end
  local ok, err = pcall(function()
    run.manifest:batch(function()
      for job in run.exp:jobs() do
        local name = summary(job).name
        local record = name and by_job[name]
        if record then
          seen[name] = true
          -- A pending trial whose job exists was created by an earlier run
          -- that died before recording it (or by someone else): the create
          -- below re-sends it, which adopts the job when it is the same and
          -- reports a conflict otherwise.  Conflicts stay reported.
          if not NOT_OURS[record.state or "pending"] then
            observe(run, record, job)
            if TERMINAL[record.state] and not record.metrics_fetched then queue_fetch(run, record.name) end
          end
        end
      end
    end)
  end)
  if not ok then return nil, err end
  local gone = 0
  run.manifest:batch(function()
    for job_name, record in pairs(by_job) do
      if not seen[job_name] and not NOT_OURS[record.state or "pending"] then
        if not TERMINAL[record.state] then
          run.manifest:update(record.name, { state = "pending", note = "its job had vanished from the endpoint" })
        elseif record.note ~= GONE then
          -- Ended, and deleted since (or the endpoint's state was reset): its
          -- results stay; it is not run again.
          run.manifest:update(record.name, { note = GONE })
          gone = gone + 1
        end
      end
    end
  end)
  if gone > 0 then
    run.progress:event(format("sweep %s: the jobs of %d ended trial%s are no longer on the endpoint; their results are kept "
      .. "(bai sweep delete %s --keep-jobs starts the sweep over)", run.name, gone, gone == 1 and "" or "s", run.name))
  end
  return true
end

-- Turns failed trials into new attempts (NAME-rN), keeping their history.
local function retry_failed(run)
  local n = 0
  run.manifest:batch(function()
    for _, record in ipairs(run:trials()) do
      if record.state == "failed" and not record.stopped then
        local attempt = (record.attempt or 0) + 1
        local history = {}
        for i, h in ipairs(record.history or {}) do history[i] = h end
        history[#history + 1] = { job = record.job or record.name, state = record.state, exit_code = record.exit_code,
          error = record.error, started = record.started, ended = record.ended, metrics = record.metrics }
        run.manifest:update(record.name, { attempt = attempt, job = naming.retry_name(record.name, attempt),
          state = "pending", history = codec.array(history) },
          { "exit_code", "error", "started", "ended", "metrics", "metrics_fetched", "metrics_error", "submitted" })
        n = n + 1
      end
    end
  end)
  return n
end

-- Submits every pending trial: `concurrency` creates in flight, at most
-- `max_running` of the sweep's jobs queued or running on the endpoint.
local function submit_pending(run, plan)
  local L = loop()
  local position = {}
  for k, t in ipairs(plan.trials) do position[t.name] = k end
  local pending = {}
  for _, record in ipairs(run:trials()) do
    if record.state == "pending" then pending[#pending + 1] = record end
  end
  run.progress.total = #plan.trials
  if #pending == 0 then return true, 0 end
  local pool = L.pool { concurrency = run.concurrency }
  run.active = active_count(run)
  local inflight, failures, submitted = 0, {}, 0
  local max_running = run.max_running
  for _, record in ipairs(pending) do
    if max_running then
      while run.active + inflight >= max_running do
        local wait = run.interval - (sys.monotime() - (run.last_refresh or -math.huge))
        if wait > 0 then L.sleep(wait) end
        local ok, err = run:refresh()
        if not ok then failures[#failures + 1] = err break end
        run.active = active_count(run)
        fetch_pending_metrics(run)
        apply_stopping(run)
        show_progress(run, "submitting")
      end
      if #failures > 0 then break end
    end
    local job_name = record.job or record.name
    local job = plan:job(position[record.name])
    inflight = inflight + 1
    pool:spawn(function()
      local ok, err = run.exp:create_job(job_name, job, { wait = false, decode = false })
      inflight = inflight - 1
      if ok then
        submitted = submitted + 1
        run.active = run.active + 1
        run.manifest:update(record.name, { state = "queued", job = job_name, submitted = sys.now(),
          output_dir = run.output_dirs[record.name] or nil }, { "note" })
        state_changed(run, job_name, "queued", nil, nil)
      elseif err and err.status == 409 then
        run.manifest:update(record.name, { state = "conflict", job = job_name,
          error = format("a different job named '%s' already exists in the experiment: %s", job_name, err.message or tostring(err)) })
        run.progress:event(format("sweep %s: trial %d %s: conflict: a different job with this name exists", run.name, record.index, job_name))
      elseif err and err.status and err.status >= 400 and err.status < 500 and err.status ~= 408 and err.status ~= 429 then
        run.manifest:update(record.name, { state = "rejected", job = job_name, error = tostring(err) })
        run.progress:event(format("sweep %s: trial %d %s rejected: %s", run.name, record.index, job_name, tostring(err)))
      else
        failures[#failures + 1] = err
        run.manifest:update(record.name, { note = "not submitted: " .. tostring(err) })
      end
      show_progress(run, "submitting")
    end)
  end
  pool:wait()
  if #failures > 0 then
    return nil, format("sweep %s: %d trial%s could not be submitted (first error: %s); run the script again to submit the rest",
      run.name, #failures, #failures == 1 and "" or "s", tostring(failures[1]))
  end
  return true, submitted
end

--- exp:submit(space, template, opts) -> run.  Plans every trial (raising on
-- the first invalid job, or on a name collision, before anything is
-- submitted), then submits what the endpoint lacks and returns once every
-- trial is submitted.  With dry_run (or `bai sweep run --dry-run`), prints the
-- preview and returns a run that submits nothing (its `dry_run` field is true,
-- its trials all pending).
--   opts: name (the sweep's; default the experiment's name), job_name
--   (template), concurrency (requests in flight, default 16), max_running,
--   max_total, retry_failed, dry_run, progress (default: on a terminal),
--   interval (seconds between list calls, default 2), metrics = { output =
--   dir id, file =, lines =, stdout = { metric = pattern } }, early_stopping
--   (a bai.sweep.median/bandit/truncation policy), on_state_change =
--   function(job_name, new, old, job), dir (where .bai/sweeps is), location
--   (of a workspace it must create), limit (rows of a dry-run preview).
function M.submit(exp, space, template, opts)
  opts = check_opts(opts)
  local merged = {}
  for k, v in pairs(M.defaults) do merged[k] = v end
  for k, v in pairs(opts) do merged[k] = v end
  opts = merged
  local name = opts.name or exp.name
  if not naming.valid(name) then
    error(format("exp:submit: sweep name '%s' is invalid: 1 to 64 letters, digits, '-' or '_' (a job name template goes in 'job_name')",
      tostring(name)), 3)
  end
  positive_integer(opts, "concurrency")
  positive_integer(opts, "max_running")
  positive_integer(opts, "max_total")
  positive_integer(opts, "limit")
  if opts.early_stopping ~= nil and not stopping.is_policy(opts.early_stopping) then
    error("exp:submit: 'early_stopping' must be a policy (bai.sweep.median, bandit or truncation)", 3)
  end

  check_types(opts)
  local args_ok, checked = pcall(plan_mod.check_args, space, template, { job_name = opts.job_name }, "exp:submit")
  if not args_ok then error(checked, 3) end
  space = checked

  local build_opts = { name = name, job_name = opts.job_name, max_total = opts.max_total }
  if opts.dry_run then
    build_opts.all_errors = true
    local plan, err = plan_mod.build(space, template, build_opts)
    if not plan then error(err, 3) end
    io.stdout:write(plan:preview_text { target = "experiment " .. describe_experiment(exp), limit = opts.limit }, "\n")
    return setmetatable({ name = name, plan = plan, exp = exp, dry_run = true }, DryRun)
  end

  local plan, err = plan_mod.build(space, template, build_opts)
  if not plan then error(err, 3) end

  local header = {
    experiment = coordinates(exp), keys = codec.array(plan.keys), count = #plan.trials,
    space = plan.space:describe(), script = arg and arg[0] and (sys.realpath(arg[0]) or arg[0]) or nil,
    job_name = type(opts.job_name) == "string" and opts.job_name or nil,
  }
  local m, merr = manifest_mod.open(name, header, { dir = opts.dir })
  if not m then error(merr, 3) end
  local same_experiment = m.header.experiment
  if same_experiment and same_experiment.experiment and (same_experiment.experiment ~= exp.name
    or same_experiment.workspace ~= exp.workspace.name) then
    m:close()
    error(format("sweep %s belongs to experiment %s/%s, not %s/%s; give this sweep another name",
      name, same_experiment.workspace, same_experiment.experiment, exp.workspace.name, exp.name), 3)
  end
  -- The metrics options are kept so that `bai sweep results` can fetch the
  -- metrics of trials that ended after the script stopped watching.
  local metrics_opts = {}
  for _, k in ipairs { "output", "file", "lines" } do
    if type((opts.metrics or {})[k]) == "string" then metrics_opts[k] = opts.metrics[k] end
  end
  if type((opts.metrics or {}).stdout) == "table" then metrics_opts.stdout = opts.metrics.stdout end
  m:set_header { keys = header.keys, count = header.count, space = header.space, script = header.script,
    job_name = header.job_name, experiment = header.experiment, metrics = metrics_opts }

  local ok, perr = merge_plan(m, plan, name)
  if not ok then m:close(); error(perr, 3) end

  local settings = exp.ctx and exp.ctx.settings or {}
  local run = setmetatable({
    name = name, exp = exp, manifest = m, plan = plan,
    concurrency = opts.concurrency or settings.concurrency or 16,
    max_running = opts.max_running,
    interval = opts.interval or 2,
    metrics_opts = opts.metrics or {},
    policy = opts.early_stopping,
    on_state_change = opts.on_state_change,
    to_fetch = {}, url_cache = {},
  }, Run)
  run.progress = progress_mod.new { name = name, total = #plan.trials, enabled = opts.progress ~= false,
    live = opts.progress == "plain" and false or nil }

  -- Where each trial's metrics are: the job's first output directory.
  run.output_dirs = {}
  for k, t in ipairs(plan.trials) do
    local dirs = plan.jobs and plan.jobs[k] and plan.jobs[k].outputDirectories
    if dirs == nil and not plan.jobs then
      local job_ok, job = pcall(plan.job, plan, k)
      dirs = job_ok and job.outputDirectories or nil
    end
    run.output_dirs[t.name] = dirs and dirs[1] and dirs[1].id or false
  end

  local exp_ok, exp_err = ensure_experiment(exp, opts.location)
  if not exp_ok then m:close(); error(format("sweep %s: %s", name, tostring(exp_err)), 3) end

  if plugins.has_handlers("on_sweep_start") then plugins.emit("on_sweep_start", run) end

  local rec_ok, rec_err = reconcile(run)
  if not rec_ok then m:close(); error(format("sweep %s: %s", name, tostring(rec_err)), 3) end
  if opts.retry_failed then
    local n = retry_failed(run)
    run.progress:event(format("sweep %s: retrying %d failed trial%s", name, n, n == 1 and "" or "s"))
  end

  local sub_ok, sub_err = submit_pending(run, plan)
  if not sub_ok then
    run.progress:finish(run:counts(), "submitting")
    m:compact()
    error(sub_err, 3)
  end
  fetch_pending_metrics(run)
  run.progress:update(run:counts(), "submitted", true)
  m:compact()
  return run
end

-- ---- whole-sweep operations (bai sweep status|cancel|delete) -------------------------

--- Terminates every trial of a manifest still queued or running (after a
-- refresh).  Returns the number of jobs terminated, or nil, err.
function M.cancel(exp, m, concurrency)
  local names = {}
  for _, record in ipairs(m:trials()) do
    if ACTIVE[record.state] and not record.stale then names[#names + 1] = record end
  end
  local errors = {}
  loop().map(names, function(record)
    local ok, err = exp:terminate_job(record.job or record.name, { wait = false })
    if ok then
      m:update(record.name, { cancelled = sys.now() })
    else
      errors[#errors + 1] = err
    end
    return true
  end, { concurrency = concurrency or 16 })
  if #errors > 0 then return nil, errors[1] end
  return #names
end

--- Refreshes a manifest's records from the endpoint (one list pass), as
-- `bai sweep status` does.  Returns true and a run that can fetch the
-- metrics of ended trials (with the manifest's metrics options, 16 at a
-- time), or nil, err.
function M.refresh(exp, m)
  local run = setmetatable({ name = m.header.name, exp = exp, manifest = m, to_fetch = {},
    metrics_opts = m.header.metrics or {}, concurrency = 16,
    progress = progress_mod.new { name = m.header.name, enabled = false }, url_cache = {} }, Run)
  local ok, err = run:refresh()
  if not ok then return nil, err end
  return true, run
end

M.observe = observe
M.fetch_metrics = fetch_metrics
M.queue_fetch = queue_fetch
M.queue_unfetched = queue_unfetched
M.fetch_pending_metrics = fetch_pending_metrics

return M

-- From points to trials: runs the template on every point, validates each job,
-- hashes its content, names it, and refuses name collisions, all before
-- anything is submitted.  Also the preview (dry run) of a sweep.
local codec = require "batchai.sweep.codec"
local naming = require "batchai.sweep.naming"
local space_mod = require "batchai.sweep.space"
local tabulate = require "batchai.sweep.tabulate"
local schema = require "batchai.schema"
local util = require "batchai.util"

local M = {}

local format, concat = string.format, table.concat

--- The content hash of a JobProperties value (16 hex digits): of its create
-- body, which the schema writes with fields in the spec's order (the same
-- text on every run, and the text the client sends, which the schema caches).
function M.hash(job)
  return codec.hash(job:to_json())
end

local function point_text(p, keys)
  local ok, text = pcall(codec.encode, p, { order = keys })
  if ok then return text end
  return tostring(p)
end

-- Runs the template on point p (trial i) and checks its result: a
-- JobProperties value, or a plain table that validates as one.  Returns the
-- typed job, or nil and a message naming the trial.
local function make_job(template, p, i, keys)
  local ok, job = pcall(template, p, i)
  local where = format("trial %d %s", i, point_text(p, keys))
  if not ok then return nil, format("%s: the template failed: %s", where, tostring(job)) end
  if type(job) ~= "table" then
    return nil, format("%s: the template returned %s (a JobProperties value is needed)", where, job == nil and "nothing" or type(job))
  end
  local kind = schema.type_of(job)
  if kind == nil and getmetatable(job) == nil then
    local typed, errs = schema.check(job, "JobProperties")
    if not typed then return nil, format("%s: %s", where, tostring(errs)) end
    job = typed
  elseif kind ~= "JobProperties" then
    return nil, format("%s: the template returned a %s value (a JobProperties value is needed)", where, kind or "non-job table")
  end
  return job
end

-- The options of build, and those preview adds.
local BUILD_OPTIONS = { name = true, job_name = true, max_total = true, keep_jobs = true, all_errors = true }
local PREVIEW_OPTIONS = { limit = true, output = true, target = true }
for k in pairs(BUILD_OPTIONS) do PREVIEW_OPTIONS[k] = true end

--- Checks the arguments of `fname` (space, template, options among
-- `allowed`, default build's); raises without a position on misuse, naming
-- the parameter.  Returns the space (a table of parameters made a grid).
function M.check_args(space, template, opts, fname, allowed)
  if not space_mod.is_space(space) and not (type(space) == "table" and getmetatable(space) == nil) then
    error(format("%s: 'space' must be a space or a table of parameters, got %s", fname,
      space_mod.is_domain(space) and tostring(space) or type(space)), 0)
  end
  space = space_mod.to_space(space, fname)
  if type(template) ~= "function" then
    error(format("%s: 'template' must be a function(point) returning a job, got %s", fname, type(template)), 0)
  end
  if opts == nil then return space end
  if type(opts) ~= "table" then error(format("%s: options must be a table, got %s", fname, type(opts)), 0) end
  allowed = allowed or BUILD_OPTIONS
  for k in pairs(opts) do
    if not allowed[k] then
      error(format("%s: unknown option '%s'%s", fname, tostring(k), util.did_you_mean(tostring(k), allowed)), 0)
    end
  end
  if opts.name ~= nil and not naming.valid(opts.name) then
    error(format("%s: 'name' (the sweep's) must be 1 to 64 letters, digits, '-' or '_', got %s", fname,
      type(opts.name) == "string" and format("%q", opts.name) or type(opts.name)), 0)
  end
  for _, k in ipairs { "max_total", "limit" } do
    local v = opts[k]
    if v ~= nil and (math.type(v) ~= "integer" or v < 1) then
      error(format("%s: '%s' must be an integer >= 1, got %s", fname, k, tostring(v)), 0)
    end
  end
  if opts.output ~= nil and not (io.type(opts.output) == "file" or (type(opts.output) == "table" and type(opts.output.write) == "function")) then
    error(format("%s: 'output' must be a file (or a table with a write method), got %s", fname, type(opts.output)), 0)
  end
  local ok, err = pcall(naming.compile, opts.job_name or "x")
  if not ok then error(format("%s: 'job_name': %s", fname, err), 0) end
  return space
end

local Plan = {}
Plan.__index = Plan
Plan.__name = "batchai.sweep.Plan"

--- Builds the trials of a sweep.
--   space     a Space (or a table of parameters, made a grid)
--   template  function(point, index) -> JobProperties (or a plain table)
--   opts      name = the sweep's name (default "sweep"), job_name = template
--             string or function, max_total = cap on trials, keep_jobs = keep
--             the job values (default: when at most 1,000 trials; larger plans rebuild each job from its point when submitting it),
--             all_errors = collect every invalid trial instead of stopping at
--             the first.
-- Returns the plan, or nil and an error message (the first problem found, or
-- with all_errors a summary of them all).
function M.build(space, template, opts)
  opts = opts or {}
  space = space_mod.to_space(space, "sweep")
  if type(template) ~= "function" then
    return nil, format("the template must be a function(point) returning a job, got %s", type(template))
  end
  local sweep_name = opts.name or "sweep"
  local ok, name_fn = pcall(naming.compile, opts.job_name or naming.default_template(sweep_name))
  if not ok then return nil, name_fn end
  if not space.finite then
    local count_ok, err = pcall(space.count, space)
    if count_ok then
      return nil, "the space cannot be enumerated: it contains a distribution; sample it with bai.sweep.random(space, { n = ..., seed = ... })"
    end
    return nil, err
  end
  local keys = space.key_list
  local registry = naming.registry()
  local trials = {}
  local errors = {}
  local max_total = opts.max_total
  local known = space:count()
  local keep = opts.keep_jobs
  if keep == nil then keep = (known or 0) <= 1000 end
  local jobs = keep and {} or nil
  local function problem(message)
    errors[#errors + 1] = message
    return not opts.all_errors
  end
  local iter_ok, iter_err = pcall(function()
    for p, i in space:points() do
      if max_total and i > max_total then break end
      local job, err = make_job(template, p, i, keys)
      if not job then
        if problem(err) then return end
      else
        local text = point_text(p, keys)
        local hash = M.hash(job)
        local raw_ok, raw = pcall(name_fn, p, { index = i, hash = hash, sweep = sweep_name })
        local name = raw_ok and naming.sanitize(raw) or nil
        if not raw_ok then
          if problem(raw) then return end
        elseif not name then
          if problem(format("trial %d %s: the job name is empty", i, text)) then return end
        else
          local added, clash = registry:add(name, i, hash, text)
          if not added then
            if problem(clash) then return end
          else
            trials[#trials + 1] = { index = i, name = name, hash = hash, point = text }
            if jobs then jobs[#trials] = job end
          end
        end
      end
    end
  end)
  if not iter_ok then errors[#errors + 1] = tostring(iter_err) end
  if #errors > 0 then
    if #errors == 1 then return nil, errors[1], errors end
    local shown = {}
    for i = 1, math.min(#errors, 10) do shown[i] = "  " .. errors[i] end
    if #errors > 10 then shown[#shown + 1] = format("  ... and %d more", #errors - 10) end
    return nil, format("%d trials are invalid:\n%s", #errors, concat(shown, "\n")), errors
  end
  return setmetatable({
    name = sweep_name, space = space, template = template, keys = keys,
    trials = trials, jobs = jobs, registry = registry, name_fn = name_fn,
  }, Plan)
end

function Plan.__len(plan) return #plan.trials end

--- The point of a trial as a table in the space's key order.
function Plan:point(trial)
  local p = assert(codec.decode(trial.point))
  return setmetatable(p, self.space:point_mt())
end

--- The job of trial number k (position in plan.trials), rebuilt from its
-- point when the plan did not keep it; raises if the template is not
-- deterministic (a different job than at planning time).
function Plan:job(k)
  if self.jobs and self.jobs[k] then return self.jobs[k] end
  local trial = self.trials[k]
  local p = self:point(trial)
  local job, err = make_job(self.template, p, trial.index, self.keys)
  if not job then error(err, 0) end
  if M.hash(job) ~= trial.hash then
    error(format("trial %d (%s): the template returned a different job than before; templates must be deterministic",
      trial.index, trial.name), 0)
  end
  return job
end

--- The preview table: names and parameters of (up to opts.limit) trials.
function Plan:table(opts)
  opts = opts or {}
  local limit = opts.limit or 50
  local headers = { "#", "name" }
  for _, k in ipairs(self.keys) do headers[#headers + 1] = k end
  local rows = {}
  local n = #self.trials
  local function add(k)
    local trial = self.trials[k]
    local p = self:point(trial)
    local row = { trial.index, trial.name }
    for c, key in ipairs(self.keys) do row[2 + c] = p[key] end
    rows[#rows + 1] = row
  end
  if n <= limit then
    for k = 1, n do add(k) end
  else
    local head = limit - 5
    for k = 1, head do add(k) end
    rows[#rows + 1] = { nil, format("... %d more ...", n - head - 5) }
    for k = n - 4, n do add(k) end
  end
  return tabulate.table(headers, rows, { indent = "  " })
end

--- The preview text: what would be submitted, and that nothing was.
function Plan:preview_text(opts)
  opts = opts or {}
  local lines = {}
  local n = #self.trials
  lines[#lines + 1] = format("sweep %s: %d trial%s%s", self.name, n, n == 1 and "" or "s",
    opts.target and (" in " .. opts.target) or "")
  lines[#lines + 1] = self:table(opts)
  lines[#lines + 1] = format("%d job%s valid, all names distinct; nothing submitted (dry run).", n, n == 1 and "" or "s")
  return concat(lines, "\n")
end

--- Builds the plan and prints its preview; returns the plan.  Raises (at the
-- caller) when a trial is invalid, listing every invalid trial.
function M.preview(space, template, opts)
  local ok, err_or_space = pcall(M.check_args, space, template, opts, "preview", PREVIEW_OPTIONS)
  if not ok then error(err_or_space, 2) end
  space, opts = err_or_space, opts or {}
  local build_opts = {}
  for k, v in pairs(opts) do build_opts[k] = v end
  build_opts.all_errors = true
  local plan, err = M.build(space, template, build_opts)
  if not plan then error(err, 2) end
  local out = opts.output or io.stdout
  out:write(plan:preview_text(opts), "\n")
  return plan
end

return M

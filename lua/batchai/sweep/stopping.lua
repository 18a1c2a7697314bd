-- Early stopping: policies that read the intermediate metrics of a sweep's
-- trials and name the running trials to terminate, each with its reason.
-- Pure logic (no I/O): the sweep runner feeds them the series it fetched.
-- Constructors raise without a position; bai.sweep re-raises at the caller.
--
--   median{ metric=, mode="min", grace=, interval=, min_trials= }
--     stops a trial whose best value so far is worse than the median of the
--     other trials' running averages at the same step (Google Vizier's and
--     Azure ML's median stopping rule);
--   bandit{ metric=, mode=, slack_factor= | slack_amount=, grace=, interval= }
--     stops a trial whose best value is not within the slack of the best
--     trial's at the same step (Azure ML's bandit policy);
--   truncation{ metric=, mode=, percentile=, grace=, interval=, min_trials= }
--     stops the worst `percentile` percent of the trials at each evaluation.
-- Every policy also stops a trial whose metric became NaN (stop_on_nan = false
-- turns that off).  A trial is evaluated at steps grace, grace+interval, ...
-- (the last such step it reached), once per step.
local util = require "batchai.util"

local M = {}

local format, floor, huge = string.format, math.floor, math.huge

local Policy = { __name = "batchai.sweep.StoppingPolicy" }
Policy.__index = Policy
M.Policy = Policy

function Policy.__tostring(p) return format("%s stopping policy on %s (%s)", p.kind, p.metric, p.mode) end

local COMMON = { metric = true, mode = true, grace = true, interval = true, min_trials = true, stop_on_nan = true }

local function options(kind, opts, extra)
  if type(opts) ~= "table" then error(format("bad argument #1 to '%s' (table expected, got %s)", kind, type(opts)), 0) end
  local allowed = {}
  for k in pairs(COMMON) do allowed[k] = true end
  for k in pairs(extra) do allowed[k] = true end
  for k in pairs(opts) do
    if not allowed[k] then
      error(format("%s: unknown option '%s'%s", kind, tostring(k), util.did_you_mean(tostring(k), allowed)), 0)
    end
  end
  if type(opts.metric) ~= "string" or opts.metric == "" then error(kind .. ": 'metric' (a metric name) is required", 0) end
  local mode = opts.mode or "min"
  if mode ~= "min" and mode ~= "max" then error(format("%s: 'mode' must be \"min\" or \"max\", got %s", kind, tostring(mode)), 0) end
  local function count(name, default, min)
    local v = opts[name]
    if v == nil then return default end
    if math.type(v) ~= "integer" or v < min then error(format("%s: '%s' must be an integer >= %d", kind, name, min), 0) end
    return v
  end
  return setmetatable({
    kind = kind, metric = opts.metric, mode = mode,
    grace = count("grace", 1, 0), interval = count("interval", 1, 1),
    min_trials = count("min_trials", 3, 1),
    stop_on_nan = opts.stop_on_nan ~= false,
    evaluated = {},  -- trial name -> last step evaluated
  }, Policy)
end

local function better(mode, a, b)
  if mode == "min" then return a < b end
  return a > b
end

-- Summaries of a series (array of { step, value }) up to step s: its best value,
-- its running average, and whether it reached s.
local function upto(series, s, mode)
  local best, sum, n, reached = nil, 0, 0, false
  for _, point in ipairs(series) do
    local step, v = point[1], point[2]
    if step > s then reached = true break end
    if step == s then reached = true end
    if v == v then
      if best == nil or better(mode, v, best) then best = v end
      sum = sum + v
      n = n + 1
    end
  end
  return best, n > 0 and sum / n or nil, reached
end

local function median(values)
  table.sort(values)
  local n = #values
  if n % 2 == 1 then return values[(n + 1) // 2] end
  return (values[n // 2] + values[n // 2 + 1]) / 2
end

local function show(v) return format("%.4g", v) end

-- The step at which to evaluate a trial whose latest step is `last`, or nil.
local function evaluation_step(policy, last)
  if last < policy.grace then return nil end
  local s = policy.grace + floor((last - policy.grace) / policy.interval) * policy.interval
  return s
end

local deciders = {}

deciders.median = function(policy, trial, s, trials)
  local best = upto(trial.series, s, policy.mode)
  if best == nil then return nil end
  local averages = {}
  for _, other in ipairs(trials) do
    if other ~= trial then
      local _, avg, reached = upto(other.series, s, policy.mode)
      if avg and reached then averages[#averages + 1] = avg end
    end
  end
  if #averages < policy.min_trials then return nil end
  local m = median(averages)
  if better(policy.mode, m, best) then
    return format("median stopping: best %s %s by step %s is worse than the median %s of %d other trials' running averages",
      policy.metric, show(best), show(s), show(m), #averages)
  end
end

deciders.bandit = function(policy, trial, s, trials)
  local best = upto(trial.series, s, policy.mode)
  if best == nil then return nil end
  local leader, count = nil, 0
  for _, other in ipairs(trials) do
    local b, _, reached = upto(other.series, s, policy.mode)
    if b and reached then
      count = count + 1
      if leader == nil or better(policy.mode, b, leader) then leader = b end
    end
  end
  if count < 2 or leader == nil then return nil end
  local limit
  if policy.slack_amount then
    limit = policy.mode == "min" and leader + policy.slack_amount or leader - policy.slack_amount
  elseif policy.mode == "min" then
    limit = leader * (1 + policy.slack_factor)
  else
    limit = leader / (1 + policy.slack_factor)
  end
  if better(policy.mode, limit, best) then
    return format("bandit: best %s %s by step %s is outside the slack of the leader's %s (limit %s)",
      policy.metric, show(best), show(s), show(leader), show(limit))
  end
end

deciders.truncation = function(policy, trial, s, trials)
  local best = upto(trial.series, s, policy.mode)
  if best == nil then return nil end
  local values = {}
  for _, other in ipairs(trials) do
    local b, _, reached = upto(other.series, s, policy.mode)
    if b and reached then values[#values + 1] = b end
  end
  if #values < policy.min_trials then return nil end
  local cut = floor(#values * policy.percentile / 100)
  if cut < 1 then return nil end
  -- Stopped when at least all the kept places are taken by better trials.
  local ahead = 0
  for _, v in ipairs(values) do if better(policy.mode, v, best) then ahead = ahead + 1 end end
  if ahead >= #values - cut then
    return format("truncation: best %s %s by step %s is in the worst %s%% of %d trials",
      policy.metric, show(best), show(s), show(policy.percentile), #values)
  end
end

--- Decides which running trials to stop.  trials: array of { name =,
-- running = bool, series = array of { step, value } } (every trial of the
-- sweep, finished ones included: they are the baseline).  Returns an array
-- of { name =, step =, reason = } for trials to terminate; a trial is
-- evaluated once per evaluation step.
function Policy:decide(trials)
  local decisions = {}
  local decide = deciders[self.kind]
  for _, trial in ipairs(trials) do
    local series = trial.series or {}
    if trial.running and #series > 0 then
      local last = series[#series]
      if self.stop_on_nan and last[2] ~= last[2] then
        decisions[#decisions + 1] = { name = trial.name, step = last[1],
          reason = format("%s is NaN at step %s", self.metric, show(last[1])) }
      else
        local s = evaluation_step(self, last[1])
        if s and (self.evaluated[trial.name] or -huge) < s then
          self.evaluated[trial.name] = s
          local reason = decide(self, trial, s, trials)
          if reason then decisions[#decisions + 1] = { name = trial.name, step = s, reason = reason } end
        end
      end
    end
  end
  return decisions
end

function M.median(opts)
  return options("median", opts, {})
end

function M.bandit(opts)
  local p = options("bandit", opts, { slack_factor = true, slack_amount = true })
  if (opts.slack_factor == nil) == (opts.slack_amount == nil) then
    error("bandit: give exactly one of 'slack_factor' and 'slack_amount'", 0)
  end
  local slack = opts.slack_factor or opts.slack_amount
  if type(slack) ~= "number" or slack < 0 then error("bandit: the slack must be a number >= 0", 0) end
  p.slack_factor, p.slack_amount = opts.slack_factor, opts.slack_amount
  return p
end

function M.truncation(opts)
  local p = options("truncation", opts, { percentile = true })
  local pct = opts.percentile or 25
  if type(pct) ~= "number" or pct <= 0 or pct >= 100 then
    error("truncation: 'percentile' must be a number between 0 and 100", 0)
  end
  p.percentile = pct
  return p
end

--- Is v a stopping policy?
function M.is_policy(v) return getmetatable(v) == Policy end

return M

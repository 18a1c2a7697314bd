-- bai.sweep: search spaces, previews, and sweeps of jobs that can be re-run safely.
--
--   local S = bai.sweep
--   local space = S.grid { lr = S.logspace(1e-4, 1e-1, 4), batch = { 32, 64 } }
--   for p in space:points() do print(p.lr, p.batch) end      -- lazy, ordered keys
--   S.preview(space, function(p) return base:with{...} end, { job_name = "lr{lr}-b{batch}" })
--   local run = exp:submit(space, template, { name = "lr-sweep", max_running = 8 })
--
-- Values: lists (or choice with weights), const, range, linspace, logspace,
-- files(glob); distributions uniform, loguniform, normal, lognormal, randint and
-- their q-variants.  Compositions: grid, zip, cases, concat, where, derived.
-- Samplers: random, sobol, lhs.
local space = require "batchai.sweep.space"

local M = {}

local pack, unpack = table.pack, table.unpack

-- Re-raises a construction error at the line of the caller's code.
local function at_caller(fn)
  return function(...)
    local r = pack(pcall(fn, ...))
    if not r[1] then error(r[2], 2) end
    return unpack(r, 2, r.n)
  end
end

for _, name in ipairs {
  "choice", "const", "range", "linspace", "logspace", "files",
  "uniform", "loguniform", "normal", "lognormal", "randint",
  "quniform", "qloguniform", "qnormal", "qlognormal", "qrandint",
  "grid", "zip", "cases", "concat", "where", "derived",
  "random", "sobol", "lhs",
} do
  M[name] = at_caller(space[name])
end

-- Space methods check that they are called on a space (space:points(), not
-- space.points()) and raise at the caller's line.
do
  local Space = space.Space
  for _, name in ipairs { "random", "sobol", "lhs", "where", "derive", "points", "at", "list", "count", "keys", "describe", "__len" } do
    local method = Space[name]
    Space[name] = at_caller(function(self, ...)
      if not space.is_space(self) then
        space.fail("bad self to '%s' (a space expected, got %s); call it as space:%s(...)", name, type(self), name)
      end
      return method(self, ...)
    end)
  end
end

--- Early-stopping policies for exp:submit's early_stopping option (batchai.sweep.stopping).
do
  local stopping = require "batchai.sweep.stopping"
  M.median, M.bandit, M.truncation = at_caller(stopping.median), at_caller(stopping.bandit), at_caller(stopping.truncation)
end

--- Is v a search space?
M.is_space = space.is_space

--- A space from a table of parameters (a grid), or the space itself.
M.space = at_caller(function(v) return space.to_space(v, "space") end)

-- plan.preview, loaded on first use, raising at the caller's line.  A tail
-- call, so that plan.preview's error(msg, 2) sees pcall as its caller and
-- adds no position of this file.
local preview = at_caller(function(...) return require("batchai.sweep.plan").preview(...) end)

--- Prints what a sweep would submit (count, names and parameters of its
-- trials) after validating every job; submits nothing.  Returns the plan.
--   opts: name (the sweep's), job_name (template), max_total, limit (rows shown)
M.preview = preview

--- The trials a sweep would have (validated, named), without printing;
-- returns the plan, or nil and the error.
function M.plan(s, template, opts)
  local plan_mod = require "batchai.sweep.plan"
  local ok, err_or_space = pcall(plan_mod.check_args, s, template, opts, "plan")
  if not ok then error(err_or_space, 2) end
  return plan_mod.build(err_or_space, template, opts)
end

--- space:preview(template, opts): bai.sweep.preview(space, template, opts).
space.Space.preview = preview

return M

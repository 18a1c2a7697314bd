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

do
  local Space = space.Space
  for _, name in ipairs { "random", "sobol", "lhs", "where", "derive", "points", "at", "list", "count", "__len" } do
    Space[name] = at_caller(Space[name])
  end
end

--- Early-stopping policies for exp:submit's early_stopping option (batchai.sweep.stopping).
do
  local stopping = require "batchai.sweep.stopping"
  M.median, M.bandit, M.truncation = stopping.median, stopping.bandit, stopping.truncation
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
  return require("batchai.sweep.plan").build(s, template, opts)
end

--- space:preview(template, opts): bai.sweep.preview(space, template, opts).
space.Space.preview = preview

return M

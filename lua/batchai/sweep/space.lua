-- Search spaces: value domains (lists, ranges, distributions), their
-- compositions (grid, zip, cases, concat, where, derived) and samplers
-- (random, Sobol, Latin hypercube), all lazy.
--
-- A Space is a tree of nodes.  Finite nodes enumerate their points by index
-- (`fill(p, i)`, 0-based, mixed radix with the last dimension fastest), so
-- iterating, indexing and counting need no memory beyond the tree; a grid's
-- iterator is compiled to straight Lua for speed.  Every node can also build a
-- point from coordinates in the unit cube (`from_unit`), which is how random,
-- Sobol and Latin hypercube sampling reach distributions and lists alike.
-- Points are plain tables whose metatable only orders `pairs` (the space's
-- key order) and prints them.
local sampling = require "batchai.sweep.sampling"
local codec = require "batchai.sweep.codec"
local util = require "batchai.util"
local sys = require "batchai._sys"

local M = {}

local floor, log, exp, huge = math.floor, math.log, math.exp, math.huge
local math_type, tointeger = math.type, math.tointeger
local format, concat, sort = string.format, table.concat, table.sort
local setmetatable, getmetatable, type, pairs, ipairs, next = setmetatable, getmetatable, type, pairs, ipairs, next

-- Errors raised while building a space carry no position; the public
-- constructors (batchai.sweep) re-raise them at the caller's line.
local function fail(fmt, ...)
  error(format(fmt, ...), 0)
end
M.fail = fail

--- A number for messages and previews: integers as such, floats short.
local function show(v)
  if type(v) == "number" then
    if math_type(v) == "integer" then return format("%d", v) end
    return format("%.6g", v)
  elseif type(v) == "string" then
    return v
  end
  return tostring(v)
end
M.show = show

local function show_value(v)
  if type(v) == "string" then return format("%q", v) end
  if type(v) == "table" and not getmetatable(v) then
    local ok, text = pcall(codec.encode, v)
    if ok then return text end
  end
  return show(v)
end

-- Rounds binary noise away (3 * 0.1 -> 0.3) while keeping the float subtype.
local function snap(x)
  if x ~= x or x == huge or x == -huge then return x end
  return tonumber(format("%.15g", x)) + 0.0
end
M.snap = snap

-- ---- domains: the values of one parameter ---------------------------------

local Domain = { __name = "batchai.sweep.Domain" }
Domain.__index = Domain
M.Domain = Domain

function Domain.__tostring(d) return d.text end
function Domain.__len(d)
  if not d.size then fail("%s is a distribution and has no size", d.text) end
  return d.size
end

local function is_domain(v) return getmetatable(v) == Domain end
M.is_domain = is_domain

-- A finite domain over `values` (an array, or a proxy with __index/__len).
local function finite(text, values, size, extra)
  local d = setmetatable({ text = text, values = values, size = size, finite = true }, Domain)
  if extra then for k, v in pairs(extra) do d[k] = v end end
  return d
end

function Domain:from_unit(u)
  if self.sample then return self.sample(u) end
  local i = floor(u * self.size) + 1
  if i > self.size then i = self.size end
  return self.values[i]
end

-- Values computed on access, so that a range of 10^8 values costs nothing.
local MATERIALIZE_LIMIT = 65536
local function lazy_values(n, at)
  if n <= MATERIALIZE_LIMIT then
    local t = {}
    for i = 1, n do t[i] = at(i) end
    return t
  end
  return setmetatable({}, {
    __index = function(_, i)
      if math_type(i) == "integer" and i >= 1 and i <= n then return at(i) end
      return nil
    end,
    __len = function() return n end,
  })
end

local function check_number(v, what, name)
  if type(v) ~= "number" or v ~= v then
    fail("%s: %s must be a number, got %s", what, name, type(v) == "number" and "nan" or type(v))
  end
end

local function list_text(values, n)
  local parts = {}
  for i = 1, math.min(n, 6) do parts[i] = show_value(values[i]) end
  if n > 6 then parts[#parts + 1] = format("... (%d values)", n) end
  return "{" .. concat(parts, ", ") .. "}"
end

--- A list of values (a plain array is the same), optionally weighted for
-- random sampling: choice({ "a", "b" }, { weights = { 3, 1 } }).
function M.choice(values, opts)
  if type(values) ~= "table" or is_domain(values) or getmetatable(values) then
    fail("choice: expected an array of values, got %s", type(values))
  end
  local n = #values
  if n == 0 then fail("choice: the list of values is empty") end
  local copy = {}
  for k in pairs(values) do
    if math_type(k) ~= "integer" or k < 1 or k > n then
      fail("choice: expected an array of values, found key %s", show_value(k))
    end
  end
  for i = 1, n do copy[i] = values[i] end
  local d = finite(list_text(copy, n), copy, n)
  if opts ~= nil then
    if type(opts) ~= "table" then fail("choice: options must be a table, got %s", type(opts)) end
    for k in pairs(opts) do
      if k ~= "weights" then fail("choice: unknown option '%s'%s", tostring(k), util.did_you_mean(tostring(k), { "weights" })) end
    end
    local w = opts.weights
    if w ~= nil then
      if type(w) ~= "table" or #w ~= n then
        fail("choice: 'weights' must be an array of %d numbers (one per value)", n)
      end
      local cumulative, total = {}, 0
      for i = 1, n do
        if type(w[i]) ~= "number" or w[i] < 0 or w[i] ~= w[i] or w[i] == huge then
          fail("choice: weight %d must be a finite number >= 0", i)
        end
        total = total + w[i]
        cumulative[i] = total
      end
      if total <= 0 then fail("choice: the weights add up to 0") end
      d.weights = w
      d.text = d.text .. " weighted"
      d.sample = function(u)
        local target = u * total
        for i = 1, n do if target < cumulative[i] then return copy[i] end end
        return copy[n]
      end
    end
  end
  return d
end

--- One value (used as is, even a table).
function M.const(value)
  if value == nil then fail("const: value is nil") end
  return finite(show_value(value), { value }, 1, { constant = true })
end

--- Integers or floats from lo to hi by step, hi included when reached (like a
-- numeric for loop); integers when lo, hi and step are all integers.
function M.range(lo, hi, step)
  step = step == nil and 1 or step
  check_number(lo, "range", "lo")
  check_number(hi, "range", "hi")
  check_number(step, "range", "step")
  if step == 0 then fail("range: step must not be 0") end
  local text = format("range(%s, %s, %s)", show(lo), show(hi), show(step))
  if (hi - lo) * step < 0 then fail("%s is empty", text) end
  if math_type(lo) == "integer" and math_type(hi) == "integer" and math_type(step) == "integer" then
    local n = (hi - lo) // step + 1
    return finite(text, lazy_values(n, function(i) return lo + (i - 1) * step end), n)
  end
  local n = floor((hi - lo) / step + 1e-9) + 1
  return finite(text, lazy_values(n, function(i) return snap(lo + (i - 1) * step) end), n)
end

local function check_count(n, what)
  if math_type(n) ~= "integer" or n < 1 then
    fail("%s: n must be an integer >= 1, got %s", what, show(n))
  end
end

--- n evenly spaced floats from lo to hi, both included.
function M.linspace(lo, hi, n)
  check_number(lo, "linspace", "lo")
  check_number(hi, "linspace", "hi")
  check_count(n, "linspace")
  local text = format("linspace(%s, %s, %d)", show(lo), show(hi), n)
  return finite(text, lazy_values(n, function(i)
    if i == 1 then return lo + 0.0 end
    if i == n then return hi + 0.0 end
    return snap(lo + (hi - lo) * (i - 1) / (n - 1))
  end), n)
end

--- n floats from lo to hi, both included, evenly spaced on a log scale
-- (logspace(1e-4, 1e-1, 4) gives 0.0001, 0.001, 0.01, 0.1).
function M.logspace(lo, hi, n)
  check_number(lo, "logspace", "lo")
  check_number(hi, "logspace", "hi")
  check_count(n, "logspace")
  if lo <= 0 or hi <= 0 then fail("logspace: lo and hi must be > 0, got %s and %s", show(lo), show(hi)) end
  local text = format("logspace(%s, %s, %d)", show(lo), show(hi), n)
  local a, b = math.log(lo, 10), math.log(hi, 10)
  return finite(text, lazy_values(n, function(i)
    if i == 1 then return lo + 0.0 end
    if i == n then return hi + 0.0 end
    return snap(10 ^ (a + (b - a) * (i - 1) / (n - 1)))
  end), n)
end

-- Rounds x to a multiple of q; integers stay integers when q is one.
local function quantize(x, q)
  local r = floor(x / q + 0.5) * q
  if math_type(q) == "integer" then return tointeger(r) or r end
  return snap(r)
end

local function distribution(text, sample)
  return setmetatable({ text = text, finite = false, sample = sample }, Domain)
end

local function check_q(q, what)
  check_number(q, what, "q")
  if q <= 0 then fail("%s: q must be > 0, got %s", what, show(q)) end
end

local function clamp_unit(u)
  if u <= 0 then return 0x1p-54 end
  if u >= 1 then return 1 - 0x1p-54 end
  return u
end

--- Floats uniformly distributed in [lo, hi).
function M.uniform(lo, hi)
  check_number(lo, "uniform", "lo")
  check_number(hi, "uniform", "hi")
  if not (lo < hi) then fail("uniform: lo must be < hi, got %s and %s", show(lo), show(hi)) end
  return distribution(format("uniform(%s, %s)", show(lo), show(hi)), function(u) return lo + u * (hi - lo) end)
end

--- Floats in [lo, hi) whose logarithm is uniformly distributed.
function M.loguniform(lo, hi)
  check_number(lo, "loguniform", "lo")
  check_number(hi, "loguniform", "hi")
  if not (lo > 0 and lo < hi) then
    fail("loguniform: need 0 < lo < hi, got %s and %s", show(lo), show(hi))
  end
  local a, b = log(lo), log(hi)
  return distribution(format("loguniform(%s, %s)", show(lo), show(hi)), function(u) return exp(a + u * (b - a)) end)
end

--- Normally distributed floats with mean mu and standard deviation sigma.
function M.normal(mu, sigma)
  check_number(mu, "normal", "mu")
  check_number(sigma, "normal", "sigma")
  if not (sigma > 0) then fail("normal: sigma must be > 0, got %s", show(sigma)) end
  local quantile = sampling.normal_quantile
  return distribution(format("normal(%s, %s)", show(mu), show(sigma)), function(u)
    return mu + sigma * quantile(clamp_unit(u))
  end)
end

--- Floats whose logarithm is normal(mu, sigma).
function M.lognormal(mu, sigma)
  check_number(mu, "lognormal", "mu")
  check_number(sigma, "lognormal", "sigma")
  if not (sigma > 0) then fail("lognormal: sigma must be > 0, got %s", show(sigma)) end
  local quantile = sampling.normal_quantile
  return distribution(format("lognormal(%s, %s)", show(mu), show(sigma)), function(u)
    return exp(mu + sigma * quantile(clamp_unit(u)))
  end)
end

--- Integers uniformly distributed from lo to hi, both included (like math.random).
function M.randint(lo, hi)
  if math_type(lo) ~= "integer" or math_type(hi) ~= "integer" then
    fail("randint: lo and hi must be integers, got %s and %s", show(lo), show(hi))
  end
  if lo > hi then fail("randint: lo must be <= hi, got %d and %d", lo, hi) end
  local span = hi - lo + 1
  return distribution(format("randint(%d, %d)", lo, hi), function(u)
    local i = floor(u * span)
    if i >= span then i = span - 1 end
    return lo + i
  end)
end

-- The quantized variant `name` of distribution `base_fn`(a, b): its value
-- rounded to a multiple of q; bounded ones (lo, hi) stay within their bounds.
-- Errors name the quantized function.
local function quantized(name, base_fn, a, b, q, bounded)
  local ok, base = pcall(base_fn, a, b)
  if not ok then error((tostring(base):gsub("^%w+:", name .. ":")), 0) end
  local sample = base.sample
  local text = format("%s, q=%s)", base.text:gsub("^%w+", name):sub(1, -2), show(q))
  if not bounded then
    return distribution(text, function(u) return quantize(sample(u), q) end)
  end
  return distribution(text, function(u)
    local v = quantize(sample(u), q)
    if v > b then v = v - q end
    if v < a then v = v + q end
    return v
  end)
end

function M.quniform(lo, hi, q)
  check_q(q, "quniform")
  return quantized("quniform", M.uniform, lo, hi, q, true)
end
function M.qloguniform(lo, hi, q)
  check_q(q, "qloguniform")
  return quantized("qloguniform", M.loguniform, lo, hi, q)
end
function M.qnormal(mu, sigma, q)
  check_q(q, "qnormal")
  return quantized("qnormal", M.normal, mu, sigma, q)
end
function M.qlognormal(mu, sigma, q)
  check_q(q, "qlognormal")
  return quantized("qlognormal", M.lognormal, mu, sigma, q)
end
function M.qrandint(lo, hi, q)
  if math_type(q) ~= "integer" or q < 1 then fail("qrandint: q must be an integer >= 1, got %s", show(q)) end
  return quantized("qrandint", M.randint, lo, hi, q, true)
end

-- ---- files ----------------------------------------------------------------

-- A glob segment as an anchored Lua pattern: * ? [...] as the shell has them.
local function glob_pattern(segment)
  local out, i, n = { "^" }, 1, #segment
  while i <= n do
    local c = segment:sub(i, i)
    if c == "*" then
      out[#out + 1] = "[^/]*"
    elseif c == "?" then
      out[#out + 1] = "[^/]"
    elseif c == "[" then
      local close = segment:find("]", i + 2, true)
      if not close then
        out[#out + 1] = "%["
      else
        local body = segment:sub(i + 1, close - 1)
        local negate = body:sub(1, 1) == "!" or body:sub(1, 1) == "^"
        if negate then body = body:sub(2) end
        body = body:gsub("[%%%]%^]", "%%%0")
        out[#out + 1] = "[" .. (negate and "^" or "") .. body .. "]"
        i = close
      end
    elseif c:find("[%^%$%(%)%%%.%]%+%-]") then
      out[#out + 1] = "%" .. c
    else
      out[#out + 1] = c
    end
    i = i + 1
  end
  out[#out + 1] = "$"
  return concat(out)
end

local function has_magic(segment) return segment:find("[*?[]") ~= nil end

-- Paths under `dir` (prefix `shown`) matching segments[k..]; ** matches any depth.
local function glob_walk(dir, shown, segments, k, out)
  local seg = segments[k]
  if seg == nil then
    local st = sys.stat(dir)
    if st and st.type == "file" then out[#out + 1] = shown end
    return
  end
  local function join(name) return (shown == "" and name) or (shown:sub(-1) == "/" and shown .. name) or (shown .. "/" .. name) end
  local function path_of(name) return dir == "" and name or (dir:sub(-1) == "/" and dir .. name or dir .. "/" .. name) end
  if seg == "**" then
    glob_walk(dir, shown, segments, k + 1, out)
    local names = sys.list_dir(dir == "" and "." or dir) or {}
    for _, name in ipairs(names) do
      if name:sub(1, 1) ~= "." then
        local st = sys.stat(path_of(name))
        if st and st.type == "directory" then glob_walk(path_of(name), join(name), segments, k, out) end
      end
    end
  elseif has_magic(seg) then
    local pattern = glob_pattern(seg)
    local names = sys.list_dir(dir == "" and "." or dir) or {}
    for _, name in ipairs(names) do
      if name:find(pattern) and (name:sub(1, 1) ~= "." or seg:sub(1, 1) == ".") then
        glob_walk(path_of(name), join(name), segments, k + 1, out)
      end
    end
  else
    glob_walk(path_of(seg), join(seg), segments, k + 1, out)
  end
end

--- The files matching a shell glob (*, ?, [...], ** for any depth), sorted;
-- paths are relative when the glob is.  No match is an error.
function M.files(glob)
  if type(glob) ~= "string" or glob == "" then fail("files: expected a glob string, got %s", type(glob)) end
  local segments = {}
  for seg in glob:gmatch("[^/]+") do segments[#segments + 1] = seg end
  local out = {}
  if glob:sub(1, 1) == "/" then
    glob_walk("/", "/", segments, 1, out)
  else
    glob_walk("", "", segments, 1, out)
  end
  local seen, unique = {}, {}
  for _, p in ipairs(out) do if not seen[p] then seen[p] = true; unique[#unique + 1] = p end end
  sort(unique)
  if #unique == 0 then fail("files: no file matches '%s'", glob) end
  return finite(format("files(%q): %d files", glob, #unique), unique, #unique)
end

-- ---- derived parameters ---------------------------------------------------

local Derived = { __name = "batchai.sweep.Derived" }
Derived.__index = Derived
function Derived.__tostring() return "derived(function)" end

--- A parameter computed from the others: derived(function(p) return p.lr * 10 end).
function M.derived(fn)
  if type(fn) ~= "function" then fail("derived: expected a function, got %s", type(fn)) end
  return setmetatable({ fn = fn }, Derived)
end

-- ---- spaces ---------------------------------------------------------------

local Space = { __name = "batchai.sweep.Space" }
Space.__index = Space
M.Space = Space

local function is_space(v) return getmetatable(v) == Space end
M.is_space = is_space

local Cases = { __name = "batchai.sweep.Cases" }
Cases.__index = Cases
function Cases.__tostring(c) return "cases(" .. concat(c.labels, ", ") .. ")" end

local function new_space(kind, fields)
  fields.kind = kind
  return setmetatable(fields, Space)
end

local MAX_SIZE = 1 << 62

-- The size of a finite sub-space (counting a where-filtered one now), or nil.
local function size_of(s)
  if not s.finite then return nil end
  return s:count()
end

local function add_keys(keys, keyset, more, where)
  for _, k in ipairs(more) do
    if keyset[k] then fail("%s: parameter '%s' appears twice", where, k) end
    keyset[k] = true
    keys[#keys + 1] = k
  end
end

-- The parts of a grid or zip: "column" parts (a domain bound to a key),
-- "space" parts (a sub-space filled in place) and derived parameters.
local to_space

local function is_array(t)
  local n = #t
  if n == 0 then return false end
  for k in pairs(t) do
    if math_type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

local function bind_cases(c, key, where)
  if type(key) ~= "string" then fail("%s: cases need a parameter name (a string key)", where) end
  local keys, keyset = { key }, { [key] = true }
  local finite_all, size, dims = true, 0, 0
  for _, label in ipairs(c.labels) do
    local branch = c.branches[label]
    for _, k in ipairs(branch.key_list) do
      if k == key then fail("%s: case '%s' sets '%s', the name of the cases parameter", where, label, k) end
      if not keyset[k] then keyset[k] = true; keys[#keys + 1] = k end
    end
    local n = size_of(branch)
    if n then size = size + n else finite_all = false end
    if branch.dims > dims then dims = branch.dims end
  end
  local offsets = {}
  do
    local acc = 0
    for i, label in ipairs(c.labels) do offsets[i] = acc; acc = acc + (size_of(c.branches[label]) or 0) end
  end
  return new_space("cases", {
    key = key, labels = c.labels, branches = c.branches, offsets = offsets,
    key_list = keys, size = finite_all and size or nil, finite = finite_all, dims = 1 + dims,
    text = format("%s = cases(%s)", key, concat(c.labels, ", ")),
  })
end

local function classify(key, value, where)
  local mt = getmetatable(value)
  if mt == Domain then
    return { kind = "column", key = key, domain = value }
  elseif mt == Derived then
    return { kind = "derived", key = key, fn = value.fn }
  elseif mt == Space then
    return { kind = "space", space = value }
  elseif mt == Cases then
    return { kind = "space", space = bind_cases(value, key, where) }
  end
  local tv = type(value)
  if tv == "table" then
    if mt ~= nil then fail("%s: '%s' has a value of type %s (wrap it in bai.sweep.const)", where, tostring(key), mt.__name or "table") end
    if next(value) == nil then fail("%s: '%s' is an empty table (give a list of values or a table of parameters)", where, tostring(key)) end
    if is_array(value) then return { kind = "column", key = key, domain = M.choice(value) } end
    return { kind = "space", space = to_space(value, where) }
  elseif tv == "function" then
    fail("%s: '%s' is a function; use bai.sweep.derived(fn) for a computed parameter", where, tostring(key))
  elseif tv == "number" or tv == "string" or tv == "boolean" then
    return { kind = "column", key = key, domain = M.const(value) }
  end
  fail("%s: '%s' has a value of type %s", where, tostring(key), tv)
end

-- Parts of a table of parameters: named ones in key order (sorted, or
-- opts.order), then unnamed sub-spaces (array items) in order.
local function parts_of(params, where, order)
  if type(params) ~= "table" or getmetatable(params) then
    fail("%s: expected a table of parameters, got %s", where, type(params))
  end
  local names, positional = {}, {}
  for k in pairs(params) do
    if type(k) == "string" then
      if k == "" then fail("%s: empty parameter name", where) end
      names[#names + 1] = k
    elseif math_type(k) == "integer" then
      positional[#positional + 1] = k
    else
      fail("%s: parameter names must be strings, got %s", where, type(k))
    end
  end
  sort(positional)
  if order then
    local rank = {}
    for i, k in ipairs(order) do rank[k] = i end
    for _, k in ipairs(order) do
      if params[k] == nil then fail("%s: 'order' names '%s', which is not a parameter%s", where, tostring(k), util.did_you_mean(tostring(k), names)) end
    end
    for _, k in ipairs(names) do
      if not rank[k] then fail("%s: 'order' does not list parameter '%s'", where, k) end
    end
    names = {}
    for i, k in ipairs(order) do names[i] = k end
  else
    sort(names)
  end
  local parts = {}
  for _, k in ipairs(names) do parts[#parts + 1] = classify(k, params[k], where) end
  for _, i in ipairs(positional) do
    local v = params[i]
    if not (is_space(v) or (type(v) == "table" and not getmetatable(v) and not is_array(v))) then
      fail("%s: item %d must be a space or a table of parameters, got %s", where, i, is_domain(v) and "a list of values without a name" or type(v))
    end
    parts[#parts + 1] = { kind = "space", space = to_space(v, where) }
  end
  return parts
end

local function check_opts(opts, allowed, where)
  if opts == nil then return {} end
  if type(opts) ~= "table" then fail("%s: options must be a table, got %s", where, type(opts)) end
  for k in pairs(opts) do
    if not allowed[k] then fail("%s: unknown option '%s'%s", where, tostring(k), util.did_you_mean(tostring(k), allowed)) end
  end
  return opts
end

--- The Cartesian product of its parameters: grid{ lr = {...}, batch = {...} }.
-- Nested tables and spaces (zip, cases, grids) are flattened into the points.
function M.grid(params, opts)
  local where = "grid"
  opts = check_opts(opts, { order = true }, where)
  if is_space(params) then return params end
  local parts = parts_of(params, where, opts.order)
  local dims, derived = {}, {}
  local keys, keyset = {}, {}
  local size, finite_all, udims = 1, true, 0
  local function add_part(part)
    if part.kind == "column" then
      add_keys(keys, keyset, { part.key }, where)
      local d = part.domain
      dims[#dims + 1] = { kind = "column", key = part.key, domain = d, size = d.size }
      if d.finite then size = size * d.size else finite_all = false end
      udims = udims + 1
    elseif part.kind == "derived" then
      add_keys(keys, keyset, { part.key }, where)
      derived[#derived + 1] = { part.key, part.fn }
    else
      local s = part.space
      if s.kind == "grid" then  -- flatten a nested grid into this one
        add_keys(keys, keyset, s.key_list, where)
        for _, dim in ipairs(s.grid_dims) do
          dims[#dims + 1] = dim
          if dim.size then size = size * dim.size else finite_all = false end
        end
        for _, dv in ipairs(s.derived) do derived[#derived + 1] = dv end
        udims = udims + s.dims
      else
        add_keys(keys, keyset, s.key_list, where)
        local n = size_of(s)
        dims[#dims + 1] = { kind = "space", space = s, size = n }
        if n then size = size * n else finite_all = false end
        udims = udims + s.dims
      end
    end
    if finite_all and size > MAX_SIZE then fail("%s: more than 2^62 points", where) end
  end
  for _, part in ipairs(parts) do add_part(part) end
  return new_space("grid", {
    key_list = keys, grid_dims = dims, derived = derived,
    size = finite_all and size or nil, finite = finite_all, dims = udims,
  })
end

--- Paired values: zip{ depth = {2, 4}, width = {64, 128} } gives (2, 64), (4, 128).
-- Every part must have the same number of values (a single constant is repeated).
function M.zip(params, opts)
  local where = "zip"
  opts = check_opts(opts, { order = true }, where)
  local parts = parts_of(params, where, opts.order)
  local keys, keyset, columns, subs, derived = {}, {}, {}, {}, {}
  local size, size_from
  for _, part in ipairs(parts) do
    local n, label
    if part.kind == "column" then
      add_keys(keys, keyset, { part.key }, where)
      local d = part.domain
      if not d.finite then fail("%s: '%s' is %s; zip needs lists of values", where, part.key, d.text) end
      columns[#columns + 1] = { part.key, d.values, d.constant }
      if not d.constant then n, label = d.size, "'" .. part.key .. "'" end
    elseif part.kind == "derived" then
      add_keys(keys, keyset, { part.key }, where)
      derived[#derived + 1] = { part.key, part.fn }
    else
      local s = part.space
      add_keys(keys, keyset, s.key_list, where)
      if not s.finite then fail("%s: a part (%s) is not finite; zip needs finite parts", where, concat(s.key_list, ", ")) end
      subs[#subs + 1] = s
      n, label = size_of(s), "the part with " .. concat(s.key_list, ", ")
    end
    if n then
      if size and n ~= size then
        fail("%s: %s has %d values but %s has %d", where, size_from, size, label, n)
      end
      size, size_from = n, label
    end
  end
  size = size or 1
  return new_space("zip", {
    key_list = keys, columns = columns, subs = subs, derived = derived,
    size = size, finite = true, dims = 1,
  })
end

--- A parameter whose value selects a sub-space: used as a value,
-- optimizer = cases{ sgd = { momentum = {0, 0.9} }, adam = { beta1 = {0.9} } }
-- sets p.optimizer to "sgd" or "adam" and the chosen case's own parameters.
function M.cases(branches)
  if type(branches) ~= "table" or getmetatable(branches) then
    fail("cases: expected a table of case = parameters, got %s", type(branches))
  end
  local labels, built = {}, {}
  for label, spec in pairs(branches) do
    if type(label) ~= "string" then fail("cases: case names must be strings, got %s", type(label)) end
    labels[#labels + 1] = label
    if type(spec) == "table" and not getmetatable(spec) and next(spec) == nil then
      built[label] = M.grid({})
    elseif is_space(spec) or (type(spec) == "table" and not getmetatable(spec) and not is_array(spec)) then
      built[label] = to_space(spec, "cases: case '" .. label .. "'")
    else
      fail("cases: case '%s' must be a table of parameters (or {}), got %s", label, type(spec))
    end
  end
  if #labels == 0 then fail("cases: no cases given") end
  sort(labels)
  return setmetatable({ labels = labels, branches = built }, Cases)
end

--- The points of each space in turn.
function M.concat(...)
  local list = table.pack(...)
  if list.n == 0 then fail("concat: no spaces given") end
  local spaces, keys, keyset = {}, {}, {}
  local size, finite_all, dims = 0, true, 0
  for i = 1, list.n do
    local s = to_space(list[i], "concat: argument " .. i)
    spaces[i] = s
    for _, k in ipairs(s.key_list) do
      if not keyset[k] then keyset[k] = true; keys[#keys + 1] = k end
    end
    local n = size_of(s)
    if n then size = size + n else finite_all = false end
    if s.dims > dims then dims = s.dims end
  end
  local offsets, acc = {}, 0
  for i, s in ipairs(spaces) do offsets[i] = acc; acc = acc + (size_of(s) or 0) end
  return new_space("concat", {
    key_list = keys, parts = spaces, offsets = offsets,
    size = finite_all and size or nil, finite = finite_all, dims = 1 + dims,
  })
end

--- The points for which pred(point) is true.  Its size is counted on demand.
function M.where(space, pred)
  space = to_space(space, "where")
  if type(pred) ~= "function" then fail("where: expected a predicate function, got %s", type(pred)) end
  return new_space("where", {
    key_list = space.key_list, base = space, pred = pred,
    finite = space.finite, dims = space.dims,
  })
end

to_space = function(v, where)
  if is_space(v) then return v end
  if type(v) == "table" and not getmetatable(v) and not is_array(v) then return M.grid(v) end
  fail("%s: expected a space or a table of parameters, got %s", where or "sweep", is_domain(v) and tostring(v) or type(v))
end
M.to_space = to_space

-- ---- enumeration by index --------------------------------------------------

local fill

-- Why a space cannot be enumerated, for messages.
local function not_finite_reason(s)
  if s.kind == "grid" then
    for _, dim in ipairs(s.grid_dims) do
      if dim.kind == "column" and not dim.domain.finite then
        return format("'%s' is %s", dim.key, dim.domain.text)
      elseif dim.kind == "space" and not dim.space.finite then
        return not_finite_reason(dim.space)
      end
    end
  elseif s.kind == "cases" then
    for _, label in ipairs(s.labels) do
      local b = s.branches[label]
      if not b.finite then return not_finite_reason(b) end
    end
  elseif s.kind == "concat" then
    for _, part in ipairs(s.parts) do if not part.finite then return not_finite_reason(part) end end
  elseif s.kind == "where" then
    return not_finite_reason(s.base)
  end
  return "it contains a distribution"
end

local function require_finite(s, what)
  if not s.finite then
    fail("%s: the space cannot be enumerated: %s; sample it with bai.sweep.random(space, { n = ..., seed = ... })",
      what, not_finite_reason(s))
  end
end

local function apply_derived(derived, p)
  for i = 1, #derived do
    local dv = derived[i]
    p[dv[1]] = dv[2](p)
  end
end

-- The accepted base indices of a where-space, built once when first needed.
local function where_index(s)
  if not s.accepted then
    require_finite(s.base, "where")
    local accepted, base, pred = {}, s.base, s.pred
    for i = 0, base.size - 1 do
      local p = {}
      fill(base, p, i)
      if pred(p) then accepted[#accepted + 1] = i end
    end
    s.accepted = accepted
    s.size = #accepted
  end
  return s.accepted
end

-- Sets the fields of point `i` (0-based) of finite space s into table p.
fill = function(s, p, i)
  local kind = s.kind
  if kind == "grid" then
    local dims = s.grid_dims
    for d = #dims, 1, -1 do
      local dim = dims[d]
      local n = dim.size
      local k = i % n
      i = i // n
      if dim.kind == "column" then
        p[dim.key] = dim.domain.values[k + 1]
      else
        fill(dim.space, p, k)
      end
    end
    apply_derived(s.derived, p)
  elseif kind == "zip" then
    local columns = s.columns
    for c = 1, #columns do
      local col = columns[c]
      p[col[1]] = col[3] and col[2][1] or col[2][i + 1]
    end
    for _, sub in ipairs(s.subs) do fill(sub, p, i) end
    apply_derived(s.derived, p)
  elseif kind == "cases" then
    local labels, offsets = s.labels, s.offsets
    local b = #labels
    while b > 1 and offsets[b] > i do b = b - 1 end
    p[s.key] = labels[b]
    fill(s.branches[labels[b]], p, i - offsets[b])
  elseif kind == "concat" then
    local parts, offsets = s.parts, s.offsets
    local b = #parts
    while b > 1 and offsets[b] > i do b = b - 1 end
    fill(parts[b], p, i - offsets[b])
  elseif kind == "where" then
    fill(s.base, p, where_index(s)[i + 1])
  elseif kind == "sample" then
    s.sample_fill(p, i)
  end
end
M.fill = fill

-- ---- points from the unit cube --------------------------------------------

local from_unit

-- Fills p from coordinates u[off+1 .. off+s.dims]; false when a `where`
-- rejects the point (the sampler then draws again).
from_unit = function(s, p, u, off)
  local kind = s.kind
  if kind == "grid" then
    local ok = true
    for _, dim in ipairs(s.grid_dims) do
      if dim.kind == "column" then
        off = off + 1
        p[dim.key] = dim.domain:from_unit(u[off])
      else
        if not from_unit(dim.space, p, u, off) then ok = false end
        off = off + dim.space.dims
      end
    end
    if ok then apply_derived(s.derived, p) end
    return ok
  elseif kind == "cases" then
    local n = #s.labels
    local b = floor(u[off + 1] * n) + 1
    if b > n then b = n end
    p[s.key] = s.labels[b]
    return from_unit(s.branches[s.labels[b]], p, u, off + 1)
  elseif kind == "concat" then
    local parts, b = s.parts, nil
    local x = u[off + 1]
    if s.finite then
      local target = floor(x * s.size)
      b = #parts
      while b > 1 and s.offsets[b] > target do b = b - 1 end
    else
      b = floor(x * #parts) + 1
      if b > #parts then b = #parts end
    end
    return from_unit(parts[b], p, u, off + 1)
  elseif kind == "where" then
    if not from_unit(s.base, p, u, off) then return false end
    return s.pred(p) and true or false
  else  -- zip, samples: finite, one coordinate picks a point
    local size = s.size
    local i = floor(u[off + 1] * size)
    if i >= size then i = size - 1 end
    fill(s, p, i)
    return true
  end
end
M.from_unit = from_unit

-- ---- points ---------------------------------------------------------------

-- The metatable of a space's points: pairs in the space's key order, then any
-- other keys (sorted); tostring as {k=v, ...}.
local function point_mt(keys)
  local order = {}
  for i, k in ipairs(keys) do order[k] = i end
  local mt = { __name = "batchai.sweep.Point", key_list = keys }
  mt.__pairs = function(t)
    local extra
    local i, n = 0, #keys
    return function()
      while i < n do
        i = i + 1
        local k = keys[i]
        local v = t[k]
        if v ~= nil then return k, v end
      end
      if not extra then
        extra = {}
        for k in next, t do if not order[k] then extra[#extra + 1] = k end end
        sort(extra, function(a, b) return tostring(a) < tostring(b) end)
        i = n
      end
      local j = i - n + 1
      i = i + 1
      local k = extra[j]
      if k ~= nil then return k, t[k] end
      return nil
    end, t, nil
  end
  mt.__tostring = function(t)
    local parts = {}
    for k, v in mt.__pairs(t) do parts[#parts + 1] = tostring(k) .. "=" .. show_value(v) end
    return "{" .. concat(parts, ", ") .. "}"
  end
  return mt
end
M.point_mt = point_mt

function Space:point_mt()
  local mt = rawget(self, "_point_mt")
  if not mt then
    mt = point_mt(self.key_list)
    rawset(self, "_point_mt", mt)
  end
  return mt
end

-- Straight-line Lua for iterating a grid: an odometer over the dimensions
-- whose innermost step is one table constructor.  Returns nil when the grid
-- is too wide for Lua's limits on locals and upvalues (the generic path runs).
local function compile_grid(s)
  local dims = s.grid_dims
  local D = #dims
  if D == 0 or D > 40 then return nil end
  local names, values = { "setmetatable", "derived", "nderived", "fill" }, { setmetatable, s.derived, #s.derived, fill }
  local function upvalue(v)
    local name = "u" .. (#names + 1)
    names[#names + 1] = name
    values[#values + 1] = v
    return name
  end
  local n_name, v_name, s_name = {}, {}, {}
  for d, dim in ipairs(dims) do
    n_name[d] = upvalue(dim.size)
    if dim.kind == "column" then v_name[d] = upvalue(dim.domain.values) else s_name[d] = upvalue(dim.space) end
  end
  if #names > 150 then return nil end
  local src = {}
  local function emit(line, ...) src[#src + 1] = format(line, ...) end
  emit("local %s = ...", concat(names, ", "))
  emit("return function(mt, count)")
  for d = 1, D do emit("  local i%d = 1", d) end
  for d = 1, D - 1 do
    if v_name[d] then emit("  local c%d = %s[1]", d, v_name[d]) end
  end
  emit("  local index = 0")
  emit("  return function()")
  emit("    if index >= count then return nil end")
  emit("    index = index + 1")
  local fields = {}
  for d = 1, D do
    if v_name[d] then
      local value = d < D and ("c" .. d) or format("%s[i%d]", v_name[d], D)
      fields[#fields + 1] = format("[%q] = %s", dims[d].key, value)
    end
  end
  emit("    local p = setmetatable({ %s }, mt)", concat(fields, ", "))
  for d = 1, D do
    if s_name[d] then emit("    fill(%s, p, i%d - 1)", s_name[d], d) end
  end
  emit("    if nderived > 0 then for j = 1, nderived do local dv = derived[j]; p[dv[1]] = dv[2](p) end end")
  emit("    i%d = i%d + 1", D, D)
  emit("    if i%d > %s then", D, n_name[D])
  emit("      i%d = 1", D)
  for d = D - 1, 1, -1 do
    emit("      i%d = i%d + 1", d, d)
    emit("      if i%d <= %s then goto carried end", d, n_name[d])
    emit("      i%d = 1", d)
  end
  emit("      ::carried::")
  for d = 1, D - 1 do
    if v_name[d] then emit("      c%d = %s[i%d]", d, v_name[d], d) end
  end
  emit("    end")
  emit("    return p, index")
  emit("  end")
  emit("end")
  local chunk = assert(load(concat(src, "\n"), "=(sweep grid)", "t"))
  return chunk(table.unpack(values, 1, #names))
end

-- An iterator over all points of finite space s, as tables with metatable mt.
local function iterate(s, mt)
  if s.kind == "grid" then
    local compiled = rawget(s, "_compiled")
    if compiled == nil then
      compiled = compile_grid(s) or false
      rawset(s, "_compiled", compiled)
    end
    if compiled then return compiled(mt, s.size) end
  elseif s.kind == "where" then
    local base_iter = iterate(s.base, mt)
    local pred, index = s.pred, 0
    return function()
      while true do
        local p = base_iter()
        if p == nil then
          if not s.size then s.size = index end
          return nil
        end
        if pred(p) then
          index = index + 1
          return p, index
        end
      end
    end
  elseif s.kind == "concat" then
    local part, index, inner = 0, 0, nil
    return function()
      while true do
        if inner then
          local p = inner()
          if p ~= nil then
            index = index + 1
            return p, index
          end
        end
        part = part + 1
        if part > #s.parts then return nil end
        inner = iterate(s.parts[part], mt)
      end
    end
  end
  local i, n = 0, s.size
  return function()
    if i >= n then return nil end
    local p = setmetatable({}, mt)
    fill(s, p, i)
    i = i + 1
    return p, i
  end
end

--- Iterates the points: `for p, i in space:points() do ... end` (i from 1).
function Space:points()
  require_finite(self, "points")
  return iterate(self, self:point_mt())
end

--- Point i (1-based) as a new table, or nil past the end.
function Space:at(i)
  require_finite(self, "at")
  if math_type(i) ~= "integer" then fail("at: 'i' must be an integer (a point's number from 1), got %s", show_value(i)) end
  local n = self:count()
  if i < 1 or i > n then return nil end
  local p = setmetatable({}, self:point_mt())
  fill(self, p, i - 1)
  return p
end

--- The number of points (a where-filtered space is counted once, then
-- remembered), or nil when the space contains distributions and is not sampled.
-- `#space` is the same but raises for such spaces.
function Space:count()
  if not self.finite then return nil end
  local n = rawget(self, "size")
  if n == nil and self.kind == "where" then
    n = 0
    for _ in iterate(self, self:point_mt()) do n = n + 1 end
    self.size = n
  end
  return n
end

function Space.__len(s)
  if not s.finite then
    fail("the space has no size: %s; sample it with bai.sweep.random(space, { n = ..., seed = ... })", not_finite_reason(s))
  end
  return Space.count(s)
end

function Space:keys()
  local copy = {}
  for i, k in ipairs(self.key_list) do copy[i] = k end
  return copy
end

--- Up to `limit` points as an array (all of them when no limit).
function Space:list(limit)
  if limit ~= nil and (math_type(limit) ~= "integer" or limit < 0) then
    fail("list: 'limit' must be an integer >= 0, got %s", show_value(limit))
  end
  local out = {}
  for p in self:points() do
    if limit and #out >= limit then break end
    out[#out + 1] = p
  end
  return out
end

-- One line per node, indented, for previews and `tostring`.
local function describe(s, lines, indent)
  local pad = string.rep("  ", indent)
  local size = s.finite and (rawget(s, "size") and format("%d points", s.size) or "size counted on demand") or "sampled"
  if s.kind == "grid" then
    lines[#lines + 1] = format("%sgrid (%s)", pad, size)
    for _, dim in ipairs(s.grid_dims) do
      if dim.kind == "column" then
        lines[#lines + 1] = format("%s  %s = %s", pad, dim.key, dim.domain.text)
      else
        describe(dim.space, lines, indent + 1)
      end
    end
    for _, dv in ipairs(s.derived) do lines[#lines + 1] = format("%s  %s = derived", pad, dv[1]) end
  elseif s.kind == "zip" then
    lines[#lines + 1] = format("%szip (%s)", pad, size)
    for _, col in ipairs(s.columns) do
      lines[#lines + 1] = format("%s  %s = %s", pad, col[1], list_text(col[2], col[3] and 1 or s.size))
    end
    for _, sub in ipairs(s.subs) do describe(sub, lines, indent + 1) end
    for _, dv in ipairs(s.derived) do lines[#lines + 1] = format("%s  %s = derived", pad, dv[1]) end
  elseif s.kind == "cases" then
    lines[#lines + 1] = format("%s%s = cases (%s)", pad, s.key, size)
    for _, label in ipairs(s.labels) do
      lines[#lines + 1] = format("%s  case %q:", pad, label)
      describe(s.branches[label], lines, indent + 2)
    end
  elseif s.kind == "concat" then
    lines[#lines + 1] = format("%sconcat (%s)", pad, size)
    for _, part in ipairs(s.parts) do describe(part, lines, indent + 1) end
  elseif s.kind == "where" then
    lines[#lines + 1] = format("%swhere (%s) of", pad, size)
    describe(s.base, lines, indent + 1)
  elseif s.kind == "sample" then
    lines[#lines + 1] = format("%s%s (%d points) of", pad, s.text, s.size)
    describe(s.base, lines, indent + 1)
  end
end

function Space:describe()
  local lines = {}
  describe(self, lines, 0)
  return concat(lines, "\n")
end

function Space.__tostring(s)
  local size = s.finite and (rawget(s, "size") and tostring(s.size) or "?") or "unsized"
  return format("batchai.sweep.Space(%s, %s points: %s)", s.kind, size, concat(s.key_list, ", "))
end

-- ---- samplers ---------------------------------------------------------------

local function reject_where(space, what)
  local function walk(s)
    if s.kind == "where" then fail("%s: cannot sample a space filtered by where(); filter the samples instead: %s(space, {...}):where(pred)", what, what) end
    if s.kind == "grid" then for _, dim in ipairs(s.grid_dims) do if dim.kind == "space" then walk(dim.space) end end end
    if s.kind == "cases" then for _, label in ipairs(s.labels) do walk(s.branches[label]) end end
    if s.kind == "concat" then for _, part in ipairs(s.parts) do walk(part) end end
  end
  walk(space)
end

-- The common arguments of the samplers: returns the space, the options, n,
-- the seed's value and the sample's description ("what(n=N, seed=S)").
-- Refuses where-filtered spaces when no_where (Sobol and Latin hypercube
-- points cannot be drawn again).
local function sampler_args(space, opts, what, allowed, no_where)
  space = to_space(space, what)
  if no_where then reject_where(space, what) end
  opts = check_opts(opts, allowed, what)
  local n = opts.n
  if math_type(n) ~= "integer" or n < 1 then
    fail("%s: 'n' (the number of points) must be an integer >= 1, got %s", what, n == nil and "nothing" or show(n))
  end
  local seed = sampling.seed_value(opts.seed, what)
  return space, opts, n, seed, format("%s(n=%d, seed=%s)", what, n, show(opts.seed or 0))
end

local function sample_space(base, n, text, fill_fn, extra)
  local s = new_space("sample", {
    key_list = base.key_list, base = base, size = n, finite = true, dims = 1, text = text,
    sample_fill = fill_fn,
  })
  if extra then for k, v in pairs(extra) do s[k] = v end end
  return s
end

local MAX_REJECTIONS = 10000

--- n points drawn at random, reproducibly from `seed` (default 0).  A finite
-- space is sampled without replacement (unless replace = true); spaces with
-- distributions draw each parameter.  Trial i's point depends only on the seed
-- and i, so raising n later keeps the points already drawn.
function M.random(space, opts)
  local n, seed, text
  space, opts, n, seed, text = sampler_args(space, opts, "random", { n = true, seed = true, replace = true })
  local dims = space.dims
  local use_permutation = space.finite and not opts.replace
  if use_permutation then
    local size = space:count()
    if n > size then
      fail("random: n = %d is more than the %d points of the space (sample with replace = true, or iterate the space itself)", n, size)
    end
    local perm = sampling.permutation(size, sampling.derive(seed, 0x7065726d))
    return sample_space(space, n, text, function(p, i) fill(space, p, perm(i)) end)
  end
  return sample_space(space, n, text, function(p, i)
    local rng = sampling.generator(sampling.derive(seed, i))
    local u = {}
    for attempt = 1, MAX_REJECTIONS do
      for d = 1, dims do u[d] = rng:float() end
      if from_unit(space, p, u, 0) then return end
      for k in next, p do p[k] = nil end
      if attempt == MAX_REJECTIONS then
        error(format("random: 'where' rejected %d draws in a row for point %d", MAX_REJECTIONS, i + 1), 0)
      end
    end
  end)
end

--- n points of a scrambled Sobol sequence (low discrepancy: they cover the
-- space more evenly than random points).  Each parameter is one coordinate;
-- powers of two (n = 64, 128...) balance best.  scramble = false gives the
-- plain sequence, starting at the origin.
function M.sobol(space, opts)
  local n, seed, text
  space, opts, n, seed, text = sampler_args(space, opts, "sobol", { n = true, seed = true, scramble = true }, true)
  local dims = space.dims
  if dims > sampling.SOBOL_MAX_DIMS then
    fail("sobol: the space needs %d coordinates, at most %d are supported", dims, sampling.SOBOL_MAX_DIMS)
  end
  local shifts = opts.scramble ~= false and sampling.sobol_shifts(seed, dims) or nil
  return sample_space(space, n, text, function(p, i)
    local u = sampling.sobol(i, dims, {}, shifts)
    from_unit(space, p, u, 0)
  end)
end

--- n points of a Latin hypercube: each parameter's range is cut into n equal
-- strata and every stratum is used exactly once.  centered = true puts each
-- point in the middle of its stratum instead of at a random place in it.
function M.lhs(space, opts)
  local n, seed, text
  space, opts, n, seed, text = sampler_args(space, opts, "lhs", { n = true, seed = true, centered = true }, true)
  local dims = space.dims
  local perms = {}
  for d = 1, dims do perms[d] = sampling.permutation(n, sampling.derive(seed, 0x6c6873, d)) end
  local centered = opts.centered
  return sample_space(space, n, text, function(p, i)
    local u = {}
    local rng = not centered and sampling.generator(sampling.derive(seed, 0x6a6974, i)) or nil
    for d = 1, dims do
      local jitter = centered and 0.5 or rng:float()
      u[d] = (perms[d](i) + jitter) / n
    end
    from_unit(space, p, u, 0)
  end)
end

-- Methods mirroring the constructors, for chaining.
function Space:random(opts) return M.random(self, opts) end
function Space:sobol(opts) return M.sobol(self, opts) end
function Space:lhs(opts) return M.lhs(self, opts) end
function Space:where(pred) return M.where(self, pred) end

--- Adds derived parameters: space:derive{ warmup = function(p) return p.lr * 10 end }.
function Space:derive(fns)
  if type(fns) ~= "table" then fail("derive: expected a table of name = function, got %s", type(fns)) end
  local params = { self }
  for k, fn in pairs(fns) do
    if type(k) ~= "string" then fail("derive: names must be strings, got %s", type(k)) end
    if type(fn) ~= "function" then fail("derive: '%s' must be a function, got %s", k, type(fn)) end
    params[k] = M.derived(fn)
  end
  return M.grid(params)
end

return M

-- Deterministic job names for sweep trials: templates such as "lr{lr}-b{batch}",
-- or the sweep's name plus a short hash of the job's content; sanitized to the
-- Batch AI name rules (^[-\w_]+$, 1 to 64 ASCII characters), with collisions
-- found before anything is submitted.
local codec = require "batchai.sweep.codec"

local M = {}

local format, concat, math_type = string.format, table.concat, math.type

M.MAX = 64
M.HASH_CHARS = 12

local resource_name = require("batchai.schema.kinds").resource_name

--- Is `name` a valid Batch AI resource name (job, experiment, workspace, sweep)?
function M.valid(name)
  return resource_name(name) ~= nil
end

-- A value as text inside a name: integers as digits, floats with the fewest
-- digits that read back exactly and no ".0" (1.0 -> "1", 0.001 -> "0.001").
local function value_text(v, fmt)
  local tv = type(v)
  if fmt then
    local ok, s = pcall(format, "%" .. fmt, v)
    if not ok then error(("bad format '{...:%s}' for value %s: %s"):format(fmt, tostring(v), s), 0) end
    return s
  end
  if tv == "number" then
    if math_type(v) == "integer" then return format("%d", v) end
    return (codec.number(v):gsub("%.0$", ""))
  elseif tv == "string" then
    return v
  elseif tv == "boolean" then
    return v and "true" or "false"
  end
  return codec.encode(v)
end
M.value_text = value_text

--- Replaces every character outside [A-Za-z0-9_-] with '_' and, past 64
-- characters, keeps a prefix plus a hash of the whole text (so long names stay
-- distinct).  Returns nil for an empty result.
function M.sanitize(raw)
  local name = raw:gsub("[^%w_-]", "_")
  if name == "" then return nil end
  if #name > M.MAX then
    name = name:sub(1, M.MAX - M.HASH_CHARS - 1) .. "-" .. codec.hash(raw):sub(1, M.HASH_CHARS)
  end
  return name
end

--- A name template as a function (point, context) -> raw name.
-- "{key}" is a parameter's value, "{key:FMT}" formats it with string.format's
-- %FMT ("{lr:.0e}"), "{key?}" is empty when the point lacks the parameter.
-- Besides parameters: {index} (the trial's number, from 1), {hash} (12 hex
-- digits of the job's content hash) and {sweep} (the sweep's name).
-- Raises at compile time for malformed templates.
function M.compile(template)
  if type(template) == "function" then
    return function(point, ctx)
      local name = template(point, ctx.index)
      if type(name) ~= "string" then
        error(("the job name function returned %s for trial %d (a string is needed)"):format(type(name), ctx.index), 0)
      end
      return name
    end
  end
  if type(template) ~= "string" or template == "" then
    error(("job name template must be a non-empty string or a function, got %s"):format(type(template)), 0)
  end
  local pieces = {}
  local pos = 1
  while pos <= #template do
    local open = template:find("{", pos, true)
    if not open then
      pieces[#pieces + 1] = template:sub(pos)
      break
    end
    if open > pos then pieces[#pieces + 1] = template:sub(pos, open - 1) end
    local close = template:find("}", open, true)
    if not close then error(("job name template %q: '{' at %d is not closed"):format(template, open), 0) end
    local body = template:sub(open + 1, close - 1)
    local key, optional, fmt = body:match("^([%w_%.%-]+)(%??):?(.*)$")
    if not key then error(("job name template %q: bad placeholder {%s}"):format(template, body), 0) end
    if body:find(":", 1, true) and fmt == "" then
      error(("job name template %q: empty format in {%s}"):format(template, body), 0)
    end
    pieces[#pieces + 1] = { key = key, optional = optional == "?", fmt = fmt ~= "" and fmt or nil }
    pos = close + 1
  end
  return function(point, ctx)
    local out = {}
    for i, piece in ipairs(pieces) do
      if type(piece) == "string" then
        out[i] = piece
      else
        local v = point[piece.key]
        if v == nil then
          if piece.key == "index" then v = ctx.index
          elseif piece.key == "hash" then v = ctx.hash:sub(1, M.HASH_CHARS)
          elseif piece.key == "sweep" then v = ctx.sweep
          end
        end
        if v == nil then
          if not piece.optional then
            error(("job name template %q: trial %d has no parameter '%s' (write {%s?} if it may be absent)")
              :format(template, ctx.index, piece.key, piece.key), 0)
          end
          out[i] = ""
        else
          out[i] = value_text(v, piece.fmt)
        end
      end
    end
    return concat(out)
  end
end

--- The default job name template: the sweep's name and 12 hex digits of the
-- job's content hash ("{sweep}-{hash}", the name shortened to fit 64).
function M.default_template(sweep_name)
  return sweep_name:sub(1, M.MAX - M.HASH_CHARS - 1) .. "-{hash}"
end

--- The name of retry `attempt` of a trial: NAME-r1, NAME-r2... within 64 characters.
function M.retry_name(name, attempt)
  local suffix = "-r" .. attempt
  return name:sub(1, M.MAX - #suffix) .. suffix
end

-- ---- collision detection --------------------------------------------------

local Registry = {}
Registry.__index = Registry

--- A set of names that refuses two different jobs under one name.
function M.registry()
  return setmetatable({ by_name = {}, count = 0 }, Registry)
end

--- Records trial `index` (with its job hash and its point as text) under
-- `name`.  Returns true, or nil and a message naming both trials.
function Registry:add(name, index, hash, point_text)
  local seen = self.by_name[name]
  if seen then
    if seen.hash ~= hash then
      return nil, ("trials %d %s and %d %s are different jobs with the same name '%s'; "
        .. "make the job name template tell them apart (for example add {hash})")
        :format(seen.index, seen.point, index, point_text, name)
    end
    return nil, ("trials %d %s and %d %s are the same job '%s'; a sweep runs each job once: "
      .. "use the parameters in the template, sample fewer points, or add {index} to the job name to repeat a job")
      :format(seen.index, seen.point, index, point_text, name)
  end
  self.by_name[name] = { index = index, hash = hash, point = point_text }
  self.count = self.count + 1
  return true
end

function Registry:get(name) return self.by_name[name] end

return M

-- Scalar field kinds of the schema: each checks and normalizes one value and says
-- what it expected when the value does not fit.
--
-- kind.check(value, strict, field) -> normalized value | nil, message
-- `strict` is create mode (constructors, validate, check); read mode (decode)
-- keeps values the service may add (unknown enum values, odd durations).
-- kind.json: "string", "integer" or "any" (how the encoder writes it).
local M = {}

local type, math_type, tointeger, format = type, math.type, math.tointeger, string.format
local find, match, utf8_len = string.find, string.match, utf8.len

local INT32_MAX = 2147483647
local INT32_MIN = -2147483648

local null = require("cjson").null

-- A short, safe description of a value for "... expected, got X" messages.
-- Secret values are never shown, only their Lua type.
function M.describe(v, secret)
  local t = type(v)
  if v == nil then return "nothing" end
  if v == null then return "null" end
  if secret then return t end
  if t == "string" then
    local s = v
    if #s > 40 then s = s:sub(1, 37) .. "..." end
    s = s:gsub('[%c"\\]', function(c)
      if c == '"' or c == "\\" then return "\\" .. c end
      if c == "\n" then return "\\n" end
      if c == "\t" then return "\\t" end
      return format("\\%d", c:byte())
    end)
    return '"' .. s .. '"'
  end
  if t == "number" then
    if math_type(v) == "integer" then return tostring(v) end
    if v ~= v then return "nan" end
    return format("%.14g", v)
  end
  if t == "boolean" then return tostring(v) end
  if t == "table" then
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__schema then return mt.__schema.name end
  end
  return t
end
local describe = M.describe

-- An integer from a Lua integer or an integral float (cjson decodes 1 as 1.0).
local function as_integer(v)
  if math_type(v) == "integer" then return v end
  if math_type(v) == "float" then return tointeger(v) end
  return nil
end
M.as_integer = as_integer

local function check_string(v, strict, f)
  if type(v) ~= "string" then return nil, "string expected, got " .. describe(v, f.secret) end
  if not utf8_len(v) then return nil, "valid UTF-8 string expected" end
  if v == "" and strict and f.nonempty then return nil, 'non-empty string expected, got ""' end
  return v
end

M.string = { json = "string", check = check_string, doc = "string" }

M.count = {
  json = "integer",
  doc = "integer >= 1",
  check = function(v, strict, f)
    local i = as_integer(v)
    if i == nil or (strict and i < 1) then return nil, "integer >= 1 expected, got " .. describe(v) end
    if i > INT32_MAX or i < INT32_MIN then
      return nil, "integer <= " .. INT32_MAX .. " expected, got " .. describe(v)
    end
    return i
  end,
}

M.int32 = {
  json = "integer",
  doc = "integer",
  check = function(v)
    local i = as_integer(v)
    if i == nil then return nil, "integer expected, got " .. describe(v) end
    if i > INT32_MAX or i < INT32_MIN then return nil, "32-bit integer expected, got " .. describe(v) end
    return i
  end,
}

-- 64-bit in the spec; limited to what a JSON number (a double) carries exactly.
local JSON_INT_MAX = 2 ^ 53
M.int64 = {
  json = "integer",
  doc = "integer",
  check = function(v)
    local i = as_integer(v)
    if i == nil then return nil, "integer expected, got " .. describe(v) end
    if i > JSON_INT_MAX or i < -JSON_INT_MAX then
      return nil, "integer between -2^53 and 2^53 expected, got " .. describe(v)
    end
    return i
  end,
}

-- "a", "b" or "c"
local function alternatives(values)
  local quoted = {}
  for i, v in ipairs(values) do quoted[i] = '"' .. v .. '"' end
  if #quoted == 1 then return quoted[1] end
  return table.concat(quoted, ", ", 1, #quoted - 1) .. " or " .. quoted[#quoted]
end
M.alternatives = alternatives

-- Enum values match without regard to case (the service accepts "gloo" for
-- "Gloo") and are stored in the spec's spelling.  Read mode keeps values the
-- spec does not list (the enums are modelAsString: the service may add some).
M.enum = {
  json = "string",
  doc = "string",
  check = function(v, strict, f)
    if type(v) ~= "string" then return nil, "string expected, got " .. describe(v) end
    local canonical = f.canonical[v] or f.canonical[v:lower()]
    if canonical then return canonical end
    if not strict then
      if not utf8_len(v) then return nil, "valid UTF-8 string expected" end
      return v
    end
    return nil, alternatives(f.values) .. " expected, got " .. describe(v)
  end,
}

-- ---- durations: ISO-8601 ("P7D", "PT1H30M") and .NET TimeSpan ("7.00:00:00") --

-- Seconds in an ISO-8601 duration, or nil.  Years count 365 days and months 30
-- (as .NET's XmlConvert does); only seconds may have a fraction.
local function iso_seconds(s)
  local date, time = match(s, "^P([%dYMWD]*)(.*)$")
  if not date then return nil end
  if time ~= "" then
    time = match(time, "^T([%d.HMS]+)$")
    if not time then return nil end
  end
  local total, parts = 0, 0
  local order = { Y = 1, M = 2, W = 3, D = 4 }
  local scale = { Y = 365 * 86400, M = 30 * 86400, W = 7 * 86400, D = 86400 }
  local last = 0
  local rest = date
  while rest ~= "" do
    local n, unit, tail = match(rest, "^(%d+)([YMWD])(.*)$")
    if not n or order[unit] <= last then return nil end
    last, rest, parts = order[unit], tail, parts + 1
    total = total + tonumber(n) * scale[unit]
  end
  if time ~= "" then
    local torder = { H = 1, M = 2, S = 3 }
    local tscale = { H = 3600, M = 60, S = 1 }
    local tlast, tparts = 0, 0
    rest = time
    while rest ~= "" do
      local n, unit, tail = match(rest, "^(%d+)([HMS])(.*)$")
      if not n then
        n, unit, tail = match(rest, "^(%d+%.%d+)(S)(.*)$")
        if not n then return nil end
      end
      if torder[unit] <= tlast then return nil end
      tlast, rest, tparts = torder[unit], tail, tparts + 1
      total = total + tonumber(n) * tscale[unit]
    end
    if tparts == 0 then return nil end
    parts = parts + tparts
  end
  if parts == 0 then return nil end
  return total
end

-- Seconds and the ISO-8601 spelling of a TimeSpan "[d.]hh:mm[:ss[.fffffff]]", or nil.
local function timespan(s)
  local d, h, m, rest = match(s, "^(%d+)%.(%d%d?):(%d%d):?(.*)$")
  if not d then
    h, m, rest = match(s, "^(%d%d?):(%d%d):?(.*)$")
    d = "0"
  end
  if not h then return nil end
  local sec, frac = "0", ""
  if rest ~= "" then
    sec, frac = match(rest, "^(%d%d)(.*)$")
    if not sec or not (frac == "" or find(frac, "^%.%d%d?%d?%d?%d?%d?%d?$")) then return nil end
    if find(s, "^%d%d?:%d%d%d") then return nil end  -- "hh:mmss" without the colon
  elseif s:sub(-1) == ":" then
    return nil
  end
  d, h, m, sec = tonumber(d), tonumber(h), tonumber(m), tonumber(sec)
  if h > 23 or m > 59 or sec > 59 then return nil end
  local seconds = d * 86400 + h * 3600 + m * 60 + sec + (frac ~= "" and tonumber("0" .. frac) or 0)
  local iso = "P"
  if d > 0 then iso = iso .. d .. "D" end
  local t = ""
  if h > 0 then t = t .. h .. "H" end
  if m > 0 then t = t .. m .. "M" end
  if sec > 0 or frac ~= "" then
    local f = frac:gsub("0+$", "")
    if f == "." then f = "" end
    if sec > 0 or f ~= "" then t = t .. sec .. f .. "S" end
  end
  if t ~= "" then iso = iso .. "T" .. t end
  return seconds, iso
end

--- Seconds in a duration string (either form), or nil when it is neither.
function M.duration_seconds(s)
  if type(s) ~= "string" then return nil end
  local seconds = iso_seconds(s)
  if seconds then return seconds end
  return (timespan(s))
end

local duration_expected = 'ISO-8601 duration (e.g. "P7D", "PT1H30M") or TimeSpan (e.g. "7.00:00:00") expected, got '

M.duration = {
  json = "string",
  doc = "duration",
  check = function(v, strict)
    if type(v) ~= "string" then return nil, duration_expected .. describe(v) end
    local seconds = iso_seconds(v)
    local iso = v
    if not seconds then seconds, iso = timespan(v) end
    if not seconds then
      if strict then return nil, duration_expected .. describe(v) end
      return check_string(v, strict, {})
    end
    if strict and seconds <= 0 then return nil, "positive duration expected, got " .. describe(v) end
    return iso
  end,
}

-- ---- names ---------------------------------------------------------------------

M.envname = {
  json = "string",
  doc = "variable name",
  check = function(v)
    if type(v) == "string" and find(v, "^[A-Za-z_][A-Za-z0-9_]*$") then return v end
    return nil, "environment variable name (letters, digits and '_', not starting with a digit) expected, got "
      .. describe(v)
  end,
}

M.dirid = {
  json = "string",
  doc = "directory id",
  check = function(v)
    if type(v) == "string" and find(v, "^[A-Za-z0-9_]+$") then return v end
    return nil, "id of letters, digits and '_' expected, got " .. describe(v)
  end,
}

-- Mount points are joined to the mount root: no absolute paths, no "..".
M.relpath = {
  json = "string",
  doc = "relative path",
  check = function(v, strict)
    local s, msg = check_string(v, strict, { nonempty = true })
    if not s then return nil, msg end
    if strict and (s == "" or s:sub(1, 1) == "/" or find("/" .. s .. "/", "/%.%./")) then
      return nil, "relative path without '..' expected, got " .. describe(v)
    end
    return s
  end,
}

-- The spec calls an output directory's pathPrefix absolute: "/..." or a path
-- starting with an environment variable ("$AZ_BATCHAI_MOUNT_ROOT/...", which
-- the node expands; the executor checks the expanded path).
M.abspath = {
  json = "string",
  doc = "absolute path",
  check = function(v, strict)
    local s, msg = check_string(v, strict, { nonempty = true })
    if not s then return nil, msg end
    if strict and not find(s, "^[/$]") then
      return nil, 'absolute path (starting with "/" or "$VARIABLE") expected, got ' .. describe(v)
    end
    return s
  end,
}

M.filemode = {
  json = "string",
  doc = "octal mode",
  check = function(v, strict)
    if type(v) == "string" and find(v, "^[0-7]?[0-7][0-7][0-7]$") then return v end
    if not strict and type(v) == "string" then return check_string(v, strict, {}) end
    return nil, 'octal file mode (e.g. "0777") expected, got ' .. describe(v)
  end,
}

-- A table of string keys to string values (resource tags).
M.map = {
  json = "any",
  doc = "table of strings",
  check = function(v)
    if type(v) ~= "table" or getmetatable(v) ~= nil then
      return nil, "table of strings expected, got " .. describe(v)
    end
    local copy = {}
    for k, x in next, v do
      if type(k) ~= "string" or type(x) ~= "string" then
        return nil, "table of strings expected, got " .. describe(k) .. " = " .. describe(x)
      end
      if not utf8_len(k) or not utf8_len(x) then return nil, "valid UTF-8 strings expected" end
      copy[k] = x
    end
    return copy
  end,
}

-- Any JSON value, kept as a deep copy (Operation.properties): tables are arrays
-- (keys 1..n) or objects (string keys); integers beyond 2^53 become floats, as
-- JSON numbers are read back.
local function copy_json(v, depth)
  if depth > 64 then return nil, "JSON nested deeper than 64 levels" end
  local t = type(v)
  if t == "boolean" or v == null then return v end
  if t == "string" then
    if not utf8_len(v) then return nil, "valid UTF-8 string expected" end
    return v
  end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "finite number expected, got " .. describe(v) end
    if math_type(v) == "integer" and (v > JSON_INT_MAX or v < -JSON_INT_MAX) then return v + 0.0 end
    return v
  end
  if t ~= "table" or getmetatable(v) ~= nil then return nil, "JSON value expected, got " .. describe(v) end
  local copy, n, max, strings = {}, 0, 0, 0
  for k, x in next, v do
    if type(k) == "string" then
      if not utf8_len(k) then return nil, "valid UTF-8 keys expected" end
      strings = strings + 1
    elseif math_type(k) == "integer" and k >= 1 then
      n = n + 1
      if k > max then max = k end
    else
      return nil, "JSON value expected, got a " .. type(k) .. " key"
    end
    local c, msg = copy_json(x, depth + 1)
    if c == nil then return nil, msg end
    copy[k] = c
  end
  if n > 0 and (strings > 0 or max ~= n) then
    return nil, "JSON array (keys 1..n) or object (string keys) expected"
  end
  return copy
end

M.object = {
  json = "any",
  doc = "JSON object",
  check = function(v)
    if type(v) ~= "table" then return nil, "table expected, got " .. describe(v) end
    return copy_json(v, 0)
  end,
}

-- ---- resource names --------------------------------------------------------

--- Checks a workspace, experiment, job, cluster or file server name: 1 to 64
-- ASCII letters, digits, '-' or '_'.  Returns the name, or nil and a message.
function M.resource_name(name, what)
  if type(name) == "string" and #name >= 1 and #name <= 64 and find(name, "^[A-Za-z0-9_-]+$") then return name end
  return nil, (what or "resource") .. " name of 1 to 64 letters, digits, '-' or '_' expected, got "
    .. describe(name)
end

return M

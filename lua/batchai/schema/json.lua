-- JSON text for the schema's encoder: strings, numbers, and any plain value.
-- Unlike lua-cjson 2.1.0 it leaves '/' unescaped, writes integral numbers as
-- integers, sorts object keys, and lets the caller say which tables are arrays.
local M = {}

local format, concat = string.format, table.concat
local math_type, tointeger, type, next = math.type, math.tointeger, type, next
local null = require("cjson").null

--- A string as a JSON string literal (in C: batchai._schema.quote).
local quote = require("batchai._schema").quote
M.quote = quote

--- A number as JSON: integers (and integral floats below 2^53) without a
-- fraction, other floats with the fewest digits that read back the same.
-- Raises for NaN and infinities, which JSON cannot express.
local function number(x)
  if math_type(x) == "integer" then return format("%d", x) end
  if x ~= x or x == math.huge or x == -math.huge then error("JSON cannot express " .. tostring(x), 0) end
  local i = tointeger(x)
  if i and i > -2 ^ 53 and i < 2 ^ 53 then return format("%d", i) end
  local s = format("%.14g", x)
  if tonumber(s) ~= x then s = format("%.17g", x) end
  return s
end
M.number = number

-- Is t an array (keys exactly 1..n, n >= 1)?  Returns n or nil.
local function array_length(t)
  local n = 0
  for k in next, t do
    if math_type(k) ~= "integer" or k < 1 then return nil end
    n = n + 1
  end
  if n == 0 or t[n] == nil then return nil end
  return n
end

local function sort_keys(a, b) return tostring(a) < tostring(b) end

-- Encodes a plain value; `arrays` is nil or a set of tables to write as [] when empty.
local function encode(v, depth, arrays)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "number" then return number(v) end
  if t == "boolean" then return v and "true" or "false" end
  if v == null or v == nil then return "null" end
  if t ~= "table" then error("JSON cannot express a " .. t, 0) end
  if depth > 100 then error("JSON nested deeper than 100 levels (a cycle?)", 0) end
  local n = array_length(v)
  if n then
    local parts = {}
    for i = 1, n do parts[i] = encode(v[i], depth + 1, arrays) end
    return "[" .. concat(parts, ",") .. "]"
  end
  if next(v) == nil then
    return (arrays and arrays[v]) and "[]" or "{}"
  end
  local keys = {}
  for k in next, v do
    if type(k) ~= "string" and math_type(k) ~= "integer" then error("JSON cannot express a " .. type(k) .. " key", 0) end
    keys[#keys + 1] = k
  end
  table.sort(keys, sort_keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = quote(tostring(k)) .. ":" .. encode(v[k], depth + 1, arrays) end
  return "{" .. concat(parts, ",") .. "}"
end

--- Any plain Lua value as JSON text.  Empty tables are objects unless listed in
-- the set `arrays`.  Raises (level 0 message) for values JSON cannot express.
function M.encode(v, arrays)
  return encode(v, 0, arrays)
end

return M

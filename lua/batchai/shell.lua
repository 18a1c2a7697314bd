-- POSIX shell quoting, so sweep values reach a job's command line as single
-- literal arguments: bai.shell.quote("'; rm -rf ~") is one word, never code.
local codec = require "batchai.sweep.codec"

local M = {}

local format, concat, math_type = string.format, table.concat, math.type

-- The functions below compute `text | nil, message` and the public ones
-- raise the message at their caller's line (error(msg, 2) outside any tail
-- call), so that every way in blames the user's code.

-- The text of a number, or nil and why not (NaN and infinities).
local function number_text(x)
  if math_type(x) == "integer" then return format("%d", x) end
  if x ~= x or x == math.huge or x == -math.huge then
    return nil, ("bai.shell: cannot pass %s as an argument"):format(tostring(x))
  end
  return codec.number(x)
end

-- Characters that never need quoting in any POSIX shell context.
local SAFE = "^[%w@%%+=:,./_-]+$"

-- One quoted word, or nil and the message shell.quote raises.
local function quoted(value)
  local tv = type(value)
  if tv == "number" then return number_text(value) end
  if tv == "boolean" then return value and "true" or "false" end
  if tv ~= "string" then
    return nil, ("bad argument #1 to 'quote' (string, number or boolean expected, got %s)"):format(
      value == nil and "no value" or tv)
  end
  if value:find("\0", 1, true) then
    return nil, "bad argument #1 to 'quote' (a shell argument cannot contain a NUL byte)"
  end
  if value ~= "" and value:find(SAFE) and value:sub(1, 1) ~= "=" then return value end
  return "'" .. value:gsub("'", "'\\''") .. "'"
end

-- The text, or the message raised at the caller of the function calling this one.
local function checked(text, message)
  if text == nil then error(message, 3) end
  return text
end

--- The text of a number as a command-line argument: integers as digits,
-- floats with the fewest digits that read back exactly (0.1, 1e-05, 2.0).
-- NaN and infinities are refused: no program parses them the same way.
function M.number(x)
  local text = checked(number_text(x))
  return text
end

--- One word quoted for a POSIX shell (sh, bash, dash, zsh in sh mode):
-- safe words as they are, everything else in single quotes with each ' as '\''.
-- Numbers and booleans are converted; nil, tables and strings containing
-- NUL (which no argument can hold) raise.
function M.quote(value)
  local word = checked(quoted(value))
  return word
end

-- The words of an array, refusing holes (a nil in the middle is a bug, not an
-- argument to drop silently).
local function words_of(list, fname)
  if type(list) ~= "table" then
    error(("bad argument #1 to '%s' (array expected, got %s)"):format(fname, type(list)), 3)
  end
  local n = #list
  for k in pairs(list) do
    if math_type(k) ~= "integer" or k < 1 then
      error(("bad argument #1 to '%s' (array expected, found key %s)"):format(fname, tostring(k)), 3)
    elseif k > n then
      error(("bad argument #1 to '%s' (item %d is nil: the array has a hole)"):format(fname, n + 1), 3)
    end
  end
  return n
end

--- Quotes each item of an array and joins them with spaces:
-- bai.shell.join{ "--lr", 0.001, "--name", "it's" } --> --lr 0.001 --name 'it'\''s'
function M.join(list)
  local n = words_of(list, "join")
  local out = {}
  for i = 1, n do
    local v = list[i]
    if v == nil then error(("bad argument #1 to 'join' (item %d is nil: the array has a hole)"):format(i), 2) end
    local word, why = quoted(v)
    if not word then
      error(("bad argument #1 to 'join' (item %d: %s)"):format(i, (why:gsub("^bad argument #1 to 'quote' %((.*)%)$", "%1"))), 2)
    end
    out[i] = word
  end
  return concat(out, " ")
end

--- Command-line options from a point, in its key order: { lr = 0.1, batch = 32 }
-- gives "--batch 32 --lr 0.1" (or "--batch=32 ..." with opts.style = "=").
-- true becomes a bare flag, false is left out.  opts.prefix replaces "--";
-- opts.only / opts.skip (arrays of keys) choose the parameters.
function M.args(point, opts)
  if type(point) ~= "table" then error(("bad argument #1 to 'args' (table expected, got %s)"):format(type(point)), 2) end
  opts = opts or {}
  local prefix = opts.prefix or "--"
  local style = opts.style or " "
  if style ~= " " and style ~= "=" then error("bad argument #2 to 'args' (style must be \" \" or \"=\")", 2) end
  local only, skip
  if opts.only then only = {}; for _, k in ipairs(opts.only) do only[k] = true end end
  if opts.skip then skip = {}; for _, k in ipairs(opts.skip) do skip[k] = true end end
  local keys = {}
  local mt = getmetatable(point)
  for k in pairs(point) do keys[#keys + 1] = k end
  if not (mt and mt.__pairs) then table.sort(keys, function(a, b) return tostring(a) < tostring(b) end) end
  local out = {}
  for _, k in ipairs(keys) do
    local v = point[k]
    if type(k) == "string" and (not only or only[k]) and not (skip and skip[k]) then
      local flag = checked(quoted(prefix .. k))
      if v == true then
        out[#out + 1] = flag
      elseif v ~= false then
        if type(v) == "table" then
          error(("bad argument #1 to 'args' (parameter '%s' is a table; pass it yourself)"):format(k), 2)
        end
        if style == "=" then
          out[#out + 1] = checked(quoted(prefix .. k .. "=" .. (type(v) == "number" and checked(number_text(v)) or tostring(v))))
        else
          out[#out + 1] = flag .. " " .. checked(quoted(v))
        end
      end
    end
  end
  return concat(out, " ")
end

--- A point as environment variables for a job's `environmentVariables`:
-- { lr = 0.1 } gives { { name = "LR", value = "0.1" } } (names upper-cased, other
-- characters as '_', opts.prefix prepended), in the point's key order.
function M.env(point, opts)
  if type(point) ~= "table" then error(("bad argument #1 to 'env' (table expected, got %s)"):format(type(point)), 2) end
  opts = opts or {}
  local prefix = opts.prefix or ""
  local keys = {}
  local mt = getmetatable(point)
  for k in pairs(point) do if type(k) == "string" then keys[#keys + 1] = k end end
  if not (mt and mt.__pairs) then table.sort(keys) end
  local out, seen = {}, {}
  for _, k in ipairs(keys) do
    local v = point[k]
    local name = (prefix .. k):upper():gsub("[^%w_]", "_")
    if name:find("^%d") then name = "_" .. name end
    if seen[name] then
      error(("bad argument #1 to 'env' (parameters '%s' and '%s' both become %s)"):format(seen[name], k, name), 2)
    end
    seen[name] = k
    local text
    if type(v) == "number" then text = checked(number_text(v))
    elseif type(v) == "boolean" then text = v and "true" or "false"
    elseif type(v) == "string" then text = v
    else text = codec.encode(v) end
    out[#out + 1] = { name = name, value = text }
  end
  return out
end

return M

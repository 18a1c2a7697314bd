-- batchai.client.output: how the client commands print resources: aligned
-- tables, JSON, JSON lines and tab-separated values.
local cjson = require "cjson"
local sys = require "batchai._sys"
local util = require "batchai.util"

local M = {}

M.formats = { "table", "json", "jsonl", "tsv" }

--- The format to use: the option, else configuration, else table on a terminal and tsv otherwise.
function M.choose(option, configured)
  return option or configured or (sys.isatty(io.stdout) and "table" or "tsv")
end

local function is_array(t)
  local n = #t
  if n == 0 then return next(t) == nil and "empty" or false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function scalar(v)
  if v == cjson.null then return "null" end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return tostring(math.tointeger(v))
  end
  return (cjson.encode(v):gsub("\\/", "/"))  -- cjson escapes every '/'
end

--- JSON text of a value, indented with two spaces, keys sorted.
function M.json(value, indent)
  indent = indent or ""
  if type(value) ~= "table" or value == cjson.null then return scalar(value) end
  local kind = is_array(value)
  if kind == "empty" then return "{}" end
  local inner = indent .. "  "
  local parts = {}
  if kind then
    for i = 1, #value do parts[i] = inner .. M.json(value[i], inner) end
    return "[\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "]"
  end
  for _, k in ipairs(util.sorted_keys(value)) do
    parts[#parts + 1] = inner .. scalar(tostring(k)) .. ": " .. M.json(value[k], inner)
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

--- One-line JSON of a value (integers printed as integers).
function M.json_line(value)
  if type(value) ~= "table" or value == cjson.null then return scalar(value) end
  local kind = is_array(value)
  if kind == "empty" then return "{}" end
  local parts = {}
  if kind then
    for i = 1, #value do parts[i] = M.json_line(value[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for _, k in ipairs(util.sorted_keys(value)) do
    parts[#parts + 1] = scalar(tostring(k)) .. ":" .. M.json_line(value[k])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function cell(v)
  if v == nil or v == cjson.null then return "" end
  if math.type(v) == "float" and v == math.floor(v) then v = math.tointeger(v) end
  return (tostring(v):gsub("[\t\r\n]", " "))
end

--- Prints the items of an iterator.  columns = { { "NAME", "name" }, ... }
-- read from row(item); plain(item) gives the JSON value.  Streams every
-- format but table (which needs the widths).  Returns the number of items.
function M.list(out, format, columns, iterator, row, plain)
  local n = 0
  if format == "table" then
    local rows = {}
    for item in iterator do
      local r = row(item)
      local cells = {}
      for i, c in ipairs(columns) do cells[i] = cell(r[c[2]]) end
      rows[#rows + 1] = cells
    end
    n = #rows
    local widths = {}
    for i, c in ipairs(columns) do widths[i] = #c[1] end
    for _, cells in ipairs(rows) do
      for i, v in ipairs(cells) do if #v > widths[i] then widths[i] = #v end end
    end
    local function line(cells)
      local parts = {}
      for i, v in ipairs(cells) do
        parts[i] = i < #cells and (v .. string.rep(" ", widths[i] - #v)) or v
      end
      out:write((table.concat(parts, "  "):gsub("%s+$", "")), "\n")
    end
    local header = {}
    for i, c in ipairs(columns) do header[i] = c[1] end
    line(header)
    for _, cells in ipairs(rows) do line(cells) end
  elseif format == "tsv" then
    local buf = {}
    for item in iterator do
      n = n + 1
      local r = row(item)
      for i, c in ipairs(columns) do buf[i] = cell(r[c[2]]) end
      out:write(table.concat(buf, "\t"), "\n")
    end
  elseif format == "jsonl" then
    for item in iterator do
      n = n + 1
      out:write(M.json_line(plain(item)), "\n")
    end
  else
    out:write("[")
    for item in iterator do
      n = n + 1
      out:write(n > 1 and ",\n" or "\n", "  ", M.json(plain(item), "  "))
    end
    out:write(n > 0 and "\n]\n" or "]\n")
  end
  return n
end

--- Prints one item: table format as "Label: value" lines (fields = { { "Label", key }, ... }).
function M.show(out, format, fields, item, row, plain)
  if format == "json" then
    out:write(M.json(plain(item)), "\n")
  elseif format == "jsonl" then
    out:write(M.json_line(plain(item)), "\n")
  elseif format == "tsv" then
    local r = row(item)
    local buf = {}
    for i, f in ipairs(fields) do buf[i] = cell(r[f[2]]) end
    out:write(table.concat(buf, "\t"), "\n")
  else
    local r = row(item)
    local width = 0
    for _, f in ipairs(fields) do if #f[1] > width then width = #f[1] end end
    for _, f in ipairs(fields) do
      local v = cell(r[f[2]])
      if v ~= "" then out:write(f[1], ":", string.rep(" ", width - #f[1] + 1), v, "\n") end
    end
  end
end

return M

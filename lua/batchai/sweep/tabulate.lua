-- Plain-text tables and CSV for sweep previews, status and results.
local codec = require "batchai.sweep.codec"

local M = {}

local format, concat, math_type = string.format, table.concat, math.type

--- A cell's text: integers as digits, floats to 6 significant digits, nil as "".
function M.cell(v)
  local tv = type(v)
  if v == nil then return "" end
  if tv == "number" then
    if math_type(v) == "integer" then return format("%d", v) end
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
    return format("%.6g", v)
  elseif tv == "string" then
    return v
  elseif tv == "boolean" then
    return v and "true" or "false"
  elseif tv == "table" and not getmetatable(v) then
    local ok, text = pcall(codec.encode, v)
    if ok then return text end
  end
  return tostring(v)
end

-- Display width of a UTF-8 string (code points; good enough for names and numbers).
local function width(s)
  return utf8.len(s) or #s
end

--- Aligned columns: headers is an array of names, rows an array of arrays of
-- values (numbers right-aligned).  opts.indent prefixes every line; opts.max_width
-- shortens cells longer than it with "...".
function M.table(headers, rows, opts)
  opts = opts or {}
  local indent = opts.indent or ""
  local max_width = opts.max_width or 40
  local ncol = #headers
  local texts, numeric, widths = {}, {}, {}
  for c = 1, ncol do widths[c] = width(headers[c]); numeric[c] = true end
  for r, row in ipairs(rows) do
    local t = {}
    for c = 1, ncol do
      local v = row[c]
      local s = M.cell(v)
      if width(s) > max_width then s = s:sub(1, max_width - 3) .. "..." end
      t[c] = s
      if v ~= nil and type(v) ~= "number" then numeric[c] = false end
      if width(s) > widths[c] then widths[c] = width(s) end
    end
    texts[r] = t
  end
  local lines = {}
  local function line(cells, is_header)
    local parts = {}
    for c = 1, ncol do
      local s = cells[c]
      local pad = string.rep(" ", widths[c] - width(s))
      if numeric[c] and not is_header then parts[c] = pad .. s
      elseif c == ncol then parts[c] = s
      else parts[c] = s .. pad end
      if numeric[c] and is_header then parts[c] = pad .. s end
    end
    lines[#lines + 1] = (indent .. concat(parts, "  ")):gsub("%s+$", "")
  end
  line(headers, true)
  for _, t in ipairs(texts) do line(t, false) end
  return concat(lines, "\n") .. "\n"
end

local function csv_field(s)
  if s:find('[,"\r\n]') or s:find("^%s") or s:find("%s$") then
    return '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

--- RFC 4180 CSV (CRLF line ends are not used: '\n', as most tools expect).
-- Floats keep full precision here, unlike M.table.
function M.csv(headers, rows)
  local lines = {}
  local h = {}
  for c, name in ipairs(headers) do h[c] = csv_field(name) end
  lines[1] = concat(h, ",")
  for r, row in ipairs(rows) do
    local t = {}
    for c = 1, #headers do
      local v = row[c]
      local s
      if type(v) == "number" then
        if v ~= v or v == math.huge or v == -math.huge then s = M.cell(v)
        else s = codec.number(v):gsub("%.0$", "") end
      else
        s = M.cell(v)
      end
      t[c] = csv_field(s)
    end
    lines[r + 1] = concat(t, ",")
  end
  return concat(lines, "\n") .. "\n"
end

--- A duration in seconds as "1h02m", "3m05s" or "12.3s".
function M.duration(seconds)
  if seconds == nil then return "" end
  if seconds < 60 then return format("%.1fs", seconds) end
  local s = math.floor(seconds + 0.5)
  if s < 3600 then return format("%dm%02ds", s // 60, s % 60) end
  return format("%dh%02dm", s // 3600, (s % 3600) // 60)
end

return M

-- A sweep's results as a table: one row per trial (parameters, state, exit
-- code, duration, metrics), with best/sort/filter and table, CSV and JSON output.
local codec = require "batchai.sweep.codec"
local tabulate = require "batchai.sweep.tabulate"
local util = require "batchai.util"

local M = {}

local format, concat, sort = string.format, table.concat, table.sort

-- Rows read parameters, then metrics, as fields: row.lr, row.val_loss.
local Row = { __name = "batchai.sweep.Row" }
function Row.__index(row, key)
  local v = rawget(row, "params")[key]
  if v ~= nil then return v end
  return rawget(row, "metrics")[key]
end

local function point_text(row, keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = row.params[k]
    if v ~= nil then parts[#parts + 1] = k .. "=" .. tabulate.cell(v) end
  end
  return concat(parts, " ")
end

function Row.__tostring(row)
  local parts = { format("trial %d %s: %s", row.index or 0, row.job or row.name, row.state or "pending") }
  local metric_names = util.sorted_keys(row.metrics)
  local shown = {}
  for _, k in ipairs(metric_names) do shown[#shown + 1] = format("%s=%s", k, tabulate.cell(row.metrics[k])) end
  if #shown > 0 then parts[#parts + 1] = concat(shown, " ") end
  local keys = row._keys or util.sorted_keys(row.params)
  local p = point_text(row, keys)
  if p ~= "" then parts[#parts + 1] = "(" .. p .. ")" end
  return concat(parts, " ")
end

-- Flattens nested metric objects into dotted names; keeps numbers, strings, booleans.
local function flatten(metrics, prefix, out)
  out = out or {}
  for k, v in pairs(metrics or {}) do
    local name = prefix and (prefix .. "." .. tostring(k)) or tostring(k)
    if type(v) == "table" and getmetatable(v) == nil and next(v) ~= nil and #v == 0 then
      flatten(v, name, out)
    elseif type(v) == "number" or type(v) == "string" or type(v) == "boolean" then
      out[name] = v
    end
  end
  return out
end
M.flatten = flatten

--- A row from a manifest trial record.
function M.row(record, keys)
  local duration
  if record.started and record.ended then duration = record.ended - record.started end
  local note = record.stopped and ("stopped: " .. tostring(record.stopped.reason or record.stopped.policy))
    or record.error or record.note
  local params = record.point or {}
  return setmetatable({
    index = record.index, name = record.name, job = record.job or record.name,
    state = record.stopped and "stopped" or (record.state or "pending"),
    job_state = record.state or "pending",
    exit_code = record.exit_code, duration = duration,
    params = params, metrics = flatten(record.metrics), stopped = record.stopped,
    error = record.error, note = note, attempt = record.attempt or 0, stale = record.stale,
    _keys = keys,
  }, Row)
end

local Results = { __name = "batchai.sweep.Results" }
M.Results = Results

function Results.__index(r, key)
  if type(key) == "number" then return rawget(r, "list")[key] end
  return Results[key]
end

function Results.__len(r) return #r.list end

--- Results over rows; keys is the parameter order.
function M.new(rows, keys)
  return setmetatable({ list = rows, keys = keys or {} }, Results)
end

--- Results from manifest records (stale trials left out unless opts.stale).
function M.from_manifest(manifest, opts)
  local keys = manifest.header.keys or {}
  local rows = {}
  for _, record in ipairs(manifest:trials()) do
    if not record.stale or (opts and opts.stale) then rows[#rows + 1] = M.row(record, keys) end
  end
  return M.new(rows, keys)
end

function Results:rows()
  local i = 0
  return function()
    i = i + 1
    return self.list[i]
  end
end

--- Parameter names, in the space's order (plus any others, sorted).
function Results:param_names()
  local names, seen = {}, {}
  for _, k in ipairs(self.keys) do names[#names + 1] = k; seen[k] = true end
  local extra = {}
  for _, row in ipairs(self.list) do
    for k in pairs(row.params) do
      if not seen[k] then seen[k] = true; extra[#extra + 1] = k end
    end
  end
  sort(extra)
  for _, k in ipairs(extra) do names[#names + 1] = k end
  return names
end

--- Metric names seen in any row, sorted.
function Results:metric_names()
  local seen = {}
  for _, row in ipairs(self.list) do for k in pairs(row.metrics) do seen[k] = true end end
  return util.sorted_keys(seen)
end

--- The columns of every row (besides parameters and metrics), by which rows sort.
M.COLUMNS = { "index", "name", "job", "state", "exit_code", "duration", "attempt" }
local IS_COLUMN = {}
for _, k in ipairs(M.COLUMNS) do IS_COLUMN[k] = true end

local function value_of(row, key)
  if IS_COLUMN[key] then return rawget(row, key) end
  local v = row.params[key]
  if v ~= nil then return v end
  return row.metrics[key]
end

local function is_number(v) return type(v) == "number" and v == v end

local function check_mode(mode, fname)
  mode = mode or "min"
  if mode ~= "min" and mode ~= "max" then
    error(format("bad argument #2 to '%s' (\"min\" or \"max\" expected, got %s)", fname, tostring(mode)), 3)
  end
  return mode
end

--- The row with the lowest (mode "min", the default) or highest ("max")
-- value of a metric, among rows that have it as a number; nil when none has.
function Results:best(metric, mode)
  if type(metric) ~= "string" then error("bad argument #1 to 'best' (metric name expected)", 2) end
  mode = check_mode(mode, "best")
  local best, best_value
  for _, row in ipairs(self.list) do
    local v = row.metrics[metric]
    if is_number(v) and (best_value == nil or (mode == "min" and v < best_value) or (mode == "max" and v > best_value)) then
      best, best_value = row, v
    end
  end
  return best
end

--- A copy sorted by a metric, parameter or column (rows without it last), or by
-- a comparison function(a, b).  order: "asc" (default) or "desc".
function Results:sort(key, order)
  local rows = {}
  for i, row in ipairs(self.list) do rows[i] = row end
  if type(key) == "function" then
    sort(rows, key)
  else
    if type(key) ~= "string" then error("bad argument #1 to 'sort' (name or function expected)", 2) end
    order = order or "asc"
    if order ~= "asc" and order ~= "desc" then error("bad argument #2 to 'sort' (\"asc\" or \"desc\" expected)", 2) end
    local position = {}
    for i, row in ipairs(rows) do position[row] = i end
    sort(rows, function(a, b)
      local va, vb = value_of(a, key), value_of(b, key)
      if va == nil or va ~= va then
        if vb == nil or vb ~= vb then return position[a] < position[b] end
        return false
      end
      if vb == nil or vb ~= vb then return true end
      if type(va) ~= type(vb) then va, vb = tostring(va), tostring(vb) end
      if va == vb then return position[a] < position[b] end
      if order == "asc" then return va < vb end
      return va > vb
    end)
  end
  return M.new(rows, self.keys)
end

--- A copy with the rows for which pred(row) is true, or whose fields equal
-- those of a table: filter{ state = "succeeded" }, filter{ batch = 32 }.
function Results:filter(pred)
  local test = pred
  if type(pred) == "table" then
    test = function(row)
      for k, v in pairs(pred) do
        if value_of(row, k) ~= v then return false end
      end
      return true
    end
  elseif type(pred) ~= "function" then
    error("bad argument #1 to 'filter' (function or table expected)", 2)
  end
  local rows = {}
  for _, row in ipairs(self.list) do
    if test(row) then rows[#rows + 1] = row end
  end
  return M.new(rows, self.keys)
end

--- Headers and row arrays for output: index, name, state, exit code,
-- duration, each parameter, each metric (and a note column for tables).
function Results:grid(with_note)
  local params, metrics = self:param_names(), self:metric_names()
  local headers = { "index", "name", "state", "exit_code", "duration" }
  for _, k in ipairs(params) do headers[#headers + 1] = k end
  for _, k in ipairs(metrics) do headers[#headers + 1] = k end
  local any_note = false
  for _, row in ipairs(self.list) do if row.note then any_note = true end end
  if with_note and any_note then headers[#headers + 1] = "note" end
  local out = {}
  for i, row in ipairs(self.list) do
    local r = { row.index, row.job, row.state, row.exit_code, row.duration }
    local c = 5
    for _, k in ipairs(params) do c = c + 1; r[c] = row.params[k] end
    for _, k in ipairs(metrics) do c = c + 1; r[c] = row.metrics[k] end
    if with_note and any_note then r[c + 1] = row.note end
    out[i] = r
  end
  return headers, out
end

--- The results as text: kind "table" (default), "csv" or "json".
function Results:format(kind)
  kind = kind or "table"
  if kind == "table" then
    local headers, rows = self:grid(true)
    for _, r in ipairs(rows) do
      if type(r[5]) == "number" then r[5] = tabulate.duration(r[5]) end
    end
    headers[4], headers[5] = "exit", "time"
    return tabulate.table(headers, rows)
  elseif kind == "csv" then
    local headers, rows = self:grid(false)
    return tabulate.csv(headers, rows)
  elseif kind == "json" then
    local items = {}
    for i, row in ipairs(self.list) do
      items[i] = {
        index = row.index, name = row.name, job = row.job, state = row.state,
        exit_code = row.exit_code, duration = row.duration, attempt = row.attempt,
        params = row.params, metrics = row.metrics,
        stopped = row.stopped, error = row.error,
      }
    end
    return codec.encode(codec.array(items), { strict = true }) .. "\n"
  end
  error(format("bad argument #1 to 'format' (\"table\", \"csv\" or \"json\" expected, got %s)", tostring(kind)), 2)
end

function Results.__tostring(r) return r:format("table") end

--- Writes the results to a file in a format ("table", "csv" or "json";
-- default from the file's extension).  Returns true or nil, err.
function Results:write(path, kind)
  if type(path) ~= "string" or path == "" then
    error(format("bad argument #1 to 'write' (file path expected, got %s)", path == "" and "an empty string" or type(path)), 2)
  end
  kind = kind or (path:match("%.csv$") and "csv") or (path:match("%.json$") and "json") or "table"
  if kind ~= "table" and kind ~= "csv" and kind ~= "json" then
    error(format("bad argument #2 to 'write' (\"table\", \"csv\" or \"json\" expected, got %s)", tostring(kind)), 2)
  end
  local text = self:format(kind)
  local ok, err = require("batchai._sys").write_file(path, text)
  if not ok then return nil, err end
  return true
end

return M

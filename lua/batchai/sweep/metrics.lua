-- Reading the metrics trials write: a final JSON object (metrics.json), JSON
-- lines of intermediate values (metrics.jsonl, one object per step), or
-- numbers matched on standard output by Lua patterns.
local codec = require "batchai.sweep.codec"

local M = {}

--- Default file names in the job's output directory.
M.FINAL = "metrics.json"
M.LINES = "metrics.jsonl"

local STEP_KEYS = { "step", "epoch", "iteration", "iter" }

--- Parses a final metrics document (a JSON object).  Returns the table, or
-- nil and a message.
function M.parse_final(text)
  local v, err = codec.decode(text)
  if v == nil then return nil, err end
  if type(v) ~= "table" or getmetatable(v) ~= nil then return nil, "metrics must be a JSON object" end
  return v
end

--- Parses JSON lines of intermediate metrics.  Each record gets `step`: its
-- own step, epoch or iteration field, else its line number.  A torn last line
-- (still being written) is skipped; other bad lines are skipped and counted.
-- Returns the array of records and the number of bad lines.
function M.parse_lines(text)
  local records, bad = {}, 0
  local complete = text:sub(-1) == "\n"
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  for i, line in ipairs(lines) do
    if line:find("%S") then
      local v = codec.decode(line)
      if type(v) == "table" and getmetatable(v) == nil then
        local step
        for _, k in ipairs(STEP_KEYS) do
          if type(v[k]) == "number" then step = v[k] break end
        end
        v.step = step or #records + 1
        records[#records + 1] = v
      elseif not (i == #lines and not complete) then
        bad = bad + 1
      end
    end
  end
  return records, bad
end

--- The values of one metric over steps: array of { step, value }, by step.
function M.series(records, metric)
  local out = {}
  for _, r in ipairs(records) do
    local v = r[metric]
    if type(v) == "number" then out[#out + 1] = { r.step, v } end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

--- The last value of every scalar field (number, string, boolean) over the records (a final summary
-- for trials that only wrote JSON lines).
function M.last_values(records)
  local out = {}
  for _, r in ipairs(records) do
    for k, v in pairs(r) do
      if type(v) == "number" or type(v) == "string" or type(v) == "boolean" then out[k] = v end
    end
  end
  return out
end

--- Numbers matched on standard output: patterns maps metric -> Lua pattern
-- with one capture ("val_loss=(%S+)"); the last match of each wins.
function M.from_text(text, patterns)
  local out = {}
  for metric, pattern in pairs(patterns) do
    local last
    for capture in text:gmatch(pattern) do last = capture end
    if last ~= nil then out[metric] = tonumber(last) or last end
  end
  return out
end

return M

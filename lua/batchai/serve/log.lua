-- bai serve's structured log: one JSON object per line (requests, job state
-- changes, lifecycle) in DIR/serve.log, mode 0600.  Never given secrets: request
-- lines carry method, path (no query: download signatures stay out), status and
-- duration; bodies and headers are never logged.
local sys = require "batchai._sys"
local wire = require "batchai.serve.wire"

local M = {}
local Log = {}
Log.__index = Log

local LEVELS = { debug = 1, info = 2, warn = 3, error = 4 }

--- The log at path: a Log | nil, message (the file cannot be opened).
function M.open(path, level)
  local self = setmetatable({ path = path, level = LEVELS[level or "info"] or 2 }, Log)
  local ok, err = self:reopen()
  if not ok then return nil, err end
  return self
end

--- Reopens the file (after rotation: SIGHUP): true | nil, message, the old
-- file kept when the new one cannot be opened.
function Log:reopen()
  local file, err = io.open(self.path, "a")
  if not file then return nil, "cannot open the log: " .. tostring(err) end
  if self.file then self.file:close() end
  self.file = file
  self.file:setvbuf("full", 65536)
  return true
end

local floor, date, now = math.floor, os.date, sys.now
local stamp_second, stamp_prefix, stamp_ms, stamp_text = -1, "", -1, ""
-- ISO-8601 UTC now, with milliseconds (the date part is formatted once a
-- second, the whole text once a millisecond).
local function stamp()
  local ms = floor(now() * 1000)
  if ms == stamp_ms then return stamp_text end
  local secs = ms // 1000
  if secs ~= stamp_second then
    stamp_second, stamp_prefix = secs, date("!%Y-%m-%dT%H:%M:%S", secs)
  end
  stamp_ms, stamp_text = ms, ("%s.%03dZ"):format(stamp_prefix, ms % 1000)
  return stamp_text
end

--- Writes one line { t, event, ...fields }.
function Log:event(event, fields, level)
  if (LEVELS[level or "info"] or 2) < self.level then return end
  local line = { t = stamp(), event = event }
  for k, v in pairs(fields or {}) do line[k] = v end
  self.file:write(wire.encode(line), "\n")
end

local quote = wire.quote
--- The request's line, once it is answered.
function Log:request(req, status)
  local method, path, ms, id = req:info()
  self.file:write('{"event":"request","id":"' .. id .. '","method":"' .. method .. '","us":' .. floor(ms * 1000)
    .. ',"path":' .. quote(path) .. ',"status":' .. status .. ',"t":"' .. stamp() .. '"}\n')
end

function Log:flush() self.file:flush() end

function Log:close()
  if self.file then self.file:close() end
  self.file = nil
end

return M

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

function M.open(path, level)
  local self = setmetatable({ path = path, level = LEVELS[level or "info"] or 2 }, Log)
  self:reopen()
  return self
end

--- Reopens the file (after rotation: SIGHUP).
function Log:reopen()
  if self.file then self.file:close() end
  self.file = assert(io.open(self.path, "a"))
  self.file:setvbuf("full", 65536)
end

local floor, date = math.floor, os.date
local stamp_second, stamp_prefix = -1, ""
-- ISO-8601 UTC now, with milliseconds (the date part is formatted once a second).
local function stamp()
  local t = sys.now()
  local secs = floor(t)
  if secs ~= stamp_second then
    stamp_second, stamp_prefix = secs, date("!%Y-%m-%dT%H:%M:%S", secs)
  end
  return ("%s.%03dZ"):format(stamp_prefix, floor((t - secs) * 1000))
end

--- Writes one line { t, event, ...fields }.
function Log:event(event, fields, level)
  if (LEVELS[level or "info"] or 2) < self.level then return end
  local line = { t = stamp(), event = event }
  for k, v in pairs(fields or {}) do line[k] = v end
  self.file:write(wire.encode(line), "\n")
end

local encode = wire.encode
--- The request's line, once it is answered.
function Log:request(req, status)
  local method, path, ms, id = req:info()
  self.file:write('{"event":"request","id":"', id, '","method":"', method, '","us":', floor(ms * 1000), ',"path":',
    encode(path), ',"status":', status, ',"t":"', stamp(), '"}\n')
end

function Log:flush() self.file:flush() end

function Log:close()
  if self.file then self.file:close() end
  self.file = nil
end

return M

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
  local self = setmetatable({ path = path, level = LEVELS[level or "info"] or 2, pending = setmetatable({}, { __mode = "k" }) }, Log)
  self:reopen()
  return self
end

--- Reopens the file (after rotation: SIGHUP).
function Log:reopen()
  if self.file then self.file:close() end
  self.file = assert(io.open(self.path, "a"))
  self.file:setvbuf("full", 65536)
end

local function stamp() return wire.iso_time(sys.now()) end

--- Writes one line { t, event, ...fields }.
function Log:event(event, fields, level)
  if (LEVELS[level or "info"] or 2) < self.level then return end
  local line = { t = stamp(), event = event }
  for k, v in pairs(fields or {}) do line[k] = v end
  self.file:write(wire.encode(line), "\n")
end

function Log:begin_request(req, method, path)
  self.pending[req] = { sys.monotime(), method, path }
end

--- The request's line, once it is answered.
function Log:request(req, status)
  local p = self.pending[req]
  if not p then return end
  self.pending[req] = nil
  self.file:write(('{"event":"request","id":"%s","method":"%s","ms":%.3f,"path":%s,"status":%d,"t":"%s"}\n'):format(
    req:id(), p[2], (sys.monotime() - p[1]) * 1000, wire.encode(p[3]), status, stamp()))
end

function Log:flush() self.file:flush() end

function Log:close()
  if self.file then self.file:close() end
  self.file = nil
end

return M

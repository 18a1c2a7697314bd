-- batchai.client.lro: awaiting ARM long-running operations.  Follows
-- Azure-AsyncOperation, else Location, else the resource itself; waits what
-- Retry-After says (or the configured interval); compares terminal states
-- case-insensitively; gives up at an overall deadline.  Poll URLs must be on
-- the endpoint's host (the connection refuses others).
local sys = require "batchai._sys"
local loop = require "batchai.client.loop"
local errors = require "batchai.client.errors"
local codec = require "batchai.client.codec"
local transport = require "batchai.client.transport"

local M = {}

local TERMINAL = { succeeded = "succeeded", failed = "failed", canceled = "canceled", cancelled = "canceled" }

local function terminal(state)
  return type(state) == "string" and TERMINAL[state:lower()] or nil
end
M.terminal = terminal

local function failed_error(doc, state, operation, headers)
  local e = type(doc) == "table" and type(doc.error) == "table" and doc.error or {}
  local err = errors.new {
    code = type(e.code) == "string" and e.code or ("Operation" .. state:sub(1, 1):upper() .. state:sub(2)),
    message = type(e.message) == "string" and e.message or ("the operation ended in state '" .. state .. "'"),
    target = type(e.target) == "string" and e.target or nil, operation = operation,
    request_id = errors.header(headers, "x-ms-request-id"),
  }
  return nil, err
end

--- Awaits the operation begun by a response.  `method` and `resource_path`
-- are the request's; status, body, headers its answer (2xx).  Returns the
-- final status, body, headers (for PUT: the resource) | nil, err.
-- opts: timeout (seconds, default the connection's lro_timeout), interval,
-- operation (for messages).
function M.await(conn, method, resource_path, status, body, headers, opts)
  opts = opts or {}
  local settings = conn.settings
  local timeout = opts.timeout or settings.lro_timeout or 900
  local interval = opts.interval or settings.lro_interval or 2
  local deadline = sys.monotime() + timeout
  local operation = opts.operation
  local async_url = errors.header(headers, "azure-asyncoperation")
  local location = errors.header(headers, "location")

  local function pause(last_headers)
    local wait = transport.retry_after(last_headers) or interval
    if sys.monotime() + wait > deadline then
      wait = deadline - sys.monotime()
      if wait <= 0 then return false end
    end
    conn.stats.lro_wait = conn.stats.lro_wait + wait
    loop.sleep(wait)
    return true
  end
  local function timed_out()
    return nil, errors.new { code = "Timeout", operation = operation, message =
      ("the long-running operation did not finish within %g s"):format(timeout) }
  end
  local function get_resource()
    local s, b, h = conn:request("GET", resource_path, { operation = operation })
    if not s then return nil, b end
    if s >= 400 then return nil, conn:error(s, b, h, operation) end
    return s, b, h
  end

  if status ~= 202 and not async_url then
    if method ~= "PUT" then return status, body, headers end
    local state = codec.provisioning_state(body)
    if state == nil or terminal(state) then
      if terminal(state) == "failed" or terminal(state) == "canceled" then
        return failed_error(codec.decode_json(body), terminal(state), operation, headers)
      end
      return status, body, headers
    end
  end

  if async_url then
    local last = headers
    while true do
      if not pause(last) then return timed_out() end
      local s, b, h = conn:request("GET", async_url, { operation = operation })
      if not s then return nil, b end
      if s >= 400 then return nil, conn:error(s, b, h, operation) end
      local doc = codec.decode_json(b) or {}
      local state = terminal(type(doc) == "table" and doc.status)
      if state == "succeeded" then break end
      if state then return failed_error(doc, state, operation, h) end
      last = h
    end
    if method == "PUT" or method == "PATCH" then return get_resource() end
    if method == "POST" and location then
      local s, b, h = conn:request("GET", location, { operation = operation })
      if s and s < 400 then return s, b, h end
    end
    return 200, "", headers
  end

  if location and status == 202 then
    local last = headers
    while true do
      if not pause(last) then return timed_out() end
      local s, b, h = conn:request("GET", location, { operation = operation })
      if not s then return nil, b end
      if s == 404 and method == "DELETE" then return 204, "", h end
      if s >= 400 then return nil, conn:error(s, b, h, operation) end
      if s ~= 202 then
        if method == "PUT" and (b == "" or codec.provisioning_state(b) == nil) then return get_resource() end
        return s, b, h
      end
      last = h
    end
  end

  -- No operation URL: watch the resource itself.
  local last = headers
  while true do
    if not pause(last) then return timed_out() end
    local s, b, h = conn:request("GET", resource_path, { operation = operation })
    if not s then return nil, b end
    if method == "DELETE" then
      if s == 404 then return 204, "", h end
      if s >= 400 then return nil, conn:error(s, b, h, operation) end
    else
      if s >= 400 then return nil, conn:error(s, b, h, operation) end
      local state = terminal(codec.provisioning_state(b))
      if method ~= "PUT" or state == "succeeded" then return s, b, h end
      if state then return failed_error(codec.decode_json(b), state, operation, h) end
    end
    last = h
  end
end

return M

-- batchai.client.transport: one connection to a Batch AI endpoint: URLs,
-- the bearer token and where it may go, retries with backoff and Retry-After,
-- client-side throttling.  Every request goes through batchai.client.loop.
local sys = require "batchai._sys"
local util = require "batchai.util"
local loop = require "batchai.client.loop"
local errors = require "batchai.client.errors"
local auth = require "batchai.client.auth"
local config = require "batchai.config"

local M = {}

local EMPTY = {}

M.api_version = "2018-05-01"
local API_QUERY = "?api-version=" .. M.api_version

local host = require "batchai._host"
local http = require "batchai._http"
local USER_AGENT = "bai/" .. tostring(host.version) .. " " .. (http.version():match("^(%S+)") or "")

-- Statuses and transport failures worth another attempt.
local RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
local RETRY_CODE = {
  COULDNT_CONNECT = true, COULDNT_RESOLVE_HOST = true, GOT_NOTHING = true, RECV_ERROR = true,
  SEND_ERROR = true, OPERATION_TIMEDOUT = true, PARTIAL_FILE = true, HTTP2 = true, HTTP2_STREAM = true,
  WEIRD_SERVER_REPLY = true, SSL_CONNECT_ERROR = true,
}
M.RETRY_STATUS, M.RETRY_CODE = RETRY_STATUS, RETRY_CODE

--- "scheme://host[:port]" in lower case, default ports dropped; nil if not a URL.
function M.origin(url)
  local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil end
  scheme, authority = scheme:lower(), authority:lower():gsub("^.*@", "")
  if (scheme == "http" and authority:find(":80$")) or (scheme == "https" and authority:find(":443$")) then
    authority = authority:gsub(":%d+$", "")
  end
  return scheme .. "://" .. authority
end

-- ---- Retry-After -------------------------------------------------------------

local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

--- Seconds to wait from the headers (retry-after-ms, x-ms-retry-after-ms,
-- Retry-After in seconds or as an HTTP date, counted from `now`, epoch
-- seconds, default the current time), or nil.
function M.retry_after(raw, now)
  if not raw or not raw:find("[Rr]etry%-[Aa]fter") then return nil end
  local ms = errors.header(raw, "retry-after-ms") or errors.header(raw, "x-ms-retry-after-ms")
  if ms and tonumber(ms) then return math.max(0, tonumber(ms) / 1000) end
  local value = errors.header(raw, "retry-after")
  if not value then return nil end
  local n = tonumber(value)
  if n then return math.max(0, n) end
  local d, mon, y, h, mi, s = value:match("^%a+,%s+(%d+)%s+(%a+)%s+(%d+)%s+(%d+):(%d+):(%d+)%s+GMT$")
  if d and months[mon] then
    local at = util.utc_time(tonumber(y), months[mon], tonumber(d), tonumber(h), tonumber(mi), tonumber(s))
    return math.max(0, at - (now or sys.now()))
  end
  return nil
end

-- ---- the connection ------------------------------------------------------------

local Connection = {}
Connection.__index = Connection
Connection.__name = "batchai.Connection"
function Connection:__tostring()
  return ("batchai.Connection (%s%s)"):format(self.display, self.socket and (" via " .. self.socket) or "")
end

-- Where the local bai serve is (starting it when needed): { socket=, url=, token= } | nil, err.
local function local_endpoint()
  local ok, daemon = pcall(require, "batchai.serve.daemon")
  if not ok then
    return nil, errors.new { code = "NoEndpoint", message =
      "no endpoint configured (set BAI_ENDPOINT) and the local bai serve cannot be loaded: " .. tostring(daemon) }
  end
  local info, err = daemon.ensure()
  if not info then
    return nil, errors.new { code = "NoEndpoint", message = "cannot start the local bai serve: " .. tostring(err) }
  end
  return info
end

--- transport.connect(settings) -> connection | nil, err.  `settings` are
-- resolved configuration values (batchai.config.resolve) plus optionally
-- token_source (for messages) and local_info ({ socket=, url=, token= } to use
-- instead of starting the local bai serve).  conn.stats counts requests,
-- retries, refreshed (401s answered with a new token), retry_wait (seconds
-- of backoff and Retry-After waited before retries) and lro_wait (seconds
-- waited between polls of long-running operations).
function M.connect(settings)
  local self = setmetatable({
    settings = settings,
    timeout = settings.timeout or 60,
    connect_timeout = settings.connect_timeout or 10,
    attempts = settings.retry_attempts or 6,
    deadline = settings.retry_deadline or 300,
    base_delay = settings.retry_base_delay or 0.5,
    max_delay = settings.retry_max_delay or 30,
    stats = { requests = 0, retries = 0, refreshed = 0, retry_wait = 0, lro_wait = 0 },
    body_headers = {}, plain_headers = {},
  }, Connection)
  local endpoint, local_token = settings.endpoint, nil
  if not endpoint then
    local info, err = settings.local_info, nil
    if not info then info, err = local_endpoint() end
    if not info then return nil, err end
    endpoint = info.socket or info.url
    local_token = info.token
    self.display = "local bai serve"
  end
  if endpoint:sub(1, 1) == "/" or endpoint:find("^unix:") then
    self.socket = endpoint:gsub("^unix:", "")
    self.base = "http://localhost"
    self.is_local = true
    self.display = self.display or ("unix socket " .. self.socket)
  else
    local origin = M.origin(endpoint)
    if not origin or not origin:find("^https?://.") then
      return nil, errors.new { code = "InvalidEndpoint", message =
        ("endpoint '%s' is neither an http(s) URL nor a unix socket path"):format(endpoint) }
    end
    self.base = endpoint:gsub("/+$", "")
    self.is_local = config.is_local_endpoint(endpoint)
    self.display = self.display or self.base
    -- A token never travels in clear text except to this machine.
    self.insecure = origin:find("^http://") ~= nil and not self.is_local
  end
  self.origin = M.origin(self.base)
  self.auth = auth.new {
    token = settings.token, token_source = settings.token_source,
    local_endpoint = self.socket ~= nil or local_token ~= nil, local_token = local_token,
    loopback_origin = self.is_local and not self.socket and self.origin or nil,
    timeout = self.timeout,
  }
  local mode = settings.throttle or "auto"
  if mode == "on" or (mode == "auto" and not self.is_local) then
    self.throttle = require("batchai.client.throttle").new { read = settings.throttle_read or { bucket = 250, refill = 25 },
      write = settings.throttle_write or { bucket = 200, refill = 10 },
      delete = settings.throttle_delete or { bucket = 200, refill = 10 } }
  end
  loop.configure {
    ca_file = settings.ca_file, user_agent = USER_AGENT,
    max_host_connections = math.max(settings.concurrency or 32, 8),
  }
  return self
end

--- Full URL of an API path ("/subscriptions/...") with api-version and `query`
-- (an already encoded "a=b&c=d" string).
function Connection:url(path, query)
  local url = self.base .. path .. API_QUERY
  if query and query ~= "" then url = url .. "&" .. query end
  return url
end

-- The headers of a request: Authorization (when the endpoint needs a token),
-- Accept, Content-Type for bodies.  Built once per token as a shared
-- batchai.HttpHeaders; requests with extra headers get a plain list.
function Connection:headers(token, has_body, extra)
  local cache = has_body and self.body_headers or self.plain_headers
  if not extra and cache.token == (token or false) then return cache.list end
  local list = { "Accept: application/json" }
  if token then list[#list + 1] = "Authorization: Bearer " .. token end
  if has_body then list[#list + 1] = "Content-Type: application/json" end
  if extra then
    for _, h in ipairs(extra) do list[#list + 1] = h end
    return list
  end
  cache.token, cache.list = token or false, http.headers(list)
  return cache.list
end

local function backoff(self, attempt)
  local ceiling = math.min(self.max_delay, self.base_delay * 2 ^ (attempt - 1))
  return math.random() * ceiling
end

local function describe(method, url)
  return method .. " " .. (url:gsub("%?.*$", ""))
end

--- One API request with retries: status, body, headers | nil, err.
-- `target` is a path (made into a URL of this endpoint) or a full URL (an LRO
-- or nextLink URL, which must be on this endpoint's host; or, with
-- anonymous = true, any URL, sent without the token).
-- opts: query, body, kind ("read" | "write" | "delete", for throttling),
-- idempotent (default: true except POST), operation (for messages), output
-- (write the body to this file), headers (extra "Name: value" lines),
-- anonymous, decompress.  4xx/5xx answers are returned, not turned into
-- errors (callers know which ones they expect); transport failures and
-- refusals are errors.
function Connection:request(method, target, opts)
  opts = opts or EMPTY
  local url, same_origin
  if target:byte(1) == 47 then  -- "/": a path of this endpoint
    url = self:url(target, opts.query)
    same_origin = true
  else
    url = target
    local origin = M.origin(url)
    if not opts.anonymous and origin ~= self.origin then
      return nil, errors.new { code = "ForeignHost", operation = opts.operation, message =
        ("refusing to send the token for %s to %s (the endpoint gave a URL on another host)"):format(
          self.origin, tostring(origin)) }
    end
    if not origin or not origin:find("^https?://") then
      return nil, errors.new { code = "InvalidUrl", operation = opts.operation, message = "not an http(s) URL: " .. describe("", url) }
    end
    same_origin = origin == self.origin
  end
  local idempotent = opts.idempotent
  if idempotent == nil then idempotent = method ~= "POST" and method ~= "PATCH" end
  local kind = opts.kind or (method == "GET" and "read" or method == "DELETE" and "delete" or "write")
  local started = sys.monotime()
  local attempt, refreshed = 0, false
  local req = {
    method = method, url = url, body = opts.body,
    unix_socket = same_origin and self.socket or nil,
    timeout = opts.timeout or self.timeout, connect_timeout = self.connect_timeout,
    noproxy = self.is_local and same_origin or nil, output = opts.output, decompress = opts.decompress,
  }
  while true do
    attempt = attempt + 1
    if self.throttle and same_origin then self.throttle:acquire(kind) end
    local token
    if same_origin and not opts.anonymous then
      local err
      token, err = self.auth:token()
      if err then
        err.operation = err.operation or opts.operation
        return nil, err
      end
      if token and self.insecure then
        return nil, errors.new { code = "InsecureEndpoint", operation = opts.operation, message =
          ("refusing to send the token over plain HTTP to %s (use https, a loopback address or a unix socket)"):format(self.origin) }
      end
    end
    req.headers = self:headers(token, opts.body ~= nil, opts.headers)
    self.stats.requests = self.stats.requests + 1
    local status, body, headers = loop.request(req)
    local delay
    if status == nil then
      local code, message = headers, body
      if req.unix_socket and code == "COULDNT_CONNECT" then
        message = ("cannot connect to the unix socket %s"):format(req.unix_socket)
        body = message
      end
      if not (idempotent and RETRY_CODE[code]) or attempt >= self.attempts then
        return nil, errors.new { code = code, message = message, operation = opts.operation or describe(method, url),
          attempts = attempt }
      end
      delay = backoff(self, attempt)
    elseif status == 401 and token and not refreshed and self.auth:invalidate() then
      refreshed = true
      self.stats.refreshed = self.stats.refreshed + 1
      delay = 0
      attempt = attempt - 1
    elseif RETRY_STATUS[status] and idempotent and attempt < self.attempts then
      delay = M.retry_after(headers) or backoff(self, attempt)
    else
      if self.throttle and same_origin then self.throttle:observe(headers) end
      if status >= 300 and status < 400 and status ~= 304 then
        local location = errors.header(headers, "location")
        return nil, errors.new { status = status, code = "Redirect", operation = opts.operation or describe(method, url),
          message = ("the endpoint redirected to %s; redirects are not followed"):format(
            location and (M.origin(location) or location:gsub("%?.*$", "")) or "nowhere") }
      end
      return status, body, headers
    end
    if sys.monotime() + delay - started > self.deadline then
      if status == nil then
        return nil, errors.new { code = headers, message = body, operation = opts.operation or describe(method, url),
          attempts = attempt }
      end
      return status, body, headers
    end
    self.stats.retries = self.stats.retries + 1
    self.stats.retry_wait = self.stats.retry_wait + delay
    if delay > 0 then loop.sleep(delay) end
  end
end

--- The error value for an unexpected answer.
function Connection:error(status, body, headers, operation)
  return errors.from_response(status, body, headers, operation)
end

return M

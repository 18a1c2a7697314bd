-- batchai.client.auth: where the bearer token comes from, and its cache.
--
-- The chain, first match wins:
--   1. an explicit token: the `token` option, BAI_TOKEN, or `token` in the config file;
--   2. the local endpoint's own token: bai serve's, handed over with its socket
--      (a socket endpoint stops the chain here), or, for a loopback URL, the
--      token of the local bai serve listening there;
--   3. Azure client credentials: AZURE_TENANT_ID, AZURE_CLIENT_ID,
--      AZURE_CLIENT_SECRET, at AZURE_AUTHORITY_HOST (default login.microsoftonline.com);
--   4. managed identity from the instance metadata service (IMDS; host
--      overridable with AZURE_POD_IDENTITY_AUTHORITY_HOST);
--   5. `az account get-access-token`.
-- Tokens are cached and refreshed before they expire (5 minutes before, or at
-- half their life when they live less than 10 minutes), never per request;
-- concurrent requests share one refresh.
local cjson = require "cjson"
local sys = require "batchai._sys"
local config = require "batchai.config"
local loop = require "batchai.client.loop"
local errors = require "batchai.client.errors"

local M = {}

M.resource = "https://management.azure.com/"
M.scope = "https://management.azure.com/.default"

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end
M.urlencode = urlencode

local function unavailable(message) return nil, errors.new { code = "CredentialUnavailable", message = message } end

-- One token request with a few retries on transport errors and 5xx.
-- Returns the decoded JSON answer, or nil, err (err.unreachable when no
-- connection could be made).
local function token_request(req, operation)
  local status, body, headers
  for attempt = 1, 3 do
    status, body, headers = loop.request(req)
    if status == nil then  -- transport failure: body is the message, headers the code
      if attempt == 3 or headers == "COULDNT_CONNECT" or headers == "OPERATION_TIMEDOUT"
        or headers == "COULDNT_RESOLVE_HOST" then
        local err = errors.new { code = headers, message = body, operation = operation }
        err.unreachable = true
        return nil, err
      end
    elseif status < 500 and status ~= 429 then
      break
    end
    if attempt < 3 then loop.sleep(0.2 * attempt) end
  end
  if status ~= 200 then return nil, errors.from_response(status, body, headers, operation) end
  local ok, doc = pcall(cjson.decode, body)
  if not ok or type(doc) ~= "table" or type(doc.access_token) ~= "string" then
    return nil, errors.new { code = "InvalidTokenResponse", message = "the token endpoint answered without an access_token", operation = operation }
  end
  return doc
end

-- Expiry (epoch seconds) of a token endpoint's answer received at `now`.
local function expiry_of(doc, now)
  local expires_in = tonumber(doc.expires_in)
  if expires_in then return now + expires_in end
  local on = tonumber(doc.expires_on)
  if on then return on end
  return now + 3600
end

-- ---- providers: each returns token, expires_at (epoch seconds) | nil, err ----
-- (`now` is the time of the auth's clock)

local function client_credentials(tenant, client_id, secret, timeout, now)
  local authority = os.getenv("AZURE_AUTHORITY_HOST")
  if not authority or authority == "" then authority = "https://login.microsoftonline.com" end
  authority = authority:gsub("/+$", "")
  if not authority:find("^https://") and not (authority:find("^http://") and config.is_local_endpoint(authority)) then
    return nil, errors.new { code = "InsecureAuthority",
      message = ("refusing to send the client secret over plain HTTP to %s"):format(authority) }
  end
  errors.add_secret(secret)
  local body = "grant_type=client_credentials&client_id=" .. urlencode(client_id) .. "&client_secret=" ..
    urlencode(secret) .. "&scope=" .. urlencode(M.scope)
  local doc, err = token_request({
    method = "POST", url = authority .. "/" .. urlencode(tenant) .. "/oauth2/v2.0/token", body = body,
    headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" },
    timeout = timeout, connect_timeout = 10,
  }, "client credentials token")
  if not doc then return nil, err end
  return doc.access_token, expiry_of(doc, now)
end

local function managed_identity(timeout, now)
  local host = os.getenv("AZURE_POD_IDENTITY_AUTHORITY_HOST")
  if not host or host == "" then host = "http://169.254.169.254" end
  host = host:gsub("/+$", "")
  local url = host .. "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" .. urlencode(M.resource)
  local client_id = os.getenv("AZURE_CLIENT_ID")
  if client_id and client_id ~= "" then url = url .. "&client_id=" .. urlencode(client_id) end
  local doc, err = token_request({
    method = "GET", url = url, headers = { "Metadata: true" }, noproxy = true,
    timeout = math.min(timeout, 10), connect_timeout = 1,
  }, "managed identity token")
  if not doc then return nil, err end
  return doc.access_token, expiry_of(doc, now)
end

local function az_cli(now)
  local ok_found = os.execute("command -v az >/dev/null 2>&1")
  if not ok_found then return unavailable("the az command is not installed") end
  local p = io.popen("az account get-access-token --resource " .. require("batchai.shell").quote(M.resource)
    .. " --output json 2>/dev/null")
  local text = p:read("a")
  local ok = p:close()
  local decoded, doc = pcall(cjson.decode, text)
  if not ok or not decoded or type(doc) ~= "table" or type(doc.accessToken) ~= "string" then
    return nil, errors.new { code = "AzCliFailed", message = "az account get-access-token failed (run 'az login')" }
  end
  local expires = tonumber(doc.expires_on)
  if not expires and type(doc.expiresOn) == "string" then  -- local time "YYYY-MM-DD HH:MM:SS.ffffff"
    local y, mo, d, h, mi, s = doc.expiresOn:match("^(%d+)-(%d+)-(%d+) (%d+):(%d+):(%d+)")
    if y then expires = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = s } end
  end
  return doc.accessToken, expires or (now + 600)
end

-- ---- the chain ------------------------------------------------------------

local Auth = {}
Auth.__index = Auth
Auth.__name = "batchai.Auth"
function Auth:__tostring() return "batchai.Auth (" .. (self.source or "not yet chosen") .. ")" end

--- auth.new{ token =, token_source =, local_endpoint = bool, local_token =,
-- loopback_origin = origin of a loopback URL endpoint, timeout = }
function M.new(options)
  return setmetatable({
    explicit = options.token, explicit_source = options.token_source or "token option",
    local_endpoint = options.local_endpoint, local_token = options.local_token,
    loopback_origin = options.loopback_origin, timeout = options.timeout or 30, fetches = 0,
    clock = sys.now,
  }, Auth)
end

--- Makes the token cache read the time (epoch seconds) from clock() instead
-- of the system clock; specs move it forward to see refreshes happen.
function Auth:use_clock(clock)
  self.clock = clock
end

-- The token of the local bai serve when it listens at `origin`, or nil.
local function local_serve_token(origin)
  local ok, daemon = pcall(require, "batchai.serve.daemon")
  if not ok or type(daemon.probe) ~= "function" then return nil end
  local probed, info = pcall(daemon.probe)
  if not probed or type(info) ~= "table" or type(info.url) ~= "string" then return nil end
  if require("batchai.client.transport").origin(info.url) ~= origin then return nil end
  return info.token
end

-- Picks the provider (once) and fetches a token at `now`: token, expires_at
-- | nil, err.  A false token means "no authentication" (a local socket).
function Auth:fetch(now)
  self.fetches = self.fetches + 1
  if self.explicit then
    self.source = self.explicit_source
    return self.explicit, math.huge
  end
  if self.local_endpoint then
    self.source = "local endpoint"
    return self.local_token or false, math.huge
  end
  if self.loopback_origin then
    local token = local_serve_token(self.loopback_origin)
    if token then
      self.source = "local bai serve's token"
      return token, math.huge
    end
  end
  if self.provider then return self.provider(now) end
  local tenant, client_id, secret = os.getenv("AZURE_TENANT_ID"), os.getenv("AZURE_CLIENT_ID"), os.getenv("AZURE_CLIENT_SECRET")
  if tenant and tenant ~= "" and client_id and client_id ~= "" and secret and secret ~= "" then
    self.source = "Azure client credentials (AZURE_CLIENT_ID " .. client_id .. ")"
    self.provider = function(at) return client_credentials(tenant, client_id, secret, self.timeout, at) end
    return self.provider(now)
  end
  local token, expires = managed_identity(self.timeout, now)
  if token then
    self.source = "managed identity (IMDS)"
    self.provider = function(at) return managed_identity(self.timeout, at) end
    return token, expires
  end
  local mi_err = expires
  token, expires = az_cli(now)
  if token then
    self.source = "az account get-access-token"
    self.provider = az_cli
    return token, expires
  end
  return nil, errors.new { code = "NoCredentials", message =
    "no credentials for the endpoint: set BAI_TOKEN, or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, " ..
    "or run where a managed identity is available, or log in with 'az login' (managed identity: " ..
    tostring(mi_err and mi_err.message) .. "; az: " .. tostring(expires and expires.message) .. ")" }
end

--- The current token (nil when none is needed) | nil, err.  Shares one fetch
-- between concurrent callers; refreshes ahead of expiry.
function Auth:token()
  local now = self.clock()
  if self.cached ~= nil and now < self.refresh_at then return self.cached or nil end
  while self.fetching do self.fetching:wait() end
  now = self.clock()
  if self.cached ~= nil and now < self.refresh_at then return self.cached or nil end
  local signal = loop.signal()
  self.fetching = signal
  local ok, token, expires = pcall(self.fetch, self, now)
  self.fetching = nil
  signal:fire()
  if not ok then error(token, 0) end
  if token == nil then return nil, expires end
  if token then errors.add_secret(token) end
  local lifetime = expires - now
  local margin = math.min(300, lifetime / 2)
  self.cached = token or false
  self.refresh_at = expires - margin
  return token
end

--- Drops the cached token (after a 401), so the next call fetches a new one.
-- Returns false when the token cannot change (explicit or local).
function Auth:invalidate()
  if self.explicit or self.local_endpoint or self.source == "local bai serve's token" then return false end
  self.cached = nil
  return true
end

return M

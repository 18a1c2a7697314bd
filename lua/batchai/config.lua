-- batchai.config: the effective configuration and where each value came from.
--
-- Precedence, lowest first: built-in defaults < $XDG_CONFIG_HOME/bai/config.lua
-- (top level) < its selected profile < environment variables < options (a
-- Lua call's fields or command-line flags).  The file is Lua returning a table
-- (or assigning the same names as globals):
--
--   return {
--     endpoint = "https://management.azure.com",
--     subscription = "...", resource_group = "ml", workspace = "ws1",
--     concurrency = 64,
--     profile = "prod",                               -- the default profile
--     profiles = { prod = { resource_group = "ml-prod" }, dev = { endpoint = false } },
--   }
--
-- `false` in a profile unsets a value (endpoint = false: the local bai serve).
-- BAI_CONFIG names another file; BAI_PROFILE or --profile chooses a profile.
local util = require "batchai.util"
local sys = require "batchai._sys"

local M = {}

-- Every key: its environment variables, type, default, whether it is secret,
-- and a line of documentation (shown by `bai config --keys`).  A default
-- marked `local_default` applies only with the local endpoint.
M.keys = {
  endpoint = { env = { "BAI_ENDPOINT" }, type = "string",
    doc = "URL or unix socket path of the Batch AI endpoint; unset means the local bai serve" },
  token = { env = { "BAI_TOKEN" }, type = "string", secret = true,
    doc = "bearer token for the endpoint (skips the rest of the auth chain)" },
  subscription = { env = { "BAI_SUBSCRIPTION", "AZURE_SUBSCRIPTION_ID" }, type = "string",
    local_default = "00000000-0000-0000-0000-000000000000", doc = "subscription id" },
  resource_group = { env = { "BAI_RESOURCE_GROUP" }, type = "string", local_default = "default",
    doc = "resource group" },
  workspace = { env = { "BAI_WORKSPACE" }, type = "string", local_default = "default", doc = "workspace name" },
  experiment = { env = { "BAI_EXPERIMENT" }, type = "string", local_default = "default", doc = "experiment name" },
  location = { env = { "BAI_LOCATION" }, type = "string", local_default = "local",
    doc = "location for new workspaces" },
  cluster = { env = { "BAI_CLUSTER" }, type = "string", local_default = "local",
    doc = "cluster for jobs that name none" },
  concurrency = { env = { "BAI_CONCURRENCY" }, type = "integer", min = 1, default = 32,
    doc = "requests in flight at once" },
  timeout = { env = { "BAI_TIMEOUT" }, type = "number", min = 0, default = 60,
    doc = "seconds one HTTP request may take" },
  connect_timeout = { env = { "BAI_CONNECT_TIMEOUT" }, type = "number", min = 0, default = 10,
    doc = "seconds to establish a connection" },
  retry_attempts = { env = { "BAI_RETRY_ATTEMPTS" }, type = "integer", min = 1, default = 6,
    doc = "attempts per request (408, 429, 5xx and connection errors are retried)" },
  retry_deadline = { env = { "BAI_RETRY_DEADLINE" }, type = "number", min = 0, default = 300,
    doc = "seconds after which a request is no longer retried" },
  retry_base_delay = { env = { "BAI_RETRY_BASE_DELAY" }, type = "number", min = 0, default = 0.5,
    doc = "first backoff ceiling in seconds (doubles per attempt, full jitter)" },
  retry_max_delay = { env = { "BAI_RETRY_MAX_DELAY" }, type = "number", min = 0, default = 30,
    doc = "largest backoff in seconds" },
  lro_timeout = { env = { "BAI_LRO_TIMEOUT" }, type = "number", min = 0, default = 900,
    doc = "seconds to wait for a long-running operation" },
  lro_interval = { env = { "BAI_LRO_INTERVAL" }, type = "number", min = 0, default = 2,
    doc = "seconds between polls when the endpoint sends no Retry-After" },
  throttle = { env = { "BAI_THROTTLE" }, type = "string", choices = { "auto", "on", "off" }, default = "auto",
    doc = "client-side rate limits: auto = on for remote endpoints, off for the local one" },
  throttle_read = { type = "bucket", default = { bucket = 250, refill = 25 },
    doc = "read budget: { bucket = N, refill = per second }" },
  throttle_write = { type = "bucket", default = { bucket = 200, refill = 10 },
    doc = "write budget" },
  throttle_delete = { type = "bucket", default = { bucket = 200, refill = 10 },
    doc = "delete budget" },
  ca_file = { env = { "BAI_CA_FILE" }, type = "string",
    doc = "PEM file of trusted CA certificates (verification is always on)" },
  output = { env = { "BAI_OUTPUT" }, type = "string", choices = { "table", "json", "jsonl", "tsv" },
    doc = "default output format of the commands (table on a terminal, tsv otherwise)" },
}

M.order = {
  "endpoint", "token", "subscription", "resource_group", "workspace", "experiment", "location",
  "cluster", "concurrency", "timeout", "connect_timeout", "retry_attempts", "retry_deadline",
  "retry_base_delay", "retry_max_delay", "lro_timeout", "lro_interval", "throttle",
  "throttle_read", "throttle_write", "throttle_delete", "ca_file", "output",
}

--- Path of the configuration file, and where it came from ("env BAI_CONFIG" or "default").
function M.path()
  local p = os.getenv("BAI_CONFIG")
  if p and p ~= "" then return p, "env BAI_CONFIG" end
  return util.xdg_dir("config") .. "/bai/config.lua", "default"
end

-- Checks and converts one value; returns value or nil, message.
local function convert(name, value, from_text)
  local spec = M.keys[name]
  if value == false then return false end
  if spec.type == "string" then
    if type(value) ~= "string" then return nil, "string expected, got " .. type(value) end
    if spec.choices then
      local ok = false
      for _, c in ipairs(spec.choices) do if c == value then ok = true end end
      if not ok then return nil, ("'%s' is not one of %s"):format(value, table.concat(spec.choices, ", ")) end
    end
    return value
  elseif spec.type == "integer" or spec.type == "number" then
    local n = value
    if from_text then n = tonumber(value) end
    if type(n) ~= "number" then return nil, ("number expected, got %s"):format(from_text and ("'" .. value .. "'") or type(value)) end
    if spec.type == "integer" then
      if n ~= math.floor(n) then return nil, "integer expected, got " .. tostring(value) end
      n = math.tointeger(n)
    end
    if spec.min and n < spec.min then return nil, ("must be >= %s, got %s"):format(spec.min, tostring(value)) end
    return n
  elseif spec.type == "bucket" then
    if type(value) ~= "table" then return nil, "table { bucket = N, refill = N } expected" end
    for k, v in pairs(value) do
      if k ~= "bucket" and k ~= "refill" then
        return nil, ("invalid field '%s'%s"):format(tostring(k), util.did_you_mean(tostring(k), { "bucket", "refill" }))
      end
      if type(v) ~= "number" or v <= 0 then return nil, ("field '%s': number > 0 expected"):format(k) end
    end
    if not value.bucket or not value.refill then return nil, "both 'bucket' and 'refill' are needed" end
    return { bucket = value.bucket, refill = value.refill }
  end
end

-- What a configuration file can use besides its own names (a fresh table per load).
local function sandbox()
  return { os = { getenv = os.getenv }, string = string, table = table, math = math, tostring = tostring,
    tonumber = tonumber, ipairs = ipairs, pairs = pairs }
end
local SANDBOX_NAMES = sandbox()  -- only its keys are used: not configuration keys

local file_cache = {}  -- path -> { values = {...}, profiles = {...}, profile = name } or { missing = true }

-- Reads and checks the configuration file; raises a message naming the file.
local function load_file(path)
  local cached = file_cache[path]
  if cached then return cached end
  local text, read_err = util.read_file(path)
  if not text and not sys.stat(path) then
    cached = { missing = true, values = {}, profiles = {} }
    file_cache[path] = cached
    return cached
  end
  if not text then error(("configuration file %s"):format(read_err), 0) end
  local env = sandbox()
  local chunk, err = load(text, "@" .. path, "t", env)
  if not chunk then error(("configuration file %s"):format(err), 0) end
  local ok, result = pcall(chunk)
  if not ok then error(("configuration file %s: %s"):format(path, tostring(result)), 0) end
  if result == nil then
    result = {}
    for k, v in pairs(env) do
      if SANDBOX_NAMES[k] == nil then result[k] = v end
    end
  end
  if type(result) ~= "table" then
    error(("configuration file %s: must return a table, got %s"):format(path, type(result)), 0)
  end
  local function check_table(t, where)
    local values = {}
    for k, v in pairs(t) do
      if type(k) ~= "string" or not M.keys[k] then
        error(("configuration file %s: unknown key '%s'%s%s"):format(path, tostring(k), where,
          util.did_you_mean(tostring(k), M.keys)), 0)
      end
      local value, msg = convert(k, v, false)
      if value == nil then error(("configuration file %s: key '%s'%s: %s"):format(path, k, where, msg), 0) end
      values[k] = value
    end
    return values
  end
  local profiles, default_profile = {}, result.profile
  local top = {}
  for k, v in pairs(result) do if k ~= "profiles" and k ~= "profile" then top[k] = v end end
  if result.profiles ~= nil and type(result.profiles) ~= "table" then
    error(("configuration file %s: 'profiles' must be a table of tables"):format(path), 0)
  end
  for name, t in pairs(result.profiles or {}) do
    if type(name) ~= "string" or type(t) ~= "table" then
      error(("configuration file %s: 'profiles' must map names to tables"):format(path), 0)
    end
    profiles[name] = check_table(t, (" in profile '%s'"):format(name))
  end
  if default_profile ~= nil and type(default_profile) ~= "string" then
    error(("configuration file %s: 'profile' must be a string"):format(path), 0)
  end
  cached = { values = check_table(top, ""), profiles = profiles, profile = default_profile }
  file_cache[path] = cached
  return cached
end

--- Forgets the cached file (after editing it in the same process).
function M.reload() file_cache = {} end

local function is_local_endpoint(endpoint)
  if not endpoint then return true end
  if endpoint:sub(1, 1) == "/" then return true end
  local host = endpoint:match("^https?://%[?([^/%]]+)") or ""
  host = host:gsub(":%d+$", "")
  return host == "localhost" or host == "::1" or host:find("^127%.") ~= nil
end
M.is_local_endpoint = is_local_endpoint

--- The effective configuration for `options` (a table of key = value, plus
-- profile = name).  Returns values, sources: sources[key] says where each
-- value came from ("default", "file PATH", "profile NAME (PATH)", "env NAME",
-- "option").  Raises a message on a bad file, variable or option.
function M.resolve(options)
  options = options or {}
  local values, sources = {}, {}
  local path = M.path()
  local file = load_file(path)
  for k, v in pairs(options) do
    if k ~= "profile" and not M.keys[k] then
      error(("unknown configuration key '%s'%s"):format(tostring(k), util.did_you_mean(tostring(k), M.keys)), 0)
    end
  end
  local function set(k, v, source)
    if v == false then
      values[k], sources[k] = nil, source
    elseif v ~= nil then
      values[k], sources[k] = v, source
    end
  end
  for k, spec in pairs(M.keys) do set(k, spec.default, "default") end
  for k, v in pairs(file.values) do set(k, v, "file " .. path) end
  local profile, profile_source = file.profile, "file " .. path
  local env_profile = os.getenv("BAI_PROFILE")
  if env_profile and env_profile ~= "" then profile, profile_source = env_profile, "env BAI_PROFILE" end
  if options.profile then profile, profile_source = options.profile, "option" end
  if profile then
    local p = file.profiles[profile]
    if not p then
      local names = util.sorted_keys(file.profiles)
      error(("unknown profile '%s' (from %s)%s; profiles in %s: %s"):format(profile, profile_source,
        util.did_you_mean(profile, names), path, #names > 0 and table.concat(names, ", ") or "none"), 0)
    end
    for k, v in pairs(p) do set(k, v, ("profile %s (%s)"):format(profile, path)) end
  end
  for k, spec in pairs(M.keys) do
    for _, name in ipairs(spec.env or {}) do
      local text = os.getenv(name)
      if text and text ~= "" and (sources[k] == nil or not sources[k]:find("^env ")) then
        local value, msg = convert(k, text, true)
        if value == nil then error(("environment variable %s: %s"):format(name, msg), 0) end
        set(k, value, "env " .. name)
      end
    end
  end
  for k, v in pairs(options) do
    if k ~= "profile" then
      local value, msg = convert(k, v, type(v) == "string")
      if value == nil then error(("option '%s': %s"):format(k, msg), 0) end
      set(k, value, "option")
    end
  end
  if is_local_endpoint(values.endpoint) then
    for k, spec in pairs(M.keys) do
      if values[k] == nil and spec.local_default then
        values[k], sources[k] = spec.local_default, "default (local endpoint)"
      end
    end
  end
  values.profile, sources.profile = profile, profile and profile_source or nil
  return values, sources
end

--- Masks a secret for display: "***" plus its length.
function M.mask(value)
  if value == nil then return nil end
  return ("*** (%d characters)"):format(#tostring(value))
end

return M

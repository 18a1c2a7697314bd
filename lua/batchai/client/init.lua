-- batchai.client: workspaces, experiments and jobs of a Batch AI endpoint as
-- Lua objects (the API behind bai.workspace and bai.experiment).
--
--   local ws = bai.workspace { name = "ws" }             -- unset fields from configuration
--   local exp = ws:experiment "lr-sweep"                 -- or bai.experiment { workspace = "ws", name = "lr-sweep" }
--   exp:create()                                         -- long-running operations are awaited
--   local job, err = exp:create_job("j1", props)         -- opts: { wait = false }
--   for job in exp:jobs() do print(job.name) end         -- every page, lazily
--
-- Expected failures return nil, err (see batchai.client.errors); misuse
-- (a bad name, an unknown option) raises.  Iterators raise their error value.
-- Every method may be called from tasks of batchai.client.loop to run many at
-- once; see that module.
local config = require "batchai.config"
local util = require "batchai.util"
local plugins = require "batchai.plugins"
local sys = require "batchai._sys"
local loop = require "batchai.client.loop"
local errors = require "batchai.client.errors"
local transport = require "batchai.client.transport"
local codec = require "batchai.client.codec"
local auth = require "batchai.client.auth"

-- Long-running operations are loaded by the calls that start one (not by `bai job show`).
local function lro() return require "batchai.client.lro" end

local M = {}

M.loop = loop
M.errors = errors

local urlencode = auth.urlencode

-- ---- names and options ---------------------------------------------------------

-- The Batch AI name rule is the schema's (batchai.schema.kinds, light: no C module).
local resource_name = require("batchai.schema.kinds").resource_name

local function check_name(value, what, level)
  if type(value) ~= "string" then
    error(("%s: string expected, got %s"):format(what, type(value)), level + 1)
  end
  if not resource_name(value) then
    error(("%s '%s' is invalid: 1 to 64 letters, digits, '-' or '_'"):format(what, value), level + 1)
  end
  return value
end

local function check_group(value, level)
  if type(value) ~= "string" or #value < 1 or #value > 90 or not value:find("^[%w_%-%.%(%)]+$") then
    error(("resource group '%s' is invalid: 1 to 90 letters, digits, '-', '_', '.', '(' or ')'"):format(tostring(value)), level + 1)
  end
  return value
end

local function check_subscription(value, level)
  if type(value) ~= "string" or not value:find("^[%w%-]+$") then
    error(("subscription '%s' is invalid: letters, digits and '-' expected"):format(tostring(value)), level + 1)
  end
  return value
end

-- Configuration keys accepted by the constructors besides their own fields.
local CONFIG_FIELDS = { profile = true }
for k in pairs(config.keys) do CONFIG_FIELDS[k] = true end

local function check_fields(t, own, what, level)
  if t == nil then return {} end
  if type(t) ~= "table" then error(("bad argument #1 to '%s' (table expected, got %s)"):format(what, type(t)), level + 1) end
  for k in pairs(t) do
    if type(k) ~= "string" or not (own[k] or CONFIG_FIELDS[k]) then
      local candidates = {}
      for name in pairs(own) do candidates[#candidates + 1] = name end
      for name in pairs(CONFIG_FIELDS) do candidates[#candidates + 1] = name end
      error(("invalid field '%s' in %s%s"):format(tostring(k), what, util.did_you_mean(tostring(k), candidates)), level + 1)
    end
  end
  return t
end

local function check_options(t, allowed, what, level)
  if t == nil then return {} end
  if type(t) ~= "table" then error(("%s: options must be a table, got %s"):format(what, type(t)), level + 1) end
  for k in pairs(t) do
    if not allowed[k] then
      error(("invalid option '%s' to %s%s"):format(tostring(k), what, util.did_you_mean(tostring(k), allowed)), level + 1)
    end
  end
  return t
end

-- ---- contexts: resolved settings and a shared connection -----------------------

local connections = {}  -- settings key -> connection

local CONNECTION_KEYS = { "endpoint", "token", "ca_file", "timeout", "connect_timeout", "retry_attempts",
  "retry_deadline", "retry_base_delay", "retry_max_delay", "throttle", "throttle_read", "throttle_write",
  "throttle_delete", "concurrency", "lro_timeout", "lro_interval" }

local Context = {}
Context.__index = Context
Context.__name = "batchai.client.Context"

-- Resolved settings print (in the REPL, in messages) with their secrets masked.
local Settings = { __name = "batchai.client.Settings" }
function Settings.__tostring(settings)
  local parts = {}
  for _, k in ipairs(util.sorted_keys(settings)) do
    local v = settings[k]
    if config.keys[k] and config.keys[k].secret then
      v = config.mask(v)
    elseif type(v) == "table" then
      v = ("bucket=%s refill=%s"):format(tostring(v.bucket), tostring(v.refill))
    end
    parts[#parts + 1] = tostring(k) .. "=" .. tostring(v)
  end
  return "batchai.client.Settings { " .. table.concat(parts, ", ") .. " }"
end

function Context:__tostring()
  return ("batchai.client.Context (endpoint %s)"):format(tostring(self.settings.endpoint or "the local bai serve"))
end

-- A context from constructor fields: configuration values for the config keys
-- among them.  Raises (misuse) on a bad configuration.
local function new_context(fields, level)
  local options = {}
  for k, v in pairs(fields) do
    if CONFIG_FIELDS[k] then options[k] = v end
  end
  local ok, values, sources = pcall(config.resolve, options)
  if not ok then error(values, level + 1) end
  if sources.token then values.token_source = "token from " .. sources.token end
  return setmetatable({ settings = setmetatable(values, Settings), sources = sources }, Context)
end

--- The connection (made on first use, shared by equal settings) | nil, err.
function Context:connection()
  if self.conn then return self.conn end
  local parts = {}
  for i, k in ipairs(CONNECTION_KEYS) do
    local v = self.settings[k]
    parts[i] = type(v) == "table" and table.concat({ v.bucket, v.refill }, "/") or tostring(v)
  end
  local key = table.concat(parts, "\0")
  local conn = connections[key]
  if not conn then
    local err
    conn, err = transport.connect(self.settings)
    if not conn then return nil, err end
    connections[key] = conn
  end
  self.conn = conn
  return conn
end

local function required(ctx, key, what, level)
  local v = ctx.settings[key]
  if v == nil then
    error(("%s is not set (pass %s, set %s, or add it to %s)"):format(what, key,
      (config.keys[key].env or {})[1] or "it", (config.path())), level + 1)
  end
  return v
end

-- ---- requests shared by every object --------------------------------------------

-- Sends a request on the object's connection: status, body, headers | nil, err.
local function call(obj, method, path, opts)
  local conn, err = obj.ctx:connection()
  if not conn then return nil, err end
  return conn:request(method, path, opts)
end

-- A 2xx answer or nil, err (with the operation named).
local function expect(obj, method, path, opts)
  local conn, cerr = obj.ctx:connection()
  if not conn then return nil, cerr end
  local status, body, headers = conn:request(method, path, opts)
  if not status then return nil, body end
  if status >= 400 then return nil, conn:error(status, body, headers, opts.operation) end
  return status, body, headers, conn
end

-- Starts a long-running operation and, unless opts.wait == false, awaits it.
local function long_running(obj, method, path, req_opts, opts)
  local status, body, headers, conn = expect(obj, method, path, req_opts)
  if not status then return nil, body end
  if opts.wait == false then return status, body, headers end
  return lro().await(conn, method, path, status, body, headers, { timeout = opts.timeout, operation = req_opts.operation })
end

local function decoded(body, type_name, operation)
  if body == nil or body == "" then return true end
  local value, err = codec.decode(body, type_name)
  if value == nil then return nil, errors.new { code = "InvalidResponse", message = err, operation = operation } end
  return value
end

-- A lazy iterator over every item of a pageable list; raises its error value.
local function pager(obj, path, query, type_name, operation, method)
  local items, index, next_url, started, finished = nil, 0, nil, false, false
  return function()
    while true do
      if items and index < #items then
        index = index + 1
        local value = codec.decode(items[index], type_name)
        return value
      end
      if finished then return nil end
      local status, body, headers
      if not started then
        started = true
        status, body, headers = call(obj, method or "GET", path, { query = query, operation = operation, idempotent = true, kind = "read" })
      else
        status, body, headers = call(obj, method or "GET", next_url, { operation = operation, idempotent = true, kind = "read" })
      end
      if not status then error(body, 0) end
      if status >= 400 then error(errors.from_response(status, body, headers, operation), 0) end
      local list, link, err = codec.page(body)
      if not list then error(errors.new { code = "InvalidResponse", message = err, operation = operation }, 0) end
      items, index, next_url = list, 0, link
      if not link then finished = true end
    end
  end
end

local function maxresults_query(opts)
  if opts.maxresults == nil then return nil end
  local n = opts.maxresults
  if math.type(n) ~= "integer" or n < 1 or n > 1000 then error("option 'maxresults': integer 1..1000 expected", 3) end
  return "maxresults=" .. n
end

--- Collects an iterator into an array: items | nil, err (instead of raising).
function M.collect(iterator)
  local items = {}
  local ok, err = pcall(function()
    for item in iterator do items[#items + 1] = item end
  end)
  if not ok then
    if errors.is_error(err) then return nil, err end
    error(err, 0)
  end
  return items
end

-- ---- workspaces -------------------------------------------------------------------

local Workspace = {}
Workspace.__index = Workspace
Workspace.__name = "batchai.Workspace"
function Workspace:__tostring()
  return ("batchai.Workspace %s (resource group %s, subscription %s)"):format(self.name, self.resource_group, self.subscription)
end

local function group_path(subscription, group)
  return "/subscriptions/" .. urlencode(subscription) .. "/resourceGroups/" .. urlencode(group)
end

local function new_workspace(ctx, subscription, group, name, level)
  local ws = setmetatable({
    ctx = ctx,
    subscription = check_subscription(subscription, level + 1),
    resource_group = check_group(group, level + 1),
    name = check_name(name, "workspace name", level + 1),
  }, Workspace)
  ws.path = group_path(ws.subscription, ws.resource_group) .. "/providers/Microsoft.BatchAI/workspaces/" .. ws.name
  return ws
end

-- The workspace of constructor fields: their subscription, resource_group and
-- fields[name_field], each else from the configuration (raising when unset).
-- (No tail calls in the constructors: `level` counts their stack frames.)
local function configured_workspace(ctx, fields, name_field, level)
  local ws = new_workspace(ctx,
    fields.subscription or required(ctx, "subscription", "subscription", level + 1),
    fields.resource_group or required(ctx, "resource_group", "resource group", level + 1),
    fields[name_field] or required(ctx, "workspace", "workspace name", level + 1), level + 1)
  return ws
end

--- bai.workspace{ subscription=, resource_group=, name=, [configuration keys] }
function M.workspace(fields)
  fields = check_fields(fields, { subscription = true, resource_group = true, name = true }, "workspace", 2)
  local ws = configured_workspace(new_context(fields, 2), fields, "name", 2)
  return ws
end

--- ws:create{ location=, tags=, wait= } -> workspace value | nil, err
function Workspace:create(opts)
  opts = check_options(opts, { location = true, tags = true, wait = true, timeout = true }, "ws:create", 2)
  local location = opts.location or self.ctx.settings.location
  if type(location) ~= "string" then error("ws:create: 'location' is required (option or configuration)", 2) end
  if opts.tags ~= nil and type(opts.tags) ~= "table" then error("ws:create: 'tags' must be a table of strings", 2) end
  local body = { location = location }
  if opts.tags and next(opts.tags) then body.tags = opts.tags end
  local operation = "create workspace '" .. self.name .. "'"
  local status, rbody = long_running(self, "PUT", self.path,
    { body = require("cjson").encode(body), operation = operation }, opts)
  if not status then return nil, rbody end
  return decoded(rbody, "Workspace", operation)
end

--- ws:get() -> workspace value | nil, err
function Workspace:get()
  local operation = "get workspace '" .. self.name .. "'"
  local status, body = expect(self, "GET", self.path, { operation = operation })
  if not status then return nil, body end
  return decoded(body, "Workspace", operation)
end

--- ws:update{ tags = {...} } -> workspace value | nil, err
function Workspace:update(opts)
  opts = check_options(opts, { tags = true }, "ws:update", 2)
  local operation = "update workspace '" .. self.name .. "'"
  local status, body = expect(self, "PATCH", self.path,
    { body = require("cjson").encode { tags = opts.tags or {} }, operation = operation, idempotent = true })
  if not status then return nil, body end
  return decoded(body, "Workspace", operation)
end

--- ws:delete{ wait= } -> true | nil, err (a missing workspace is not an error)
function Workspace:delete(opts)
  opts = check_options(opts, { wait = true, timeout = true }, "ws:delete", 2)
  local status, err = long_running(self, "DELETE", self.path, { operation = "delete workspace '" .. self.name .. "'" }, opts)
  if not status then return nil, err end
  return true
end

--- ws:experiments{ maxresults= } -> lazy iterator over every experiment
function Workspace:experiments(opts)
  opts = check_options(opts, { maxresults = true }, "ws:experiments", 2)
  return pager(self, self.path .. "/experiments", maxresults_query(opts), "Experiment",
    "list experiments of workspace '" .. self.name .. "'")
end

local Experiment = {}
Experiment.__index = Experiment
Experiment.__name = "batchai.Experiment"

local function new_experiment(ws, name, level)
  local exp = setmetatable({ ctx = ws.ctx, workspace = ws, name = check_name(name, "experiment name", level + 1) },
    Experiment)
  exp.path = ws.path .. "/experiments/" .. exp.name
  return exp
end

--- ws:experiment(name) -> experiment object (no request)
function Workspace:experiment(name)
  local exp = new_experiment(self, name, 2)
  return exp
end

--- bai.workspaces{ subscription=, resource_group= } -> lazy iterator over the
-- workspaces of a resource group (or, with resource_group = false, of the subscription)
function M.workspaces(fields)
  fields = check_fields(fields, { subscription = true, resource_group = true, maxresults = true }, "workspaces", 2)
  local ctx = new_context(fields, 2)
  local subscription = check_subscription(fields.subscription or required(ctx, "subscription", "subscription", 2), 2)
  local path
  if fields.resource_group == false then
    path = "/subscriptions/" .. urlencode(subscription) .. "/providers/Microsoft.BatchAI/workspaces"
  else
    local group = check_group(fields.resource_group or required(ctx, "resource_group", "resource group", 2), 2)
    path = group_path(subscription, group) .. "/providers/Microsoft.BatchAI/workspaces"
  end
  return pager({ ctx = ctx }, path, maxresults_query(fields), "Workspace", "list workspaces")
end

-- ---- experiments -------------------------------------------------------------------

function Experiment:__tostring()
  return ("batchai.Experiment %s (workspace %s, resource group %s)"):format(self.name, self.workspace.name, self.workspace.resource_group)
end

--- bai.experiment{ workspace=, name=, resource_group=, subscription=, [configuration keys] }
function M.experiment(fields)
  fields = check_fields(fields, { subscription = true, resource_group = true, workspace = true, name = true }, "experiment", 2)
  local ctx = new_context(fields, 2)
  local ws = configured_workspace(ctx, fields, "workspace", 2)
  local exp = new_experiment(ws, fields.name or required(ctx, "experiment", "experiment name", 2), 2)
  return exp
end

--- exp:create{ wait= } -> experiment value | nil, err
function Experiment:create(opts)
  opts = check_options(opts, { wait = true, timeout = true }, "exp:create", 2)
  local operation = "create experiment '" .. self.name .. "'"
  local status, body = long_running(self, "PUT", self.path, { body = '{"properties":{}}', operation = operation }, opts)
  if not status then return nil, body end
  return decoded(body, "Experiment", operation)
end

--- exp:get() -> experiment value | nil, err
function Experiment:get()
  local operation = "get experiment '" .. self.name .. "'"
  local status, body = expect(self, "GET", self.path, { operation = operation })
  if not status then return nil, body end
  return decoded(body, "Experiment", operation)
end

--- exp:delete{ wait= } -> true | nil, err
function Experiment:delete(opts)
  opts = check_options(opts, { wait = true, timeout = true }, "exp:delete", 2)
  local status, err = long_running(self, "DELETE", self.path, { operation = "delete experiment '" .. self.name .. "'" }, opts)
  if not status then return nil, err end
  return true
end

--- exp:jobs{ maxresults= } -> lazy iterator over every job (list calls, page by page)
function Experiment:jobs(opts)
  opts = check_options(opts, { maxresults = true }, "exp:jobs", 2)
  return pager(self, self.path .. "/jobs", maxresults_query(opts), "Job", "list jobs of experiment '" .. self.name .. "'")
end

function Experiment:job_path(name)
  return self.path .. "/jobs/" .. check_name(name, "job name", 3)
end

-- The plugin context of this experiment's hooks.
function Experiment:hook_context()
  local ws = self.workspace
  return { experiment = self, experiment_name = self.name, workspace = ws.name, resource_group = ws.resource_group,
    subscription = ws.subscription }
end

local CREATE_OPTIONS = { wait = true, timeout = true, decode = true }

--- exp:create_job(name, props, { wait = true, timeout =, decode = true }) -> job | nil, err
-- props is a JobProperties value (or a plain table of its fields).  A job that
-- already exists with the same properties counts as created (so a re-run
-- script, or a PUT re-sent after a lost answer, succeeds); with different
-- properties it is a Conflict error.  wait = false returns as soon as the
-- endpoint accepted the job (the job value if it sent one, else true);
-- decode = false returns true instead of decoding the answer.
function Experiment:create_job(name, props, opts)
  local path = self:job_path(name)
  opts = check_options(opts, CREATE_OPTIONS, "exp:create_job", 2)
  local ctx
  if plugins.has_handlers("before_submit") then
    ctx = self:hook_context()
    props = plugins.filter("before_submit", props, name, ctx)
  end
  local body = codec.job_create_body(props)
  local operation = "create job '" .. name .. "'"
  local conn, cerr = self.ctx:connection()
  if not conn then return nil, cerr end
  local status, rbody, headers = conn:request("PUT", path, { body = body, operation = operation })
  if not status then return nil, rbody end
  if status == 409 then
    -- Already there: the same job (an earlier attempt got through) is success.
    local gs, gbody = conn:request("GET", path, { operation = operation })
    if gs == 200 and codec.same_job(body, gbody) then
      status, rbody, headers = 200, gbody, ""
    else
      return nil, conn:error(409, rbody, headers, operation)
    end
  elseif status >= 400 then
    return nil, conn:error(status, rbody, headers, operation)
  end
  if opts.wait ~= false then
    status, rbody, headers = lro().await(conn, "PUT", path, status, rbody, headers, { timeout = opts.timeout, operation = operation })
    if not status then return nil, rbody end
  end
  local job = true
  if opts.decode ~= false or plugins.has_handlers("after_submit") then
    local err
    job, err = decoded(rbody, "Job", operation)
    if not job then return nil, err end
  end
  if plugins.has_handlers("after_submit") then
    plugins.emit("after_submit", name, job, ctx or self:hook_context())
  end
  if opts.decode == false then return true end
  return job
end

--- exp:job(name) -> job | nil, err
function Experiment:job(name)
  local path = self:job_path(name)
  local operation = "get job '" .. name .. "'"
  local status, body = expect(self, "GET", path, { operation = operation })
  if not status then return nil, body end
  return decoded(body, "Job", operation)
end

--- exp:delete_job(name, { wait= }) -> true | nil, err (a missing job is not an error)
function Experiment:delete_job(name, opts)
  local path = self:job_path(name)
  opts = check_options(opts, { wait = true, timeout = true }, "exp:delete_job", 2)
  local status, err = long_running(self, "DELETE", path, { operation = "delete job '" .. name .. "'" }, opts)
  if not status then return nil, err end
  return true
end

local FINAL = { succeeded = true, failed = true }

--- exp:terminate_job(name, { wait= }) -> true | nil, err.  With wait (the
-- default), returns when the job has left the running states.
function Experiment:terminate_job(name, opts)
  local path = self:job_path(name)
  opts = check_options(opts, { wait = true, timeout = true }, "exp:terminate_job", 2)
  local operation = "terminate job '" .. name .. "'"
  local status, err = long_running(self, "POST", path .. "/terminate", { operation = operation, idempotent = true }, opts)
  if not status then return nil, err end
  if opts.wait ~= false then
    local _, werr = self:wait(name, { timeout = opts.timeout or self.ctx.settings.lro_timeout })
    if werr then return nil, werr end
  end
  return true
end

--- exp:output_files(name, dir_id, { directory=, link_expiry=, maxresults= })
-- -> array of files ({ name, fileType, downloadUrl, properties }) | nil, err
function Experiment:output_files(name, dir_id, opts)
  local path = self:job_path(name)
  if type(dir_id) ~= "string" or dir_id == "" then error("exp:output_files: output directory id (string) expected", 2) end
  opts = check_options(opts, { directory = true, link_expiry = true, maxresults = true }, "exp:output_files", 2)
  local query = { "outputdirectoryid=" .. urlencode(dir_id) }
  if opts.directory then query[#query + 1] = "directory=" .. urlencode(opts.directory) end
  if opts.link_expiry then query[#query + 1] = "linkexpiryinminutes=" .. math.tointeger(opts.link_expiry) end
  if opts.maxresults then query[#query + 1] = maxresults_query(opts) end
  return M.collect(pager(self, path .. "/listOutputFiles", table.concat(query, "&"), "File",
    "list output files of job '" .. name .. "'", "POST"))
end

--- exp:remote_login(name) -> array of { nodeId, ipAddress, port } | nil, err
function Experiment:remote_login(name)
  local path = self:job_path(name)
  return M.collect(pager(self, path .. "/listRemoteLoginInformation", nil, "RemoteLoginInformation",
    "list remote login information of job '" .. name .. "'", "POST"))
end

local downloads = 0  -- numbers the temporary files of this process's downloads

--- exp:download(url, path) -> true | nil, err.  Downloads a file of
-- output_files (its downloadUrl) to `path`: written beside it under a name of
-- its own, then renamed, so that `path` only ever holds a whole file, even
-- when several downloads to it run at once.  The endpoint's token is sent
-- only when the URL is on the endpoint itself.
function Experiment:download(url, path)
  if type(url) ~= "string" or type(path) ~= "string" then error("exp:download(url, path): two strings expected", 2) end
  local conn, cerr = self.ctx:connection()
  if not conn then return nil, cerr end
  downloads = downloads + 1
  local tmp = ("%s.part-%d-%d"):format(path, sys.getpid(), downloads)
  local status, body, headers = conn:request("GET", url, { output = tmp, anonymous = transport.origin(url) ~= conn.origin,
    operation = "download " .. (url:gsub("%?.*$", "")), timeout = 3600, decompress = false })
  if not status then
    os.remove(tmp)
    return nil, body
  end
  if status ~= 200 then
    local text = util.read_file(tmp) or ""
    os.remove(tmp)
    return nil, errors.from_response(status, text, headers, "download " .. (url:gsub("%?.*$", "")))
  end
  local ok, err = os.rename(tmp, path)
  if not ok then
    os.remove(tmp)
    return nil, errors.new { code = "WriteError", message = tostring(err) }
  end
  return true
end

local function job_state(job)
  return codec.job_summary(job).state
end

--- exp:wait(name_or_list, { timeout=, on_change=, interval= }) -> job (or a
-- table name -> job for a list) | nil, err.  Returns when every job has ended
-- (succeeded or failed).  on_change(name, new_state, old_state, job) and the
-- plugins' on_state_change hook see every change.  Many names are watched
-- with list calls, not one request per job.
function Experiment:wait(names, opts)
  opts = check_options(opts, { timeout = true, on_change = true, interval = true }, "exp:wait", 2)
  local single = type(names) == "string"
  local list = single and { names } or names
  if type(list) ~= "table" then error("exp:wait: a job name or a list of names expected", 2) end
  for _, n in ipairs(list) do check_name(n, "job name", 2) end
  local interval = opts.interval or self.ctx.settings.lro_interval or 2
  local deadline = opts.timeout and (sys.monotime() + opts.timeout)
  local states, jobs, pending = {}, {}, {}
  for _, n in ipairs(list) do pending[n] = true end
  local remaining = #list
  local hook = plugins.has_handlers("on_state_change")
  local function observe(n, job)
    if not pending[n] then return end
    local state = job_state(job)
    jobs[n] = job
    if state ~= states[n] then
      local old = states[n]
      states[n] = state
      if opts.on_change then opts.on_change(n, state, old, job) end
      if hook then plugins.emit("on_state_change", n, state, old, job) end
    end
    if FINAL[state] then
      pending[n] = nil
      remaining = remaining - 1
    end
  end
  while remaining > 0 do
    if remaining <= 8 then
      for n in pairs(pending) do
        local job, err = self:job(n)
        if not job then return nil, err end
        observe(n, job)
      end
    else
      local ok, err = pcall(function()
        for job in self:jobs() do
          local n = codec.job_summary(job).name
          if n then observe(n, job) end
        end
      end)
      if not ok then return nil, err end
      for n in pairs(pending) do
        if not jobs[n] then
          return nil, errors.new { code = "NotFound", status = 404, operation = "wait for job '" .. n .. "'",
            message = "job '" .. n .. "' does not exist" }
        end
      end
    end
    if remaining == 0 then break end
    if deadline and sys.monotime() + interval > deadline then
      return nil, errors.new { code = "Timeout", operation = "wait", message =
        ("%d of %d jobs still running after %g s"):format(remaining, #list, opts.timeout) }
    end
    loop.sleep(interval)
  end
  if single then return jobs[names] end
  return jobs
end

--- exp:logs(name, { follow = false, streams = { "stdout", "stderr" }, on_data =, interval = })
-- -> true | nil, err.  Writes the job's stdout and stderr files (or passes
-- each new chunk to on_data(stream, chunk)); with follow, keeps reading as
-- they grow and stops once the job has ended and everything was read.
function Experiment:logs(name, opts)
  opts = check_options(opts, { follow = true, streams = true, on_data = true, interval = true }, "exp:logs", 2)
  check_name(name, "job name", 2)
  local streams = opts.streams or { "stdout", "stderr" }
  local on_data = opts.on_data or function(stream, chunk)
    local f = stream == "stderr" and io.stderr or io.stdout
    f:write(chunk)
    f:flush()
  end
  local conn, cerr = self.ctx:connection()
  if not conn then return nil, cerr end
  local interval = opts.interval or math.min(self.ctx.settings.lro_interval or 2, 1)
  local offsets = {}
  local function fetch_new()
    local files, err = self:output_files(name, "stdouterr")
    if not files then return nil, err end
    for _, file in ipairs(files) do
      local fname = type(file) == "table" and file.name
      local url = type(file) == "table" and file.downloadUrl
      for _, stream in ipairs(streams) do
        if type(fname) == "string" and type(url) == "string" and fname == stream .. ".txt" then
          local offset = offsets[fname] or 0
          local status, body, headers = conn:request("GET", url, { anonymous = transport.origin(url) ~= conn.origin,
            headers = { "Range: bytes=" .. offset .. "-" }, decompress = false, operation = "read " .. fname })
          if not status then return nil, body end
          if status == 206 or (status == 200 and offset == 0) then
            if #body > 0 then
              offsets[fname] = offset + #body
              on_data(stream, body)
            end
          elseif status == 200 then  -- no Range support: skip what we have
            if #body > offset then
              offsets[fname] = #body
              on_data(stream, body:sub(offset + 1))
            end
          elseif status ~= 416 then
            return nil, errors.from_response(status, body, headers, "read " .. fname)
          end
        end
      end
    end
    return true
  end
  while true do
    local job, err = self:job(name)
    if not job then return nil, err end
    local ended = FINAL[job_state(job)]
    local ok, ferr = fetch_new()
    if not ok then return nil, ferr end
    if not opts.follow or ended then return true end
    loop.sleep(interval)
  end
end

--- exp:submit(space, template, opts): a sweep (see batchai.sweep.run).
function Experiment:submit(space, template, opts)
  local run = require("batchai.sweep.run").submit(self, space, template, opts)  -- not a tail call: errors blame our caller
  return run
end

--- The connection of an object (for diagnostics and specs) | nil, err.
function M.connection(obj) return obj.ctx:connection() end

--- Forgets cached connections (after the configuration changed).
function M.reset() connections = {} end

M.Workspace, M.Experiment = Workspace, Experiment

return M

-- bai serve's configuration: command-line options over a Lua file
-- (--config FILE, default $XDG_CONFIG_HOME/bai/serve.lua when it exists) over
-- defaults.  The file returns a table:
--
--   return {
--     slots = 4,                 -- slots of the `local` cluster (default: cores)
--     retry_after = 1,           -- seconds in Retry-After of 202 answers
--     grace_period = 10,         -- seconds between SIGTERM and SIGKILL on terminate
--     max_body = 4194304,        -- largest request body (413 beyond)
--     idle_timeout = 120,        -- seconds before an idle connection is closed
--     mount_root = "/data/mnt",  -- $AZ_BATCHAI_MOUNT_ROOT (default DIR/mounts)
--     mounts = { azfiles = "/data/share" },  -- relativeMountPath -> local directory
--     containers = "refuse",     -- or "host": run containerSettings jobs on the host
--     python = "python3", mpirun = "mpirun",
--     clusters = {               -- cluster name -> executor and its options
--       ["local"] = { slots = 4 },               -- always exists (executor "local")
--       gpu = { executor = "slurm", partition = "gpu", jobs_dir = "/shared/bai/jobs" },
--     },
--
-- Any cluster may override where its jobs live and what they run with:
-- jobs_dir, mount_root (absolute paths), mounts, python, mpirun, containers
-- (a Slurm cluster needs jobs_dir and mount_root on a file system its nodes
-- share).  cluster.settings is the configuration with those overrides.
--     executors = { "myplugin.executor" },       -- modules that register executors
--   }
local util = require "batchai.util"
local sys = require "batchai._sys"

local M = {}

local KEYS = {
  slots = "number", retry_after = "number", grace_period = "number", max_body = "number", idle_timeout = "number",
  mount_root = "string", mounts = "table", containers = "string", python = "string", mpirun = "string",
  clusters = "table", executors = "table", log_level = "string",
}

local Clusters = {}
Clusters.__index = Clusters

--- The cluster named `name` (case-insensitive, as ARM names are), or nil.
function Clusters:find(name) return self.by_lower[name:lower()] end

function Clusters:names()
  local out = {}
  for _, c in ipairs(self.list) do out[#out + 1] = c.name end
  return out
end

function Clusters:describe()
  local out = {}
  for _, c in ipairs(self.list) do out[c.name] = { executor = c.executor, slots = c.slots } end
  return out
end

function Clusters:each() return ipairs(self.list) end

--- The configuration a job of cluster `name` runs with (its overrides over
-- the endpoint's), or the endpoint's own when the cluster is unknown.
function Clusters:settings(name)
  local c = name and self:find(name)
  return c and c.settings or self.config
end

-- Settings a cluster may override, and their types.
local CLUSTER_OVERRIDES = { jobs_dir = "string", mount_root = "string", mounts = "table", python = "string",
  mpirun = "string", containers = "string" }

local function load_file(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then return nil, err end
  local ok, t = pcall(chunk)
  if not ok then return nil, ("%s: %s"):format(path, tostring(t)) end
  if type(t) ~= "table" then return nil, ("%s: the file must return a table"):format(path) end
  return t
end

--- The effective configuration | nil, message.
function M.load(opts, state_dir)
  local path = opts.config
  local file = {}
  if not path then
    local default = util.xdg_dir("config") .. "/bai/serve.lua"
    if sys.stat(default) then path = default end
  end
  if path then
    local t, err = load_file(path)
    if not t then return nil, err end
    file = t
  end
  local where = path or "configuration"
  for k, v in pairs(file) do
    if not KEYS[k] then
      return nil, ("%s: unknown setting '%s'%s"):format(where, tostring(k), util.did_you_mean(tostring(k), KEYS))
    end
    if type(v) ~= KEYS[k] then return nil, ("%s: '%s' must be a %s"):format(where, k, KEYS[k]) end
  end
  local c = {
    slots = opts.slots or file.slots or sys.cpu_count(),
    retry_after = opts.retry_after or file.retry_after or 1,
    grace_period = opts.grace_period or file.grace_period or 10,
    max_body = file.max_body or 4 * 1024 * 1024,
    idle_timeout = file.idle_timeout or 120,
    mount_root = file.mount_root or (state_dir .. "/mounts"),
    mounts = file.mounts or {},
    containers = file.containers or "refuse",
    python = file.python or "python3",
    mpirun = file.mpirun or "mpirun",
    log_level = opts.log_level or file.log_level or "info",
    executors = file.executors or {},
    jobs_dir = state_dir .. "/jobs",
    state_dir = state_dir,
    file = path,
  }
  if c.slots < 0 or c.slots ~= math.floor(c.slots) then return nil, ("%s: slots must be an integer >= 0"):format(where) end
  if c.containers ~= "refuse" and c.containers ~= "host" then
    return nil, ("%s: containers must be \"refuse\" or \"host\""):format(where)
  end
  local clusters = setmetatable({ list = {}, by_lower = {}, config = c }, Clusters)
  local function add(name, spec)
    if type(spec) ~= "table" then return ("%s: clusters.%s must be a table"):format(where, name) end
    if not tostring(name):find("^[%w_%-]+$") then return ("%s: invalid cluster name '%s'"):format(where, tostring(name)) end
    local cl = {}
    for k, v in pairs(spec) do cl[k] = v end
    cl.name = name
    cl.executor = cl.executor or (name == "local" and "local") or nil
    if not cl.executor then return ("%s: clusters.%s needs an executor"):format(where, name) end
    if name == "local" and opts.slots then cl.slots = opts.slots end
    if cl.executor == "local" then cl.slots = cl.slots or c.slots end
    if clusters.by_lower[name:lower()] then return ("%s: cluster '%s' is defined twice"):format(where, name) end
    local overrides = {}
    for k, kind in pairs(CLUSTER_OVERRIDES) do
      local v = cl[k]
      if v ~= nil then
        if type(v) ~= kind then return ("%s: clusters.%s.%s must be a %s"):format(where, name, k, kind) end
        if (k == "jobs_dir" or k == "mount_root") and v:sub(1, 1) ~= "/" then
          return ("%s: clusters.%s.%s must be an absolute path, not '%s'"):format(where, name, k, v)
        end
        if k == "containers" and v ~= "refuse" and v ~= "host" then
          return ("%s: clusters.%s.containers must be \"refuse\" or \"host\""):format(where, name)
        end
        overrides[k] = v
      end
    end
    cl.settings = setmetatable(overrides, { __index = c })
    clusters.list[#clusters.list + 1] = cl
    clusters.by_lower[name:lower()] = cl
  end
  local file_clusters = file.clusters or {}
  local err = add("local", file_clusters["local"] or {})
  if err then return nil, err end
  for _, name in ipairs(util.sorted_keys(file_clusters)) do
    if name ~= "local" then
      err = add(name, file_clusters[name])
      if err then return nil, err end
    end
  end
  c.clusters = clusters
  c.slots = clusters:find("local").slots
  return c
end

return M

-- Plugins: discovery, loading, and the one API through which they add hooks and commands.
--
-- A plugin is a Lua file (or a folder with init.lua) returning
--   { name = "x", version = "1.0", setup = function(bai) ... end }
-- `setup` receives the plugin API, which is also the `batchai` module:
--   bai.hook(name, function(...) end)     -- see M.hooks for the names
--   bai.command(name, { summary=, usage=, help=, run=function(args) end })
-- Plugins are searched, in order, in $XDG_CONFIG_HOME/bai/plugins, ./.bai/plugins,
-- each absolute directory of BAI_PLUGIN_PATH (relative entries are ignored),
-- and the files given with --plugin.  Text only: bytecode is refused, and while
-- plugins load, `require` searches only the absolute entries of package.path.
local host = require "batchai._host"
local sys = require "batchai._sys"
local util = require "batchai.util"

local M = {}

--- Hook names and what they receive.  Other modules may add to this table.
M.hooks = {
  before_submit = "(properties, job_name, context): may return replacement properties",
  after_submit = "(job_name, job, context): the job as the endpoint accepted it",
  on_state_change = "(job_name, new_state, old_state, job): a job's executionState changed",
  on_sweep_start = "(sweep): a sweep starts submitting",
  on_sweep_end = "(sweep, summary): every trial of a sweep has ended",
}

M.loaded = {}    -- array of { name, version, path, origin, hooks = {names}, commands = {names} }
M.failures = {}  -- array of { path, message }
M.commands = {}  -- name -> { summary, usage, help, run, plugin }

local handlers = {}  -- hook name -> array of { plugin = record, fn = function }
local by_name = {}   -- plugin name -> record
local loaded_once = false

local function warn(message)
  io.stderr:write("bai: ", message, "\n")
end

local function fail(path, message)
  M.failures[#M.failures + 1] = { path = path, message = message }
  warn(message)
end

-- Directories to search, each with the name of where it came from.
local function search_dirs()
  local dirs = {}
  dirs[#dirs + 1] = { util.xdg_dir("config") .. "/bai/plugins", "config" }
  local cwd = sys.getcwd()
  if cwd then dirs[#dirs + 1] = { cwd .. "/.bai/plugins", "project" } end
  for entry in (os.getenv("BAI_PLUGIN_PATH") or ""):gmatch("[^:]+") do
    if entry:sub(1, 1) == "/" then dirs[#dirs + 1] = { entry, "BAI_PLUGIN_PATH" } end
  end
  return dirs
end

-- The plugin files of one directory: NAME.lua files and NAME/init.lua folders.
local function files_in(dir, origin)
  local names, err, code = sys.list_dir(dir)
  if not names then
    if code ~= 2 then  -- ENOENT: no such folder is simply no plugins
      fail(dir, ("cannot read plugin folder %s"):format(err))
    end
    return {}
  end
  local files = {}
  for _, name in ipairs(names) do
    local path = dir .. "/" .. name
    local st = sys.stat(path)
    if st and st.type == "file" and name:find("%.lua$") then
      files[#files + 1] = { path = path, origin = origin }
    elseif st and st.type == "directory" and sys.stat(path .. "/init.lua") then
      files[#files + 1] = { path = path .. "/init.lua", origin = origin }
    end
  end
  return files
end

local function shift_self(api, first, ...)
  if first == api then return ... end
  return first, ...
end

-- The API one plugin's setup receives: its own functions, then the batchai module.
local function make_api(record)
  local api = {}
  function api.hook(...)
    local name, fn = shift_self(api, ...)
    if type(name) ~= "string" or not M.hooks[name] then
      error(("unknown hook '%s'%s"):format(tostring(name), util.did_you_mean(tostring(name), M.hooks)), 2)
    end
    if type(fn) ~= "function" then error(("hook '%s' needs a function"):format(name), 2) end
    handlers[name] = handlers[name] or {}
    table.insert(handlers[name], { plugin = record, fn = fn })
    record.hooks[#record.hooks + 1] = name
  end
  function api.command(...)
    local name, spec = shift_self(api, ...)
    if type(name) ~= "string" or not name:find("^[a-z][a-z0-9_-]*$") then
      error(("invalid command name '%s' (lower-case letters, digits, '-' and '_')"):format(tostring(name)), 2)
    end
    if type(spec) == "function" then spec = { run = spec } end
    if type(spec) ~= "table" or type(spec.run) ~= "function" then
      error(("command '%s' needs a run function"):format(name), 2)
    end
    if host.has_module("batchai.cli." .. name) then
      error(("command '%s' clashes with a built-in command"):format(name), 2)
    end
    if M.commands[name] then
      error(("command '%s' is already defined by plugin '%s'"):format(name, M.commands[name].plugin.name), 2)
    end
    M.commands[name] = {
      summary = spec.summary or ("(plugin " .. record.name .. ")"),
      usage = spec.usage or ("bai " .. name .. " [ARGS...]"),
      help = spec.help,
      run = spec.run,
      plugin = record,
    }
    record.commands[#record.commands + 1] = name
  end
  api.name = record.name
  api.path = record.path
  return setmetatable(api, { __index = require "batchai" })
end

local function load_file(path, origin)
  local chunk, err = loadfile(path, "t")
  if not chunk then
    if err:find("binary chunk") then err = "bytecode plugins are not allowed (text only)" end
    return fail(path, ("plugin %s not loaded: %s"):format(path, err))
  end
  local ok, plugin = pcall(chunk)
  if not ok then
    return fail(path, ("plugin %s failed to load: %s"):format(path, tostring(plugin)))
  end
  if type(plugin) ~= "table" then
    return fail(path, ("plugin %s not loaded: it must return a table { name=, version=, setup= }, got %s")
      :format(path, type(plugin)))
  end
  if type(plugin.name) ~= "string" or not plugin.name:find("^[%w_.-]+$") then
    return fail(path, ("plugin %s not loaded: field 'name' must be a string of letters, digits, '-', '_' or '.'"):format(path))
  end
  if type(plugin.setup) ~= "function" then
    return fail(path, ("plugin %s not loaded: field 'setup' must be a function"):format(path))
  end
  if plugin.version ~= nil and type(plugin.version) ~= "string" then
    return fail(path, ("plugin %s not loaded: field 'version' must be a string"):format(path))
  end
  local previous = by_name[plugin.name]
  if previous then
    return fail(path, ("plugin %s not loaded: a plugin named '%s' was already loaded from %s")
      :format(path, plugin.name, previous.path))
  end
  local record = {
    name = plugin.name, version = plugin.version or "", path = path, origin = origin,
    hooks = {}, commands = {},
  }
  local set_ok, set_err = pcall(plugin.setup, make_api(record))
  if not set_ok then
    -- Undo what the half-run setup registered.
    for _, list in pairs(handlers) do
      for i = #list, 1, -1 do if list[i].plugin == record then table.remove(list, i) end end
    end
    for _, name in ipairs(record.commands) do M.commands[name] = nil end
    return fail(path, ("plugin '%s' (%s): setup failed: %s"):format(plugin.name, path, tostring(set_err)))
  end
  by_name[plugin.name] = record
  M.loaded[#M.loaded + 1] = record
end

-- package.path/cpath without relative entries ("./?.lua"), so that a plugin's
-- `require` cannot pick up a module from whatever directory bai runs in.
local function absolute_only(path)
  local kept = {}
  for entry in path:gmatch("[^;]+") do
    if entry:sub(1, 1) == "/" then kept[#kept + 1] = entry end
  end
  return table.concat(kept, ";")
end

--- Loads every plugin once per process.  Never raises: failures are reported on
-- stderr, one line each, and recorded in M.failures.
function M.load()
  if loaded_once then return end
  loaded_once = true
  local saved_path, saved_cpath = package.path, package.cpath
  package.path, package.cpath = absolute_only(saved_path), absolute_only(saved_cpath)
  local restore <close> = setmetatable({}, { __close = function()
    package.path, package.cpath = saved_path, saved_cpath
  end })
  local files = {}
  for _, dir in ipairs(search_dirs()) do
    for _, f in ipairs(files_in(dir[1], dir[2])) do files[#files + 1] = f end
  end
  for _, path in ipairs(host.plugin_files) do
    local st = sys.stat(path)
    if st and st.type == "directory" then path = path .. "/init.lua" end
    local abs = sys.realpath(path)
    if abs then
      files[#files + 1] = { path = abs, origin = "--plugin" }
    else
      fail(path, ("plugin %s not loaded: no such file"):format(path))
    end
  end
  local seen = {}
  for _, f in ipairs(files) do
    local key = sys.realpath(f.path) or f.path
    if not seen[key] then
      seen[key] = true
      load_file(f.path, f.origin)
    end
  end
end

-- Raises, at the caller of emit/filter, for a hook name not in M.hooks.
local function check_hook(hook)
  if type(hook) ~= "string" or not M.hooks[hook] then
    error(("unknown hook '%s'%s"):format(tostring(hook), util.did_you_mean(tostring(hook), M.hooks)), 3)
  end
end

-- Calls one handler of `hook`: its first result, or nil after reporting its
-- error (naming the plugin, its file and the hook).
local function call_handler(h, hook, ...)
  local ok, value = pcall(h.fn, ...)
  if ok then return value end
  warn(("plugin '%s' (%s): hook '%s' failed: %s"):format(h.plugin.name, h.plugin.path, hook, tostring(value)))
  return nil
end

--- Calls every handler of `hook` with the arguments.  A handler that raises is
-- reported and the others still run.  Returns the last non-nil value a
-- handler returned.
function M.emit(hook, ...)
  check_hook(hook)
  local result
  for _, h in ipairs(handlers[hook] or {}) do
    local value = call_handler(h, hook, ...)
    if value ~= nil then result = value end
  end
  return result
end

--- Passes `value` through every handler of `hook`: each receives (value, ...)
-- and may return a replacement.  Failing handlers are reported and skipped.
function M.filter(hook, value, ...)
  check_hook(hook)
  for _, h in ipairs(handlers[hook] or {}) do
    local replacement = call_handler(h, hook, value, ...)
    if replacement ~= nil then value = replacement end
  end
  return value
end

--- Does any plugin handle this hook?  Lets hot paths skip building arguments.
function M.has_handlers(hook)
  return handlers[hook] ~= nil and #handlers[hook] > 0
end

return M

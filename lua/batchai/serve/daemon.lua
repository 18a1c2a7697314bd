-- Finding, starting and stopping the background bai serve of a state directory.
--
-- The client's entry point is ensure():
--   local ep = require("batchai.serve.daemon").ensure([{ state_dir = DIR }])
--   -- ep = { socket = "/.../serve.sock", token = "...", url = nil | "http://127.0.0.1:PORT",
--   --        pid = 1234, state_dir = DIR, started = true|false }  | nil, message
-- It returns the running endpoint of DIR (default $XDG_STATE_HOME/bai/serve), or
-- starts one in the background first (saying so on stderr).  Exactly one starts
-- even when many processes call ensure() at once: they serialize on DIR/start.lock
-- and re-check, and a second server on the same directory could not take DIR/lock.
-- This is the client's path to the endpoint (every `bai job ...` loads it), so
-- it loads only what finding and starting one needs, never batchai.serve.
local cjson = require "cjson"
local proc = require "batchai._proc"
local sys = require "batchai._sys"
local util = require "batchai.util"

local M = {}

--- The default state directory: $XDG_STATE_HOME/bai/serve.
function M.default_state_dir()
  return util.xdg_dir("state") .. "/bai/serve"
end
local default_dir = M.default_state_dir

local read_file = util.read_file

-- The endpoint.json of dir as a table, or nil (missing, partly written, not JSON).
local function endpoint_file(dir)
  local ok, info = pcall(cjson.decode, read_file(dir .. "/endpoint.json") or "")
  return ok and type(info) == "table" and info or nil
end

--- The endpoint running on dir, or nil: endpoint.json names a live process
-- whose socket accepts connections.
-- A file that is not what a server wrote (damaged, edited) is no endpoint.
function M.probe(dir)
  dir = dir or default_dir()
  local info = endpoint_file(dir)
  local pid = info and math.tointeger(info.pid)
  if not pid or pid <= 0 or type(info.socket) ~= "string" or #info.socket >= 108 then return nil end
  if not proc.kill(pid, 0) then return nil end
  if not proc.connect_unix(info.socket) then return nil end
  local token = (read_file(dir .. "/token") or ""):match("%S+")
  return { socket = info.socket, url = type(info.url) == "string" and info.url or nil, pid = pid, token = token,
    state_dir = dir }
end

local function self_exe() return sys.realpath("/proc/self/exe") end

--- Starts `bai serve ARGS` detached (own session, output to DIR/daemon.out) and
-- waits until it is ready.  Returns the probe result | nil, message.
function M.start_background(dir, args, timeout)
  local made, mkdir_err = sys.mkdir(dir, 448, true)
  if not made then return nil, "cannot create the state directory: " .. tostring(mkdir_err) end
  local argv = { self_exe(), "serve", "--state", dir }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local out = dir .. "/daemon.out"
  local pid, err = proc.spawn{ argv = argv, stdout = out, stderr = "stdout", setsid = true, detach = true, cwd = "/" }
  if not pid then return nil, err end
  local deadline = sys.monotime() + (timeout or 15)
  while sys.monotime() < deadline do
    local info = M.probe(dir)
    if info and info.pid == pid then return info end
    if not proc.kill(pid, 0) then
      local text = read_file(out) or ""
      return nil, ("bai serve exited at start: %s"):format(text:match("[^\n]*bai serve:[^\n]*") or text:gsub("%s+$", ""))
    end
    sys.sleep(0.01)
  end
  return nil, ("bai serve (pid %d) did not become ready within %ds; see %s"):format(pid, timeout or 15, out)
end

--- The local endpoint, started in the background when none runs (see above).
function M.ensure(opts)
  opts = opts or {}
  local dir = opts.state_dir or default_dir()
  local info = M.probe(dir)
  if info then
    info.started = false
    return info
  end
  local made, mkdir_err = sys.mkdir(dir, 448, true)
  if not made then return nil, "cannot create the state directory: " .. tostring(mkdir_err) end
  local lock, err = proc.lock(dir .. "/start.lock", { wait = 30 })
  if not lock then return nil, "cannot take " .. dir .. "/start.lock: " .. tostring(err) end
  info = M.probe(dir)
  if info then
    lock:release()
    info.started = false
    return info
  end
  info, err = M.start_background(dir, opts.args)
  lock:release()
  if not info then return nil, err end
  info.started = true
  if not opts.quiet then
    io.stderr:write(("bai: started bai serve in the background (pid %d, socket %s); 'bai serve stop' stops it\n")
      :format(info.pid, info.socket))
  end
  return info
end

--- Stops the endpoint of dir (SIGTERM, waiting up to `timeout` s for it to
-- release DIR/lock).  Returns true, pid | false when none runs | nil, message.
function M.stop(dir, timeout)
  dir = dir or default_dir()
  local info = endpoint_file(dir)
  local pid = info and math.tointeger(info.pid)
  local free, lock_err, errno = proc.lock(dir .. "/lock")
  if free then
    free:release()
    return false
  end
  if lock_err ~= "locked" then
    if errno == 2 then return false end -- no such state directory: nothing runs there
    return nil, "cannot check " .. dir .. "/lock: " .. tostring(lock_err)
  end
  if not pid or pid <= 0 then return nil, "a bai serve holds " .. dir .. "/lock but endpoint.json names no process" end
  proc.kill(pid, "TERM")
  local deadline = sys.monotime() + (timeout or 30)
  while sys.monotime() < deadline do
    local lk = proc.lock(dir .. "/lock")
    if lk then
      lk:release()
      return true, pid
    end
    sys.sleep(0.02)
  end
  return nil, ("bai serve (pid %d) did not stop within %ds"):format(pid, timeout or 30)
end

return M

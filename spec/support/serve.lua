-- Specs' helper to run a real `bai serve` on a temporary state directory.
--
--   local S = require "serve"
--   local srv = S.start{ slots = 2 }          -- waits until it is ready
--   srv.url, srv.socket, srv.token, srv.state_dir, srv.pid, srv.log_path
--   srv:request("GET", "/subscriptions/.../jobs", { body =, headers =, unix =, token = })
--     -> { status =, headers = { lower-case name = value }, body =, json = decoded or nil }
--   srv:api(method, path, body_table)         -- request with ?api-version=2018-05-01 added
--   srv:stop()       -- SIGTERM, wait; kills the jobs it left running (their whole sessions)
--   srv:kill9()      -- SIGKILL, jobs keep running (restart re-attaches)
--   srv:restart()    -- start again on the same state directory (new port: srv.url changes)
--   S.stop_all()     -- stops every server still running (also done when the process exits)
--
-- S.start options: slots (default 2), retry_after (default 0), grace_period (default 1),
-- tcp (default true: also listen on 127.0.0.1:0), config (a table written as the
-- --config file, or a path), state_dir (default a fresh one), args (extra words),
-- env (table of extra environment variables).  Raises when the server cannot start.
local proc = require "batchai._proc"
local sys = require "batchai._sys"
local cjson = require "cjson"
local T = require "testkit"

local S = {}
S.SUB = "00000000-0000-0000-0000-000000000000"
S.API = "api-version=2018-05-01"

local running = {}
local Server = {}
Server.__index = Server

-- Lua source of a value, for writing the config table as a file.
local function lua_source(v, indent)
  indent = indent or ""
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local key = type(k) == "number" and ("[%d]"):format(k) or ("[%q]"):format(k)
    parts[#parts + 1] = indent .. "  " .. key .. " = " .. lua_source(v[k], indent .. "  ") .. ","
  end
  return "{\n" .. table.concat(parts, "\n") .. "\n" .. indent .. "}"
end

local function read(path) return T.read(path) end

local function launch(self)
  local argv = { T.bai, "serve", "--state", self.state_dir, "--slots", tostring(self.opts.slots or 2),
    "--retry-after", tostring(self.opts.retry_after or 0), "--grace-period", tostring(self.opts.grace_period or 1) }
  if self.opts.tcp ~= false then
    argv[#argv + 1] = "--listen"
    argv[#argv + 1] = "127.0.0.1:0"
  end
  if self.config_path then
    argv[#argv + 1] = "--config"
    argv[#argv + 1] = self.config_path
  end
  for _, a in ipairs(self.opts.args or {}) do argv[#argv + 1] = a end
  local env = {}
  for k, v in pairs({ HOME = os.getenv("HOME"), PATH = os.getenv("PATH"), XDG_CONFIG_HOME = self.state_dir .. "/config",
    XDG_STATE_HOME = self.state_dir .. "/xdg-state", BAI_LUA_DIR = os.getenv("BAI_LUA_DIR"),
    BAI_LIB_DIR = os.getenv("BAI_LIB_DIR"), ASAN_OPTIONS = os.getenv("ASAN_OPTIONS"),
    LSAN_OPTIONS = os.getenv("LSAN_OPTIONS"), UBSAN_OPTIONS = os.getenv("UBSAN_OPTIONS"), LANG = "C.UTF-8" }) do
    env[k] = v
  end
  for k, v in pairs(self.opts.env or {}) do env[k] = v end
  local envp = {}
  for k, v in pairs(env) do if v then envp[#envp + 1] = k .. "=" .. v end end
  self.out_path = self.state_dir .. "/server.out"
  local pid = assert(proc.spawn{ argv = argv, env = envp, stdout = self.out_path, stderr = "stdout", append = true,
    parent_death_signal = "TERM" })
  self.pid = pid
  running[self] = true
  local deadline = sys.monotime() + 20
  while sys.monotime() < deadline do
    local out = read(self.out_path) or ""
    local line
    for l in out:gmatch("bai serve: ready [^\n]*") do line = l end
    if line and line:match("pid=(%d+)") == tostring(pid) then
      self.socket = line:match("socket=(%S+)")
      local url = line:match("url=(%S+)")
      self.url = url ~= "none" and url or nil
      self.token = (read(self.state_dir .. "/token") or ""):match("%S+")
      return self
    end
    local st = proc.reap(pid)
    if st then
      running[self] = nil
      error("bai serve exited at start (" .. (st.code or st.signal_name or "?") .. "):\n" .. out, 2)
    end
    sys.sleep(0.01)
  end
  error("bai serve did not become ready:\n" .. (read(self.out_path) or ""), 2)
end

function S.start(opts)
  opts = opts or {}
  local self = setmetatable({ opts = opts }, Server)
  self.state_dir = opts.state_dir or T.tmpdir()
  self.log_path = self.state_dir .. "/serve.log"
  if type(opts.config) == "table" then
    self.config_path = T.write(self.state_dir .. "/serve-config.lua", "return " .. lua_source(opts.config) .. "\n")
  elseif type(opts.config) == "string" then
    self.config_path = opts.config
  end
  return launch(self)
end

local function wait_exit(pid, timeout)
  local deadline = sys.monotime() + timeout
  while sys.monotime() < deadline do
    local st = proc.reap(pid)
    if st then return st end
    if st == nil then return {} end
    sys.sleep(0.01)
  end
  return nil
end

--- Kills the sessions of job runners recorded under the state directory.
function Server:kill_jobs()
  local jobs_dir = self.state_dir .. "/jobs"
  for _, name in ipairs(sys.list_dir(jobs_dir) or {}) do
    local pid = tonumber((read(jobs_dir .. "/" .. name .. "/runner.pid") or ""):match("%d+"))
    if pid then proc.kill_session(math.tointeger(pid), "KILL") end
  end
end

--- Stops the server and the job runners it started.
function Server:stop()
  if not running[self] then return end
  self:stop_server_only()
  self:kill_jobs()
end

function Server:kill9()
  if not running[self] then return end
  proc.kill(self.pid, "KILL")
  wait_exit(self.pid, 5)
  running[self] = nil
end

function Server:restart()
  self:stop_server_only()
  return launch(self)
end

--- Stops the server (SIGTERM, then SIGKILL after 15 s), leaving its jobs' runners.
function Server:stop_server_only()
  if not running[self] then return end
  proc.kill(self.pid, "TERM")
  if not wait_exit(self.pid, 15) then
    proc.kill(self.pid, "KILL")
    wait_exit(self.pid, 5)
  end
  running[self] = nil
end

function S.stop_all()
  for srv in pairs(running) do srv:stop() end
end

-- Stops what is left when the spec process ends (busted closes the Lua state).
S._guard = setmetatable({}, { __gc = function() S.stop_all() end })

--- An HTTP request through curl.  opts: body (string or table, JSON-encoded),
-- headers = { Name = value }, unix = true (use the socket), token = false (send
-- none) or a string (send that one), method override via method arg.
function Server:request(method, path, opts)
  opts = opts or {}
  local dir = T.tmpdir()
  local words = { "curl", "-s", "-S", "-o", dir .. "/body", "-D", dir .. "/headers", "-w", "%{http_code}", "-X", method }
  if opts.unix or not self.url then
    words[#words + 1] = "--unix-socket"
    words[#words + 1] = self.socket
  end
  local token = opts.token
  if token == nil and not (opts.unix or not self.url) then token = self.token end
  if token then
    words[#words + 1] = "-H"
    words[#words + 1] = "Authorization: Bearer " .. token
  end
  for k, v in pairs(opts.headers or {}) do
    words[#words + 1] = "-H"
    words[#words + 1] = k .. ": " .. v
  end
  if opts.body ~= nil then
    local body = type(opts.body) == "table" and cjson.encode(opts.body) or opts.body
    T.write(dir .. "/req", body)
    words[#words + 1] = "-H"
    words[#words + 1] = "Content-Type: application/json"
    words[#words + 1] = "--data-binary"
    words[#words + 1] = "@" .. dir .. "/req"
  end
  local url = path:find("^https?://") and path or (((opts.unix or not self.url) and "http://localhost" or self.url) .. path)
  words[#words + 1] = url
  local r = T.exec(words)
  local res = { status = tonumber(r.stdout), body = read(dir .. "/body") or "", headers = {}, curl_error = r.stderr }
  for line in (read(dir .. "/headers") or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then res.headers[k:lower()] = v end
  end
  if res.body ~= "" then
    local ok, v = pcall(cjson.decode, res.body)
    if ok then res.json = v end
  end
  os.execute("rm -rf " .. T.quote(dir))
  return res
end

--- request() with the api-version appended and a table body JSON-encoded.
function Server:api(method, path, body, opts)
  opts = opts or {}
  opts.body = body
  local sep = path:find("?", 1, true) and "&" or "?"
  return self:request(method, path .. sep .. S.API, opts)
end

--- Paths of the resources, with S.SUB and resource group "rg" by default.
function S.ws_path(ws, rg) return ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.BatchAI/workspaces/%s"):format(S.SUB, rg or "rg", ws) end
function S.exp_path(ws, exp) return S.ws_path(ws) .. "/experiments/" .. exp end
function S.job_path(ws, exp, job) return S.exp_path(ws, exp) .. "/jobs/" .. job end

--- Creates workspace ws and experiment exp (asserting 200s).
function Server:make_experiment(ws, exp)
  local r = self:api("PUT", S.ws_path(ws), { location = "eastus" })
  assert(r.status == 200, "workspace create: " .. tostring(r.status) .. " " .. r.body)
  r = self:api("PUT", S.exp_path(ws, exp), { properties = {} })
  assert(r.status == 200, "experiment create: " .. tostring(r.status) .. " " .. r.body)
end

--- Polls the job until pred(job_json) or timeout; returns the last job JSON.
function Server:wait_job(ws, exp, job, pred, timeout)
  pred = pred or function(j)
    local s = j.properties.executionState
    return s == "succeeded" or s == "failed"
  end
  local deadline = sys.monotime() + (timeout or 20)
  local last
  repeat
    local r = self:api("GET", S.job_path(ws, exp, job))
    last = r.json
    if r.status == 200 and pred(last) then return last end
    sys.sleep(0.02)
  until sys.monotime() > deadline
  error(("job %s did not reach the awaited state; last: %s"):format(job, cjson.encode(last)), 2)
end

return S

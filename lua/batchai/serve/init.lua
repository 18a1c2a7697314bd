-- bai serve: the endpoint process.  Opens the state directory (SQLite store,
-- token, log), listens on a unix socket (always) and optionally on loopback TCP,
-- authenticates and checks every request, and runs the event loop that drives
-- HTTP, the scheduler and the store's group commit.
--
-- State directory layout (DIR = --state, default $XDG_STATE_HOME/bai/serve):
--   bai.db (+ -wal)        the store          token      bearer token, 0600
--   serve.sock             unix socket, 0600  serve.log  JSON-lines log, 0600
--   endpoint.json          pid, url, socket of the running server
--   lock                   held (flock) by the running server
--   mounts/                $AZ_BATCHAI_MOUNT_ROOT
--   jobs/                  per-job directories (and .spare-PID: spare runners' skeletons)
local cjson = require "cjson"
local httpd = require "batchai._httpd"
local proc = require "batchai._proc"
local sys = require "batchai._sys"
local host = require "batchai._host"
local util = require "batchai.util"
local wire = require "batchai.serve.wire"
local api = require "batchai.serve.api"
local config_mod = require "batchai.serve.config"
local log_mod = require "batchai.serve.log"
local loop_mod = require "batchai.serve.loop"
local store_mod = require "batchai.serve.store"

local M = {}

--- The default state directory.
M.default_state_dir = require("batchai.serve.daemon").default_state_dir

local read_file = util.read_file

local function hex(bytes) return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

--- The endpoint's bearer token: DIR/token, created (0600) at first start.
-- Returns the token | nil, message (the file cannot be written).
function M.load_token(dir)
  local token = read_file(dir .. "/token")
  if token then
    token = token:match("^%s*(%S+)")
    if token and #token >= 32 then return token end
  end
  token = hex(httpd.random_bytes(32))
  local written, err = sys.write_file(dir .. "/token", token .. "\n", 384)
  if not written then return nil, "cannot write the token file: " .. tostring(err) end
  return token
end

local constant_time_equal = httpd.secure_equal

-- Answers 401 the ARM way.
local function unauthorized(ctx, req, message)
  ctx.reply(req, 401, wire.error_body("AuthenticationFailed", message), { ["WWW-Authenticate"] = 'Bearer realm="bai serve"' })
end

--- Runs the endpoint until SIGTERM/SIGINT or `bai serve stop`.  opts: state_dir,
-- listen ("127.0.0.1:0"), socket, slots, retry_after, config (file), log_level,
-- allow_remote, on_ready(info).  Returns 0 | nil, message when it cannot start
-- (what it had opened by then is closed again).
function M.run(opts)
  local dir = opts.state_dir or M.default_state_dir()
  local made, mkdir_err = sys.mkdir(dir, 448, true)
  if not made then return nil, "cannot create the state directory: " .. tostring(mkdir_err) end
  dir = sys.realpath(dir)
  local old_umask = sys.umask(63) -- 077: everything the endpoint creates is private
  local opened = {} -- closers of what is open, run backwards when the start fails
  local function failed(message)
    for i = #opened, 1, -1 do opened[i]() end
    sys.umask(old_umask)
    return nil, message
  end
  local lock, lock_err = proc.lock(dir .. "/lock")
  if not lock then
    local ok, info = pcall(cjson.decode, read_file(dir .. "/endpoint.json") or "")
    local pid = ok and type(info) == "table" and math.tointeger(info.pid)
    return failed(lock_err == "locked"
      and ("another bai serve (pid %s) is running on the state directory %s"):format(tostring(pid or "?"), dir)
      or lock_err)
  end
  opened[#opened + 1] = function() lock:release() end
  local config, cerr = config_mod.load(opts, dir)
  if not config then return failed(cerr) end
  local log, log_err = log_mod.open(dir .. "/serve.log", config.log_level)
  if not log then return failed(log_err) end
  opened[#opened + 1] = function() log:close() end
  local store, store_err = store_mod.open(dir .. "/bai.db")
  if not store then return failed(store_err) end
  opened[#opened + 1] = function() store:close() end
  local token, token_err = M.load_token(dir)
  if not token then return failed(token_err) end
  local download_key = store:meta("download_key")
  if not download_key then
    download_key = hex(httpd.random_bytes(32))
    store:set_meta("download_key", download_key)
  end

  local loop = loop_mod.new()
  local ctx = {
    store = store, config = config, log = log, loop = loop, state_dir = dir, token = token,
    download_key = download_key, scheme = "http", clusters = config.clusters,
  }
  ctx.files = require("batchai.serve.files")

  --- Every answer goes through here: one log line per request.
  function ctx.reply(req, status, body, headers)
    req:respond(status, body, headers)
    log:request(req, status)
  end

  ctx.scheduler = require("batchai.serve.scheduler").new(ctx)
  local loaded, load_err = ctx.scheduler:load_executors()
  if not loaded then return failed(load_err) end
  opened[#opened + 1] = function() ctx.scheduler:shutdown() end

  local allowed_hosts = {}
  local bearer = "Bearer " .. token -- the usual Authorization header
  local LOWER_B, LOWER_F = ("bf"):byte(1, 2)
  local function handler_for(kind)
    return function(req, method, path, body)
      if kind == "tcp" then
        local h = req:header("Host") or ""
        if not allowed_hosts[h] and not allowed_hosts[h:lower()] then
          return ctx.reply(req, 400, wire.error_body("InvalidHost",
            ("The Host header '%s' is not accepted by this endpoint (it answers to %s)."):format(h, ctx.url:match("//(.*)$"))))
        end
      end
      local seg1
      local second = path:byte(2) -- "/subscriptions/...", "/providers/...": no string made for the usual paths
      if second == LOWER_F and path:sub(1, 7) == "/files/" then
        seg1 = "files"
      elseif second == LOWER_B and path:sub(1, 5) == "/bai/" then
        seg1 = "bai"
      end
      if seg1 == "files" then return ctx.files.download(ctx, req, method, path) end
      -- the usual header is compared whole, in C; anything else is parsed here
      local auth = not req:header_is("Authorization", bearer) and req:header("Authorization")
      if auth or (kind == "tcp" and auth == nil) then
        local given = auth and (auth:sub(1, 7) == "Bearer " and auth:sub(8)) or (auth and auth:match("^[Bb]earer%s+(%S+)%s*$"))
        if not given then return unauthorized(ctx, req, "The request needs an 'Authorization: Bearer <token>' header; "
          .. "the token is in the endpoint's state directory (token file).") end
        if not constant_time_equal(given, token) then
          return unauthorized(ctx, req, "The bearer token is not valid for this endpoint.")
        end
      end
      if seg1 == "bai" and path == "/bai/status" then return M.status(ctx, req) end
      api.handle(ctx, req, method, path, body)
    end
  end

  local servers = {}
  local socket_path = opts.socket or (dir .. "/serve.sock")
  local usrv, uerr = httpd.new{ socket = socket_path, handler = handler_for("unix"), max_body = config.max_body,
    timeout = config.idle_timeout }
  if not usrv then return failed(uerr) end
  opened[#opened + 1] = function() usrv:close() end
  servers[#servers + 1] = usrv
  ctx.socket = socket_path
  if opts.listen then
    local addr, port = opts.listen:match("^%[?([%x:%.]+)%]?:(%d+)$")
    if not addr then return failed(("invalid --listen address '%s' (expected 127.0.0.1:PORT)"):format(opts.listen)) end
    local loopback = addr:match("^127%.") or addr == "::1"
    if not loopback and not opts.allow_remote then
      return failed(("refusing to listen on %s: not a loopback address (pass --allow-remote to do it anyway)"):format(addr))
    end
    local tsrv, terr = httpd.new{ address = addr, port = tonumber(port), handler = handler_for("tcp"),
      max_body = config.max_body, timeout = config.idle_timeout }
    if not tsrv then return failed(terr) end
    opened[#opened + 1] = function() tsrv:close() end
    servers[#servers + 1] = tsrv
    local shown = addr:find(":") and ("[" .. addr .. "]") or addr
    ctx.url = ("http://%s:%d"):format(shown, tsrv:port())
    for _, h in ipairs({ shown, "localhost", "127.0.0.1", "[::1]" }) do
      allowed_hosts[(h .. ":" .. tsrv:port()):lower()] = true
    end
  end

  for _, srv in ipairs(servers) do
    loop:watch(srv:fd(), function() srv:run() end)
    loop:add_timeout_source(function() return srv:timeout() end)
    -- MHD may want a call without its fd becoming readable (after a resumed
    -- connection, or when a connection times out): its timeout says when.
    loop:add_ticker(function()
      if srv:timeout() == 0 then srv:run() end
    end)
  end

  local sigfd = proc.signalfd({ "TERM", "INT", "HUP" })
  local stopping = false
  loop:watch(sigfd, function()
    for _, sig in ipairs(proc.read_signals(sigfd)) do
      if sig == "HUP" then
        local reopened, reopen_err = log:reopen()
        if not reopened then io.stderr:write("bai serve: ", reopen_err, " (still writing the old file)\n") end
      elseif not stopping then
        stopping = true
        log:event("stopping", { signal = sig })
        loop:stop()
      end
    end
  end)

  -- Batches the syncer made durable: their answers go out at once.
  loop:watch(store:sync_fd(), function()
    store:synced()
    for _, srv in ipairs(servers) do srv:run() end
  end)

  ctx.scheduler:start()
  -- The round ends with the group commit (after the scheduler's own writes);
  -- the answers it released go out at once.
  loop:on_round_end(function()
    if store:busy() then
      store:flush()
      for _, srv in ipairs(servers) do srv:run() end
    end
    if ctx.scheduler:busy() then
      store:set_sync("NORMAL")
      ctx.scheduler:process()
      store:flush()
      store:set_sync("FULL")
    end
    log:flush()
  end)
  loop:add_timeout_source(function()
    if store:busy() or ctx.scheduler:busy() then return 0 end
  end)
  api.sweep_deletions(ctx)
  store:flush()

  local info = { pid = sys.getpid(), socket = socket_path, url = ctx.url, state_dir = dir, version = host.version,
    started = wire.iso_time(sys.now()) }
  local written, write_err = sys.write_file(dir .. "/endpoint.json", wire.encode(info) .. "\n", 384)
  if not written then
    proc.close(sigfd)
    return failed("cannot write endpoint.json: " .. tostring(write_err))
  end
  log:event("started", { pid = info.pid, socket = socket_path, url = ctx.url, slots = config.slots,
    clusters = table.concat(config.clusters:names(), ",") })
  if opts.on_ready then opts.on_ready(info, config) end

  loop:run()

  ctx.scheduler:shutdown()
  store:flush()
  store:drain()
  for _, srv in ipairs(servers) do srv:close() end
  proc.close(sigfd)
  store:close()
  os.remove(dir .. "/endpoint.json")
  log:event("stopped", {})
  log:close()
  lock:release()
  sys.umask(old_umask)
  return 0
end

--- GET /bai/status: the endpoint's own facts (not part of the Batch AI API).
function M.status(ctx, req)
  local counts = ctx.store:count_by_state()
  ctx.reply(req, 200, wire.encode({
    pid = sys.getpid(), version = host.version, socket = ctx.socket, url = ctx.url, state_dir = ctx.state_dir,
    clusters = ctx.clusters:describe(), jobs = counts,
  }))
end

return M

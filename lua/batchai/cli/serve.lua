-- `bai serve`: run the local Batch AI endpoint (foreground or daemon), show its
-- status, stop it.
local cli = require "batchai.cli"

local USAGE = "bai serve [--state DIR] [--listen 127.0.0.1:PORT] [--socket PATH] [--slots N] [--daemon]\n"
  .. "       bai serve status [--state DIR]\n       bai serve stop [--state DIR]"

local HELP = [[
Runs a local implementation of the Batch AI 2018-05-01 REST API that stores its
state in SQLite and really runs jobs on this machine (or hands them to the
executors configured for other clusters).

It always listens on a unix socket (DIR/serve.sock, mode 0600); --listen adds
loopback TCP, where every request needs 'Authorization: Bearer <token>' with the
token of DIR/token.  The startup line gives the actual address (port 0 picks one).

Options:
  --state DIR         state directory (default $XDG_STATE_HOME/bai/serve)
  --listen ADDR:PORT  also listen on TCP (loopback only unless --allow-remote)
  --socket PATH       unix socket path (default DIR/serve.sock)
  --slots N           slots of the 'local' cluster (default: number of cores;
                      0 accepts and queues jobs without running them)
  --retry-after S     Retry-After seconds of 202 answers (default 1)
  --grace-period S    seconds between SIGTERM and SIGKILL when stopping a job
  --config FILE       configuration file (default $XDG_CONFIG_HOME/bai/serve.lua)
  --daemon            run in the background; print the startup line and return
  --log-level LEVEL   debug, info, warn or error

'bai serve status' tells whether an endpoint runs on the state directory (exit
status 0) or not (3); 'bai serve stop' stops it.

A job's processes see its environmentVariables and secrets, PATH, HOME, USER,
LOGNAME, SHELL, LANG, LC_ALL, TZ and TERM from the endpoint's environment, and:
  AZ_BATCHAI_MOUNT_ROOT          DIR/mounts (configuration: mount_root)
  AZ_BATCHAI_JOB_MOUNT_ROOT      the job's mounts (mountVolumes' relativeMountPath)
  AZ_BATCHAI_JOB_TEMP, AZ_BATCHAI_SHARED_JOB_TEMP, AZ_BATCHAI_JOB_TEMP_DIR
                                 the job's temporary directories (and TMPDIR)
  AZ_BATCHAI_STDOUTERR_DIR       where stdout.txt and stderr.txt go
  AZ_BATCHAI_INPUT_<id>          each inputDirectories[].path
  AZ_BATCHAI_OUTPUT_<id>         each output directory (created)
  AZ_BATCHAI_JOB_NAME, AZ_BATCHAI_MPI_HOST_FILE, AZ_BATCHAI_NUM_GPUS (0),
  AZ_BATCHAI_NODE_IP and AZ_BATCHAI_JOB_MASTER_NODE_IP (127.0.0.1 locally)
  PyTorch with processCount > 1: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK,
  LOCAL_RANK; distributed TensorFlow: AZ_BATCHAI_PS_HOSTS,
  AZ_BATCHAI_WORKER_HOSTS, AZ_BATCHAI_TASK_INDEX, TF_CONFIG; MPI toolkits: what
  mpirun gives its ranks.
$VAR and ${VAR} in stdOutErrPathPrefix, pathPrefix and path are expanded from
the mount roots, the temporary directories and the job's environmentVariables.

Deleting an experiment or a workspace deletes what it holds: at once (200) when
none of its jobs runs, else 202 while their processes are stopped; creating in
a workspace or experiment being deleted is a 409.]]

local OPTIONS = {
  { nil, "state", arg = "DIR" }, { nil, "listen", arg = "ADDR:PORT" }, { nil, "socket", arg = "PATH" },
  { nil, "slots", arg = "N", number = true }, { nil, "retry-after", arg = "S", number = true },
  { nil, "grace-period", arg = "S", number = true }, { nil, "config", arg = "FILE" }, { nil, "daemon" },
  { nil, "allow-remote" }, { nil, "log-level", arg = "LEVEL", choices = { "debug", "info", "warn", "error" } },
}

-- The startup line: "bai serve: ready pid=... socket=... url=... state=...",
-- plus " slots=N" when the slots are known (the foreground server's).
local function ready_line(info, slots)
  return ("bai serve: ready pid=%d socket=%s url=%s state=%s%s\n"):format(info.pid, info.socket,
    info.url or "none", info.state_dir, slots and (" slots=%d"):format(slots) or "")
end

local function state_dir(opts)
  return opts.state or require("batchai.serve.daemon").default_state_dir()
end

local function status(args)
  local opts = cli.parse(args, { command = "serve status", options = { { nil, "state", arg = "DIR" } }, max = 0 })
  local dir = state_dir(opts)
  local info = require("batchai.serve.daemon").probe(dir)
  if not info then
    io.stdout:write(("bai serve is not running (state %s)\n"):format(dir))
    return 3
  end
  io.stdout:write(("bai serve is running: pid=%d socket=%s url=%s state=%s\n"):format(info.pid, info.socket,
    info.url or "none", dir))
  return 0
end

local function stop(args)
  local opts = cli.parse(args, { command = "serve stop", options = { { nil, "state", arg = "DIR" } }, max = 0 })
  local dir = state_dir(opts)
  local ok, pid = require("batchai.serve.daemon").stop(dir)
  if ok == nil then cli.exit(1, pid) end
  if ok then io.stdout:write(("bai serve (pid %d) stopped\n"):format(pid))
  else io.stdout:write(("bai serve is not running (state %s)\n"):format(dir)) end
  return 0
end

return {
  summary = "Run the local Batch AI endpoint (status, stop)",
  usage = USAGE,
  help = HELP,
  run = function(args)
    if args[1] == "status" then return status({ table.unpack(args, 2) }) end
    if args[1] == "stop" then return stop({ table.unpack(args, 2) }) end
    if args[1] == "_run" then return require("batchai.serve.runner").main({ table.unpack(args, 2) }) end
    local opts = cli.parse(args, { command = "serve", options = OPTIONS, max = 0 })
    if opts.slots and (opts.slots < 0 or opts.slots ~= math.floor(opts.slots)) then
      cli.usage_error("option '--slots' expects an integer >= 0", "serve")
    end
    if opts.daemon then
      local daemon = require "batchai.serve.daemon"
      local dir = state_dir(opts)
      local running = daemon.probe(dir)
      if running then cli.exit(1, ("another bai serve (pid %d) is running on the state directory %s"):format(running.pid, dir)) end
      -- The background server gets the same options but --daemon and --state
      -- (start_background passes the state directory itself).
      local pass, skip = {}, false
      for _, a in ipairs(args) do
        if skip then skip = false
        elseif a == "--state" then skip = true
        elseif a ~= "--daemon" and not a:find("^%-%-state=") then pass[#pass + 1] = a end
      end
      local info, err = daemon.start_background(dir, pass)
      if not info then cli.exit(1, err) end
      io.stdout:write(ready_line(info))
      return 0
    end
    local ok, err = require("batchai.serve").run({
      state_dir = opts.state, listen = opts.listen, socket = opts.socket, slots = opts.slots,
      retry_after = opts.retry_after, grace_period = opts.grace_period, config = opts.config,
      allow_remote = opts.allow_remote, log_level = opts.log_level,
      on_ready = function(info, config)
        io.stdout:write(ready_line(info, config and config.slots or 0))
        io.stdout:flush()
      end,
    })
    if not ok then cli.exit(1, "serve: " .. tostring(err)) end
    return 0
  end,
}

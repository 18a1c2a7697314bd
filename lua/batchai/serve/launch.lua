-- How a job runs, as data: its directories, environment, mounts, preparation
-- and processes (a "plan"), computed from the job's spec by the endpoint and
-- carried out by the job runner (batchai.serve.runner) under any executor.
-- Every executor uses this, so jobs see the same layout wherever they run.
--
-- Environment of every process (besides the job's environmentVariables and
-- secrets, and PATH, HOME, USER, LOGNAME, SHELL, LANG, LC_ALL, TZ, TERM from the
-- endpoint's own environment when set):
--   AZ_BATCHAI_MOUNT_ROOT       the endpoint's mount root (config mount_root)
--   AZ_BATCHAI_JOB_MOUNT_ROOT   the job's mount root (job-level mountVolumes)
--   AZ_BATCHAI_JOB_TEMP         the job's temporary directory
--   AZ_BATCHAI_JOB_TEMP_DIR     the root of all jobs' temporary directories
--   AZ_BATCHAI_SHARED_JOB_TEMP  the job's shared temporary directory
--   AZ_BATCHAI_STDOUTERR_DIR    where stdout.txt and stderr.txt go
--   AZ_BATCHAI_MPI_HOST_FILE    an Open MPI hostfile for this machine
--   AZ_BATCHAI_NUM_GPUS         0 (no GPUs are scheduled)
--   AZ_BATCHAI_JOB_MASTER_NODE_IP, AZ_BATCHAI_NODE_IP  127.0.0.1
--   AZ_BATCHAI_JOB_NAME         the job's name
--   AZ_BATCHAI_INPUT_<id>       each inputDirectories[].path, expanded
--   AZ_BATCHAI_OUTPUT_<id>      each output directory (created)
--   PyTorch (processCount > 1): MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK
--   TensorFlow (distributed): AZ_BATCHAI_PS_HOSTS, AZ_BATCHAI_WORKER_HOSTS, TF_CONFIG,
--     AZ_BATCHAI_TASK_INDEX (the process's index within its role)
--   MPI toolkits: what mpirun gives its ranks (OMPI_COMM_WORLD_RANK, ...)
local wire = require "batchai.serve.wire"
local validate = require "batchai.serve.validate"

local M = {}

local PASS_THROUGH = { "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TERM" }

--- Expands $NAME and ${NAME} from vars; unknown names stay as written.
function M.expand(s, vars)
  return (s:gsub("%$(%b{})", function(b) return vars[b:sub(2, -2)] end):gsub("%$([%a_][%w_]*)", function(n) return vars[n] end))
end

local function join(...)
  local parts = {}
  for _, p in ipairs({ ... }) do
    if p and p ~= "" then parts[#parts + 1] = p end
  end
  local path = table.concat(parts, "/"):gsub("/+", "/")
  if #path > 1 then path = path:gsub("/$", "") end
  return path
end

local q = require("batchai.shell").quote

--- Looks a program up in PATH; returns its path or nil.
function M.which(name, path)
  if name:find("/") then
    local f = io.open(name, "rb")
    if f then f:close() return name end
    return nil
  end
  for dir in (path or os.getenv("PATH") or ""):gmatch("[^:]+") do
    local candidate = dir .. "/" .. name
    local f = io.open(candidate, "rb")
    if f then
      f:close()
      return candidate
    end
  end
  return nil
end

local function refuse(code, message) return nil, { code = code, message = message } end

--- The job's directories and the variables paths may use.  Pure: creates nothing.
-- Returns paths | nil, error ({ code, message }) when a path does not resolve
-- to an absolute one.
function M.paths(config, job, spec)
  local p = spec.properties
  local uuid = job.segment:match("([^/]+)$")
  local job_dir = join(config.jobs_dir, uuid)
  local vars = {
    AZ_BATCHAI_MOUNT_ROOT = config.mount_root,
    AZ_BATCHAI_JOB_MOUNT_ROOT = join(job_dir, "mounts"),
    AZ_BATCHAI_JOB_TEMP = join(job_dir, "temp"),
    AZ_BATCHAI_JOB_TEMP_DIR = config.jobs_dir,
    AZ_BATCHAI_SHARED_JOB_TEMP = join(job_dir, "temp", "shared"),
  }
  for _, e in ipairs(p.environmentVariables or {}) do
    if vars[e.name] == nil then vars[e.name] = e.value end
  end
  local function resolve(value, field)
    local path = M.expand(value, vars)
    if path:sub(1, 1) ~= "/" then
      return nil, ("%s '%s' expands to '%s', which is not an absolute path"):format(field, value, path)
    end
    return join(path)
  end
  local out = { job_dir = job_dir, vars = vars, outputs = {}, inputs = {} }
  local prefix, err = resolve(p.stdOutErrPathPrefix, "stdOutErrPathPrefix")
  if not prefix then return refuse("InvalidPath", err) end
  out.stdouterr = join(prefix, job.segment, "stdouterr")
  for _, d in ipairs(p.outputDirectories or {}) do
    local base, e2 = resolve(d.pathPrefix, "outputDirectories[" .. d.id .. "].pathPrefix")
    if not base then return refuse("InvalidPath", e2) end
    out.outputs[d.id] = join(base, job.segment, d.pathSuffix)
  end
  for _, d in ipairs(p.inputDirectories or {}) do
    local path, e3 = resolve(d.path, "inputDirectories[" .. d.id .. "].path")
    if not path then return refuse("InvalidPath", e3) end
    out.inputs[d.id] = path
  end
  return out
end

--- The directory listOutputFiles serves for an output directory id (or
-- "stdouterr"), or nil.
function M.output_dir(config, job, spec, id)
  local paths = M.paths(config, job, spec)
  if not paths then return nil end
  if id == "stdouterr" then return paths.stdouterr end
  return paths.outputs[id]
end

local function python_command(python, script, args)
  return ("exec %s %s %s"):format(q(python), q(script), args or "")
end

local function mpirun_argv(config, n, command, env_names)
  local argv = { config.mpirun_path, "-np", tostring(n), "--oversubscribe", "--bind-to", "none" }
  if require("batchai._proc").getuid() == 0 then argv[#argv + 1] = "--allow-run-as-root" end
  for _, name in ipairs(env_names or {}) do
    argv[#argv + 1] = "-x"
    argv[#argv + 1] = name
  end
  argv[#argv + 1] = "/bin/sh"
  argv[#argv + 1] = "-c"
  argv[#argv + 1] = command
  return argv
end

--- The plan of a job (see the header).  Returns plan | nil, error { code, message }
-- for a job that cannot start here (missing tool, unsupported setting).
function M.plan(config, job, spec, opts)
  opts = opts or {}
  local p = spec.properties
  local paths, perr = M.paths(config, job, spec)
  if not paths then return nil, perr end
  if p.containerSettings and config.containers ~= "host" then
    local image = p.containerSettings.imageSourceRegistry and p.containerSettings.imageSourceRegistry.image or "?"
    return refuse("ContainerNotSupported", ("This endpoint runs jobs directly on the machine and cannot run the container "
      .. "image '%s'; remove containerSettings, or set containers = \"host\" in the endpoint's configuration to run "
      .. "such jobs on the host."):format(image))
  end

  local env = {}
  for _, name in ipairs(PASS_THROUGH) do
    local v = os.getenv(name)
    if v then env[name] = v end
  end
  for k, v in pairs(paths.vars) do env[k] = v end
  env.AZ_BATCHAI_STDOUTERR_DIR = paths.stdouterr
  env.AZ_BATCHAI_MPI_HOST_FILE = paths.job_dir .. "/hostfile"
  env.AZ_BATCHAI_NUM_GPUS = "0"
  env.AZ_BATCHAI_JOB_MASTER_NODE_IP = "127.0.0.1"
  env.AZ_BATCHAI_NODE_IP = "127.0.0.1"
  env.AZ_BATCHAI_JOB_NAME = job.name
  env.TMPDIR = paths.vars.AZ_BATCHAI_JOB_TEMP
  local mkdirs = { paths.job_dir, paths.vars.AZ_BATCHAI_JOB_MOUNT_ROOT, paths.vars.AZ_BATCHAI_JOB_TEMP,
    paths.vars.AZ_BATCHAI_SHARED_JOB_TEMP, paths.stdouterr, config.mount_root }
  for id, path in pairs(paths.inputs) do env["AZ_BATCHAI_INPUT_" .. id] = path end
  for id, path in pairs(paths.outputs) do
    env["AZ_BATCHAI_OUTPUT_" .. id] = path
    mkdirs[#mkdirs + 1] = path
  end
  for _, e in ipairs(p.environmentVariables or {}) do env[e.name] = e.value end
  for _, s in ipairs(p.secrets or {}) do
    if s.value == nil then
      return refuse("SecretReferenceNotSupported", ("The secret '%s' refers to a Key Vault secret; this endpoint has no "
        .. "Key Vault access: give its value instead."):format(s.name))
    end
    env[s.name] = s.value
  end

  -- mounts: job-level mountVolumes under $AZ_BATCHAI_JOB_MOUNT_ROOT
  local mounts = {}
  local mv = p.mountVolumes or {}
  local function configured(kind, m)
    local target = config.mounts[m.relativeMountPath]
    if not target then
      return nil, ("The %s mount '%s' has no local directory on this endpoint: configure mounts[\"%s\"] = \"/path\" in "
        .. "its configuration."):format(kind, m.relativeMountPath, m.relativeMountPath)
    end
    return target
  end
  for kind, list in pairs({ azureFileShares = mv.azureFileShares, azureBlobFileSystems = mv.azureBlobFileSystems,
    fileServers = mv.fileServers }) do
    for _, m in ipairs(list) do
      local target, err = configured(kind, m)
      if not target then return refuse("MountNotConfigured", err) end
      mounts[#mounts + 1] = { link = join(paths.vars.AZ_BATCHAI_JOB_MOUNT_ROOT, m.relativeMountPath), target = target }
    end
  end
  for _, m in ipairs(mv.unmanagedFileSystems or {}) do
    local at = join(paths.vars.AZ_BATCHAI_JOB_MOUNT_ROOT, m.relativeMountPath)
    mounts[#mounts + 1] = { dir = at, command = m.mountCommand .. " " .. q(at) }
  end

  local key = validate.toolkit_key(p)
  local s = p[key] or {}
  local python = s.pythonInterpreterPath or config.python
  local node_count = math.tointeger(p.nodeCount) or 1
  local count = math.tointeger(s.processCount) or node_count
  local processes = {}
  local needs_mpi = false
  local function add(command, role, index, extra)
    processes[#processes + 1] = { command = command, role = role or "main", index = index or 0, env = extra or {} }
  end
  local function tool(name, field)
    local path = M.which(name, env.PATH)
    if not path then
      return nil, { code = "ToolNotFound", message = ("'%s' is not installed on this machine (needed by %s.%s)."):format(name, key, field) }
    end
    return path
  end

  if key == "customToolkitSettings" then
    add(s.commandLine or "true")
  elseif key == "customMpiSettings" then
    needs_mpi = true
    add(s.commandLine)
  elseif key == "horovodSettings" or key == "chainerSettings" then
    needs_mpi = true
    add(python_command(python, s.pythonScriptFilePath, s.commandLineArgs))
  elseif key == "pyTorchSettings" then
    local cmd = python_command(python, s.pythonScriptFilePath, s.commandLineArgs)
    if count > 1 and (s.communicationBackend or ""):lower() == "mpi" then
      needs_mpi = true
      add(cmd)
    else
      local port = tostring(opts.master_port or 29500)
      for rank = 0, count - 1 do
        add(cmd, "main", rank, count > 1 and { MASTER_ADDR = "127.0.0.1", MASTER_PORT = port, WORLD_SIZE = tostring(count),
          RANK = tostring(rank), LOCAL_RANK = tostring(rank) } or nil)
      end
    end
  elseif key == "tensorFlowSettings" then
    local workers = math.tointeger(s.workerCount)
    local ps = math.tointeger(s.parameterServerCount)
    if not workers and not ps then
      add(python_command(python, s.pythonScriptFilePath, s.masterCommandLineArgs))
    else
      workers = workers or node_count
      ps = ps or 1
      local base = opts.master_port or 29500
      local ps_hosts, worker_hosts = {}, {}
      for i = 1, ps do ps_hosts[i] = "127.0.0.1:" .. (base + i) end
      for i = 1, workers do worker_hosts[i] = "127.0.0.1:" .. (base + ps + i) end
      local cluster = { ps = ps_hosts, worker = worker_hosts }
      local common = { AZ_BATCHAI_PS_HOSTS = table.concat(ps_hosts, ","), AZ_BATCHAI_WORKER_HOSTS = table.concat(worker_hosts, ",") }
      local function role_env(kind, i)
        local e = { AZ_BATCHAI_TASK_INDEX = tostring(i),
          TF_CONFIG = wire.encode({ cluster = cluster, task = { type = kind, index = i }, environment = "cloud" }) }
        for k, v in pairs(common) do e[k] = v end
        return e
      end
      for i = 0, ps - 1 do
        add(python_command(python, s.pythonScriptFilePath, s.parameterServerCommandLineArgs), "ps", i, role_env("ps", i))
      end
      for i = 0, workers - 1 do
        add(python_command(python, s.pythonScriptFilePath, s.workerCommandLineArgs), "main", i, role_env("worker", i))
      end
    end
  elseif key == "caffe2Settings" then
    add(python_command(python, s.pythonScriptFilePath, s.commandLineArgs))
  elseif key == "cntkSettings" then
    if (s.languageType or "Python"):lower() == "python" then
      add(python_command(python, s.pythonScriptFilePath, s.commandLineArgs))
    else
      local cntk, err = tool("cntk", "configFilePath")
      if not cntk then return nil, err end
      add(("exec %s configFile=%s %s"):format(q(cntk), q(s.configFilePath or ""), s.commandLineArgs or ""))
    end
    needs_mpi = count > 1
  elseif key == "caffeSettings" then
    if s.configFilePath then
      local caffe, err = tool("caffe", "configFilePath")
      if not caffe then return nil, err end
      add(("exec %s train --solver=%s %s"):format(q(caffe), q(s.configFilePath), s.commandLineArgs or ""))
    else
      add(python_command(python, s.pythonScriptFilePath, s.commandLineArgs))
    end
    needs_mpi = count > 1
  else
    return refuse("NoToolkit", "The job has no toolkit settings.")
  end

  if needs_mpi then
    local mpirun = M.which(config.mpirun, env.PATH)
    if not mpirun then
      return refuse("MpiNotInstalled", ("%s runs its processes with mpirun, which is not installed on this machine "
        .. "(install Open MPI, e.g. the Debian package openmpi-bin, or set mpirun in the endpoint's configuration)."):format(key))
    end
    local names = {}
    for k in pairs(env) do names[#names + 1] = k end
    table.sort(names)
    local cfg = { mpirun_path = mpirun }
    local command = processes[1].command
    processes = { { argv = mpirun_argv(cfg, count, command, nil), role = "main", index = 0, env = {} } }
  end
  for _, proc in ipairs(processes) do
    proc.argv = proc.argv or { "/bin/sh", "-c", proc.command }
    proc.command = nil
  end

  local envp = {}
  for k, v in pairs(env) do envp[#envp + 1] = k .. "=" .. v end
  table.sort(envp)
  local prep
  if p.jobPreparation then prep = { argv = { "/bin/sh", "-c", p.jobPreparation.commandLine } } end
  return {
    job = job.arm_id, job_dir = paths.job_dir, cwd = paths.vars.AZ_BATCHAI_JOB_TEMP, env = envp, mkdirs = mkdirs,
    mounts = mounts, stdouterr = paths.stdouterr, preparation = prep, processes = processes,
    hostfile = ("localhost slots=%d\n"):format(math.max(count, 1)),
    node_count = node_count, process_count = math.max(count, #processes, 1),
  }
end

return M

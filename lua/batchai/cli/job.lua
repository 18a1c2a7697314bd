-- `bai job ...`: create, show, list, delete, terminate, wait for, read the logs
-- and list the output files of jobs.
local command = require "batchai.client.command"
local output = require "batchai.client.output"
local codec = require "batchai.client.codec"

-- The experiment of --experiment, else the configured one.
local function experiment(opts, env)
  return command.guard(function()
    return require("batchai.client").experiment(command.constructor_fields(env, "experiment", opts.experiment))
  end)
end

local function short_cluster(id)
  if type(id) ~= "string" then return id end
  return id:match("([^/]+)/*$") or id
end

local function job_row(job)
  local s = codec.job_summary(job)
  s.cluster = short_cluster(s.cluster)
  if type(s.errors) == "table" and #s.errors > 0 then
    local msgs = {}
    for _, e in ipairs(s.errors) do
      if type(e) == "table" then msgs[#msgs + 1] = tostring(e.code or "") .. ": " .. tostring(e.message or "") end
    end
    s.errors = table.concat(msgs, "; ")
  else
    s.errors = nil
  end
  return s
end

local LIST_COLUMNS = {
  { "NAME", "name" }, { "STATE", "state" }, { "EXIT", "exit_code" }, { "NODES", "nodes" },
  { "CLUSTER", "cluster" }, { "TOOL", "tool" }, { "CREATED", "created" },
}
local SHOW_FIELDS = {
  { "Name", "name" }, { "State", "state" }, { "Provisioning", "provisioning" }, { "Exit code", "exit_code" },
  { "Tool", "tool" }, { "Nodes", "nodes" }, { "Cluster", "cluster" }, { "Created", "created" },
  { "Started", "started" }, { "Ended", "ended" }, { "Errors", "errors" },
}

local function show(env, job)
  output.show(env.out, env.format(), SHOW_FIELDS, job, job_row, codec.to_plain)
end

local function fail(err) command.fail(err) end

-- A job definition from a file: a JobCreateParameters JSON document (as
-- `az batchai job create --config-file` took) or a Lua file returning a job;
-- `cluster` for a definition that names none.
local function load_job(path, cluster)
  local job
  if path:find("%.lua$") then
    local chunk, err = loadfile(path, "t")
    if not chunk then fail(err) end
    local ok, value = pcall(chunk)
    if not ok then fail(path .. ": " .. tostring(value)) end
    if type(value) ~= "table" then
      fail(path .. ": the file must return a job (JobProperties or a table of its fields), got " .. type(value))
    end
    job = value
  else
    local defaults = cluster and { cluster = { id = cluster } } or nil
    local ok, value, err = pcall(require("batchai.schema").load_job, path, nil, defaults)
    if not ok then fail(value) end
    if value == nil then fail(err) end
    job = value
  end
  if cluster and getmetatable(job) == nil and job.cluster == nil then job.cluster = { id = cluster } end
  return job
end

-- Runs fn(name) for each name, several at once; reports each failure; returns
-- the exit status (1 if any failed).
local function for_each_name(names, concurrency, fn)
  local status = 0
  local pool = require("batchai.client.loop").pool { concurrency = concurrency }
  for _, name in ipairs(names) do
    pool:spawn(function()
      local ok, err = fn(name)
      if not ok then
        io.stderr:write("bai: ", command.describe(err), "\n")
        status = 1
      end
    end)
  end
  pool:wait()
  return status
end

local function guard_name(exp, name)
  return command.guard(function() return exp:job_path(name) end)
end

local EXPERIMENT = { nil, "experiment", arg = "NAME", help = "experiment" }

-- A sub-command calling exp:METHOD(name, { wait = }) for each NAME, several at once.
local function for_each_job(method, summary, accepted)
  return {
    args = "NAME...", min = 1, max = math.huge,
    summary = summary,
    options = { EXPERIMENT, { nil, "no-wait", help = "return once the endpoint accepted the " .. accepted } },
    run = function(opts, args, env)
      local exp = experiment(opts, env)
      for _, n in ipairs(args) do guard_name(exp, n) end
      return for_each_name(args, exp.ctx.settings.concurrency or 32, function(name)
        return exp[method](exp, name, { wait = not opts.no_wait })
      end)
    end,
  }
end

local subcommands = {
  create = {
    args = "NAME", min = 1, max = 1,
    summary = "submit a job from a JSON or Lua file",
    help = [[FILE is a JobCreateParameters JSON document ({"properties": {...}}, as
'az batchai job create --config-file' took) or a Lua file returning a job
(bai.JobProperties{...} or a table of its fields).  A job that already exists
with the same properties counts as created; different properties are refused.]],
    options = {
      { "f", "file", arg = "FILE", help = "job definition (.json or .lua)" },
      EXPERIMENT,
      { nil, "cluster", arg = "NAME", help = "cluster for a definition that names none" },
      { nil, "no-wait", help = "return once the endpoint accepted the job" },
    },
    run = function(opts, args, env)
      if not opts.file then require("batchai.cli").usage_error("missing option '--file FILE'", "job") end
      local exp = experiment(opts, env)
      guard_name(exp, args[1])
      local cluster = opts.cluster or command.guard(function()
        return require("batchai.config").resolve(env.config).cluster
      end)
      local props = load_job(opts.file, cluster)
      local job, err = command.guard(exp.create_job, exp, args[1], props, { wait = not opts.no_wait })
      if not job then fail(err) end
      if job == true then job = assert(exp:job(args[1])) end
      show(env, job)
      return 0
    end,
  },
  show = {
    args = "NAME", min = 1, max = 1,
    summary = "show a job",
    options = { EXPERIMENT },
    run = function(opts, args, env)
      local exp = experiment(opts, env)
      guard_name(exp, args[1])
      local job, err = exp:job(args[1])
      if not job then fail(err) end
      show(env, job)
      return 0
    end,
  },
  list = {
    summary = "list the jobs of an experiment",
    options = { EXPERIMENT },
    run = function(opts, args, env)
      local exp = experiment(opts, env)
      local format = env.format()
      command.guard(function()
        output.list(env.out, format, LIST_COLUMNS, exp:jobs(), job_row, codec.to_plain)
      end)
      return 0
    end,
  },
  delete = for_each_job("delete_job", "delete jobs (stopping them if they run)", "deletion"),
  terminate = for_each_job("terminate_job", "terminate running jobs", "request"),
  wait = {
    args = "NAME", min = 1, max = 1,
    summary = "wait for a job to end; exit with its exit code",
    help = [[Prints each state change on stderr.  The exit status is the job's exit code
(1 for a job that failed without one), or 124 when --timeout passes first.]],
    options = {
      EXPERIMENT,
      { nil, "timeout", arg = "SECONDS", number = true, help = "give up after this long" },
      { nil, "interval", arg = "SECONDS", number = true, help = "seconds between polls" },
      { "q", "quiet", help = "do not print state changes" },
    },
    run = function(opts, args, env)
      local exp = experiment(opts, env)
      guard_name(exp, args[1])
      local job, err = exp:wait(args[1], {
        timeout = opts.timeout, interval = opts.interval,
        on_change = not opts.quiet and function(name, state)
          io.stderr:write(name, ": ", tostring(state), "\n")
        end or nil,
      })
      if not job then
        if err.code == "Timeout" then
          io.stderr:write("bai: ", command.describe(err), "\n")
          return 124
        end
        fail(err)
      end
      local s = codec.job_summary(job)
      if s.state == "succeeded" then return math.tointeger(s.exit_code or 0) or 0 end
      local code = math.tointeger(s.exit_code)
      if not code or code == 0 then return 1 end
      return code < 0 and 1 or (code > 255 and 255 or code)
    end,
  },
  logs = {
    args = "NAME", min = 1, max = 1,
    summary = "print a job's stdout and stderr; -f follows them until the job ends",
    options = {
      EXPERIMENT,
      { "f", "follow", help = "keep printing as the files grow, until the job ends" },
      { nil, "stream", arg = "NAME", choices = { "stdout", "stderr" }, help = "only this stream" },
    },
    run = function(opts, args, env)
      local exp = experiment(opts, env)
      guard_name(exp, args[1])
      local ok, err = exp:logs(args[1], { follow = opts.follow, streams = opts.stream and { opts.stream } or nil })
      if not ok then fail(err) end
      return 0
    end,
  },
  files = {
    args = "NAME", min = 1, max = 1,
    summary = "list (or download) a job's output files",
    options = {
      EXPERIMENT,
      { nil, "output-dir", arg = "ID", help = "output directory id (default stdouterr)" },
      { nil, "path", arg = "SUBDIR", help = "sub-directory of the output directory to list" },
      { nil, "download", arg = "DIR", help = "download the files into DIR" },
    },
    run = function(opts, args, env)
      local exp = experiment(opts, env)
      guard_name(exp, args[1])
      local files, err = exp:output_files(args[1], opts.output_dir or "stdouterr", { directory = opts.path })
      if not files then fail(err) end
      if opts.download then
        local sys = require "batchai._sys"
        local ok, merr = sys.mkdir(opts.download, 493, true)
        if not ok then fail(merr) end
        local list = {}
        for _, f in ipairs(files) do
          if f.fileType ~= "directory" and type(f.downloadUrl) == "string" then list[#list + 1] = f end
        end
        return for_each_name(list, 8, function(f)
          if f.name:find("/") or f.name == ".." or f.name == "." then
            return nil, "refusing file name '" .. f.name .. "'"
          end
          return exp:download(f.downloadUrl, opts.download .. "/" .. f.name)
        end)
      end
      local format = env.format()
      local i = 0
      output.list(env.out, format, {
        { "NAME", "name" }, { "TYPE", "type" }, { "SIZE", "size" }, { "MODIFIED", "modified" },
      }, function() i = i + 1 return files[i] end, function(f)
        local p = type(f.properties) == "table" and f.properties or {}
        return { name = f.name, type = f.fileType, size = p.contentLength, modified = p.lastModified }
      end, codec.to_plain)
      return 0
    end,
  },
}

return command.group {
  name = "job",
  summary = "create, show, list, delete, terminate, wait for, and read the logs of jobs",
  help = "The experiment comes from --experiment, BAI_EXPERIMENT or the configuration (see 'bai config').",
  order = { "create", "show", "list", "delete", "terminate", "wait", "logs", "files" },
  subcommands = subcommands,
}

-- The node side of the Slurm executor: what the job runner (batchai.serve.runner)
-- does differently inside a Slurm allocation.  The batch script runs the runner
-- on the allocation's first node; it reads the allocation from Slurm's
-- variables, writes the hostfile from it, runs jobPreparation on every node and
-- a job's several processes as the tasks of one `srun` step (each task is this
-- module's task_main, which runs its process of the plan with the rank variables
-- taken from Slurm: RANK = SLURM_PROCID, LOCAL_RANK = SLURM_LOCALID, WORLD_SIZE
-- = SLURM_NTASKS, MASTER_ADDR = the first node's address).  Each task writes
-- its exit status to JOB_DIR/tasks/KIND.RANK; the step's outcome is the first
-- failing task's, as the local runner reports the first failing process.
-- A single process (custom toolkits, mpirun for MPI toolkits, single-process
-- Python toolkits) runs directly in the batch step, as on the local executor.
local proc = require "batchai._proc"
local sys = require "batchai._sys"
local util = require "batchai.util"
local wire = require "batchai.serve.wire"

local M = {}

local STEP_VAR = "BAI_SLURM_STEP"

local read = util.read_file

--- The SLURM_* variables of this process ("K=V" strings): job processes get
-- them too (mpirun and srun inside a job need them to use the allocation).
function M.slurm_environment()
  local out = {}
  for kv in (read("/proc/self/environ") or ""):gmatch("[^%z]+") do
    if kv:sub(1, 6) == "SLURM_" and not kv:find("^SLURM_JWT=") then out[#out + 1] = kv end
  end
  table.sort(out)
  return out
end

-- Runs argv and returns its stdout (nil when it fails or outlives `timeout` s).
local function capture(argv, dir, timeout)
  local out = dir .. "/.capture." .. sys.getpid()
  local pid = proc.spawn{ argv = argv, stdout = out }
  if not pid then return nil end
  local deadline = sys.monotime() + (timeout or 30)
  local st = proc.reap(pid)
  while st == false do
    if sys.monotime() > deadline then
      proc.kill(pid, "KILL")
      while proc.reap(pid) == false do sys.sleep(0.01) end
      os.remove(out)
      return nil
    end
    sys.sleep(0.005)
    st = proc.reap(pid)
  end
  local text = read(out)
  os.remove(out)
  if type(st) ~= "table" or st.code ~= 0 then return nil end
  return text
end

--- Expands Slurm's task counts per node ("2(x3),1" -> { 2, 2, 2, 1 }).
function M.expand_counts(s)
  local out = {}
  for item in (s or ""):gmatch("[^,]+") do
    local n, times = item:match("^(%d+)%(x(%d+)%)$")
    if n then
      for _ = 1, tonumber(times) do out[#out + 1] = math.tointeger(tonumber(n)) end
    elseif item:match("^%d+$") then
      out[#out + 1] = math.tointeger(tonumber(item))
    end
  end
  return out
end

--- The allocation the batch step runs in: { nodes = { names }, tasks = { per
-- node }, addresses = { name -> IP } }.  A one-node allocation uses 127.0.0.1,
-- as the local executor does; several nodes are resolved (getent) once here.
function M.allocation(job_dir)
  local count = tonumber(os.getenv("SLURM_JOB_NUM_NODES") or "1") or 1
  local nodes
  if count <= 1 then
    nodes = { os.getenv("SLURMD_NODENAME") or sys.hostname() or "localhost" }
  else
    nodes = {}
    local text = capture({ "scontrol", "show", "hostnames", os.getenv("SLURM_JOB_NODELIST") or "" }, job_dir)
    for name in (text or ""):gmatch("%S+") do nodes[#nodes + 1] = name end
    if #nodes == 0 then error("cannot expand the job's node list '" .. tostring(os.getenv("SLURM_JOB_NODELIST")) .. "'", 0) end
  end
  local tasks = M.expand_counts(os.getenv("SLURM_TASKS_PER_NODE"))
  local addresses = {}
  for i, name in ipairs(nodes) do
    tasks[i] = tasks[i] or 1
    if #nodes == 1 then
      addresses[name] = "127.0.0.1"
    else
      local text = capture({ "getent", "ahostsv4", name }, job_dir, 10)
      addresses[name] = text and text:match("^(%d+%.%d+%.%d+%.%d+)") or name
    end
  end
  return { nodes = nodes, tasks = tasks, addresses = addresses }
end

--- The Open MPI hostfile of an allocation.
function M.hostfile(alloc)
  local lines = {}
  for i, name in ipairs(alloc.nodes) do lines[i] = ("%s slots=%d"):format(name, alloc.tasks[i]) end
  return table.concat(lines, "\n") .. "\n"
end

-- The node of each task under block distribution (tasks fill node 1, then 2...).
local function task_nodes(alloc, ntasks)
  local out, node, used = {}, 1, 0
  for task = 0, ntasks - 1 do
    while alloc.tasks[node] and used >= alloc.tasks[node] and node < #alloc.nodes do
      node, used = node + 1, 0
    end
    out[task] = alloc.nodes[node]
    used = used + 1
  end
  return out
end

--- The plan's processes with their rendezvous addresses placed on an
-- allocation of several nodes: MASTER_ADDR the first node, TensorFlow's host
-- lists (ps tasks first, then workers, one port each) the node of each task.
function M.placed_processes(plan, alloc)
  local processes = plan.processes
  if #alloc.nodes <= 1 then return processes end
  local master = alloc.addresses[alloc.nodes[1]]
  local nodes = task_nodes(alloc, #processes)
  local first = processes[1].env or {}
  local by_port = {} -- the local plan gives each task its own port on 127.0.0.1
  local task = 0
  for hostport in ((first.AZ_BATCHAI_PS_HOSTS or "") .. "," .. (first.AZ_BATCHAI_WORKER_HOSTS or "")):gmatch("[^,]+") do
    local port = hostport:match(":(%d+)$")
    if port and nodes[task] then by_port[port] = alloc.addresses[nodes[task]] end
    task = task + 1
  end
  local out = {}
  for i, p in ipairs(processes) do
    local env = {}
    for k, v in pairs(p.env or {}) do
      if k == "MASTER_ADDR" then
        v = master
      elseif next(by_port) then
        v = v:gsub("127%.0%.0%.1:(%d+)", function(port) return by_port[port] and (by_port[port] .. ":" .. port) end)
      end
      env[k] = v
    end
    out[i] = { argv = p.argv, role = p.role, index = p.index, env = env }
  end
  return out
end

-- Reads the exit files of a step: array of { rank, code, time, role }.
local function exit_records(dir, kind, ntasks)
  local out = {}
  for rank = 0, ntasks - 1 do
    local text = read(("%s/%s.%d"):format(dir, kind, rank))
    local code, time, role, signal = (text or ""):match("^(%-?%d+) (%S+) (%S+) (%S+)")
    if code then
      out[#out + 1] = { rank = rank, code = math.tointeger(tonumber(code)), time = tonumber(time), role = role,
        signal_name = signal ~= "-" and signal or nil }
    end
  end
  return out
end

--- Runs one step of `ntasks` tasks through srun and waits for it.  kind:
-- "prep" (jobPreparation, one task per node) or "main" (the processes).
-- Returns the decisive record { rank, code, signal_name } (the first failure,
-- else the last main task) and the task count, or nil and a message when srun
-- ended without every main task reporting.
function M.run_step(plan, kind, alloc, signal_fd)
  local exit_dir = plan.job_dir .. "/tasks"
  sys.mkdir(exit_dir, 448, true)
  local per_node = kind == "prep"
  local ntasks = per_node and #alloc.nodes or #plan.processes
  local step = {
    kind = kind, env = plan.env, cwd = plan.cwd, exit_dir = exit_dir, addresses = alloc.addresses,
    master = alloc.addresses[alloc.nodes[1]],
    stdout = plan.stdouterr .. (per_node and "/stdout-job_prep.txt" or "/stdout.txt"),
    stderr = plan.stdouterr .. (per_node and "/stderr-job_prep.txt" or "/stderr.txt"),
    processes = per_node and { plan.preparation } or M.placed_processes(plan, alloc),
  }
  sys.setenv(STEP_VAR, wire.encode(step))
  local exe = sys.realpath("/proc/self/exe")
  local argv = { "srun", "--ntasks=" .. ntasks, "--distribution=block", "--kill-on-bad-exit=1", "--export=ALL",
    "--job-name=" .. kind }
  if per_node then
    argv[#argv + 1] = "--nodes=" .. #alloc.nodes
    argv[#argv + 1] = "--ntasks-per-node=1"
  end
  for _, w in ipairs({ exe, "-e", "os.exit(require('batchai.serve.slurm_runner').task_main())" }) do argv[#argv + 1] = w end
  local log = plan.job_dir .. "/runner.log"
  local pid, err = proc.spawn{ argv = argv, stdout = log, stderr = "stdout", append = true, cwd = plan.cwd }
  sys.setenv(STEP_VAR, nil) -- it holds the job's secrets
  if not pid then return nil, "srun could not start: " .. tostring(err) end
  local fd = proc.pidfd(pid)
  local status, stopping_at
  while not status do
    local fds = { fd }
    if signal_fd then fds[#fds + 1] = signal_fd end
    for _, ready in ipairs(proc.poll(fds, 200)) do
      if ready == signal_fd then
        proc.read_signals(signal_fd) -- Slurm signals every task itself (scancel, time limit)
      else
        status = proc.reap(pid)
      end
    end
    if not status and kind == "main" then
      -- When every main task is done, the auxiliary ones (parameter servers)
      -- are stopped: TERM to the job's steps (not the batch step), KILL later.
      local records, mains_done, mains = exit_records(exit_dir, kind, ntasks), 0, 0
      local done = {}
      for _, r in ipairs(records) do done[r.rank] = r end
      for rank, p in ipairs(step.processes) do
        if p.role == "main" then
          mains = mains + 1
          if done[rank - 1] then mains_done = mains_done + 1 end
        end
      end
      if mains_done == mains and #records < ntasks then
        if not stopping_at then
          stopping_at = sys.monotime()
          capture({ "scancel", "--signal=TERM", os.getenv("SLURM_JOB_ID") or "" }, plan.job_dir, 10)
        elseif sys.monotime() - stopping_at > 5 then
          proc.kill(pid, "KILL")
        end
      end
    end
  end
  proc.close(fd)
  local failed, last, reported = nil, nil, 0
  for _, r in ipairs(exit_records(exit_dir, kind, ntasks)) do
    if per_node or r.role == "main" then
      reported = reported + 1
      if r.code ~= 0 and (not failed or r.time < failed.time) then failed = r end
      if not last or r.time > last.time then last = r end
    end
  end
  local mains = ntasks
  if not per_node then
    mains = 0
    for _, p in ipairs(step.processes) do if p.role == "main" then mains = mains + 1 end end
  end
  if failed or (last and reported == mains) then return failed or last, ntasks end
  local how = status.code and ("exit code " .. status.code) or ("signal " .. tostring(status.signal_name))
  return nil, ("srun ended with %s and %d of %d tasks reported their end; see runner.log in %s."):format(
    how, reported, mains, plan.job_dir)
end

local function exit_code(st)
  if st.code then return st.code end
  return 128 + (st.signal or 0)
end

--- Entry point of an srun task: runs this task's process of the step (from
-- $BAI_SLURM_STEP) with the rank variables from Slurm, writes its exit file,
-- exits with the process's exit code.
function M.task_main()
  local step = wire.decode(os.getenv(STEP_VAR) or "")
  if type(step) ~= "table" then
    io.stderr:write("bai slurm task: no step description in $", STEP_VAR, "\n")
    return 2
  end
  local rank = math.tointeger(tonumber(os.getenv("SLURM_PROCID") or "0")) or 0
  local p = step.kind == "prep" and step.processes[1] or step.processes[rank + 1]
  local exit_file = ("%s/%s.%d"):format(step.exit_dir, step.kind, rank)
  local function finish(code, signal_name)
    wire.write_file(exit_file, ("%d %.6f %s %s\n"):format(code, sys.now(), p and p.role or "main", signal_name or "-"))
    return code > 255 and 255 or code
  end
  if not p then
    io.stderr:write(("bai slurm task: the step has no process for rank %d\n"):format(rank))
    return finish(2)
  end
  local node = os.getenv("SLURMD_NODENAME") or ""
  local vars = {}
  for k, v in pairs(p.env or {}) do vars[k] = v end
  if vars.RANK then
    vars.RANK = os.getenv("SLURM_PROCID")
    vars.LOCAL_RANK = os.getenv("SLURM_LOCALID")
    vars.WORLD_SIZE = os.getenv("SLURM_NTASKS")
  end
  vars.AZ_BATCHAI_NODE_IP = step.addresses[node] or step.master
  vars.AZ_BATCHAI_JOB_MASTER_NODE_IP = step.master
  local env = {}
  local seen = {}
  for k, v in pairs(vars) do
    env[#env + 1] = k .. "=" .. v
    seen[k] = true
  end
  for _, kv in ipairs(step.env) do
    if not seen[kv:match("^[^=]*")] then env[#env + 1] = kv end
  end
  for _, kv in ipairs(M.slurm_environment()) do env[#env + 1] = kv end
  local signal_fd = proc.signalfd({ "TERM", "INT", "HUP" })
  local pid, err = proc.spawn{ argv = p.argv, env = env, cwd = step.cwd, stdout = step.stdout, stderr = step.stderr,
    append = true, setpgid = true }
  if not pid then
    io.stderr:write("bai slurm task: the process could not start: ", tostring(err), "\n")
    return finish(127)
  end
  local fd = proc.pidfd(pid)
  local status
  while not status do
    for _, ready in ipairs(proc.poll({ fd, signal_fd }, 1000)) do
      if ready == signal_fd then
        for _, sig in ipairs(proc.read_signals(signal_fd)) do proc.kill(-pid, sig) end
      else
        status = proc.reap(pid)
      end
    end
  end
  return finish(exit_code(status), status.signal_name)
end

return M

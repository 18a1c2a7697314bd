-- The executor interface of bai serve, and the registry of executor kinds.
--
-- An executor runs the jobs of one cluster (a cluster in the endpoint's
-- configuration names its executor kind: `local` always exists; issue 7 adds
-- `slurm`; a Lua plugin may add more).  The scheduler decides WHEN a job runs
-- (slots, priority, order) and owns the job's state; the executor decides HOW.
--
-- Registering a kind:
--   require("batchai.serve.executor").register("slurm", function(cluster, ctx) return executor end)
-- A plugin module listed in the endpoint configuration's `executors = { "mymod" }`
-- is required at start and registers its kinds the same way.
--
-- The factory gets the cluster's configuration table (name, executor, and its
-- own options) and a context:
--   ctx.loop      the event loop: loop:watch(fd, fn), loop:unwatch(fd),
--                 loop:timer(seconds, fn) -> t (t.cancel()); never block in it
--   ctx.config    the endpoint configuration (jobs_dir, mount_root, grace_period...)
--   ctx.log       log:event(name, fields) (never pass secrets)
--   ctx.finished(job_id, outcome)   report that a job's processes are gone, with
--                 outcome = { exitCode = n|nil, errors = { {code,message,details}... }|nil }
--                 (from the runner's result.json when there is one)
--   ctx.runner_argv(plan_path) -> argv running `bai serve _run PLAN` with this bai
--   ctx.started(job_id, time)     for executors with reports_start: the job's
--                 processes began at `time` (epoch seconds); it becomes running
--                 and its maxWallClockTime counts from then
--   ctx.endpoint_id  a stable id of this endpoint (to name jobs in a shared backend)
--   ctx.state_dir    the endpoint's state directory (for the executor's own files)
--
-- Fields of the executor object:
--   ex.reports_start  true when its backend queues jobs (Slurm): a started job
--                     stays "queued" (its handle stored; terminate and delete
--                     stop it through the executor) until ctx.started is called.
--                     Otherwise a job is running from the moment start returns.
-- Methods of the executor object (all called by the scheduler, in the loop):
--   ex:capacity() -> integer slots (job.node_count each; math.huge = unlimited,
--                    the backend queues); 0 = accept and queue, never start
--   ex:start(job, plan) -> handle | nil, error { code, message }
--       job = { id, name, arm_id, node_count, ... }; plan from batchai.serve.launch
--       (write it 0600 and delete it once the runner read it: it holds secrets).
--       handle: a JSON-able table the scheduler stores with the job (durable),
--       e.g. { pid =, start_time =, job_dir = } or { name =, job_dir = } (Slurm).
--       Later, call ctx.finished(job.id, outcome) exactly once.
--   ex:stop(handle, signal)    "TERM" then (after the grace period) "KILL": stop
--                              the job's whole process tree; finished follows.
--   ex:reattach(job, handle) -> "running" | outcome | nil
--       after an endpoint restart: "running" when the job still runs or waits
--       in the backend (then watch it again and call finished later), its
--       outcome when it ended meanwhile, nil when no trace is left (the
--       scheduler fails the job, saying so).
--   ex:remote_login(handle) -> array of { nodeId, ipAddress, port }
--   ex:shutdown()              the endpoint stops: release fds/timers; jobs keep running
local M = {}

local kinds = {}

function M.register(kind, factory)
  if type(kind) ~= "string" or type(factory) ~= "function" then
    error("register(kind, factory): a name and a function expected", 2)
  end
  kinds[kind] = factory
end

--- The factory of a kind (loading batchai.serve.executors.KIND on first use).
function M.factory(kind)
  if not kinds[kind] then
    local ok, mod = pcall(require, "batchai.serve.executors." .. kind)
    if ok and type(mod) == "table" and mod.new and not kinds[kind] then kinds[kind] = mod.new end
  end
  return kinds[kind]
end

--- Names of the registered kinds and of the built-in ones (batchai.serve.executors.*).
function M.kinds()
  local set = {}
  for k in pairs(kinds) do set[k] = true end
  local prefix = "batchai.serve.executors."
  for _, m in ipairs(require("batchai._host").modules(prefix)) do set[m:sub(#prefix + 1)] = true end
  local names = {}
  for k in pairs(set) do names[#names + 1] = k end
  table.sort(names)
  return names
end

return M

-- The development Slurm of scripts/slurm/setup.sh: what the Slurm executor relies on, through
-- the plain tools.  Skipped when no Slurm answers, except under CI, where .ci/run starts it.
local T = require "testkit"
local sys = require "batchai._sys"

local lab = os.getenv("BAI_SLURM_LAB") or "/var/tmp/bai-slurm"
local env = { SLURM_JWT = false }
if sys.stat(lab .. "/etc/slurm.conf") and not os.getenv("SLURM_CONF") then
  env.SLURM_CONF = lab .. "/etc/slurm.conf"
end
local name = "bai-spec-lab-" .. sys.getpid()

-- Runs a Slurm tool; returns its trimmed stdout, or raises with its stderr.
local function slurm(words)
  local r = T.exec(words, { env = env })
  if r.status ~= 0 then error(table.concat(words, " ") .. ": " .. r.stderr, 2) end
  return (r.stdout:gsub("%s+$", ""))
end

-- Without a config file the tools retry for 60 s, and with slurmctld down each call waits 9 s:
-- look for the file first, and ask once.
local function available()
  local conf = env.SLURM_CONF or os.getenv("SLURM_CONF") or "/etc/slurm/slurm.conf"
  if not (sys.stat(conf) and T.has_command("sinfo")) then return false, "no " .. conf end
  local r = T.exec({ "sinfo", "--noheader" }, { env = env, timeout = 20 })
  return r.status == 0, r.stderr:gsub("%s+$", "")
end
local up, why_not = available()

if not up then
  describe("the development Slurm", function()
    it("is running", function()
      if os.getenv("CI") then error("no Slurm answers (" .. why_not .. "), but .ci/run should have started it") end
      pending("no Slurm (" .. why_not .. "): run scripts/slurm/setup.sh as root")
    end)
  end)
  return
end

local function sbatch(args)
  local words = { "sbatch", "--parsable", "--job-name=" .. name }
  for _, a in ipairs(args) do words[#words + 1] = a end
  return slurm(words)
end

-- Polls until job `id` leaves the active states; returns its state and raw wait status.
local function wait_job(id, timeout)
  local deadline = sys.monotime() + (timeout or 20)
  while sys.monotime() < deadline do
    local line = slurm({ "squeue", "--noheader", "--states=all", "--jobs=" .. id, "--Format=State:0|,exit_code:0" })
    local state, status = line:match("^(%u+)|(%d+)$")
    if state and not ({ PENDING = 1, RUNNING = 1, COMPLETING = 1, CONFIGURING = 1 })[state] then
      return state, tonumber(status)
    end
    sys.sleep(0.05)
  end
  error("job " .. id .. " still active after " .. (timeout or 20) .. " s")
end

describe("the development Slurm", function()
  local dir
  before_each(function() dir = T.tmpdir() end)
  teardown(function() T.exec({ "scancel", "--name=" .. name }, { env = env }) end)

  it("runs a 2-task job whose srun tasks see their ranks and the allocation", function()
    local script = T.write(dir .. "/multi.sh", table.concat({
      "#!/bin/bash",
      "master=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)",
      "srun bash -c 'echo \"rank $SLURM_PROCID of $SLURM_NTASKS local $SLURM_LOCALID node $SLURM_NODEID master '$master'\"' | sort",
    }, "\n"))
    local id = sbatch({ "--ntasks=2", "--output=" .. dir .. "/out.txt", script })
    assert.are.equal("COMPLETED", (wait_job(id)))
    assert.are.equal("rank 0 of 2 local 0 node 0 master localhost\nrank 1 of 2 local 1 node 0 master localhost\n",
      T.read(dir .. "/out.txt"))
  end)

  it("reports a failing job's exit code", function()
    local id = sbatch({ "--output=/dev/null", "--wrap=exit 3" })
    local state, status = wait_job(id)
    assert.are.equal("FAILED", state)
    assert.are.equal(3, status >> 8)
    assert.matches("ExitCode=3:0", slurm({ "scontrol", "show", "job", "--oneliner", id }), 1, true)
  end)

  it("rejects a job that can never fit instead of queueing it forever", function()
    local r = T.exec({ "sbatch", "--parsable", "--job-name=" .. name, "--ntasks=100000", "--wrap=true" }, { env = env })
    assert.are.equal(1, r.status)
    assert.matches("More processors requested than permitted", r.stderr, 1, true)
  end)

  it("cancels a running job's whole process tree", function()
    local script = T.write(dir .. "/tree.sh", table.concat({
      "#!/bin/bash",
      "sleep 301 & echo $! >>" .. dir .. "/pids",
      "bash -c 'sleep 302 & echo $! >>" .. dir .. "/pids; wait' &",
      "echo $! >>" .. dir .. "/pids",
      "touch " .. dir .. "/started",
      "wait",
    }, "\n"))
    local id = sbatch({ "--output=/dev/null", script })
    local deadline = sys.monotime() + 10
    while not (sys.stat(dir .. "/started") and select(2, T.read(dir .. "/pids"):gsub("\n", "")) == 3) do
      assert(sys.monotime() < deadline, "the job did not start its processes within 10 s")
      sys.sleep(0.05)
    end
    slurm({ "scancel", id })
    assert.are.equal("CANCELLED", (wait_job(id)))
    for pid in T.read(dir .. "/pids"):gmatch("%d+") do
      local stat = T.read("/proc/" .. pid .. "/stat")
      assert(not stat or stat:match("^%d+ %b() (%u)") == "Z", "process " .. pid .. " of the cancelled job still runs")
    end
  end)

  it("runs a job array at most %N tasks at a time", function()
    local id = sbatch({ "--array=0-5%2", "--output=/dev/null",
      "--wrap=date +%s.%N >" .. dir .. "/start.$SLURM_ARRAY_TASK_ID; sleep 0.3; date +%s.%N >" .. dir .. "/end.$SLURM_ARRAY_TASK_ID" })
    local deadline = sys.monotime() + 30
    while #slurm({ "squeue", "--noheader", "--array", "--jobs=" .. id, "--format=%i" }) > 0 do
      assert(sys.monotime() < deadline, "the array did not finish within 30 s")
      sys.sleep(0.1)
    end
    local spans = {}
    for task = 0, 5 do
      spans[#spans + 1] = { tonumber(T.read(dir .. "/start." .. task)), tonumber(T.read(dir .. "/end." .. task)) }
    end
    for _, a in ipairs(spans) do
      local overlapping = 0
      for _, b in ipairs(spans) do
        if b[1] <= a[1] and a[1] < b[2] then overlapping = overlapping + 1 end
      end
      assert(overlapping <= 2, "more than 2 array tasks ran at once")
    end
  end)
end)

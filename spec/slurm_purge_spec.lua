-- What bai serve's Slurm executor makes of a job Slurm no longer lists (its
-- record purged after MinJobAge while the endpoint was away): the runner's
-- result.json when there is one, else Slurm's accounting or job-completion
-- log.  The lab keeps finished jobs for 300 s and Slurm cannot purge on demand,
-- so the executor is asked directly, about real jobs of the lab.
local lab = require "slurmlab"
if not lab.up then return lab.skip("the Slurm executor's view of purged jobs") end
local T = require "testkit"
local sys = require "batchai._sys"
local slurm = require "batchai.serve.executors.slurm"

-- An executor of the lab whose reports land in `events`.
local function executor(events)
  return slurm.new({ name = "lab", slurm_conf = lab.conf }, {
    state_dir = T.tmpdir(), config = {}, log = { event = function() end },
    started = function(id, time) events[#events + 1] = { "started", id, time } end,
    finished = function(id, outcome) events[#events + 1] = { "finished", id, outcome } end,
  })
end

local name = ("bai-purge-spec-%d"):format(sys.getpid())
local id

setup(function()
  id = lab.tool({ "sbatch", "--parsable", "--job-name=" .. name, "--output=/dev/null", "--wrap", "exit 3" })
  local deadline = sys.monotime() + 30
  while lab.tool({ "squeue", "--noheader", "--states=all", "--jobs=" .. id, "-O", "State" }) ~= "FAILED" do
    assert(sys.monotime() < deadline, "the lab's job " .. id .. " did not fail within 30 s")
    sys.sleep(0.1)
  end
end)

describe("the Slurm executor and a job Slurm no longer lists", function()
  it("finds how the job ended in Slurm's job-completion log (the lab has no accounting database)", function()
    local ex = executor({})
    local e = ex:accounting({ slurm_id = id, name = name, job_dir = T.tmpdir() })
    assert.are.same({ id, "FAILED", 3 << 8, "" }, { e.id, e.state, e.status, e.reason })
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$", e.start)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$", e["end"])
    -- another job's record under the same id is not this job's, and an unknown id has none
    assert.is_nil(ex:accounting({ slurm_id = id, name = name .. "-other", job_dir = T.tmpdir() }))
    assert.is_nil(ex:accounting({ slurm_id = "999999999", name = name, job_dir = T.tmpdir() }))
  end)

  it("takes the runner's result.json first: started and finished as the runner recorded them", function()
    local events = {}
    local ex = executor(events)
    local dir = T.tmpdir()
    T.write(dir .. "/started", "1795555830.5\n")
    T.write(dir .. "/result.json", '{"exitCode":3,"errors":[{"code":"JobFailed","message":"exit code 3"}]}')
    T.write(dir .. "/plan.json", "{}")
    ex:resolve_missing({ id = "j1", slurm_id = id, name = name, job_dir = dir, state = "submitted" })
    assert.are.same({ { "started", "j1", 1795555830.5 },
      { "finished", "j1", { exitCode = 3, errors = { { code = "JobFailed", message = "exit code 3" } } } } }, events)
    assert.is_nil(T.read(dir .. "/plan.json")) -- it holds secrets: removed once the job is over
  end)
end)

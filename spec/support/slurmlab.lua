-- Specs' access to the development Slurm of scripts/slurm/setup.sh.
--
--   local lab = require "slurmlab"
--   if not lab.up then return lab.skip("the Slurm executor") end   -- pending, or an error under CI
--   lab.env                      -- environment for the tools: SLURM_CONF when needed, no SLURM_JWT
--   lab.tool({ "squeue", ... })  -- runs a tool, returns its trimmed stdout or raises with its stderr
--   lab.jobs(prefix)             -- name -> { id, state, nice, count } of the user's jobs whose name
--                                   starts so (count: Slurm jobs of that name; id, state: one of them)
--
-- Without a config file the tools retry for 60 s, and with slurmctld down each
-- call waits 9 s: the file is looked for first, and Slurm asked once.
local busted = require "busted"   -- describe/it/pending: a module does not see the spec's environment
local T = require "testkit"
local sys = require "batchai._sys"

local M = {}

local lab = os.getenv("BAI_SLURM_LAB") or "/var/tmp/bai-slurm"
M.env = { SLURM_JWT = false }
if sys.stat(lab .. "/etc/slurm.conf") and not os.getenv("SLURM_CONF") then
  M.env.SLURM_CONF = lab .. "/etc/slurm.conf"
end
M.conf = M.env.SLURM_CONF or os.getenv("SLURM_CONF") or "/etc/slurm/slurm.conf"

local function available()
  if not (sys.stat(M.conf) and T.has_command("sinfo")) then return false, "no " .. M.conf end
  local r = T.exec({ "sinfo", "--noheader" }, { env = M.env, timeout = 20 })
  return r.status == 0, (r.stderr:gsub("%s+$", ""))
end
M.up, M.why_not = available()

--- Declares a spec that is pending without Slurm, and fails under CI (where
-- .ci/run starts the development Slurm).
function M.skip(what)
  if os.getenv("CI") then
    busted.it(what .. " needs a running Slurm", function()
      error("no Slurm answers (" .. M.why_not .. "), but .ci/run should have started it")
    end)
  else
    busted.pending(what .. ": no Slurm (" .. M.why_not .. "): run scripts/slurm/setup.sh as root")
  end
end

function M.tool(words)
  local r = T.exec(words, { env = M.env, timeout = 30 })
  if r.status ~= 0 then error(table.concat(words, " ") .. ": " .. r.stderr, 2) end
  return (r.stdout:gsub("%s+$", ""))
end

function M.jobs(prefix)
  local out = {}
  for line in M.tool({ "squeue", "--noheader", "--states=all", "--me", "-O", "JobID:0|,Name:0|,State:0|,Nice:0" }):gmatch("[^\n]+") do
    local id, name, state, nice = line:match("^(%d+)|([^|]*)|([^|]*)|(%S*)")
    if name and name:sub(1, #prefix) == prefix then
      local count = out[name] and out[name].count or 0
      out[name] = { id = id, state = state, nice = tonumber(nice), count = count + 1 }
    end
  end
  return out
end

return M

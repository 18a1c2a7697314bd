-- The resources as bai serve shows them: ARM ids, GET bodies of workspaces,
-- experiments and jobs (secrets removed), and the parsing of durations.
local wire = require "batchai.serve.wire"
local validate = require "batchai.serve.validate"

local M = {}

local iso = wire.iso_time
local PROVIDER = "/providers/Microsoft.BatchAI"

function M.workspace_id(sub, rg, ws)
  return "/subscriptions/" .. sub .. "/resourceGroups/" .. rg .. PROVIDER .. "/workspaces/" .. ws
end

function M.experiment_id(sub, rg, ws, exp) return M.workspace_id(sub, rg, ws) .. "/experiments/" .. exp end

function M.job_id(sub, rg, ws, exp, job) return M.experiment_id(sub, rg, ws, exp) .. "/jobs/" .. job end

--- GET body of a workspace row.
function M.workspace_body(w)
  local tags = wire.decode(w.tags) or {}
  return wire.encode({
    id = M.workspace_id(w.sub, w.rg, w.name), name = w.name, type = "Microsoft.BatchAI/workspaces",
    location = w.location, tags = next(tags) and tags or nil,
    properties = { creationTime = iso(w.created), provisioningState = w.state,
      provisioningStateTransitionTime = iso(w.state_time) },
  })
end

--- GET body of an experiment row, given its workspace row.
function M.experiment_body(w, e)
  return wire.encode({
    id = M.experiment_id(w.sub, w.rg, w.name, e.name), name = e.name, type = "Microsoft.BatchAI/workspaces/experiments",
    properties = { creationTime = iso(e.created), provisioningState = e.state,
      provisioningStateTransitionTime = iso(e.state_time) },
  })
end

--- GET body of a job row (its stored spec with secrets removed, plus the
-- read-only fields).  `spec` may be passed decoded to save a decode.
function M.job_body(j, spec)
  spec = spec or wire.decode(j.spec)
  local p = validate.redact(spec.properties)
  p.toolType = validate.tool_type(p)
  p.jobOutputDirectoryPathSegment = j.segment
  p.creationTime = iso(j.created)
  p.provisioningState = j.prov_state
  p.provisioningStateTransitionTime = iso(j.prov_time)
  p.executionState = j.exec_state
  p.executionStateTransitionTime = iso(j.exec_time)
  local info = {}
  if j.started then info.startTime = iso(j.started) end
  if j.ended then info.endTime = iso(j.ended) end
  if j.exit_code then info.exitCode = j.exit_code end
  if j.errors then info.errors = wire.decode(j.errors) end
  if next(info) then p.executionInfo = info end
  return wire.encode({ id = j.arm_id, name = j.name, type = "Microsoft.BatchAI/workspaces/experiments/jobs", properties = p })
end

local PRIORITY = { low = 0, normal = 1, high = 2 }
M.PRIORITY = PRIORITY

--- Seconds in an ISO-8601 duration ("P7D", "PT1H30M", "P1DT2.5S") or a .NET
-- TimeSpan ("7.00:00:00", "01:30:00"); nil when it is neither.
function M.duration_seconds(s)
  if type(s) ~= "string" then return nil end
  local d, h, m, sec = s:match("^(%d+)%.(%d+):(%d+):(%d+%.?%d*)$")
  if not d then
    h, m, sec = s:match("^(%d+):(%d+):(%d+%.?%d*)$")
    d = h and "0"
  end
  if d then return tonumber(d) * 86400 + tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(sec) end
  local date, time = s:match("^P([^T]*)T?(.*)$")
  if not date or (date == "" and time == "") or (s:find("T", 1, true) and time == "") then return nil end
  local total = 0
  local units = { date = { Y = 365 * 86400, M = 30 * 86400, W = 7 * 86400, D = 86400 },
    time = { H = 3600, M = 60, S = 1 } }
  for part, text in pairs({ date = date, time = time }) do
    local rest = text:gsub("(%d+%.?%d*)(%a)", function(n, u)
      local f = units[part][u]
      if not f then return "!" end
      total = total + tonumber(n) * f
      return ""
    end)
    if rest ~= "" then return nil end
  end
  return total
end

return M

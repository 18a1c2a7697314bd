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

--- The static part of a job's GET body: its properties as JSON without secret
-- values, the toolType added, and no closing brace (the states follow).
-- `spec_json` is the canonical create body {"properties":{...}} when known.
function M.job_view(spec, spec_json)
  local p = spec.properties
  local props
  if spec_json and not validate.has_secrets(p) then
    props = spec_json:match('^{"properties":(.*)}$')
  end
  props = props or validate.redacted_json(p)
  local tool = validate.tool_type(p)
  return props:sub(1, -2) .. (tool and (',"toolType":' .. wire.encode(tool)) or "")
end

local function q(s) return wire.encode(s) end

--- GET body of a job row: its view plus the read-only state fields.
function M.job_body(j)
  if not j.view then j.view = M.job_view(wire.decode(j.spec)) end
  local parts = {
    '{"id":', q(j.arm_id), ',"name":', q(j.name), ',"type":"Microsoft.BatchAI/workspaces/experiments/jobs","properties":',
    j.view, ',"jobOutputDirectoryPathSegment":', q(j.segment), ',"creationTime":"', iso(j.created),
    '","provisioningState":"', j.prov_state, '","provisioningStateTransitionTime":"', iso(j.prov_time),
    '","executionState":"', j.exec_state, '","executionStateTransitionTime":"', iso(j.exec_time), '"',
  }
  if j.started or j.ended or j.exit_code or j.errors then
    local info = {}
    if j.started then info[#info + 1] = '"startTime":"' .. iso(j.started) .. '"' end
    if j.ended then info[#info + 1] = '"endTime":"' .. iso(j.ended) .. '"' end
    if j.exit_code then info[#info + 1] = '"exitCode":' .. math.tointeger(j.exit_code) end
    if j.errors then info[#info + 1] = '"errors":' .. j.errors end
    parts[#parts + 1] = ',"executionInfo":{' .. table.concat(info, ",") .. "}"
  end
  parts[#parts + 1] = "}}"
  return table.concat(parts)
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

-- Validation of request bodies for bai serve.  Job bodies go through the typed
-- schema (batchai.schema, issue 3) when it is present: the one place that knows
-- the Batch AI types.  Until it lands, a minimal structural check stands in
-- (only what the endpoint itself relies on); it is not a second schema.
local host = require "batchai._host"

local M = {}

local TOOLKITS = {
  "cntkSettings", "pyTorchSettings", "tensorFlowSettings", "caffeSettings", "caffe2Settings",
  "chainerSettings", "customToolkitSettings", "customMpiSettings", "horovodSettings",
}
M.TOOLKITS = TOOLKITS

local TOOL_TYPES = {
  cntkSettings = "cntk", pyTorchSettings = "pytorch", tensorFlowSettings = "tensorflow",
  caffeSettings = "caffe", caffe2Settings = "caffe2", chainerSettings = "chainer",
  customToolkitSettings = "custom", customMpiSettings = "custommpi", horovodSettings = "horovod",
}

local schema
local function load_schema()
  if schema == nil then
    schema = false
    if host.has_module("batchai.schema") then
      local ok, s = pcall(require, "batchai.schema")
      if ok and type(s) == "table" and s.check then schema = s end
    end
  end
  return schema
end

local function err(path, message) return { path = path, field = path:match("[^.]+$"), message = message } end

local function is_int(v) return type(v) == "number" and v == math.floor(v) end

-- The stand-in check: JobCreateParameters.properties with the fields the
-- endpoint reads.  Returns the body | nil, errors.
local function minimal_check(body)
  local errors = {}
  if type(body) ~= "table" then return nil, { err("JobCreateParameters", "a JSON object expected") } end
  local p = body.properties
  if type(p) ~= "table" then return nil, { err("JobCreateParameters.properties", "required field missing") } end
  local base = "JobCreateParameters.properties."
  if type(p.cluster) ~= "table" or type(p.cluster.id) ~= "string" then
    errors[#errors + 1] = err(base .. "cluster", "required field missing (a ResourceId { id = ... } expected)")
  end
  if p.nodeCount == nil then
    errors[#errors + 1] = err(base .. "nodeCount", "required field missing")
  elseif not is_int(p.nodeCount) or p.nodeCount < 1 then
    errors[#errors + 1] = err(base .. "nodeCount", "integer >= 1 expected, got " .. tostring(p.nodeCount))
  end
  if type(p.stdOutErrPathPrefix) ~= "string" then
    errors[#errors + 1] = err(base .. "stdOutErrPathPrefix", "required field missing")
  end
  local found = {}
  for _, k in ipairs(TOOLKITS) do
    if p[k] ~= nil then found[#found + 1] = k end
  end
  if #found == 0 then
    errors[#errors + 1] = err(base:sub(1, -2), "exactly one toolkit settings object expected, got none")
  elseif #found > 1 then
    errors[#errors + 1] = err(base:sub(1, -2), "exactly one toolkit settings object expected, got "
      .. table.concat(found, " and "))
  end
  if #errors > 0 then return nil, errors end
  return body
end

--- Validates a decoded JobCreateParameters body.  Returns the wire body (a
-- plain table { properties = {...} }, secrets included) and its canonical JSON
-- text (equal jobs give equal text) | nil, errors where each error is
-- { path =, field =, message = }.
function M.job_create(body)
  local s = load_schema()
  if not s then
    local wire_body, errors = minimal_check(body)
    if not wire_body then return nil, errors end
    return wire_body, require("batchai.serve.wire").encode(wire_body)
  end
  local value, errors = s.check(body, "JobCreateParameters")
  if not value then return nil, errors end
  -- the checked plain body serves as the wire table (numbers may be integral floats)
  return body, value:to_json()
end

--- Whether wire properties carry any secret value (then GET bodies need redact).
function M.has_secrets(props)
  if props.secrets and #props.secrets > 0 then return true end
  local reg = props.containerSettings and props.containerSettings.imageSourceRegistry
  if reg and reg.credentials then return true end
  local mv = props.mountVolumes
  if mv and ((mv.azureFileShares and #mv.azureFileShares > 0) or (mv.azureBlobFileSystems and #mv.azureBlobFileSystems > 0)) then
    return true
  end
  return false
end

--- The JSON of wire properties without secret values.
function M.redacted_json(props)
  local s = load_schema()
  local r = M.redact(props)
  if s then return s.encode(r, "JobProperties") end
  return require("batchai.serve.wire").encode(r)
end

--- The job's toolType wire value, from which settings object is present.
function M.tool_type(props)
  local s = load_schema()
  if s and s.tool_type then return s.tool_type(props) end
  for k, t in pairs(TOOL_TYPES) do
    if props[k] ~= nil then return t end
  end
  return nil
end

--- The settings key present in props ("pyTorchSettings", ...).
function M.toolkit_key(props)
  for _, k in ipairs(TOOLKITS) do
    if props[k] ~= nil then return k end
  end
  return nil
end

--- A copy of wire properties without secret values (secrets[].value,
-- registry passwords, storage account keys), as GET and list show them.
function M.redact(props)
  local s = load_schema()
  if s and s.redact then return s.redact(props) end
  local function copy(v)
    if type(v) ~= "table" then return v end
    local c = {}
    for k, x in pairs(v) do c[k] = copy(x) end
    return c
  end
  local c = copy(props)
  for _, sec in ipairs(c.secrets or {}) do sec.value = nil end
  local reg = c.containerSettings and c.containerSettings.imageSourceRegistry
  if reg and reg.credentials then reg.credentials.password = nil end
  local mv = c.mountVolumes or {}
  for _, list in ipairs({ mv.azureFileShares or {}, mv.azureBlobFileSystems or {} }) do
    for _, m in ipairs(list) do
      if m.credentials then m.credentials.accountKey = nil end
    end
  end
  return c
end

--- Whether the typed schema is in use (false while the stand-in check is).
function M.using_schema() return load_schema() ~= false end

return M

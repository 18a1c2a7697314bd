-- batchai.client.codec: the one place where the client turns job definitions
-- into request bodies and response JSON into values, through the typed schema
-- (batchai.schema).  Everything else in the client reads responses only
-- through these functions.
local cjson = require "cjson"

local M = {}

-- The schema, loaded on first use: help and usage errors of `bai job` need none.
local schema_module
local function schema()
  schema_module = schema_module or require "batchai.schema"
  return schema_module
end

local function decode_json(text)
  local ok, doc = pcall(cjson.decode, text)
  if ok then return doc end
  return nil, "invalid JSON in the response: " .. tostring(doc)
end
M.decode_json = decode_json

--- The JobCreateParameters body for `props` (a typed JobProperties, or a
-- plain table of its fields).  Raises on an invalid definition (misuse).
function M.job_create_body(props)
  if type(props) ~= "table" then error("job properties: table or JobProperties expected, got " .. type(props), 3) end
  if type(props.to_json) == "function" then return props:to_json() end
  return schema().JobProperties(props):to_json()
end

--- A decoded response of a type ("Job", "Experiment", "Workspace", "File",
-- "RemoteLoginInformation") from a JSON text or an already decoded table.
-- Returns value | nil, message.
function M.decode(data, type_name)
  local ok, value, err = pcall(schema().decode, data, type_name)
  if type(data) == "string" then
    if ok and value ~= nil then return value end
    if not ok then return nil, tostring(value) end
    return nil, err
  end
  if ok and value ~= nil then return value end
  return data
end

--- A page of a list: array of item tables, nextLink | nil, message.
function M.page(text)
  local doc, err = decode_json(text)
  if not doc then return nil, nil, err end
  if type(doc) ~= "table" then return nil, nil, "list response is not a JSON object" end
  local value = doc.value
  if value == nil then value = {} end
  if type(value) ~= "table" then return nil, nil, "list response: 'value' is not an array" end
  local link = doc.nextLink
  if link == cjson.null or link == "" then link = nil end
  return value, link
end

local function field(t, k)
  if type(t) ~= "table" then return nil end
  local v = t[k]
  if v == cjson.null then return nil end
  return v
end

--- The properties table of a resource value (typed or plain).
function M.properties(resource) return field(resource, "properties") end

--- provisioningState of a resource body (a JSON text or a decoded value), or nil.
function M.provisioning_state(body)
  if type(body) == "string" then
    if body == "" then return nil end
    body = decode_json(body)
  end
  return field(M.properties(body), "provisioningState")
end

--- A flat summary of a job for tables: name, state, provisioning, created,
-- started, ended, exit_code, cluster, nodes, tool.
function M.job_summary(job)
  local p = M.properties(job) or {}
  local info = field(p, "executionInfo") or {}
  local cluster = field(p, "cluster")
  local exit_code = field(info, "exitCode")
  return {
    name = field(job, "name"),
    state = field(p, "executionState"),
    provisioning = field(p, "provisioningState"),
    created = field(p, "creationTime"),
    started = field(info, "startTime"),
    ended = field(info, "endTime"),
    exit_code = exit_code and math.tointeger(exit_code) or exit_code,
    cluster = cluster and field(cluster, "id"),
    nodes = field(p, "nodeCount") and math.tointeger(field(p, "nodeCount")),
    tool = field(p, "toolType"),
    errors = field(info, "errors"),
  }
end

--- A flat summary of a workspace or experiment: name, provisioning, created, location.
function M.resource_summary(value)
  local p = M.properties(value) or {}
  return {
    name = field(value, "name"),
    provisioning = field(p, "provisioningState"),
    created = field(p, "creationTime"),
    location = field(value, "location"),
    id = field(value, "id"),
  }
end

--- Plain JSON-ready table of a value (for -o json output).
function M.to_plain(value)
  if schema().is_value(value) then return value:to_wire() end
  return value
end

--- Does the job returned by the endpoint carry the properties we sent?
-- `sent` is the create body (JSON text).  Fields the endpoint never returns
-- (secret values) are ignored; numbers compare by value.
function M.same_job(sent, job_body)
  local a = decode_json(sent)
  local b = decode_json(job_body)
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  local function contains(want, got, parent)
    if type(want) ~= "table" then return want == got end
    if type(got) ~= "table" then return false end
    for k, v in pairs(want) do
      local skip = (k == "password" or k == "accountKey" or (k == "value" and parent == "secrets"))
      if not skip and not contains(v, got[k], type(k) == "string" and k or parent) then return false end
    end
    return true
  end
  return contains(a.properties or {}, b.properties or {}, nil)
end

return M

-- Validation of request bodies for bai serve, through the typed schema
-- (batchai.schema): the one place that knows the Batch AI types.
local schema = require "batchai.schema"

local M = {}

--- Validates a decoded JobCreateParameters body.  Returns the wire body (a
-- plain table { properties = {...} }, secrets included) and its canonical JSON
-- text (equal jobs give equal text) | nil, errors where each error is
-- { path =, field =, message = }.
function M.job_create(body)
  local value, errors = schema.check(body, "JobCreateParameters")
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

--- A copy of wire properties without secret values (secrets[].value,
-- registry passwords, storage account keys), as GET and list show them.
function M.redact(props) return schema.redact(props, "JobProperties") end

--- The JSON of wire properties without secret values.
function M.redacted_json(props) return schema.encode(M.redact(props), "JobProperties") end

--- The job's toolType wire value, from which settings object is present.
function M.tool_type(props) return schema.tool_type(props) end

--- The settings key present in props ("pyTorchSettings", ...), or nil.
function M.toolkit_key(props)
  local _, key = schema.toolkit(props)
  return key
end

return M

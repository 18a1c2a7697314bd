-- batchai.client.errors: the structured error values the client returns
-- (`nil, err`), one readable line each, with secrets masked.
--
-- err.status     HTTP status, or nil for a transport failure
-- err.code       ARM error code ("ResourceNotFound", "Conflict", ...) or a
--                transport code ("COULDNT_CONNECT", "OPERATION_TIMEDOUT", "Timeout")
-- err.message    what went wrong
-- err.target     the field or resource the error is about, when known
-- err.request_id the endpoint's x-ms-request-id, when it sent one
-- err.details    array of { code, message, target } from the endpoint
-- err.operation  what the client was doing ("PUT job 'x'")
local cjson = require "cjson"

local M = {}

local secrets = {}  -- strings never to show (tokens, client secrets), as keys

--- Registers a string that must never appear in messages (tokens, secrets).
function M.add_secret(s)
  if type(s) == "string" and #s >= 6 then secrets[s] = true end
end

local function escape(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

--- The text with every registered secret, and anything that looks like a
-- bearer token or a URL signature, replaced by "***".
function M.mask(text)
  if text == nil then return nil end
  text = tostring(text)
  for s in pairs(secrets) do
    if text:find(s, 1, true) then text = text:gsub(escape(s), "***") end
  end
  text = text:gsub("([Bb]earer%s+)[%w%-%._~%+/=]+", "%1***")
  text = text:gsub("([?&][Ss]ig=)[^&%s\"']+", "%1***")
  text = text:gsub("(client_secret=)[^&%s\"']+", "%1***")
  return text
end

local Error = {}
Error.__index = Error
Error.__name = "batchai.Error"

function Error.__tostring(e)
  local parts = {}
  if e.operation then parts[#parts + 1] = e.operation .. ": " end
  parts[#parts + 1] = e.code or "Error"
  if e.message and e.message ~= "" then parts[#parts + 1] = ": " .. e.message end
  local extra = {}
  if e.status then extra[#extra + 1] = "HTTP " .. e.status end
  if e.target and e.target ~= "" then extra[#extra + 1] = "target '" .. e.target .. "'" end
  if e.request_id then extra[#extra + 1] = "request id " .. e.request_id end
  if #extra > 0 then parts[#parts + 1] = " (" .. table.concat(extra, ", ") .. ")" end
  return M.mask((table.concat(parts):gsub("[\r\n]+", " ")))
end

--- A new error value from a table of the fields above.
function M.new(fields)
  local e = setmetatable({}, Error)
  for k, v in pairs(fields) do e[k] = v end
  if e.message then e.message = M.mask(e.message) end
  return e
end

function M.is_error(v) return getmetatable(v) == Error end

--- Value of a response header (case-insensitive), from the raw header block.
function M.header(raw, name)
  if not raw or raw == "" then return nil end
  local lname = name:lower()
  for line in raw:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k and k:lower() == lname then return v end
  end
  return nil
end

--- An error from an HTTP error response (an ARM CloudError body when present).
function M.from_response(status, body, headers, operation)
  local fields = { status = status, operation = operation }
  local ok, doc = false, nil
  if body and body ~= "" then ok, doc = pcall(cjson.decode, body) end
  if not ok then doc = nil end
  local err = type(doc) == "table" and doc.error
  if type(err) == "table" then
    fields.code = type(err.code) == "string" and err.code or nil
    fields.message = type(err.message) == "string" and err.message or nil
    fields.target = type(err.target) == "string" and err.target or nil
    if type(err.details) == "table" then
      local details = {}
      for _, d in ipairs(err.details) do
        if type(d) == "table" then
          details[#details + 1] = { code = d.code, message = d.message and M.mask(d.message), target = d.target }
        end
      end
      fields.details = details
    end
  elseif type(doc) == "table" and type(doc.error_description) == "string" then  -- OAuth errors
    fields.code = tostring(doc.error)
    fields.message = doc.error_description
  end
  if not fields.code then
    local reasons = { [400] = "BadRequest", [401] = "Unauthorized", [403] = "Forbidden", [404] = "NotFound",
      [405] = "MethodNotAllowed", [408] = "RequestTimeout", [409] = "Conflict", [413] = "PayloadTooLarge",
      [429] = "TooManyRequests", [500] = "InternalServerError", [502] = "BadGateway",
      [503] = "ServiceUnavailable", [504] = "GatewayTimeout" }
    fields.code = reasons[status] or ("HTTP" .. tostring(status))
  end
  if not fields.message then
    local text = body and body:sub(1, 200):gsub("%s+", " ") or ""
    fields.message = text ~= "" and text or "no error body"
  end
  fields.request_id = M.header(headers, "x-ms-request-id") or M.header(headers, "x-ms-correlation-request-id")
  return M.new(fields)
end

return M

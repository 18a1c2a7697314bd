-- Wire helpers for bai serve: canonical JSON (sorted keys, empty arrays kept as
-- arrays by field name), ARM error bodies, timestamps, identifiers.
local cjson = require "cjson"

local M = {}

-- Fields of the Batch AI model (and ARM envelopes) that are arrays: an empty
-- Lua table under one of these names encodes as [] (cjson cannot tell).
local ARRAY_FIELDS = {
  inputDirectories = true, outputDirectories = true, environmentVariables = true, secrets = true,
  azureFileShares = true, azureBlobFileSystems = true, fileServers = true, unmanagedFileSystems = true,
  errors = true, details = true, value = true,
}
M.ARRAY_FIELDS = ARRAY_FIELDS

-- A string as a JSON literal: '"', '\\', \b \f \n \r \t escaped, other control
-- characters (and DEL) as \u00XX, '/' and non-ASCII bytes kept (in C:
-- batchai._schema's quote, loaded at the first use, so that a job runner, which
-- only decodes, does not load the C module).
local encode_string
local function load_quote()
  encode_string = require("batchai._schema").quote
  return encode_string
end
function M.quote(s) return (encode_string or load_quote())(s) end
local concat, sort, floor = table.concat, table.sort, math.floor

local function is_array(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

-- Appends the JSON of v to out after index n; returns the new last index.
local function encode_value(v, key, out, n)
  local tv = type(v)
  if tv == "string" then
    n = n + 1
    out[n] = encode_string(v)
  elseif tv == "number" then
    n = n + 1
    if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
      out[n] = ("%d"):format(v)
    elseif v ~= v or v == math.huge or v == -math.huge then
      error("cannot encode " .. tostring(v) .. " in JSON", 0)
    else
      out[n] = ("%.17g"):format(v)
    end
  elseif tv == "boolean" then
    n = n + 1
    out[n] = v and "true" or "false"
  elseif v == nil or v == cjson.null then
    n = n + 1
    out[n] = "null"
  elseif tv == "table" then
    if is_array(v) then
      n = n + 1
      out[n] = "["
      for i = 1, #v do
        if i > 1 then
          n = n + 1
          out[n] = ","
        end
        n = encode_value(v[i], nil, out, n)
      end
      n = n + 1
      out[n] = "]"
    elseif next(v) == nil then
      n = n + 1
      out[n] = (key and ARRAY_FIELDS[key]) and "[]" or "{}"
    else
      local keys, count = {}, 0
      for k in next, v do
        if type(k) ~= "string" then error("cannot encode a table mixing array and object keys", 0) end
        count = count + 1
        keys[count] = k
      end
      if count > 1 then sort(keys) end
      for i = 1, count do
        local k = keys[i]
        n = n + 1
        out[n] = (i == 1 and "{" or ",") .. encode_string(k) .. ":"
        n = encode_value(v[k], k, out, n)
      end
      n = n + 1
      out[n] = "}"
    end
  else
    error("cannot encode a " .. tv .. " in JSON", 0)
  end
  return n
end

--- Canonical JSON: object keys sorted, integral numbers without a fraction,
-- empty tables named like arrays (ARRAY_FIELDS) as [].  Equal values give equal text.
function M.encode(v, key)
  if not encode_string then load_quote() end
  local out = {}
  encode_value(v, key, out, 0)
  return concat(out)
end

--- Decodes JSON text; returns value | nil, message.
function M.decode(text)
  local ok, v = pcall(cjson.decode, text)
  if not ok then return nil, (tostring(v):gsub("^.-: ", "")) end
  return v
end

--- ISO-8601 UTC with milliseconds, as the service wrote them.
function M.iso_time(t)
  local secs = floor(t)
  local ms = floor((t - secs) * 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", secs) .. (".%03dZ"):format(ms)
end

--- An ARM error body {"error":{"code","message","target","details"}}.
function M.error_body(code, message, target, details)
  return M.encode({ error = { code = code, message = message, target = target, details = details } })
end

local uuid_prefix, uuid_counter
--- A unique identifier in UUID form: 64 random bits per process, then a counter
-- (unique, unguessable enough for resource segments and operation ids).
function M.uuid()
  if not uuid_prefix then
    local b = { require("batchai._httpd").random_bytes(8):byte(1, 8) }
    b[7] = (b[7] & 0x0f) | 0x40
    uuid_prefix = ("%02x%02x%02x%02x-%02x%02x-%02x%02x"):format(table.unpack(b))
    uuid_counter = 0
  end
  uuid_counter = uuid_counter + 1
  return ("%s-%04x-%012x"):format(uuid_prefix, 0x8000 | ((uuid_counter >> 48) & 0x3fff), uuid_counter & 0xffffffffffff)
end

--- Writes a file atomically (temporary file + rename) without fsync: for
-- files whose loss in a machine crash does not matter (plans, results, pids).
-- The mode comes from the umask.  Returns true | nil, err.
function M.write_file(path, data)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(data)
  f:close()
  if not ok then
    os.remove(tmp)
    return nil, werr
  end
  return os.rename(tmp, path)
end

--- Percent-encoding of a query value or path segment.
function M.url_escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

return M

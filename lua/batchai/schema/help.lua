-- `bai help TYPE` and `bai help types`: the schema's types described for people.
local kinds = require "batchai.schema.kinds"

local M = {}

local groups = {
  { "job", "Job model (build with bai.NAME{...}):" },
  { "toolkit", "Toolkit settings (one per job):" },
  { "storage", "Storage to mount:" },
  { "resource", "Resources, request and response bodies (schema.check / schema.decode):" },
}

-- Words of `text` in lines of at most `width` columns, each starting with `indent`.
local function wrap(text, indent, width)
  local lines, line = {}, nil
  for word in text:gmatch("%S+") do
    if line and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = nil
    end
    line = line and (line .. " " .. word) or (indent .. word)
  end
  if line then lines[#lines + 1] = line end
  return table.concat(lines, "\n")
end

local function kind_text(f)
  local element = f.kind:match("^(.-)%[%]$")
  if element then return "array of " .. element end
  local kind = kinds[f.kind]
  if kind then return kind.doc end
  return f.kind
end

local function type_text(ct)
  local def = ct.def
  local out = { ct.name .. ": " .. def.summary }
  if def.spec then out[#out + 1] = "(spec: " .. def.spec .. ")" end
  if def.doc then
    out[#out + 1] = ""
    out[#out + 1] = wrap(def.doc, "", 78)
  end
  out[#out + 1] = ""
  out[#out + 1] = "Fields, in wire order:"
  for _, f in ipairs(ct.fields) do
    local attrs = { kind_text(f) }
    if f.required then attrs[#attrs + 1] = "required" end
    if f.read_only then attrs[#attrs + 1] = "read-only" end
    if f.secret then attrs[#attrs + 1] = "secret" end
    if f.values then attrs[#attrs + 1] = kinds.alternatives(f.values) end
    if f.default then attrs[#attrs + 1] = 'default "' .. f.default .. '"' end
    local line = ("  %-31s %s"):format(f.name, table.concat(attrs, "; "))
    if #line > 78 then  -- long enum lists continue under the attributes column
      line = wrap(table.concat(attrs, "; "), (" "):rep(34), 78)
      line = ("  %-31s %s"):format(f.name, line:sub(35))
    end
    out[#out + 1] = line
    if f.doc then out[#out + 1] = wrap(f.doc, "      ", 78) end
  end
  if ct.rules then
    out[#out + 1] = ""
    out[#out + 1] = "Rules:"
    for _, rule in ipairs(ct.rules) do out[#out + 1] = wrap("- " .. rule.doc, "  ", 78):gsub("\n  ", "\n    ") end
  end
  out[#out + 1] = ""
  if def.constructor then
    out[#out + 1] = ("Build: bai.%s{ ... }"):format(ct.name)
    out[#out + 1] = "  (nested tables become their types); v:with{ ... } for a changed copy."
  else
    out[#out + 1] = ('Read: bai.schema.decode(json, "%s")'):format(ct.name)
    out[#out + 1] = ('Check: bai.schema.check(table, "%s")'):format(ct.name)
  end
  return table.concat(out, "\n") .. "\n"
end

local errors_text = [[
Values are immutable: v:with{ field = x } gives a changed copy (nested settings
tables are merged; cjson.null removes a field).  Bad input raises
  bad argument #1 to 'JobProperties' (JobProperties.nodeCount: integer >= 1 expected, got 0)
with every error found, as "TYPE.FIELD.PATH: message", joined by "; ".
bai.validate(table, "TYPE") returns true, or false and the list of errors.]]

local function types_text(schema)
  local out = { "Batch AI types (bai help NAME for the fields of one):" }
  for _, g in ipairs(groups) do
    out[#out + 1] = ""
    out[#out + 1] = g[2]
    for _, name in ipairs(schema.type_names()) do
      local ct = schema.type_info(name)
      if ct.group == g[1] then out[#out + 1] = ("  %-35s %s"):format(name, ct.def.summary) end
    end
  end
  out[#out + 1] = ""
  out[#out + 1] = errors_text
  return table.concat(out, "\n") .. "\n"
end

--- The help text of a topic ("types" or a type name, any case), or nil.
function M.text(topic, schema)
  if type(topic) ~= "string" then return nil end
  if topic == "types" then return types_text(schema) end
  local ct = schema.type_info(topic)
  if not ct then
    local lower = topic:lower()
    for _, name in ipairs(schema.type_names()) do
      if name:lower() == lower then ct = schema.type_info(name) end
    end
  end
  return ct and type_text(ct) or nil
end

return M

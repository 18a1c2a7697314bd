-- The schema fuzz target's driver (run by src/fuzz/schema_fuzz.c): returns
-- fuzz_one(bytes), which feeds the bytes to decode/check/validate as JSON text
-- and, read as a recipe, builds arbitrary Lua tables for the constructors,
-- :with, validate, check, decode, encode and redact.  It raises (and the
-- harness aborts) only when the schema breaks one of its promises: a function
-- that must not raise raised, a constructor raised something other than its
-- "bad argument" message, or a value does not survive its own JSON.
local cjson = require "cjson"
local schema = require "batchai.schema"

local decoder = cjson.new()
decoder.decode_invalid_numbers(false)
decoder.decode_max_depth(64)

local type_names = schema.type_names()
local constructors = {}
for _, name in ipairs(type_names) do
  if schema.type_info(name).def.constructor then constructors[#constructors + 1] = name end
end

-- Words the recipes draw from: every field name, enum value and type name, and
-- a few strings that exercise the scalar kinds.
local words = { "", "x", "P7D", "PT1H30M", "7.00:00:00", "PT0S", "P", "1:2", "0777", "rwx", "../up", "/abs",
  "ok_id", "bad id", "1BAD", "Gloo", "brainscript", "LOW", "mpi", "\0", "\"\\\n", "\xff\xfe", "é", "s3cr3t" }
for _, name in ipairs(type_names) do
  words[#words + 1] = name
  for _, f in ipairs(schema.fields(name)) do
    words[#words + 1] = f.name
    for _, v in ipairs(f.values or {}) do words[#words + 1] = v end
  end
end

local base = schema.JobProperties {
  cluster = { id = "local" }, nodeCount = 2, stdOutErrPathPrefix = "/logs",
  tensorFlowSettings = { pythonScriptFilePath = "t.py", workerCommandLineArgs = "w" },
  outputDirectories = { { id = "OUT", pathPrefix = "/out" } },
  secrets = { { name = "S", value = "s3cr3t" } },
}

local function fail(what, detail)
  error("schema_fuzz: " .. what .. ": " .. tostring(detail), 0)
end

-- Arbitrary Lua values from a byte string read as a recipe.
local function recipe(bytes)
  local pos = 0
  local function byte()
    pos = pos + 1
    return bytes:byte(pos) or 0
  end
  local function word() return words[byte() % #words + 1] end
  local parents = {}
  local function value(depth)
    local op = byte() % 14
    if depth > 6 and op >= 8 then op = op % 8 end
    if op == 0 then return byte() - 64 end
    if op == 1 then return (byte() - 128) / 4 end
    if op == 2 then
      local n = byte() % 12
      return bytes:sub(pos + 1, pos + n)
    end
    if op == 3 or op == 4 then return word() end
    if op == 5 then return byte() % 2 == 0 end
    if op == 6 then return cjson.null end
    if op == 7 then
      local specials = { 0 / 0, math.huge, -math.huge, math.maxinteger, math.mininteger, 2 ^ 31, 2 ^ 53, 1.0, -0.0 }
      return specials[byte() % #specials + 1]
    end
    if op == 8 or op == 9 or op == 10 then
      local t = {}
      parents[#parents + 1] = t
      for _ = 1, byte() % 7 do
        local k = byte() % 8 == 0 and (byte() % 4) or word()
        t[k] = value(depth + 1)
      end
      parents[#parents] = nil
      return t
    end
    if op == 11 then
      local t = {}
      parents[#parents + 1] = t
      for i = 1, byte() % 4 do t[i] = value(depth + 1) end
      parents[#parents] = nil
      return t
    end
    if op == 12 then  -- a typed value
      local pick = byte() % 4
      if pick == 0 then return base end
      if pick == 1 then return base.outputDirectories end
      if pick == 2 then return base.cluster end
      return base.tensorFlowSettings
    end
    if #parents > 0 then return parents[byte() % #parents + 1] end  -- a cycle
    return print
  end
  return value(0)
end

local function expect_error_list(errs, what)
  if getmetatable(errs) ~= schema.ErrorList or #errs == 0 then fail(what, "error list expected") end
  for _, e in ipairs(errs) do
    if type(e.path) ~= "string" or type(e.field) ~= "string" or type(e.message) ~= "string" then
      fail(what, "malformed error")
    end
  end
  tostring(errs)
end

-- A value read back from its own JSON must be equal to it.
local function round_trip(v, name, strict)
  local text = v:to_json()
  local back, errs
  if name == "JobProperties" then
    local doc = decoder.decode(text)
    if strict then
      back, errs = schema.check(doc, "JobCreateParameters")
    else
      back, errs = schema.decode(doc, "JobCreateParameters")
    end
    if not back then fail("JobProperties JSON does not read back", errs) end
    back = back.properties
    local read_only = {}
    for _, f in ipairs(schema.fields(name)) do
      if f.read_only then read_only[f.name] = cjson.null end
    end
    if not strict then v = v:with(read_only) end
  elseif strict then
    back, errs = schema.check(decoder.decode(text), name)
  else
    back, errs = schema.decode(text, name)
  end
  if not back then fail(name .. " JSON does not read back", tostring(errs) .. " in " .. text) end
  if back ~= v then fail(name .. " JSON reads back different", text .. " vs " .. back:to_json()) end
  tostring(v)
end

local function must(ok, what, err)
  if not ok then fail(what .. " raised", err) end
end

local function constructor_error(ok, err, fname)
  if not ok and not (type(err) == "string" and err:find("bad argument #%d to '" .. fname .. "' %(")) then
    fail(fname .. " raised something else", err)
  end
end

return function(bytes)
  local selector = bytes:byte(1) or 0
  local name = type_names[selector % #type_names + 1]

  -- The bytes as JSON text.
  local ok, v, errs = pcall(schema.decode, bytes, name)
  must(ok, "decode", v)
  if v then round_trip(v, name, false) else expect_error_list(errs, "decode") end
  local parsed_ok, doc = pcall(decoder.decode, bytes)
  if parsed_ok and type(doc) == "table" then
    ok, v, errs = pcall(schema.check, doc, name)
    must(ok, "check", v)
    if v then round_trip(v, name, true) else expect_error_list(errs, "check") end
    must(pcall(schema.redact, doc), "redact")
  end

  -- The bytes as a recipe for Lua values.
  local t = recipe(bytes:sub(2))
  local ctor = constructors[selector % #constructors + 1]
  local built
  ok, built = pcall(schema[ctor], t)
  constructor_error(ok, built, ctor)
  local valid_ok, valid, verrs = pcall(schema.validate, t, ctor)
  must(valid_ok, "validate", valid)
  if valid ~= ok then fail("validate and the constructor disagree", ctor) end
  if not valid then expect_error_list(verrs, "validate") end
  if ok then round_trip(built, ctor, true) end
  ok, v = pcall(schema.check, t, name)
  must(ok, "check", v)
  ok, v = pcall(schema.decode, t, name)
  must(ok, "decode of a table", v)
  if v and type(t) == "table" then round_trip(v, name, false) end

  ok, v = pcall(base.with, base, t)
  constructor_error(ok, v, "with")
  if ok then round_trip(v, "JobProperties", true) end

  for _, f in ipairs({ "tool_type", "process_count", "tensorflow_tasks", "max_wall_clock_seconds", "toolkit" }) do
    must(pcall(schema[f], t), f)
  end
  if type(t) == "table" then
    ok, v = pcall(schema.encode, t, name)
    if not ok and not tostring(v):find("JSON") then fail("encode raised", v) end
    ok, v = pcall(schema.redact, t)
    if not ok and not tostring(v):find("nested deeper") then fail("redact raised", v) end
  end
end

-- The typed Batch AI job model: immutable values built from plain tables,
-- validated with field paths, printed, compared, encoded to and decoded from
-- the wire JSON.  One description of the types (batchai.schema.types) drives it all.
--
-- Two modes:
--   create (constructors, :with, validate, check, load_job): every rule; unknown
--     and read-only fields are errors;
--   read (decode): types only; unknown fields are dropped, enum values the
--     service may add are kept, read-only fields are welcome.  :with on a value
--     read this way stays in read mode (but still refuses unknown field names).
-- An error is { path = "JobProperties.nodeCount", field = "nodeCount",
-- message = "integer >= 1 expected, got 0", code = "InvalidValue" } printing as
-- "path: message"; a list of them prints joined by "; ".  `path` starts with
-- the checked type's name; `field` is the path inside it ("properties.nodeCount"
-- for a JobCreateParameters body: what an HTTP 400's `target` names), "" for
-- the value itself.  Array elements count from 1: "outputDirectories[2].id".
-- Codes: Required, UnknownField, ReadOnly, InvalidType, InvalidValue, Conflict,
-- InvalidJson, NotFound.  Constructors raise "bad argument #1 to 'JobProperties'
-- (<the list>)" at the caller's line.
local cjson = require "cjson"
local kinds = require "batchai.schema.kinds"
local rules = require "batchai.schema.rules"
local json = require "batchai.schema.json"
local type_defs = require "batchai.schema.types"
local util = require "batchai.util"
local fast = require "batchai._schema"

local M = {}

local type, next, getmetatable, setmetatable, rawget, rawset = type, next, getmetatable, setmetatable, rawget, rawset
local concat, format, math_type = table.concat, string.format, math.type
local describe, quote = kinds.describe, json.quote

--- JSON null; in :with{} it removes a field, on input it counts as absent.
local null = cjson.null
M.null = null

local DATA = setmetatable({}, { __name = "batchai.schema.DATA" })   -- value -> its fields table
local JSON = setmetatable({}, { __name = "batchai.schema.JSON" })   -- value -> its cached JSON text
local MAX_DEPTH = 32
fast.setup(DATA, JSON, json.encode)
local clone, fast_encode = fast.clone, fast.encode

-- ---- compiled types --------------------------------------------------------------

local types = {}        -- name -> compiled type
local type_order = {}   -- names in definition order
local methods, list_methods = {}, {}
local object_mt_fields, list_mt_fields = {}, {}   -- metamethods shared by every type

local function data_of(v) return v[DATA] end
M.data_of = data_of

for _, def in ipairs(type_defs) do
  local ct = { name = def.name, def = def, fields = {}, by_name = {}, field_names = {},
    aliases = def.aliases, group = def.group }
  types[def.name] = ct
  type_order[#type_order + 1] = def.name
end

for _, name in ipairs(type_order) do
  local ct = types[name]
  local def = ct.def
  local cacheable = true
  for i, fd in ipairs(def.fields) do
    local f = { name = fd[1], kind = fd[2], required = fd.required, read_only = fd.read_only,
      secret = fd.secret, nonempty = fd.nonempty or (fd.required and not fd.allow_empty),
      default = fd.default, values = fd.values, doc = fd.doc, key = quote(fd[1]) .. ":", index = i }
    local element = f.kind:match("^(.-)%[%]$")
    if element then
      f.array, f.type = true, assert(types[element], element)
    elseif types[f.kind] then
      f.type = types[f.kind]
    else
      local kind = assert(kinds[f.kind], f.kind)
      f.check, f.json = kind.check, kind.json
    end
    if f.values then
      f.canonical = {}
      for _, v in ipairs(f.values) do f.canonical[v], f.canonical[v:lower()] = v, v end
      for alias, v in pairs(fd.aliases or {}) do f.canonical[alias] = v end
    end
    if f.read_only then cacheable = false end
    if f.secret then ct.holds_secret = true end
    ct.fields[i] = f
    ct.by_name[f.name] = f
    ct.field_names[i] = f.name
  end
  ct.nfields = #ct.fields
  ct.cacheable = cacheable
  -- What batchai._schema.encode reads: name, "\"name\":", code triples in spec order.
  local enc = {}
  for _, f in ipairs(ct.fields) do
    local code = f.array and 5 or f.type and 4 or f.json == "string" and 1 or f.json == "integer" and 2 or 3
    if f.read_only then code = code + 8 end
    enc[#enc + 1], enc[#enc + 2], enc[#enc + 3] = f.name, f.key, code
  end
  ct.enc = enc
  if def.rules then
    ct.rules, ct.rules_by_field = {}, {}
    for i, rule_name in ipairs(def.rules) do
      local rule = assert(rules[rule_name], rule_name)
      ct.rules[i] = rule
      for _, name in ipairs(rule.needs) do
        local list = ct.rules_by_field[name] or {}
        list[#list + 1] = rule
        ct.rules_by_field[name] = list
      end
    end
  end
  -- Two metatables per type: values checked in create mode and values read
  -- from the wire (which may lack secrets or carry unknown enum values).
  local function object_mt(strict)
    local mt = { __schema = ct, __strict = strict, __name = "batchai." .. name, __enc = ct.enc,
      __cache = ct.cacheable }
    for k, v in pairs(object_mt_fields) do mt[k] = v end
    return mt
  end
  local function list_mt(strict)
    local mt = { __schema = ct, __strict = strict, __list = true, __name = "batchai." .. name .. "[]",
      __cache = ct.cacheable }
    for k, v in pairs(list_mt_fields) do mt[k] = v end
    return mt
  end
  ct.object_mt, ct.list_mt = object_mt, list_mt   -- filled once the metamethods exist (below)
end

-- Cacheable means: no read-only fields anywhere below, so one JSON text serves.
local function settle_cacheable(ct, seen)
  if seen[ct] then return ct.cacheable end
  seen[ct] = true
  for _, f in ipairs(ct.fields) do
    if f.type and not settle_cacheable(f.type, seen) then ct.cacheable = false end
  end
  return ct.cacheable
end
for _, name in ipairs(type_order) do settle_cacheable(types[name], {}) end

-- ---- errors ------------------------------------------------------------------------

local Error = { __name = "batchai.schema.Error" }
Error.__index = Error
Error.__tostring = function(e) return e.path .. ": " .. e.message end

local ErrorList = { __name = "batchai.schema.Errors" }
ErrorList.__index = ErrorList
ErrorList.__tostring = function(list)
  local parts = {}
  for i, e in ipairs(list) do parts[i] = tostring(e) end
  return concat(parts, "; ")
end
M.Error, M.ErrorList = Error, ErrorList

-- A fresh error collector for one operation on a value of type `root`.
local function new_state(root)
  return { root = root, root_len = #root, count = 0, errs = nil }
end

-- Records one error; `path` starts with the root type name.
local function report(st, path, message, code)
  local e = setmetatable({ path = path, field = path:sub(st.root_len + 2), message = message,
    code = code or "InvalidValue" }, Error)
  local errs = st.errs
  if not errs then
    errs = setmetatable({}, ErrorList)
    st.errs = errs
  end
  errs[#errs + 1] = e
  st.count = st.count + 1
end

--- An error list with one error (for callers outside a walk).
function M.error(path, message, code, field)
  return setmetatable({ setmetatable({ path = path, field = field or "", message = message,
    code = code or "InvalidValue" }, Error) }, ErrorList)
end

local function key_path(path, k)
  if type(k) == "string" and k:find("^[A-Za-z_][A-Za-z0-9_]*$") then return path .. "." .. k end
  return path .. "[" .. describe(k) .. "]"
end

-- ---- coercion and validation -------------------------------------------------------

local coerce, coerce_list, wire_of

local function is_value(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__schema ~= nil
end
M.is_value = is_value

local function coerce_field(f, x, path, strict, st, depth)
  local ft = f.type
  if ft then
    if f.array then return coerce_list(ft, x, path .. "." .. f.name, strict, st, depth + 1) end
    return coerce(ft, x, path .. "." .. f.name, strict, st, depth + 1)
  end
  local v, msg = f.check(x, strict, f)
  if v == nil then report(st, path .. "." .. f.name, msg, "InvalidValue") end
  return v
end

-- Runs the type's cross-field rules, skipping those that need a field that
-- failed (`bad`) or, in :with, that need no field that changed (`changed`).
-- `changed` is nil (everything is new), one field name, or a set of names.
local function run_rules(ct, d, bad, changed, path, st)
  local one = type(changed) ~= "table" and changed
  local rules_list = ct.rules
  if one then
    rules_list = ct.rules_by_field[one]
    if rules_list == nil then return end
    if bad == nil then
      for r = 1, #rules_list do rules_list[r].check(d, path, st, report, data_of) end
      return
    end
  end
  for r = 1, #rules_list do
    local rule = rules_list[r]
    local needs, run = rule.needs, changed == nil
    for i = 1, #needs do
      local name = needs[i]
      if bad and bad[name] then
        run = false
        break
      end
      if not run and (name == one or (not one and changed[name])) then run = true end
    end
    if run then rule.check(d, path, st, report, data_of) end
  end
end

-- What coerce and coerce_list do first: `input` must be a table and, when it
-- is a typed value, one of type ct (an array of them when `list`).  Returns
-- the input when it serves as it is, nil after reporting an error, or false
-- and the plain table to check (a value read from the wire is checked again,
-- without its read-only fields).
local function typed_or_plain(ct, input, path, strict, st, depth, list)
  if type(input) ~= "table" then
    -- a string in place of credentials or a secret variable may well be the secret itself
    report(st, path, (list and "array" or "table") .. " expected, got " .. describe(input, ct.holds_secret),
      "InvalidType")
    return nil
  end
  local mt = getmetatable(input)
  if mt ~= nil and type(mt) == "table" and mt.__schema then
    if (mt.__list or false) ~= list or mt.__schema ~= ct then
      report(st, path, ct.name .. (list and "[]" or "") .. " expected, got " .. describe(input)
        .. (mt.__list and "[]" or ""), "InvalidType")
      return nil
    end
    if mt.__strict or not strict then return input end
    if list then
      input = input[DATA]
    else
      input = wire_of(input, true)
    end
  end
  if depth > MAX_DEPTH then
    report(st, path, "tables nested too deeply", "InvalidValue")
    return nil
  end
  return false, input
end

-- A new value of type ct holding the checked fields (or items) d.
local function new_value(ct, d, mt)
  if ct.cacheable then return setmetatable({ [DATA] = d, [JSON] = false }, mt) end
  return setmetatable({ [DATA] = d }, mt)
end

-- Reports the unknown field name k of a ct at path, suggesting the nearest field.
local function report_unknown(st, ct, path, k)
  report(st, key_path(path, k), "unknown field"
    .. (type(k) == "string" and util.did_you_mean(k, ct.field_names) or ""), "UnknownField")
end

-- A value of type ct from `input` (a plain table or a value), or nil after
-- reporting why not.  Never raises.
function coerce(ct, input, path, strict, st, depth)
  local usable
  usable, input = typed_or_plain(ct, input, path, strict, st, depth, false)
  if usable ~= false then return usable end
  if rawget(input, 1) ~= nil then
    report(st, path, ct.name .. " table expected, got an array", "InvalidType")
    return nil
  end
  local by_name, fields = ct.by_name, ct.fields
  local d, bad = {}, nil
  local unknown
  for k in next, input do
    if by_name[k] == nil then
      unknown = unknown or {}
      unknown[#unknown + 1] = k
    end
  end
  local aliases, alias_of = not strict and ct.aliases, nil
  if unknown and aliases then
    for _, k in ipairs(unknown) do
      local target = aliases[k]
      if target and rawget(input, target) == nil then
        alias_of = alias_of or {}
        alias_of[target] = k
      end
    end
  end
  for i = 1, ct.nfields do
    local f = fields[i]
    local name = f.name
    local x = rawget(input, name)
    if x == nil and alias_of and alias_of[name] then x = rawget(input, alias_of[name]) end
    if x ~= nil and x ~= null then
      if strict and f.read_only then
        report(st, path .. "." .. name, "read-only field (set by the service)", "ReadOnly")
      else
        local before = st.count
        d[name] = coerce_field(f, x, path, strict, st, depth)
        if st.count ~= before then
          bad = bad or {}
          bad[name] = true
        end
      end
    elseif strict and f.required then
      report(st, path .. "." .. name, "required field missing", "Required")
    end
  end
  if unknown and strict then
    table.sort(unknown, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(unknown) do report_unknown(st, ct, path, k) end
  end
  if strict and ct.rules then run_rules(ct, d, bad, nil, path, st) end
  return new_value(ct, d, strict and ct.mt or ct.mt_read)
end

-- An array value of element type ct, or nil after reporting why not.
function coerce_list(ct, input, path, strict, st, depth)
  local usable
  usable, input = typed_or_plain(ct, input, path, strict, st, depth, true)
  if usable ~= false then return usable end
  local n, max, odd = 0, 0, nil
  for k in next, input do
    if math_type(k) ~= "integer" or k < 1 then
      if odd == nil or tostring(k) < tostring(odd) then odd = k end   -- the first, for a stable message
    else
      n = n + 1
      if k > max then max = k end
    end
  end
  if odd ~= nil then
    report(st, path, "array expected, got a table with key " .. describe(odd), "InvalidType")
    return nil
  end
  if max ~= n then
    report(st, path, "array without holes expected", "InvalidType")
    return nil
  end
  local items = {}
  for i = 1, n do items[i] = coerce(ct, input[i], path .. "[" .. i .. "]", strict, st, depth + 1) end
  return new_value(ct, items, strict and ct.list_mt_strict or ct.list_mt_read)
end

-- A copy of v with the fields of `changes` replaced; nested settings tables
-- given as plain tables are merged into the current ones.  Reports errors.
local function with_value(v, changes, path, st, depth)
  local mt = getmetatable(v)
  local ct, strict = mt.__schema, mt.__strict
  local old = v[DATA]
  local cmt = getmetatable(changes)
  if cmt ~= nil and type(cmt) == "table" and cmt.__schema then
    if cmt.__list or cmt.__schema ~= ct then
      report(st, path, ct.name .. " table expected, got " .. describe(changes), "InvalidType")
      return v
    end
    changes = changes[DATA]
  end
  if depth > MAX_DEPTH then
    report(st, path, "tables nested too deeply", "InvalidValue")
    return v
  end
  local d = clone(old)
  local bad
  local by_name = ct.by_name
  -- Keys in spec order (unknown ones last), so that errors come in a stable
  -- order; one key (the common case in sweeps) needs no sorting.
  local first = next(changes)
  local keys, nkeys = nil, 0
  if first ~= nil then
    nkeys = 1
    if next(changes, first) ~= nil then
      keys = {}
      for k in next, changes do keys[#keys + 1] = k end
      nkeys = #keys
      table.sort(keys, function(a, b)
        local fa, fb = by_name[a], by_name[b]
        if fa and fb then return fa.index < fb.index end
        if fa or fb then return fa ~= nil end
        return tostring(a) < tostring(b)
      end)
    end
  end
  -- The changed fields, for the rules: the one key, or a set.
  local changed = first
  if keys then changed = ct.rules and {} or nil end
  for i = 1, nkeys do
    local k = keys and keys[i] or first
    local x = changes[k]
    local f = by_name[k]
    if f == nil then
      report_unknown(st, ct, path, k)
    elseif strict and f.read_only then
      report(st, path .. "." .. k, "read-only field (set by the service)", "ReadOnly")
    else
      if keys and changed then changed[k] = true end
      if x == null then
        d[k] = nil
        if strict and f.required then report(st, path .. "." .. k, "required field missing", "Required") end
      else
        local before = st.count
        local current = old[k]
        if current ~= nil and f.type and not f.array and type(x) == "table" and getmetatable(x) == nil then
          d[k] = with_value(current, x, path .. "." .. k, st, depth + 1)
        else
          d[k] = coerce_field(f, x, path, strict, st, depth)
        end
        if st.count ~= before then
          bad = bad or {}
          bad[k] = true
        end
      end
    end
  end
  if strict and changed ~= nil and ct.rules then run_rules(ct, d, bad, changed, path, st) end
  return new_value(ct, d, mt)
end

-- "bad argument #1 to 'NAME' (errors)"
local function argument_error(fname, errs)
  return "bad argument #1 to '" .. fname .. "' (" .. tostring(errs) .. ")"
end

-- ---- plain copies ------------------------------------------------------------------

local function deep_copy(x, depth)
  if type(x) ~= "table" then return x end
  depth = depth or 0
  if depth > 100 then error("table nested deeper than 100 levels (a cycle?)", 0) end
  local out = {}
  for k, v in next, x do out[k] = deep_copy(v, depth + 1) end
  return out
end

-- The plain wire table of a value; drop_read_only leaves out read-only fields.
function wire_of(v, drop_read_only)
  local mt = getmetatable(v)
  local d = v[DATA]
  local out = {}
  if mt.__list then
    for i = 1, #d do out[i] = wire_of(d[i], drop_read_only) end
    return out
  end
  local by_name = mt.__schema.by_name
  for k, x in next, d do
    local f = by_name[k]
    if not (drop_read_only and f.read_only) then
      if f.type then
        out[k] = wire_of(x, drop_read_only)
      elseif type(x) == "table" then
        out[k] = deep_copy(x)
      else
        out[k] = x
      end
    end
  end
  return out
end

-- ---- JSON --------------------------------------------------------------------------

-- JSON of a plain table of type ct: known fields in spec order (arrays stay
-- arrays, nulls are left out), then unknown fields, sorted.
local encode_plain_object
local function encode_plain_field(f, x, depth)
  if f.type and type(x) == "table" then
    if f.array then
      if next(x) ~= nil and x[1] == nil then return json.encode(x) end   -- not an array after all
      local parts = {}
      for i = 1, #x do
        local item = x[i]
        parts[i] = type(item) == "table" and encode_plain_object(f.type, item, depth + 1) or json.encode(item)
      end
      return "[" .. concat(parts, ",") .. "]"
    end
    return encode_plain_object(f.type, x, depth + 1)
  end
  if f.json == "integer" and math_type(x) == "float" and math.tointeger(x) then
    return format("%d", math.tointeger(x))
  end
  return json.encode(x)
end

function encode_plain_object(ct, t, depth)
  if is_value(t) then return fast_encode(t) end
  if depth > 100 then error("JSON nested deeper than 100 levels (a cycle?)", 0) end
  local parts, n = {}, 0
  for _, f in ipairs(ct.fields) do
    local x = t[f.name]
    if x ~= nil and x ~= null then
      n = n + 1
      parts[n] = f.key .. encode_plain_field(f, x, depth)
    end
  end
  local extra = {}
  for k, x in next, t do
    if not ct.by_name[k] and x ~= null then extra[#extra + 1] = k end
  end
  if #extra > 0 then
    table.sort(extra, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(extra) do
      n = n + 1
      parts[n] = quote(tostring(k)) .. ":" .. json.encode(t[k])
    end
  end
  return "{" .. concat(parts, ",", 1, n) .. "}"
end

-- ---- printing ----------------------------------------------------------------------

local pretty = require "batchai.pretty"

local render_value
local function render_scalar(x, f, indent)
  if f and f.secret then return '"***"' end
  local t = type(x)
  if t == "string" then return pretty.quote(x) end
  if t == "table" then
    if is_value(x) then return render_value(x, indent) end
    return pretty.format(x)
  end
  return tostring(x)
end

-- Fields in spec order, on one line when it fits in 80 columns.
function render_value(v, indent)
  local mt = getmetatable(v)
  local d = v[DATA]
  local inner = indent .. "  "
  local items = {}
  if mt.__list then
    for i = 1, #d do items[i] = render_value(d[i], inner) end
  else
    for _, f in ipairs(mt.__schema.fields) do
      local x = d[f.name]
      if x ~= nil then items[#items + 1] = f.name .. " = " .. render_scalar(x, f, inner) end
    end
  end
  if #items == 0 then return "{}" end
  local one = "{ " .. concat(items, ", ") .. " }"
  if #one + #indent <= 80 and not one:find("\n", 1, true) then return one end
  return "{\n" .. inner .. concat(items, ",\n" .. inner) .. ",\n" .. indent .. "}"
end

-- ---- metamethods and methods ---------------------------------------------------------

local function plain_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  local n = 0
  for k, x in next, a do
    if not plain_equal(x, b[k]) then return false end
    n = n + 1
  end
  for _ in next, b do n = n - 1 end
  return n == 0
end

-- Fields, then methods.  Plain tables inside a value (tags, free-form
-- objects) are handed out as copies, so the value stays immutable.
function object_mt_fields.__index(v, k)
  local x = v[DATA][k]
  if x ~= nil then
    if type(x) == "table" and getmetatable(x) == nil then return deep_copy(x) end
    return x
  end
  return methods[k]
end

function object_mt_fields.__newindex(v, k)
  local ct = getmetatable(v).__schema
  error(format("cannot assign %s: %s values are immutable (use :with{...} for a changed copy)",
    key_path(ct.name, k), ct.name), 2)
end

function object_mt_fields.__eq(a, b)
  local ma, mb = getmetatable(a), getmetatable(b)
  if type(ma) ~= "table" or type(mb) ~= "table" or ma.__schema ~= mb.__schema or ma.__list ~= mb.__list then
    return false
  end
  local da, db = a[DATA], b[DATA]
  local n = 0
  for k, x in next, da do
    local y = db[k]
    if x ~= y and not (getmetatable(x) == nil and plain_equal(x, y)) then return false end
    n = n + 1
  end
  for _ in next, db do n = n - 1 end
  return n == 0
end

function object_mt_fields.__tostring(v)
  return getmetatable(v).__schema.name .. " " .. render_value(v, "")
end

-- Present fields in spec order.
function object_mt_fields.__pairs(v)
  local fields, d, i = getmetatable(v).__schema.fields, v[DATA], 0
  return function()
    while true do
      i = i + 1
      local f = fields[i]
      if f == nil then return nil end
      local x = d[f.name]
      if x ~= nil then return f.name, x end
    end
  end, v, nil
end

-- Field and method names, for the REPL's completion.
function object_mt_fields.__complete(v)
  local names = {}
  for i, name in ipairs(getmetatable(v).__schema.field_names) do names[i] = name end
  for name in pairs(methods) do names[#names + 1] = name end
  return names
end

function list_mt_fields.__index(v, k)
  local x = v[DATA][k]
  if x ~= nil then return x end
  return list_methods[k]
end

function list_mt_fields.__newindex(v, k)
  error(format("cannot assign [%s]: %s[] values are immutable (use :with{...} on the value holding it)",
    describe(k), getmetatable(v).__schema.name), 2)
end

list_mt_fields.__eq = object_mt_fields.__eq
function list_mt_fields.__len(v) return #v[DATA] end
function list_mt_fields.__pairs(v) return next, v[DATA], nil end
function list_mt_fields.__tostring(v)
  return getmetatable(v).__schema.name .. "[] " .. render_value(v, "")
end
function list_mt_fields.__complete()
  local names = {}
  for name in pairs(list_methods) do names[#names + 1] = name end
  return names
end

for _, name in ipairs(type_order) do
  local ct = types[name]
  ct.mt, ct.mt_read = ct.object_mt(true), ct.object_mt(false)
  ct.list_mt_strict, ct.list_mt_read = ct.list_mt(true), ct.list_mt(false)
  ct.object_mt, ct.list_mt = nil, nil
end

local function check_value(v, fname)
  if not is_value(v) then
    error(format("bad argument #1 to '%s' (typed value expected, got %s)", fname, describe(v)), 3)
  end
  return getmetatable(v)
end

--- v:with{ field = value, ... } -> a copy with those fields replaced.  Plain
-- tables given for nested settings are merged into the current ones; a field
-- given as cjson.null (schema.null) is removed.  Raises like a constructor.
function methods.with(v, changes)
  local mt = check_value(v, "with")
  if type(changes) ~= "table" then
    error("bad argument #1 to 'with' (table expected, got " .. describe(changes) .. ")", 2)
  end
  local st = new_state(mt.__schema.name)
  local result = with_value(v, changes, mt.__schema.name, st, 0)
  if st.errs then error(argument_error("with", st.errs), 2) end
  return result
end

--- v:to_wire() -> the value as plain tables (all its fields), ready to encode.
function methods.to_wire(v)
  check_value(v, "to_wire")
  return wire_of(v, false)
end

--- v:to_json() -> the wire JSON.  A JobProperties gives the job create body
-- {"properties":{...}} (without read-only fields); other values their own object.
function methods.to_json(v)
  local mt = check_value(v, "to_json")
  if mt.__schema.name == "JobProperties" and not mt.__list then
    return fast_encode(v, true, '{"properties":', "}")
  end
  return fast_encode(v)
end

list_methods.to_wire = methods.to_wire
list_methods.to_json = methods.to_json

-- ---- public API ----------------------------------------------------------------------

local function get_type(name, fname, level)
  local ct = type(name) == "string" and types[name]
  if not ct then
    error(format("bad argument #2 to '%s' (type name expected, got %s%s)", fname, describe(name),
      type(name) == "string" and util.did_you_mean(name, type_order) or ""), level or 3)
  end
  return ct
end

-- `t` checked as a value of type ct (named `name`) with every create-mode
-- rule: the value, and the errors (nil when there are none).  Never raises.
local function create(ct, name, t)
  local st = new_state(name)
  local v = coerce(ct, t, name, true, st, 0)
  return v, st.errs
end

--- A constructor for the named type: function(t) -> value, raising
-- "bad argument #1 to 'NAME' (errors)" on bad input.
function M.constructor(name)
  local ct = get_type(name, "constructor")
  return function(t)
    local v, errs = create(ct, name, t)
    if errs then error(argument_error(name, errs), 2) end
    return v
  end
end

--- schema.new("TypeName", t) -> value; raises like the constructor.
function M.new(name, t)
  local v, errs = create(get_type(name, "new"), name, t)
  if errs then error(argument_error(name, errs), 2) end
  return v
end

--- schema.check(plain_table, "TypeName") -> value | nil, errors.  Create-mode
-- rules; numbers may be floats (as cjson decodes them) when integral.
function M.check(t, name)
  local v, errs = create(get_type(name, "check"), name, t)
  if errs then return nil, errs end
  return v
end

--- validate(value_or_table[, "TypeName"]) -> true | false, errors (every error).
function M.validate(t, name)
  if name == nil and is_value(t) then name = getmetatable(t).__schema.name end
  local _, errs = create(get_type(name, "validate"), name, t)
  if errs then return false, errs end
  return true
end

local decoder = cjson.new()
decoder.decode_invalid_numbers(false)
decoder.decode_max_depth(200)

--- schema.decode(json_text_or_table, "TypeName") -> value | nil, errors.
-- Read mode: unknown fields are dropped, unknown enum values kept.
function M.decode(input, name)
  local ct = get_type(name, "decode")
  if type(input) == "string" then
    local ok, t = pcall(decoder.decode, input)
    if not ok then return nil, M.error(name, "invalid JSON: " .. tostring(t), "InvalidJson") end
    input = t
  end
  local st = new_state(name)
  local v = coerce(ct, input, name, false, st, 0)
  if st.errs then return nil, st.errs end
  return v
end

--- schema.encode(value) -> its JSON (as value:to_json());
-- schema.encode(plain_table, "TypeName") -> JSON of a wire table of that type,
-- with the schema's arrays kept as arrays even when empty.  Raises on misuse.
function M.encode(v, name)
  if name == nil then
    check_value(v, "encode")
    return methods.to_json(v)
  end
  local ct = get_type(name, "encode")
  if type(v) ~= "table" then
    error("bad argument #1 to 'encode' (table expected, got " .. describe(v) .. ")", 2)
  end
  return encode_plain_object(ct, v, 0)
end

--- The type name of a value (nil for anything else); lists give "Name[]".
function M.type_of(v)
  if not is_value(v) then return nil end
  local mt = getmetatable(v)
  return mt.__schema.name .. (mt.__list and "[]" or "")
end

--- Type names, in the order of `bai help types`.
function M.type_names()
  local names = {}
  for i, name in ipairs(type_order) do names[i] = name end
  return names
end

--- The fields of a type: array of { name, kind, required, read_only, secret,
-- default, values, doc } in spec order; nil for an unknown type.
function M.fields(name)
  local ct = types[name]
  if not ct then return nil end
  local out = {}
  for i, f in ipairs(ct.fields) do
    out[i] = { name = f.name, kind = f.kind, required = f.required or false, read_only = f.read_only or false,
      secret = f.secret or false, default = f.default, values = f.values, doc = f.doc }
  end
  return out
end

--- The compiled type (read-only use: help, tooling).
function M.type_info(name) return types[name] end

-- ---- secrets ---------------------------------------------------------------------------

local function redact_object(ct, t, depth)
  if depth > MAX_DEPTH then return deep_copy(t) end
  local out = {}
  for k, x in next, t do
    local f = ct.by_name[k]
    if f and f.secret then
      -- left out
    elseif f and f.type and type(x) == "table" then
      if f.array then
        local items = {}
        for i, item in next, x do
          items[i] = type(item) == "table" and redact_object(f.type, item, depth + 1) or item
        end
        out[k] = items
      else
        out[k] = redact_object(f.type, x, depth + 1)
      end
    else
      out[k] = deep_copy(x)
    end
  end
  return out
end

--- schema.redact(wire[, "TypeName"]) -> a copy of a wire table without secret
-- values (secrets[].value, registry password, storage accountKey).  The type is
-- "Job" when the table has `properties`, else "JobProperties", unless given.
-- A typed value is first turned into its wire table.
function M.redact(t, name)
  if is_value(t) then
    name = name or getmetatable(t).__schema.name
    t = wire_of(t, false)
  end
  if type(t) ~= "table" then error("bad argument #1 to 'redact' (table expected, got " .. describe(t) .. ")", 2) end
  if name == nil then name = type(t.properties) == "table" and "Job" or "JobProperties" end
  return redact_object(get_type(name, "redact"), t, 0)
end

-- ---- derived facts, for the client and the executor ----------------------------------

-- The properties fields of a value or wire table (Job, JobCreateParameters or
-- JobProperties, typed or plain).
local function properties_of(p)
  if is_value(p) then
    local mt = getmetatable(p)
    local d = p[DATA]
    if mt.__schema.name ~= "JobProperties" then
      d = d.properties and d.properties[DATA] or {}
    end
    return d
  end
  if type(p) ~= "table" then return {} end
  if type(p.properties) == "table" and p.nodeCount == nil then return p.properties end
  return p
end

local function fields_of(x)
  if is_value(x) then return x[DATA] end
  return type(x) == "table" and x or {}
end

--- schema.toolkit(props) -> toolType, settings field name, settings (typed or
-- plain as given); nil when no settings table is present.
function M.toolkit(props)
  local d = properties_of(props)
  for _, t in ipairs(rules.toolkits) do
    local s = d[t[1]]
    if s ~= nil and s ~= null then return t[2], t[1], s end
  end
  return nil
end

--- schema.tool_type(props) -> the wire toolType: from the settings table present,
-- else from a toolType field ("mpi" reads as "custommpi"); nil when neither.
function M.tool_type(props)
  local tool = M.toolkit(props)
  if tool then return tool end
  local given = properties_of(props).toolType
  if type(given) ~= "string" then return nil end
  given = given:lower()
  if given == "mpi" then return "custommpi" end
  return given
end

--- schema.tensorflow_tasks(props) -> { distributed = bool, workers = n,
-- parameter_servers = n } for a TensorFlow job (workers default to nodeCount,
-- parameter servers to 1; a single-process run has 1 worker and 0 servers); nil otherwise.
function M.tensorflow_tasks(props)
  local d = properties_of(props)
  local tf = d.tensorFlowSettings
  if tf == nil or tf == null then return nil end
  local s = fields_of(tf)
  local nodes = kinds.as_integer(d.nodeCount) or 1
  if not rules.tensorflow_distributed(s) then
    return { distributed = false, workers = 1, parameter_servers = 0 }
  end
  return { distributed = true, workers = kinds.as_integer(s.workerCount) or nodes,
    parameter_servers = kinds.as_integer(s.parameterServerCount) or 1 }
end

--- schema.process_count(props) -> how many processes the toolkit starts:
-- processCount, defaulting to nodeCount (cntk, pytorch, caffe, chainer, horovod,
-- custommpi); TensorFlow: workers + parameter servers; caffe2 and custom: 1.
function M.process_count(props)
  local d = properties_of(props)
  local nodes = kinds.as_integer(d.nodeCount) or 1
  local tool, _, settings = M.toolkit(props)
  if tool == "tensorflow" then
    local tasks = M.tensorflow_tasks(props)
    return tasks.workers + tasks.parameter_servers
  end
  if tool == "caffe2" or tool == "custom" then return 1 end
  if tool == nil then return nodes end
  return kinds.as_integer(fields_of(settings).processCount) or nodes
end

--- Seconds in an ISO-8601 or TimeSpan duration string, or nil.
M.duration_seconds = kinds.duration_seconds

--- The job's wall-clock limit in seconds (constraints.maxWallClockTime, default 7 days).
function M.max_wall_clock_seconds(props)
  local c = properties_of(props).constraints
  local limit = c and c ~= null and fields_of(c).maxWallClockTime
  return (limit and kinds.duration_seconds(limit)) or 7 * 86400
end

--- schema.resource_name(name, "job") -> name | nil, message: 1 to 64 ASCII
-- letters, digits, '-' or '_' (workspace, experiment, job, cluster names).
M.resource_name = kinds.resource_name

-- ---- files and help --------------------------------------------------------------------

--- schema.load_job(path[, overrides[, defaults]]) -> JobProperties | nil, errors.
-- Reads a job file as `az batchai job create --config-file` did: JSON
-- {"$schema": ..., "properties": {...}}.  `overrides` (a table of properties
-- fields, e.g. { cluster = { id = "local" } }) are merged in before checking;
-- `defaults` (the same shape) fill in only what the file leaves out.
-- Each error names the file: "job.json: properties.nodeCount: ...".
function M.load_job(path, overrides, defaults)
  if type(path) ~= "string" then
    error("bad argument #1 to 'load_job' (file name expected, got " .. describe(path) .. ")", 2)
  end
  if overrides ~= nil and type(overrides) ~= "table" then
    error("bad argument #2 to 'load_job' (table expected, got " .. describe(overrides) .. ")", 2)
  end
  if defaults ~= nil and type(defaults) ~= "table" then
    error("bad argument #3 to 'load_job' (table expected, got " .. describe(defaults) .. ")", 2)
  end
  local function fail(message, code)
    local errs = M.error(path, message, code)
    errs[1].file = path
    return nil, errs
  end
  local text, open_err = util.read_file(path)
  if not text then return fail("cannot read the job file: " .. tostring(open_err):gsub("^[^:]*: ", ""), "NotFound") end
  local ok, doc = pcall(decoder.decode, text)
  if not ok then return fail("invalid JSON: " .. tostring(doc), "InvalidJson") end
  if type(doc) ~= "table" or rawget(doc, 1) ~= nil then
    return fail("JSON object {\"properties\": {...}} expected", "InvalidType")
  end
  local body = {}
  for k, v in next, doc do
    if k ~= "$schema" then body[k] = v end
  end
  if overrides or defaults then
    -- A copy of `into` with `from` merged over it (nested objects merged
    -- too); with skip_null, a null in `from` leaves the value of `into`.
    local function merge(into, from, skip_null)
      local out = {}
      for k, v in next, into do out[k] = v end
      for k, v in next, from do
        if type(v) == "table" and not is_value(v) and type(out[k]) == "table" and rawget(v, 1) == nil then
          out[k] = merge(out[k], v, skip_null)
        elseif not (skip_null and v == null) then
          out[k] = v
        end
      end
      return out
    end
    local props = type(body.properties) == "table" and body.properties or {}
    if defaults then props = merge(defaults, props, true) end
    if overrides then props = merge(props, overrides) end
    body.properties = props
  end
  local v, errs = create(types.JobCreateParameters, "JobCreateParameters", body)
  if errs then
    for _, e in ipairs(errs) do
      e.file = path
      e.path = e.field == "" and path or (path .. ": " .. e.field)
    end
    return nil, errs
  end
  return v.properties
end

-- The job model's constructors are fields of this module too (schema.JobProperties{...}),
-- as they are of `bai` (batchai.schema.public).
for _, name in ipairs(type_order) do
  if types[name].def.constructor then M[name] = M.constructor(name) end
end

--- Help text for a type name (or "types" for the list), or nil.
function M.help_text(topic)
  return require("batchai.schema.help").text(topic, M)
end

return M

-- Exact, canonical JSON for sweep manifests and metrics, and a fast content hash.
--
-- cjson cannot serve here: it decodes every number as a float (a point's
-- `batch = 32` would come back as 32.0) and encodes keys in hash order, which
-- Lua randomizes per process, so its output cannot be hashed or compared.
-- This codec keeps integers and floats apart (a number token with no '.' or
-- exponent decodes as an integer), writes object keys sorted (or in a given
-- order), prints floats with the fewest digits that round-trip, and reads
-- the NaN/Infinity tokens Python's json module writes.
local M = {}

local concat, sort, format, byte, sub, find = table.concat, table.sort, string.format, string.byte, string.sub, string.find
local math_type, tointeger, huge = math.type, math.tointeger, math.huge
local utf8_char = utf8.char

--- The JSON null inside decoded arrays (object members that are null are left out).
M.null = setmetatable({}, { __tostring = function() return "null" end, __name = "json.null" })

-- Marks a table to encode as an array even when empty.
local array_mt = { __name = "json.array" }
function M.array(t) return setmetatable(t or {}, array_mt) end

--- The shortest text of a number that reads back as the same number; floats
-- keep a '.' or exponent ("1.0", "1e-05"), so integer-ness survives a round trip.
-- NaN and infinities give "NaN", "Infinity", "-Infinity".
function M.number(x)
  if math_type(x) == "integer" then return format("%d", x) end
  if x ~= x then return "NaN" end
  if x == huge then return "Infinity" end
  if x == -huge then return "-Infinity" end
  local s = format("%.15g", x)
  if tonumber(s) ~= x then
    s = format("%.16g", x)
    if tonumber(s) ~= x then s = format("%.17g", x) end
  end
  if not find(s, "[.eEn]") then s = s .. ".0" end
  return s
end
local number = M.number

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
for i = 0, 31 do
  local c = string.char(i)
  if not escapes[c] then escapes[c] = format("\\u%04x", i) end
end
escapes["\127"] = "\\u007f"

local function quote(s)
  if not find(s, '[%c"\\]') then return '"' .. s .. '"' end
  return '"' .. s:gsub('[%c"\\]', escapes) .. '"'
end
M.quote = quote

local function is_array(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in next, t do
    count = count + 1
    if count > n then return false end
  end
  return true
end

local encode_value

-- Appends the JSON of table t to out (whose length is n) and returns the new
-- length: arrays in index order, objects with sorted string keys (opts.order,
-- an array of keys, puts those first and in that order at the top level).
local function encode_table(t, out, n, depth, opts)
  if depth > 100 then error("JSON encode: nesting deeper than 100 (a cycle?)", 0) end
  if is_array(t) then
    n = n + 1; out[n] = "["
    for i = 1, #t do
      if i > 1 then n = n + 1; out[n] = "," end
      n = encode_value(t[i], out, n, depth + 1, opts)
    end
    n = n + 1; out[n] = "]"
    return n
  end
  local keys, nk, seen = {}, 0, nil
  local order = depth == 0 and opts and opts.order
  if order then
    seen = {}
    for _, k in ipairs(order) do
      if t[k] ~= nil then nk = nk + 1; keys[nk] = k; seen[k] = true end
    end
  end
  local first_rest = nk + 1
  for k in next, t do  -- raw traversal: points order their keys through __pairs
    local tk = type(k)
    if tk ~= "string" then
      if tk == "number" then k = number(k) else error("JSON encode: table key of type " .. tk, 0) end
    end
    if not (seen and seen[k]) then nk = nk + 1; keys[nk] = k end
  end
  if nk > first_rest then
    if first_rest == 1 then
      sort(keys)
    else
      local rest = table.move(keys, first_rest, nk, 1, {})
      sort(rest)
      table.move(rest, 1, #rest, first_rest, keys)
    end
  end
  n = n + 1; out[n] = "{"
  for i = 1, nk do
    local k = keys[i]
    n = n + 1; out[n] = (i > 1 and "," or "") .. quote(k) .. ":"
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    n = encode_value(v, out, n, depth + 1, opts)
  end
  n = n + 1; out[n] = "}"
  return n
end

encode_value = function(v, out, n, depth, opts)
  local tv = type(v)
  n = n + 1
  if tv == "string" then
    out[n] = quote(v)
  elseif tv == "number" then
    if v ~= v or v == huge or v == -huge then
      out[n] = (opts and opts.strict) and "null" or number(v)
    elseif math_type(v) == "integer" then
      out[n] = format("%d", v)
    else
      out[n] = number(v)
    end
  elseif tv == "boolean" then
    out[n] = v and "true" or "false"
  elseif v == nil or v == M.null then
    out[n] = "null"
  elseif tv == "table" then
    local mt = getmetatable(v)
    if mt and mt.__tojson then
      return encode_value(mt.__tojson(v), out, n - 1, depth, opts)
    end
    return encode_table(v, out, n - 1, depth, opts)
  else
    error("JSON encode: cannot encode a " .. tv, 0)
  end
  return n
end

--- Canonical JSON text of a value.  opts.order: key order for the top-level
-- object; opts.strict: NaN and infinities become null (standard JSON).
-- Raises on functions, userdata, non-string keys other than numbers, and cycles.
function M.encode(v, opts)
  local out = {}
  local n = encode_value(v, out, 0, 0, opts)
  return concat(out, "", 1, n)
end

-- ---- decoding -------------------------------------------------------------

local function decode_error(s, pos, what)
  local line, col = 1, 1
  for i = 1, math.min(pos, #s + 1) - 1 do
    if byte(s, i) == 10 then line = line + 1; col = 1 else col = col + 1 end
  end
  error(format("invalid JSON at line %d column %d: %s", line, col, what), 0)
end

local function skip(s, pos)
  return find(s, "[^ \t\r\n]", pos) or #s + 1
end

local unescape = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function decode_string(s, pos)
  -- pos is just after the opening quote
  local parts, start = {}, pos
  while true do
    local i = find(s, '["\\%c]', pos)
    if not i then decode_error(s, start - 1, "unterminated string") end
    local c = sub(s, i, i)
    if c == '"' then
      parts[#parts + 1] = sub(s, pos, i - 1)
      return concat(parts), i + 1
    elseif c == "\\" then
      parts[#parts + 1] = sub(s, pos, i - 1)
      local e = sub(s, i + 1, i + 1)
      if e == "u" then
        local hex = sub(s, i + 2, i + 5)
        if not hex:find("^%x%x%x%x$") then decode_error(s, i, "bad \\u escape") end
        local code = tonumber(hex, 16)
        local next_pos = i + 6
        if code >= 0xD800 and code <= 0xDBFF and sub(s, next_pos, next_pos + 1) == "\\u" then
          local low = tonumber(sub(s, next_pos + 2, next_pos + 5), 16)
          if low and low >= 0xDC00 and low <= 0xDFFF then
            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
            next_pos = next_pos + 6
          end
        end
        parts[#parts + 1] = utf8_char(code)
        pos = next_pos
      elseif unescape[e] then
        parts[#parts + 1] = unescape[e]
        pos = i + 2
      else
        decode_error(s, i, "bad escape \\" .. e)
      end
    else
      decode_error(s, i, "control character in string")
    end
  end
end

local decode_value

local function decode_number(s, pos)
  local token = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if not token or token == "-" then
    if sub(s, pos, pos + 2) == "NaN" then return 0 / 0, pos + 3 end
    if sub(s, pos, pos + 7) == "Infinity" then return huge, pos + 8 end
    if sub(s, pos, pos + 8) == "-Infinity" then return -huge, pos + 9 end
    decode_error(s, pos, "unexpected character '" .. sub(s, pos, pos) .. "'")
  end
  local v = tonumber(token)
  if v == nil then decode_error(s, pos, "bad number '" .. token .. "'") end
  if not find(token, "[.eE]") then v = tointeger(v) or v end
  return v, pos + #token
end

decode_value = function(s, pos, depth)
  if depth > 200 then decode_error(s, pos, "nesting deeper than 200") end
  pos = skip(s, pos)
  local c = sub(s, pos, pos)
  if c == "{" then
    local t = {}
    pos = skip(s, pos + 1)
    if sub(s, pos, pos) == "}" then return t, pos + 1 end
    while true do
      if sub(s, pos, pos) ~= '"' then decode_error(s, pos, "object key expected") end
      local k
      k, pos = decode_string(s, pos + 1)
      pos = skip(s, pos)
      if sub(s, pos, pos) ~= ":" then decode_error(s, pos, "':' expected") end
      local v
      v, pos = decode_value(s, pos + 1, depth + 1)
      if v ~= M.null then t[k] = v end
      pos = skip(s, pos)
      c = sub(s, pos, pos)
      if c == "}" then return t, pos + 1 end
      if c ~= "," then decode_error(s, pos, "',' or '}' expected") end
      pos = skip(s, pos + 1)
    end
  elseif c == "[" then
    local t, n = M.array(), 0
    pos = skip(s, pos + 1)
    if sub(s, pos, pos) == "]" then return t, pos + 1 end
    while true do
      local v
      v, pos = decode_value(s, pos, depth + 1)
      n = n + 1
      t[n] = v
      pos = skip(s, pos)
      c = sub(s, pos, pos)
      if c == "]" then return t, pos + 1 end
      if c ~= "," then decode_error(s, pos, "',' or ']' expected") end
      pos = pos + 1
    end
  elseif c == '"' then
    return decode_string(s, pos + 1)
  elseif c == "t" and sub(s, pos, pos + 3) == "true" then
    return true, pos + 4
  elseif c == "f" and sub(s, pos, pos + 4) == "false" then
    return false, pos + 5
  elseif c == "n" and sub(s, pos, pos + 3) == "null" then
    return M.null, pos + 4
  elseif c == "" then
    decode_error(s, pos, "unexpected end of text")
  end
  return decode_number(s, pos)
end

--- Decodes one JSON text.  Returns the value, or nil and a message saying
-- where the text is invalid.  Arrays carry the json.array metatable; a
-- top-level null decodes as json.null.
function M.decode(s)
  if type(s) ~= "string" then error("bad argument #1 to 'decode' (string expected, got " .. type(s) .. ")", 2) end
  local ok, v = pcall(function()
    local value, pos = decode_value(s, 1, 0)
    pos = skip(s, pos)
    if pos <= #s then decode_error(s, pos, "trailing characters") end
    return value
  end)
  if not ok then return nil, v end
  return v
end

-- ---- hashing --------------------------------------------------------------

local M64 = -4132994306676758123  -- 0xc6a4a7935bd1e995, MurmurHash64A's multiplier
local unpack = string.unpack

--- 64-bit MurmurHash64A of a string, as 16 lower-case hex digits.  Not
-- cryptographic: names sweep trials by content, and collisions are checked.
function M.hash(s, seed)
  local len = #s
  local h = (seed or 0x5eed) ~ (len * M64)
  local pos, last = 1, len - len % 8
  while pos + 31 <= last do
    local a, b, c, d = unpack("<i8i8i8i8", s, pos)
    a = a * M64; a = a ~ (a >> 47); a = a * M64; h = (h ~ a) * M64
    b = b * M64; b = b ~ (b >> 47); b = b * M64; h = (h ~ b) * M64
    c = c * M64; c = c ~ (c >> 47); c = c * M64; h = (h ~ c) * M64
    d = d * M64; d = d ~ (d >> 47); d = d * M64; h = (h ~ d) * M64
    pos = pos + 32
  end
  while pos + 7 <= last do
    local k = unpack("<i8", s, pos)
    k = k * M64; k = k ~ (k >> 47); k = k * M64; h = (h ~ k) * M64
    pos = pos + 8
  end
  if pos <= len then
    local tail = 0
    for i = len, pos, -1 do tail = (tail << 8) | byte(s, i) end
    h = (h ~ tail) * M64
  end
  h = h ~ (h >> 47); h = h * M64; h = h ~ (h >> 47)
  return format("%016x", h)
end

return M

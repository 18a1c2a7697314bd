-- The REPL's printer: nested tables with sorted keys, cycles marked, long tables elided.
local M = {}

local defaults = { width = 80, max_items = 40, max_depth = 6, indent = "  " }

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do keywords[w] = true end

--- A string as a Lua literal, escaping quotes and control characters.
function M.quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == "\n" then return "\\n" end
    if c == "\t" then return "\\t" end
    if c == "\r" then return "\\r" end
    if c == '"' or c == "\\" then return "\\" .. c end
    return ("\\%03d"):format(c:byte())
  end) .. '"'
end

local function format_key(k)
  if type(k) == "string" and k:find("^[%a_][%w_]*$") and not keywords[k] then return k end
  if type(k) == "string" then return "[" .. M.quote(k) .. "]" end
  return "[" .. tostring(k) .. "]"
end

local function scalar(v)
  local t = type(v)
  if t == "string" then return M.quote(v) end
  if t == "number" then
    if math.type(v) == "float" and v == math.floor(v) and v > -1e15 and v < 1e15 then
      return ("%.1f"):format(v)
    end
    return tostring(v)
  end
  return tostring(v)
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__tostring ~= nil
end

-- Array part first (1..n without holes), then other keys in a stable order.
local function ordered_keys(t)
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  local rest = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta == "number" end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return n, rest
end

local function render(v, opts, depth, ancestors)
  if type(v) ~= "table" then return scalar(v) end
  if has_tostring(v) then return tostring(v) end
  if ancestors[v] then return "<cycle: " .. tostring(v) .. ">" end
  if depth >= opts.max_depth then return "{...}" end
  local n, rest = ordered_keys(v)
  if n == 0 and #rest == 0 then return "{}" end
  ancestors[v] = true
  local items, count = {}, 0
  local total = n + #rest
  for i = 1, n do
    if count >= opts.max_items then break end
    count = count + 1
    items[count] = render(rawget(v, i), opts, depth + 1, ancestors)
  end
  for _, k in ipairs(rest) do
    if count >= opts.max_items then break end
    count = count + 1
    items[count] = format_key(k) .. " = " .. render(rawget(v, k), opts, depth + 1, ancestors)
  end
  ancestors[v] = nil
  if total > count then items[#items + 1] = ("... (%d more)"):format(total - count) end
  local one_line = "{ " .. table.concat(items, ", ") .. " }"
  local indent = opts.indent:rep(depth)
  if #one_line + #indent <= opts.width and not one_line:find("\n") then return one_line end
  -- One item per line, except that short one-line items share lines up to the width.
  local inner = indent .. opts.indent
  local lines, line = {}, nil
  for i, item in ipairs(items) do
    local text = item .. (i < #items and "," or "")
    if line and not item:find("\n") and #item <= 24 and #line + 1 + #text <= opts.width then
      line = line .. " " .. text
    else
      if line then lines[#lines + 1] = line end
      line = inner .. text
      if item:find("\n") or #item > 24 then
        lines[#lines + 1] = line
        line = nil
      end
    end
  end
  if line then lines[#lines + 1] = line end
  return "{\n" .. table.concat(lines, "\n") .. "\n" .. indent .. "}"
end

--- Formats any value for reading.  opts: width, max_items, max_depth.
function M.format(v, opts)
  local o = {}
  for k, d in pairs(defaults) do o[k] = (opts and opts[k]) or d end
  return render(v, o, 0, {})
end

return M

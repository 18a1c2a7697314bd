-- The REPL: lua.c's semantics (expressions print, incomplete input continues on
-- ">>"), readline with history and completion on a terminal, statements from
-- standard input otherwise.
local host = require "batchai._host"
local sys = require "batchai._sys"
local pretty = require "batchai.pretty"
local util = require "batchai.util"

local M = {}

local keywords = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}

-- ---- completion ----------------------------------------------------------

-- Field names a value offers: its own string keys, then its metatable's
-- __complete() list or __index chain (methods of userdata and typed values).
local function field_names(value, seen)
  local names = {}
  seen = seen or {}
  if (type(value) ~= "table" and type(value) ~= "userdata" and type(value) ~= "string") or seen[value] then
    return names
  end
  seen[value] = true
  if type(value) == "table" then
    for k in next, value do
      if type(k) == "string" and k:find("^[%a_][%w_]*$") then names[#names + 1] = k end
    end
  end
  local mt = getmetatable(value)
  if type(mt) == "table" then
    if type(mt.__complete) == "function" then
      local ok, list = pcall(mt.__complete, value)
      if ok and type(list) == "table" then
        for _, k in ipairs(list) do names[#names + 1] = k end
      end
    end
    if type(mt.__index) == "table" then
      for _, k in ipairs(field_names(mt.__index, seen)) do names[#names + 1] = k end
    end
  end
  return names
end

local function resolve(path)
  local value = _G
  for part in path:gmatch("[^.:]+") do
    if not part:find("^[%a_][%w_]*$") then return nil end
    local ok, v = pcall(function() return value[part] end)
    if not ok or v == nil then return nil end
    value = v
  end
  return value
end

--- Completions for the word ending at `stop` in `line` (start..stop, 1-based):
-- globals and keywords, or the fields/methods after "a.b." or "a:".
function M.complete(line, start, stop)
  local text = line:sub(start, stop)
  local base, sep, partial = text:match("^(.*)([.:])([%w_]*)$")
  local candidates, prefix = {}, ""
  if base then
    local value = resolve(base)
    if value == nil then return {} end
    prefix = base .. sep
    for _, name in ipairs(field_names(value)) do
      if sep == "." then
        candidates[#candidates + 1] = name
      else
        local ok, v = pcall(function() return value[name] end)
        if ok and (type(v) == "function" or (type(v) == "table" and getmetatable(v) and getmetatable(v).__call)) then
          candidates[#candidates + 1] = name
        end
      end
    end
  else
    partial = text
    candidates = field_names(_G)
    for _, k in ipairs(keywords) do candidates[#candidates + 1] = k end
  end
  local result, seen = {}, {}
  for _, name in ipairs(candidates) do
    if not seen[name] and name:sub(1, #partial) == partial then
      seen[name] = true
      result[#result + 1] = prefix .. name
    end
  end
  table.sort(result)
  return result
end

-- ---- evaluation ------------------------------------------------------------

-- Compiles a first line as an expression ("return line"), else as a statement.
-- Returns the function, or nil and the error, with incomplete = true when more
-- input would complete it.
local function compile(buffer, first_line)
  if first_line then
    local expr = buffer:gsub("^%s*=", "")  -- "=x" as in Lua 5.1
    local f = load("return " .. expr, "=stdin", "t")
    if f then return f end
  end
  local f, err = load(buffer, "=stdin", "t")
  if f then return f end
  if err:find("<eof>$") then return nil, err, true end
  return nil, err
end

-- Strips the frames of the REPL itself from a traceback.
local function trim_traceback(msg)
  msg = tostring(msg)
  local cut = msg:find("\n%s*%[C%]: in function 'batchai._host.docall'")
    or msg:find("\n%s*%[C%]: in %?")
  if cut then msg = msg:sub(1, cut - 1) end
  return (msg:gsub("\nstack traceback:%s*$", ""))
end

local function print_results(out, n, ...)
  if n == 0 then return end
  local parts = {}
  for i = 1, n do parts[i] = pretty.format((select(i, ...))) end
  out:write(table.concat(parts, "\t"), "\n")
end

--- Runs one chunk: prints its results or its error.  Returns true when it ran.
function M.eval(f, out)
  out = out or io.stdout
  local function handle(ok, ...)
    if ok then
      print_results(out, select("#", ...), ...)
      return true
    end
    io.stderr:write(trim_traceback((...)), "\n")
    return false
  end
  return handle(host.docall(f))
end

-- ---- the loop ----------------------------------------------------------------

local function history_path()
  local dir = util.xdg_dir("state") .. "/bai"
  if not sys.mkdir(dir, 448, true) then return nil end
  return dir .. "/history"
end

-- Reads one chunk.  read_line(prompt) returns a line, nil at end of input, or
-- false when the user cancelled the line.  Returns the compiled function and
-- the source, or nil at end of input.
local function read_chunk(read_line)
  while true do
    local line = read_line("> ")
    if line == nil then return nil end
    if line and line:find("%S") then
      local buffer, first = line, true
      while true do
        local f, err, incomplete = compile(buffer, first)
        first = false
        if f then return f, buffer end
        if not incomplete then
          io.stderr:write(err, "\n")
          return false, buffer
        end
        local more = read_line(">> ")
        if more == nil then
          io.stderr:write(err, "\n")
          return nil
        end
        if more == false then break end  -- Ctrl-C drops the partial chunk
        buffer = buffer .. "\n" .. more
      end
    end
  end
end

--- Runs the REPL until end of input.  opts.input (a file) replaces stdin.
function M.run(opts)
  opts = opts or {}
  if rawget(_G, "bai") == nil then
    local ok, batchai = pcall(require, "batchai")
    if ok then _G.bai = batchai end
  end
  local interactive = opts.input == nil and sys.isatty(0)
  local read_line
  if interactive then
    local rl = require "batchai._readline"
    local hist = history_path()
    if hist then rl.load_history(hist, 1000) end
    rl.set_completer(M.complete)
    read_line = rl.readline
    while true do
      local f, source = read_chunk(read_line)
      if f == nil then break end
      if source then
        rl.add_history(source)
        if hist then rl.append_history(hist, 1000) end
      end
      if f then M.eval(f) end
    end
    io.stdout:write("\n")
    return 0
  end
  local input = opts.input or io.stdin
  read_line = function() return input:read("l") end
  local status = 0
  while true do
    local f = read_chunk(read_line)
    if f == nil then break end
    if not f or not M.eval(f) then status = 1 end
  end
  return status
end

return M

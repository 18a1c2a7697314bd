-- Helpers shared by the specs: run the bai binary under test, temporary files.
local sys = require "batchai._sys"
local util = require "batchai.util"

local T = {}

-- The binary under test: $BAI (spec/run.lua sets it), else the bai running the specs.
T.bai = os.getenv("BAI") or sys.realpath("/proc/self/exe")

--- POSIX shell quoting of one word.
function T.quote(s)
  s = tostring(s)
  if s:find("^[%w_./=:,+-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- spec/run.lua makes one temporary root for the whole run and removes it at
-- exit.  Run by busted directly (`busted --lua=build/bin/bai`), the first
-- require makes it; the registry keeps its remover alive until the state
-- closes, whatever busted does to package.loaded between spec files.
local tmp_root = os.getenv("BAI_SPEC_TMP")
if not tmp_root then
  local p = io.popen("mktemp -d ${TMPDIR:-/tmp}/bai-spec.XXXXXX")
  tmp_root = p:read("l")
  p:close()
  sys.setenv("BAI_SPEC_TMP", tmp_root)
  debug.getregistry()["testkit.tmp_root"] = setmetatable({}, {
    __gc = function() os.execute("rm -rf " .. T.quote(tmp_root)) end,
  })
end

--- A fresh temporary directory.
function T.tmpdir()
  local p = io.popen("mktemp -d " .. T.quote(tmp_root .. "/d.XXXXXX"))
  local dir = p:read("l")
  p:close()
  return dir
end

function T.write(path, content, mode)
  local dir = path:match("^(.*)/[^/]+$")
  if dir then sys.mkdir(dir, 493, true) end
  local f = assert(io.open(path, mode or "wb"))
  f:write(content)
  f:close()
  return path
end

--- The whole content of a file, or nil.
function T.read(path) return (util.read_file(path)) end

--- Runs a command given as an array of words (the first may be T.bai).
-- opts: env = { NAME = value or false }, stdin = string, cwd = dir, timeout = s.
-- Returns { status = exit code, stdout = ..., stderr = ... }.
function T.exec(words, opts)
  opts = opts or {}
  local dir = T.tmpdir()
  local parts = {}
  if opts.cwd then parts[#parts + 1] = "cd " .. T.quote(opts.cwd) .. " &&" end
  parts[#parts + 1] = "env"
  for name, value in pairs(opts.env or {}) do  -- env wants -u before assignments
    if value == false then parts[#parts + 1] = "-u " .. T.quote(name) end
  end
  for name, value in pairs(opts.env or {}) do
    if value ~= false then parts[#parts + 1] = T.quote(name .. "=" .. value) end
  end
  if opts.timeout then parts[#parts + 1] = "timeout -s KILL " .. tostring(opts.timeout) end
  for _, w in ipairs(words) do parts[#parts + 1] = T.quote(w) end
  local stdin = "/dev/null"
  if opts.stdin then stdin = T.write(dir .. "/stdin", opts.stdin) end
  local cmd = table.concat(parts, " ") .. " <" .. T.quote(stdin) .. " >" .. T.quote(dir .. "/out")
    .. " 2>" .. T.quote(dir .. "/err")
  local _, kind, code = os.execute(cmd)
  if kind == "signal" then code = 128 + code end
  return { status = code, stdout = T.read(dir .. "/out") or "", stderr = T.read(dir .. "/err") or "" }
end

--- Runs the bai binary under test with the given arguments.
function T.run(args, opts)
  local words = { T.bai }
  for _, a in ipairs(args) do words[#words + 1] = a end
  opts = opts or {}
  -- Keep the developer's own plugins and history out of the specs.
  local env = { XDG_CONFIG_HOME = opts.config_home or T.tmpdir(), XDG_STATE_HOME = T.tmpdir(), BAI_PLUGIN_PATH = false }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  opts.env = env
  return T.exec(words, opts)
end

function T.has_command(name)
  local _, _, code = os.execute("command -v " .. T.quote(name) .. " >/dev/null 2>&1")
  return code == 0
end

return T

-- The command dispatcher (`bai WORD ...`) and what every command shares: option
-- parsing, usage errors, exits with a message.
--
-- A command is a module lua/batchai/cli/NAME.lua returning
--   { summary = "one line", usage = "bai NAME ...", help = "more text",
--     run = function(args) return exit_status end }
-- or a plugin's command (see batchai.plugins).
local host = require "batchai._host"
local util = require "batchai.util"

local M = {}

--- Raises a usage error: the host prints "bai: message" and the hint, exit status 2.
function M.usage_error(message, command)
  error({
    bai_usage = true,
    message = message,
    hint = ("Try 'bai help%s' for usage."):format(command and (" " .. command) or ""),
  }, 0)
end

--- Ends the command with "bai: message" on stderr (when given) and an exit status.
function M.exit(status, message)
  error({ bai_exit = status or 0, message = message }, 0)
end

--- Names of the built-in commands (the embedded batchai.cli.* modules).
function M.builtin_commands()
  local names = {}
  for _, module_name in ipairs(host.modules("batchai.cli.")) do
    local name = module_name:sub(#"batchai.cli." + 1)
    if not name:find("%.") then names[#names + 1] = name end
  end
  return names
end

--- The command table for a name (built-in or plugin), or nil.
function M.find(name)
  if not name:find("^[%w_-]+$") then return nil end
  if host.has_module("batchai.cli." .. name) then return require("batchai.cli." .. name) end
  return require("batchai.plugins").commands[name]
end

--- Names of every command: the built-in ones, then those plugins added (unsorted).
function M.command_names()
  local names = M.builtin_commands()
  for name in pairs(require("batchai.plugins").commands) do names[#names + 1] = name end
  return names
end

--- What `bai NAME --help` and `bai help NAME` print: usage line, summary, help.
function M.help_text(cmd, name)
  local text = "usage: " .. (cmd.usage or ("bai " .. name)) .. "\n"
  if cmd.summary then text = text .. "\n" .. cmd.summary .. "\n" end
  if cmd.help then text = text .. "\n" .. cmd.help:gsub("\n+$", "") .. "\n" end
  return text
end

-- The error handler of command `name`: lets usage errors and exits through;
-- gives anything else a traceback (and, for a plugin's command, the plugin's
-- name, file and command), wrapped so that the host does not add a second one.
local function handler_for(cmd, name)
  return function(err)
    if type(err) == "table" and (err.bai_usage or err.bai_exit) then return err end
    local message = debug.traceback(tostring(err), 2)
    if cmd.plugin then
      message = ("plugin '%s' (%s): command '%s' failed: %s"):format(cmd.plugin.name, cmd.plugin.path, name, message)
    end
    return setmetatable({ message = message }, { __tostring = function(e) return e.message end })
  end
end

--- Entry point from the host: runs command `name` with the array `args`.
function M.main(name, args)
  require("batchai.plugins").load()
  local cmd = M.find(name)
  if not cmd then
    M.usage_error(("unknown command '%s'%s"):format(name, util.did_you_mean(name, M.command_names())))
  end
  if (args[1] == "-h" or args[1] == "--help") and not cmd.own_help then
    io.stdout:write(M.help_text(cmd, name))
    return 0
  end
  local ok, result = xpcall(cmd.run, handler_for(cmd, name), args, name)
  if ok then
    if result == nil or result == true then return 0 end
    if result == false then return 1 end
    return result
  end
  if type(result) == "table" and result.bai_exit then
    if result.message then io.stderr:write("bai: ", result.message, "\n") end
    return result.bai_exit
  end
  error(result, 0)
end

-- ---- option parsing ----------------------------------------------------

local function option_key(long) return (long:gsub("-", "_")) end

--- Parses `args` against a spec and returns options, positionals.
--   spec = {
--     command = "job create",                 -- for messages and the help hint
--     options = { { "o", "output", arg = "FORMAT", choices = {...}, default = ... },
--                 { nil, "dry-run" },           -- a flag: true when given
--                 { "e", "env", arg = "K=V", multi = true } },
--     min = 0, max = math.huge,               -- positional counts
--     help = function() ... end,              -- -h/--help (default: usage line)
--   }
-- "--opt=value", "-o value", "-ovalue" and "--" are understood.  Misuse raises a
-- usage error naming the option.
function M.parse(args, spec)
  local by_short, by_long, longs = {}, {}, {}
  local opts, rest = {}, {}
  for _, o in ipairs(spec.options or {}) do
    if o[1] then by_short[o[1]] = o end
    by_long[o[2]] = o
    longs[#longs + 1] = "--" .. o[2]
    if o.multi then opts[option_key(o[2])] = {} end
    if o.default ~= nil then opts[option_key(o[2])] = o.default end
  end
  local command = spec.command
  local function set(o, value, shown)
    local key = option_key(o[2])
    if o.arg then
      if value == nil then M.usage_error(("option '%s' needs a value (%s)"):format(shown, o.arg), command) end
      if o.choices then
        local okv = false
        for _, c in ipairs(o.choices) do if c == value then okv = true end end
        if not okv then
          M.usage_error(("invalid value '%s' for option '%s' (choose from %s)"):format(
            value, shown, table.concat(o.choices, ", ")), command)
        end
      end
      if o.number then
        local n = tonumber(value)
        if not n then M.usage_error(("option '%s' expects a number, got '%s'"):format(shown, value), command) end
        value = n
      end
      if o.multi then table.insert(opts[key], value) else opts[key] = value end
    else
      if value ~= nil then M.usage_error(("option '%s' takes no value"):format(shown), command) end
      opts[key] = true
    end
  end
  local i, only_positional = 1, false
  while i <= #args do
    local a = args[i]
    if only_positional or a == "-" or a:sub(1, 1) ~= "-" then
      rest[#rest + 1] = a
    elseif a == "--" then
      only_positional = true
    elseif a == "-h" or a == "--help" then
      if spec.help then spec.help() else io.stdout:write("usage: bai ", command or "", "\n") end
      M.exit(0)
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local o = by_long[name]
      if not o then
        M.usage_error(("unknown option '--%s'%s"):format(name, util.did_you_mean("--" .. name, longs)), command)
      end
      if o.arg and value == nil then
        i = i + 1
        value = args[i]
      end
      set(o, value, "--" .. name)
    else
      local o = by_short[a:sub(2, 2)]
      if not o then M.usage_error(("unknown option '%s'"):format(a), command) end
      local value
      if o.arg then
        value = #a > 2 and a:sub(3) or nil
        if value == nil then
          i = i + 1
          value = args[i]
        end
      elseif #a > 2 then
        M.usage_error(("unknown option '%s'"):format(a), command)
      end
      set(o, value, "-" .. o[1])
    end
    i = i + 1
  end
  local min, max = spec.min or 0, spec.max or math.huge
  if #rest < min then
    M.usage_error(("missing %s"):format(spec.positional or "argument"), command)
  elseif #rest > max then
    M.usage_error(("unexpected argument '%s'"):format(rest[max + 1]), command)
  end
  return opts, rest
end

return M

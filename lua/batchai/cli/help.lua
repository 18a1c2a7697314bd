-- `bai help [TOPIC]`: the overview, a command's help, a Batch AI type, or a guide.
local cli = require "batchai.cli"
local host = require "batchai._host"
local util = require "batchai.util"

local overview = [==[
bai %s: script Batch AI training jobs in Lua.

usage: bai [options] [SCRIPT [ARGS...]]   run a Lua script (as `lua` does)
       bai COMMAND [ARGS...]              run a command (below)
       bai                                on a terminal, the interactive prompt

options (before the script or command):
  -e STAT        run the statement STAT
  -l MOD         require MOD into the global MOD (-l g=MOD: into g)
  -i             interactive prompt after the script
  -v, --version  print the version
  -E             ignore LUA_INIT, LUA_PATH and LUA_CPATH
  -W             turn warnings on
  --plugin FILE  load a plugin for this run (repeatable)
  -              run standard input;  --  stop handling options
  -h, --help     this text

commands:
%s
Type 'bai help TOPIC' for a command, a Batch AI type (bai help types), or one
of the guides: %s.
]==]

local guides = {
  run = [==[
usage: bai run SCRIPT [ARGS...]     (same as: bai SCRIPT [ARGS...])

Runs a Lua script inside bai.  The global `arg` holds the arguments as `lua`
sets it: arg[0] is the script, arg[1..n] the arguments, negative indices what
came before.  `local bai = require "batchai"` gives the bai API.  An error
prints "bai: FILE:LINE: message" with a traceback and exits with status 1.
Use `bai run` when the script's name is also the name of a command.]==],
  scripts = [[
Scripts are plain Lua 5.4.  Everything `lua` offers is there (arg, -e, -l, -i,
LUA_INIT, package.path), plus:
  local bai = require "batchai"     the bai API (types, client, sweeps)
  require "cjson"                   JSON (lua-cjson)
Modules under lua/batchai/ are compiled into the binary; set BAI_LUA_DIR to a
lua/ folder to load them from disk instead while developing bai itself.]],
  ["plugin-api"] = [[
A plugin is a Lua file, or a folder with init.lua, that returns a table:

  return {
    name = "notify", version = "1.0",
    setup = function(bai)
      bai.hook("after_submit", function(job_name, job, ctx) ... end)
      bai.command("hello", { summary = "Say hello", run = function(args) print("hi") end })
    end,
  }

`bai` in setup is the batchai module plus `hook` and `command`.  Hooks:
%s
A `bai.command(NAME, ...)` becomes `bai NAME ARGS...`; its run(args) returns
the exit status.  A plugin that fails to load, or a hook that raises, prints
one message naming the plugin's file and the hook, and bai carries on; a
plugin command that raises names the plugin, its file and the command.
Plugins load from text only (bytecode is refused).  See 'bai help plugins'.]],
  repl = [[
The prompt (bai repl, or bai on a terminal) evaluates Lua as you type.
  > 1 + 1                an expression prints its value
  > t = { a = { 1, 2 } } statements run; incomplete ones continue on ">>"
  > t                    tables print nested, keys sorted, cycles marked
  > bai.Jo<Tab>          Tab completes globals, fields and methods
Ctrl-C cancels the line being typed or interrupts a running statement; Ctrl-D
leaves.  History is kept in $XDG_STATE_HOME/bai/history.]],
}

local function command_list()
  local lines = {}
  local names = cli.command_names()
  table.sort(names)
  for _, name in ipairs(names) do
    local cmd = cli.find(name)
    lines[#lines + 1] = ("  %-12s %s"):format(name, cmd and cmd.summary or "")
  end
  return table.concat(lines, "\n") .. "\n"
end

local function guide_names()
  local names = util.sorted_keys(guides)
  return table.concat(names, ", ")
end

local function hook_list()
  local lines = {}
  local hooks = require("batchai.plugins").hooks
  for _, name in ipairs(util.sorted_keys(hooks)) do
    lines[#lines + 1] = ("  %-16s %s"):format(name, hooks[name])
  end
  return table.concat(lines, "\n")
end

local function topic_text(topic)
  local cmd = cli.find(topic)
  if cmd then return cli.help_text(cmd, topic) end
  if topic == "plugin-api" then return guides[topic]:format(hook_list()) .. "\n" end
  if guides[topic] then return guides[topic] .. "\n" end
  return require("batchai.schema").help_text(topic)
end

local function all_topics()
  local topics = cli.command_names()
  for name in pairs(guides) do topics[#topics + 1] = name end
  topics[#topics + 1] = "types"
  for _, name in ipairs(require("batchai.schema").type_names()) do topics[#topics + 1] = name end
  return topics
end

return {
  summary = "Show help for bai, a command, a Batch AI type or a guide",
  usage = "bai help [TOPIC]",
  help = "Without a topic, the overview.  Topics: commands, type names (bai help types), guides.",
  run = function(args)
    local _, rest = cli.parse(args, { command = "help", max = 1, positional = "TOPIC" })
    local topic = rest[1]
    if not topic then
      io.stdout:write(overview:format(host.version, command_list(), guide_names()))
      return 0
    end
    local text = topic_text(topic)
    if not text then
      cli.usage_error(("no help for '%s'%s"):format(topic, util.did_you_mean(topic, all_topics())))
    end
    io.stdout:write(text)
    return 0
  end,
}

-- batchai.client.command: what `bai job|experiment|workspace|config` share:
-- sub-commands, the common options, help text, and turning client errors into
-- "bai: message" with exit status 1.  The tables here also drive the shell
-- completion scripts (scripts/completion/generate.lua).
local cli = require "batchai.cli"
local util = require "batchai.util"
local output = require "batchai.client.output"

local M = {}

--- Options every client command accepts.
M.common_options = {
  { "o", "output", arg = "FORMAT", choices = output.formats, help = "table, json, jsonl or tsv (table on a terminal, else tsv)" },
  { nil, "subscription", arg = "ID", help = "subscription id" },
  { nil, "resource-group", arg = "NAME", help = "resource group" },
  { nil, "workspace", arg = "NAME", help = "workspace" },
  { nil, "profile", arg = "NAME", help = "configuration profile" },
  { nil, "endpoint", arg = "URL", help = "endpoint URL or unix socket path" },
}

local function option_label(o)
  local label = (o[1] and ("-" .. o[1] .. ", ") or "    ") .. "--" .. o[2]
  if o.arg then label = label .. " " .. o.arg end
  return label
end

local function option_lines(options)
  local lines, width = {}, 0
  for _, o in ipairs(options) do width = math.max(width, #option_label(o)) end
  for _, o in ipairs(options) do
    local label = option_label(o)
    lines[#lines + 1] = "  " .. label .. string.rep(" ", width - #label + 2) .. (o.help or "")
  end
  return table.concat(lines, "\n")
end

local function sub_usage(group, name, sub)
  return ("bai %s %s%s"):format(group.name, name, sub.args and (" " .. sub.args) or "")
end

local function sub_help(group, name, sub)
  local out = io.stdout
  out:write("usage: ", sub_usage(group, name, sub), " [OPTIONS]\n\n", sub.summary, "\n")
  if sub.help then out:write("\n", (sub.help:gsub("\n+$", "")), "\n") end
  if sub.options and #sub.options > 0 then out:write("\nOptions:\n", option_lines(sub.options), "\n") end
  out:write("\nCommon options:\n", option_lines(group.common), "\n")
end

local function group_help_text(group)
  local lines = { group.summary, "", "Commands:" }
  local width = 0
  for _, name in ipairs(group.order) do
    width = math.max(width, #(name .. (group.subcommands[name].args and (" " .. group.subcommands[name].args) or "")))
  end
  for _, name in ipairs(group.order) do
    local sub = group.subcommands[name]
    local head = name .. (sub.args and (" " .. sub.args) or "")
    lines[#lines + 1] = "  " .. head .. string.rep(" ", width - #head + 2) .. sub.summary
  end
  if group.help then
    lines[#lines + 1] = ""
    lines[#lines + 1] = (group.help:gsub("\n+$", ""))
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Common options:"
  lines[#lines + 1] = option_lines(group.common)
  lines[#lines + 1] = ""
  lines[#lines + 1] = ("'bai %s COMMAND --help' describes one command."):format(group.name)
  return table.concat(lines, "\n")
end

--- An error as the command line shows it: its one line, then one indented
-- line per detail the endpoint sent ("target: message (code)").
function M.describe(err)
  local lines = { tostring(err) }
  if type(err) == "table" and type(err.details) == "table" then
    for _, d in ipairs(err.details) do
      local target = type(d.target) == "string" and d.target ~= "" and (d.target .. ": ") or ""
      local code = type(d.code) == "string" and (" (" .. d.code .. ")") or ""
      lines[#lines + 1] = "  " .. target .. tostring(d.message) .. code
    end
  end
  return table.concat(lines, "\n")
end

--- Ends the command with "bai: <error>" (and its details) and exit status 1.
function M.fail(err)
  cli.exit(1, M.describe(err))
end

--- Runs fn(...) and turns a raised client error (an iterator's, or a bad
-- name or configuration) into a clean "bai: message" exit.
function M.guard(fn, ...)
  local ok, a, b = pcall(fn, ...)
  if ok then return a, b end
  if type(a) == "table" and (a.bai_exit or a.bai_usage) then error(a, 0) end
  if type(a) == "string" then a = a:gsub("^[^:\n ]+%.lua:%d+: ", "") end
  M.fail(a)
end

--- The configuration options (for batchai.client constructors) from parsed flags.
function M.config_options(opts)
  local t = {}
  for _, k in ipairs { "subscription", "resource_group", "workspace", "experiment", "profile", "endpoint" } do
    if opts[k] ~= nil then t[k] = opts[k] end
  end
  return t
end

--- The fields for a batchai.client constructor: the configuration options of
-- env, with `key` (the object's own name: "workspace", "experiment") replaced
-- by `name` (nil: the constructor takes it from the configuration).
function M.constructor_fields(env, key, name)
  local fields = {}
  for k, v in pairs(env.config) do if k ~= key then fields[k] = v end end
  fields.name = name
  return fields
end

--- The workspace named on the command line, else the configured one.
function M.workspace(env, name)
  return M.guard(function()
    return require("batchai.client").workspace(M.constructor_fields(env, "workspace", name or env.config.workspace))
  end)
end

--- The --no-wait option of the commands that start a long-running operation.
M.no_wait = { nil, "no-wait", help = "return once the endpoint accepted the request" }

--- What `bai workspace` and `bai experiment` share.  `r` describes the kind:
--   { kind = "workspace", object = function(env, name) -> object with get/delete,
--     fields = { {label, key}... } (show), columns = { {HEADER, key}... } (list),
--     list_summary =, list_options =, list = function(opts, env) -> lazy iterator }
-- Returns the sub-commands { show =, list =, delete = } and
-- finish_create(env, object, value, err) -> 0, the tail of a create command.
function M.resource_commands(r)
  local codec = require "batchai.client.codec"
  local function show(env, value)
    output.show(env.out, env.format(), r.fields, value, codec.resource_summary, codec.to_plain)
  end
  local subcommands = {
    show = {
      args = "[NAME]", max = 1, summary = "show " .. (r.kind:find("^[aeiou]") and "an " or "a ") .. r.kind,
      run = function(_, args, env)
        local value, err = r.object(env, args[1]):get()
        if not value then M.fail(err) end
        show(env, value)
        return 0
      end,
    },
    list = {
      summary = r.list_summary, options = r.list_options,
      run = function(opts, _, env)
        local format = env.format()
        M.guard(function()
          output.list(env.out, format, r.columns, r.list(opts, env), codec.resource_summary, codec.to_plain)
        end)
        return 0
      end,
    },
    delete = {
      args = "NAME", min = 1, max = 1, options = { M.no_wait },
      run = function(opts, args, env)
        local ok, err = r.object(env, args[1]):delete { wait = not opts.no_wait }
        if not ok then M.fail(err) end
        return 0
      end,
    },
  }
  -- After a create: fails on an error; with --no-wait (value true) shows what get() says.
  local function finish_create(env, obj, value, err)
    if not value then M.fail(err) end
    if value == true then value = assert(obj:get()) end
    show(env, value)
    return 0
  end
  return subcommands, finish_create
end

--- A command module from a group spec:
--   { name = "job", summary =, help =, extra_common = { options }, default = "show",
--     order = { "create", ... },
--     subcommands = { create = { args = "NAME", summary =, help =, options =, min =, max =,
--                                run = function(opts, args, env) return status end } } }
-- env = { format =, config = options for constructors, out = io.stdout }.
function M.group(group)
  group.common = {}
  for _, o in ipairs(M.common_options) do group.common[#group.common + 1] = o end
  for _, o in ipairs(group.extra_common or {}) do group.common[#group.common + 1] = o end
  local command = {
    summary = group.summary,
    usage = ("bai %s COMMAND [OPTIONS]"):format(group.name),
    help = group_help_text(group):gsub("^[^\n]*\n\n", ""),
    own_help = true,
    group = group,
  }
  function command.run(args)
    local name = args[1]
    if group.default and (name == nil or (name:sub(1, 1) == "-" and name ~= "-h" and name ~= "--help")) then
      name = group.default
      args = { name, table.unpack(args) }
    end
    if name == nil then
      cli.usage_error(("missing command: one of %s"):format(table.concat(group.order, ", ")), group.name)
    end
    if name == "-h" or name == "--help" or name == "help" then
      io.stdout:write("usage: ", command.usage, "\n\n", group_help_text(group), "\n")
      return 0
    end
    local sub = group.subcommands[name]
    if not sub then
      cli.usage_error(("unknown command '%s %s'%s"):format(group.name, name, util.did_you_mean(name, group.order)), group.name)
    end
    local options = {}
    for _, o in ipairs(sub.options or {}) do options[#options + 1] = o end
    for _, o in ipairs(group.common) do options[#options + 1] = o end
    local rest = table.move(args, 2, #args, 1, {})
    local opts, positional = cli.parse(rest, {
      command = group.name, options = options, min = sub.min or 0, max = sub.max or 0,
      positional = sub.args, help = function() sub_help(group, name, sub) end,
    })
    local env = { config = M.config_options(opts), out = io.stdout }
    local format_option = opts.output
    env.format = function()
      if format_option then return format_option end
      local ok, values = pcall(require("batchai.config").resolve, { profile = opts.profile })
      return output.choose(nil, ok and values.output or nil)
    end
    return sub.run(opts, positional, env)
  end
  return command
end

return M

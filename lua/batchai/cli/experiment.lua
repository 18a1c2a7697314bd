-- `bai experiment ...`: create, show, list and delete experiments.
local command = require "batchai.client.command"

-- The experiment named on the command line, else the configured one.
local function experiment(env, name)
  local ws = command.workspace(env)
  return command.guard(function()
    name = name or require("batchai.config").resolve(env.config).experiment
    if not name then command.fail("experiment name missing (argument, BAI_EXPERIMENT or configuration)") end
    return ws:experiment(name)
  end)
end

local COLUMNS = { { "NAME", "name" }, { "STATE", "provisioning" }, { "CREATED", "created" } }
local FIELDS = { { "Name", "name" }, { "Provisioning", "provisioning" }, { "Created", "created" }, { "Id", "id" } }

local subcommands, finish_create = command.resource_commands {
  kind = "experiment", object = experiment, fields = FIELDS, columns = COLUMNS,
  list_summary = "list the experiments of a workspace",
  list = function(_, env) return command.workspace(env):experiments() end,
}
subcommands.delete.summary = "delete an experiment and its jobs"

subcommands.create = {
  args = "[NAME]", max = 1, summary = "create an experiment (existing ones are left as they are)",
  options = { command.no_wait },
  run = function(opts, args, env)
    local exp = experiment(env, args[1])
    local value, err = exp:create { wait = not opts.no_wait }
    return finish_create(env, exp, value, err)
  end,
}

return command.group {
  name = "experiment",
  summary = "create, show, list and delete experiments",
  help = "The workspace comes from --workspace, BAI_WORKSPACE or the configuration (see 'bai config').",
  order = { "create", "show", "list", "delete" },
  subcommands = subcommands,
}

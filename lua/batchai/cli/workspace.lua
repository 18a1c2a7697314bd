-- `bai workspace ...`: create, show, list and delete workspaces.
local command = require "batchai.client.command"

local workspace = command.workspace

local COLUMNS = { { "NAME", "name" }, { "LOCATION", "location" }, { "STATE", "provisioning" }, { "CREATED", "created" } }
local FIELDS = { { "Name", "name" }, { "Location", "location" }, { "Provisioning", "provisioning" },
  { "Created", "created" }, { "Id", "id" } }

local subcommands, finish_create = command.resource_commands {
  kind = "workspace", object = workspace, fields = FIELDS, columns = COLUMNS,
  list_summary = "list the workspaces of a resource group (--all: of the subscription)",
  list_options = { { nil, "all", help = "every workspace of the subscription" } },
  list = function(opts, env)
    local fields = command.constructor_fields(env, "workspace")
    if opts.all then fields.resource_group = false end
    return require("batchai.client").workspaces(fields)
  end,
}
subcommands.delete.summary = "delete a workspace"

subcommands.create = {
  args = "[NAME]", max = 1, summary = "create a workspace",
  options = {
    { nil, "location", arg = "LOCATION", help = "location (default from configuration)" },
    { nil, "tag", arg = "KEY=VALUE", multi = true, help = "a tag (repeatable)" },
    command.no_wait,
  },
  run = function(opts, args, env)
    local ws = workspace(env, args[1])
    local tags = {}
    for _, t in ipairs(opts.tag or {}) do
      local k, v = t:match("^([^=]+)=(.*)$")
      if not k then require("batchai.cli").usage_error(("invalid tag '%s' (KEY=VALUE expected)"):format(t), "workspace") end
      tags[k] = v
    end
    local value, err = command.guard(ws.create, ws, { location = opts.location, tags = tags, wait = not opts.no_wait })
    return finish_create(env, ws, value, err)
  end,
}

return command.group {
  name = "workspace",
  summary = "create, show, list and delete workspaces",
  help = "The resource group comes from --resource-group, BAI_RESOURCE_GROUP or the configuration (see 'bai config').",
  order = { "create", "show", "list", "delete" },
  subcommands = subcommands,
}

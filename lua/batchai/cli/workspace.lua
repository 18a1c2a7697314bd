-- `bai workspace ...`: create, show, list and delete workspaces.
local command = require "batchai.client.command"
local output = require "batchai.client.output"
local codec = require "batchai.client.codec"

local workspace = command.workspace

local COLUMNS = { { "NAME", "name" }, { "LOCATION", "location" }, { "STATE", "provisioning" }, { "CREATED", "created" } }
local FIELDS = { { "Name", "name" }, { "Location", "location" }, { "Provisioning", "provisioning" },
  { "Created", "created" }, { "Id", "id" } }

local function show(env, value)
  output.show(env.out, env.format(), FIELDS, value, codec.resource_summary, codec.to_plain)
end

local no_wait = { nil, "no-wait", help = "return once the endpoint accepted the request" }

return command.group {
  name = "workspace",
  summary = "create, show, list and delete workspaces",
  help = "The resource group comes from --resource-group, BAI_RESOURCE_GROUP or the configuration (see 'bai config').",
  order = { "create", "show", "list", "delete" },
  subcommands = {
    create = {
      args = "[NAME]", max = 1, summary = "create a workspace",
      options = {
        { nil, "location", arg = "LOCATION", help = "location (default from configuration)" },
        { nil, "tag", arg = "KEY=VALUE", multi = true, help = "a tag (repeatable)" },
        no_wait,
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
        if not value then command.fail(err) end
        if value == true then value = assert(ws:get()) end
        show(env, value)
        return 0
      end,
    },
    show = {
      args = "[NAME]", max = 1, summary = "show a workspace",
      run = function(_, args, env)
        local value, err = workspace(env, args[1]):get()
        if not value then command.fail(err) end
        show(env, value)
        return 0
      end,
    },
    list = {
      summary = "list the workspaces of a resource group (--all: of the subscription)",
      options = { { nil, "all", help = "every workspace of the subscription" } },
      run = function(opts, _, env)
        local format = env.format()
        command.guard(function()
          local fields = command.constructor_fields(env, "workspace")
          if opts.all then fields.resource_group = false end
          output.list(env.out, format, COLUMNS, require("batchai.client").workspaces(fields), codec.resource_summary,
            codec.to_plain)
        end)
        return 0
      end,
    },
    delete = {
      args = "NAME", min = 1, max = 1, summary = "delete a workspace",
      options = { no_wait },
      run = function(opts, args, env)
        local ok, err = workspace(env, args[1]):delete { wait = not opts.no_wait }
        if not ok then command.fail(err) end
        return 0
      end,
    },
  },
}

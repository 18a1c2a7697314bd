-- `bai config`: the effective configuration, where each value came from, with
-- secrets masked.
local command = require "batchai.client.command"
local output = require "batchai.client.output"
local config = require "batchai.config"

local function resolve(env)
  return command.guard(config.resolve, env.config)
end

-- How requests will authenticate, as far as can be told without a request.
local function auth_method(values, sources)
  if values.token then return "bearer token", sources.token end
  if config.is_local_endpoint(values.endpoint) then return "local endpoint (its socket or token)", "endpoint" end
  local function set(name) local v = os.getenv(name) return v and v ~= "" end
  if set("AZURE_TENANT_ID") and set("AZURE_CLIENT_ID") and set("AZURE_CLIENT_SECRET") then
    return "Azure client credentials", "env AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET"
  end
  return "managed identity, else az account get-access-token", "default"
end

local function display(key, value)
  if value == nil then return "" end
  if config.keys[key] and config.keys[key].secret then return config.mask(value) end
  if type(value) == "table" then return ("bucket=%s refill=%s"):format(value.bucket, value.refill) end
  return tostring(value)
end

local function rows(env)
  local values, sources = resolve(env)
  local list = {}
  for _, key in ipairs(config.order) do
    local value = values[key]
    local shown = display(key, value)
    if key == "endpoint" and value == nil then shown = "(local bai serve)" end
    list[#list + 1] = { key = key, value = shown, source = sources[key] or "unset",
      plain = config.keys[key].secret and (value ~= nil and config.mask(value) or nil) or value }
  end
  list[#list + 1] = { key = "profile", value = values.profile or "", source = sources.profile or "unset", plain = values.profile }
  local method, from = auth_method(values, sources)
  list[#list + 1] = { key = "auth", value = method, source = from, plain = method }
  local path, path_source = config.path()
  local absent = require("batchai._sys").stat(path) == nil
  list[#list + 1] = { key = "config_file", value = path .. (absent and " (absent)" or ""), source = path_source,
    plain = path }
  return list
end

local COLUMNS = { { "KEY", "key" }, { "VALUE", "value" }, { "SOURCE", "source" } }

return command.group {
  name = "config",
  summary = "show the effective configuration and where each value came from",
  help = ([[Precedence, lowest first: defaults, the configuration file (%s,
or BAI_CONFIG), its profile (BAI_PROFILE or --profile), environment variables,
command-line options.  Secrets are masked.  'bai config keys' lists every key.]]):format("$XDG_CONFIG_HOME/bai/config.lua"),
  order = { "show", "get", "keys", "path" },
  default = "show",
  subcommands = {
    show = {
      summary = "every key, its value and its source",
      run = function(_, _, env)
        local list = rows(env)
        local format = env.format()
        if format == "json" or format == "jsonl" then
          local doc = {}
          for _, r in ipairs(list) do doc[r.key] = { value = r.plain, source = r.source } end
          env.out:write(format == "json" and output.json(doc) or output.json_line(doc), "\n")
        else
          local i = 0
          output.list(env.out, format, COLUMNS, function() i = i + 1 return list[i] end, function(r) return r end)
        end
        return 0
      end,
    },
    get = {
      args = "KEY", min = 1, max = 1, summary = "the value of one key (secrets masked)",
      run = function(_, args, env)
        for _, r in ipairs(rows(env)) do
          if r.key == args[1] then
            env.out:write(r.value, "\n")
            return 0
          end
        end
        require("batchai.cli").usage_error(("unknown key '%s'%s"):format(args[1],
          require("batchai.util").did_you_mean(args[1], config.keys)), "config")
      end,
    },
    keys = {
      summary = "every configuration key, its environment variables and meaning",
      run = function(_, _, env)
        local list = {}
        for _, key in ipairs(config.order) do
          local spec = config.keys[key]
          local default = spec.default
          if type(default) == "table" then default = ("bucket=%s refill=%s"):format(default.bucket, default.refill) end
          list[#list + 1] = { key = key, env = table.concat(spec.env or {}, ", "),
            default = default ~= nil and tostring(default) or (spec.local_default and (spec.local_default .. " (local)")) or "",
            doc = spec.doc }
        end
        local i = 0
        output.list(env.out, env.format(), { { "KEY", "key" }, { "ENVIRONMENT", "env" }, { "DEFAULT", "default" }, { "MEANING", "doc" } },
          function() i = i + 1 return list[i] end, function(r) return r end, function(r) return r end)
        return 0
      end,
    },
    path = {
      summary = "the configuration file's path",
      run = function(_, _, env)
        env.out:write((config.path()), "\n")
        return 0
      end,
    },
  },
}

-- `bai plugins`: what was loaded, from where, and what failed.
local cli = require "batchai.cli"
local plugins = require "batchai.plugins"

return {
  summary = "List the plugins loaded and where they came from",
  usage = "bai plugins",
  help = [[
Plugins are Lua files (or folders with init.lua) found, in this order, in
  $XDG_CONFIG_HOME/bai/plugins   (default ~/.config/bai/plugins)
  ./.bai/plugins                 (the current project)
  each absolute folder in BAI_PLUGIN_PATH (colon-separated; relative ones are ignored)
  --plugin FILE                  (before the command, repeatable)
See 'bai help plugin-api' for writing one.]],
  run = function(args)
    cli.parse(args, { command = "plugins", max = 0 })
    local out = io.stdout
    if #plugins.loaded == 0 then out:write("no plugins loaded\n") end
    for _, p in ipairs(plugins.loaded) do
      out:write(("%s %s  (%s: %s)\n"):format(p.name, p.version ~= "" and p.version or "-", p.origin, p.path))
      if #p.hooks > 0 then out:write("  hooks: ", table.concat(p.hooks, ", "), "\n") end
      if #p.commands > 0 then out:write("  commands: ", table.concat(p.commands, ", "), "\n") end
    end
    for _, f in ipairs(plugins.failures) do
      out:write(("failed: %s\n"):format(f.message))
    end
    return #plugins.failures == 0 and 0 or 1
  end,
}

-- Plugins: discovery, hooks and commands, and failures that never crash the host.
local T = require "testkit"

local hello_plugin = [[
return {
  name = "hello", version = "1.2",
  setup = function(bai)
    bai.hook("after_submit", function(name) io.stdout:write("after_submit ", name, "\n") end)
    bai.command("hello", {
      summary = "Say hello",
      run = function(args) print("hello " .. table.concat(args, " ")) return #args end,
    })
  end,
}
]]

-- A script that fires hooks the way the client does.
local emit_script = [[
local plugins = require("batchai").plugins
plugins.emit("after_submit", "job-1")
local props = plugins.filter("before_submit", { nodeCount = 1 }, "job-1", {})
print("nodeCount", props.nodeCount)
print("script finished")
]]

describe("plugin discovery", function()
  it("loads a plugin from $XDG_CONFIG_HOME/bai/plugins and runs its command and hook", function()
    local home = T.tmpdir()
    local file = T.write(home .. "/bai/plugins/hello.lua", hello_plugin)
    local r = T.run({ "hello", "a", "b" }, { config_home = home })
    assert.are.equal("hello a b\n", r.stdout)
    assert.are.equal(2, r.status)  -- the command's return value is the exit status
    local dir = T.tmpdir()
    r = T.run({ T.write(dir .. "/s.lua", emit_script) }, { config_home = home })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("after_submit job-1\nnodeCount\t1\nscript finished\n", r.stdout)
    r = T.run({ "plugins" }, { config_home = home })
    assert.are.equal(0, r.status)
    assert.are.equal(("hello 1.2  (config: %s)\n  hooks: after_submit\n  commands: hello\n"):format(file), r.stdout)
  end)

  it("lists plugin commands in the help overview and answers help for them", function()
    local home = T.tmpdir()
    T.write(home .. "/bai/plugins/hello.lua", hello_plugin)
    local r = T.run({ "help" }, { config_home = home })
    assert.matches("\n  hello        Say hello\n", r.stdout)
    r = T.run({ "help", "hello" }, { config_home = home })
    assert.matches("^usage: bai hello %[ARGS%.%.%.%]\n\nSay hello\n", r.stdout)
  end)

  it("loads a folder plugin from ./.bai/plugins of the current directory", function()
    local project = T.tmpdir()
    local file = T.write(project .. "/.bai/plugins/folder/init.lua", [[
      local helper = "from a folder"
      return { name = "folder", setup = function(bai)
        bai.command("where", function() print(helper) end)
      end }]])
    local r = T.run({ "where" }, { cwd = project })
    assert.are.equal("from a folder\n", r.stdout)
    r = T.run({ "plugins" }, { cwd = project })
    assert.matches("folder %-  %(project: " .. file:gsub("%p", "%%%0") .. "%)", r.stdout)
  end)

  it("searches absolute BAI_PLUGIN_PATH entries and ignores relative ones", function()
    local abs = T.tmpdir()
    T.write(abs .. "/a.lua", 'return { name = "a", setup = function(bai) bai.command("from-a", function() print("a") end) end }')
    local cwd = T.tmpdir()
    T.write(cwd .. "/rel/b.lua", 'return { name = "b", setup = function(bai) bai.command("from-b", function() print("b") end) end }')
    local r = T.run({ "plugins" }, { cwd = cwd, env = { BAI_PLUGIN_PATH = "rel:" .. abs } })
    assert.matches("^a %-  %(BAI_PLUGIN_PATH: ", r.stdout)
    assert.not_matches("b %-", r.stdout)
    r = T.run({ "from-b" }, { cwd = cwd, env = { BAI_PLUGIN_PATH = "rel:" .. abs } })
    assert.are.equal(2, r.status)
    assert.matches("unknown command 'from%-b'", r.stderr)
  end)

  it("loads --plugin FILE given before the script or command", function()
    local dir = T.tmpdir()
    local file = T.write(dir .. "/p.lua", hello_plugin)
    local r = T.run({ "--plugin", file, "hello", "x" })
    assert.are.equal("hello x\n", r.stdout)
    r = T.run({ "--plugin=" .. file, T.write(dir .. "/s.lua", emit_script) })
    assert.matches("^after_submit job%-1\n", r.stdout)
  end)

  it("lets before_submit handlers replace the properties, in load order", function()
    local dir = T.tmpdir()
    T.write(dir .. "/p/1.lua", [[return { name = "one", setup = function(bai)
      bai.hook("before_submit", function(props) return { nodeCount = props.nodeCount + 1 } end) end }]])
    T.write(dir .. "/p/2.lua", [[return { name = "two", setup = function(bai)
      bai.hook("before_submit", function(props) return { nodeCount = props.nodeCount * 10 } end) end }]])
    local r = T.run({ T.write(dir .. "/s.lua", emit_script) }, { env = { BAI_PLUGIN_PATH = dir .. "/p" } })
    assert.matches("nodeCount\t20\n", r.stdout)
  end)
end)

describe("plugin failures", function()
  local function run_with_plugin(source, args)
    local dir = T.tmpdir()
    local file = T.write(dir .. "/plugins/broken.lua", source)
    local script = T.write(dir .. "/s.lua", emit_script)
    local r = T.run(args or { script }, { env = { BAI_PLUGIN_PATH = dir .. "/plugins" } })
    return r, file
  end

  it("reports a syntax error naming the file, and the script still runs", function()
    local r, file = run_with_plugin("return {")
    assert.are.equal(0, r.status)
    assert.matches("script finished", r.stdout)
    assert.are.equal(("bai: plugin %s not loaded: %s:1: unexpected symbol near <eof>\n"):format(file, file), r.stderr)
  end)

  it("reports a plugin that raises while loading", function()
    local r, file = run_with_plugin("error('no config')")
    assert.are.equal(0, r.status)
    assert.are.equal(("bai: plugin %s failed to load: %s:1: no config\n"):format(file, file), r.stderr)
  end)

  it("reports a plugin that does not return a plugin table", function()
    local r, file = run_with_plugin("return 42")
    assert.are.equal(("bai: plugin %s not loaded: it must return a table { name=, version=, setup= }, got number\n"):format(file), r.stderr)
    r, file = run_with_plugin("return { name = 'x' }")
    assert.are.equal(("bai: plugin %s not loaded: field 'setup' must be a function\n"):format(file), r.stderr)
  end)

  it("reports a setup that raises, naming the plugin, and drops what it registered", function()
    local r, file = run_with_plugin([[return { name = "half", setup = function(bai)
      bai.hook("after_submit", function() print("must not run") end)
      error("setup broke")
    end }]])
    assert.are.equal(0, r.status)
    assert.not_matches("must not run", r.stdout)
    assert.are.equal(("bai: plugin 'half' (%s): setup failed: %s:3: setup broke\n"):format(file, file), r.stderr)
  end)

  it("names the hook and the plugin when a hook raises; other hooks and the script go on", function()
    local r, file = run_with_plugin([[return { name = "loud", setup = function(bai)
      bai.hook("after_submit", function() error("hook broke") end)
      bai.hook("before_submit", function(props) return { nodeCount = 5 } end)
    end }]])
    assert.are.equal(0, r.status)
    assert.are.equal("nodeCount\t5\nscript finished\n", r.stdout)
    assert.are.equal(("bai: plugin 'loud' (%s): hook 'after_submit' failed: %s:2: hook broke\n"):format(file, file), r.stderr)
  end)

  it("names the plugin, its file and the command when a plugin's command raises", function()
    local r, file = run_with_plugin([[return { name = "cmd", setup = function(bai)
      bai.command("explode", function() error("command broke") end)
    end }]], { "explode" })
    assert.are.equal(1, r.status)
    local at = file:gsub("%p", "%%%0")
    assert.matches(("^bai: plugin 'cmd' %%(%s%%): command 'explode' failed: %s:2: command broke\nstack traceback:\n")
      :format(at, at), r.stderr)
  end)

  it("refuses an unknown hook name with a suggestion", function()
    local r = run_with_plugin([[return { name = "typo", setup = function(bai)
      bai.hook("after_sumbit", function() end)
    end }]])
    assert.matches("setup failed: .*unknown hook 'after_sumbit' %(did you mean 'after_submit'%?%)\n$", r.stderr)
  end)

  it("refuses to emit or filter a hook that does not exist, naming it", function()
    local plugins = require "batchai.plugins"
    assert.has_error(function() plugins.emit("on_sweep_strat") end, "unknown hook 'on_sweep_strat' (did you mean 'on_sweep_start'?)")
    assert.has_error(function() plugins.filter("before_sumbit", {}) end, "unknown hook 'before_sumbit' (did you mean 'before_submit'?)")
  end)

  it("refuses a command that clashes with a built-in one", function()
    local r = run_with_plugin([[return { name = "clash", setup = function(bai)
      bai.command("help", function() end)
    end }]], { "help" })
    assert.are.equal(0, r.status)
    assert.matches("setup failed: .*command 'help' clashes with a built%-in command\n$", r.stderr)
  end)

  it("refuses bytecode plugins", function()
    local dir = T.tmpdir()
    local file = dir .. "/plugins/compiled.lua"
    T.write(file, string.dump(load("return { name = 'c', setup = function() end }")))
    local r = T.run({ "plugins" }, { env = { BAI_PLUGIN_PATH = dir .. "/plugins" } })
    assert.are.equal(1, r.status)
    assert.matches(("bai: plugin %s not loaded: bytecode plugins are not allowed %%(text only%%)\n"):format(file:gsub("%p", "%%%0")), r.stderr)
  end)

  it("reports an unreadable plugin folder once and carries on", function()
    local project = T.tmpdir()
    T.write(project .. "/.bai/plugins", "not a folder")
    local r = T.run({ "-e", "require 'batchai'; print('ran')" }, { cwd = project })
    assert.are.equal(0, r.status)
    assert.are.equal("ran\n", r.stdout)
    assert.are.equal(("bai: cannot read plugin folder %s/.bai/plugins: Not a directory\n"):format(project), r.stderr)
  end)

  it("reports a missing --plugin file", function()
    local r = T.run({ "--plugin", "/nonexistent/p.lua", "-e", "require 'batchai'" })
    assert.are.equal(0, r.status)
    assert.are.equal("bai: plugin /nonexistent/p.lua not loaded: no such file\n", r.stderr)
  end)

  it("refuses a second plugin with the same name", function()
    local dir = T.tmpdir()
    local first = T.write(dir .. "/p/a.lua", 'return { name = "same", setup = function() end }')
    local second = T.write(dir .. "/p/b.lua", 'return { name = "same", setup = function() end }')
    local r = T.run({ "plugins" }, { env = { BAI_PLUGIN_PATH = dir .. "/p" } })
    assert.are.equal(("bai: plugin %s not loaded: a plugin named 'same' was already loaded from %s\n"):format(second, first), r.stderr)
  end)
end)

describe("plugin isolation", function()
  it("does not let a plugin require modules from the current directory while loading", function()
    local dir = T.tmpdir()
    T.write(dir .. "/cwd/sneaky.lua", "return 'hijacked'")
    T.write(dir .. "/p/uses.lua", [[
      local ok = pcall(require, "sneaky")
      return { name = "uses", setup = function(bai)
        bai.command("probe", function() print(ok and "found" or "not found") end)
      end }]])
    local r = T.run({ "probe" }, { cwd = dir .. "/cwd", env = { BAI_PLUGIN_PATH = dir .. "/p" } })
    assert.are.equal("not found\n", r.stdout)
    -- Scripts keep lua's usual search path.
    r = T.run({ "-e", "require 'batchai'; print((require 'sneaky'))" }, { cwd = dir .. "/cwd" })
    assert.are.equal("hijacked\n", r.stdout)
  end)
end)

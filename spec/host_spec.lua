-- The host: lua-compatible command line, errors and exit statuses, commands.
local T = require "testkit"

describe("bai as a Lua interpreter", function()
  it("runs -e statements in order", function()
    local r = T.run({ "-e", "x = 20", "-e", "print(x + 1)" })
    assert.are.equal(0, r.status)
    assert.are.equal("21\n", r.stdout)
  end)

  it("sets arg as lua does", function()
    local dir = T.tmpdir()
    local script = T.write(dir .. "/args.lua", "print(#arg, arg[0], arg[1], arg[2], arg[-1], ...)")
    local r = T.run({ "-e", "", script, "one", "two" })
    assert.are.equal(0, r.status)
    assert.are.equal(("2\t%s\tone\ttwo\t\tone\ttwo\n"):format(script), r.stdout)
  end)

  it("runs a script with `bai run` too, even when it is named like a command", function()
    local dir = T.tmpdir()
    T.write(dir .. "/help", "print('script, not command', ...)")
    local r = T.run({ "run", "help", "x" }, { cwd = dir })
    assert.are.equal(0, r.status)
    assert.are.equal("script, not command\tx\n", r.stdout)
  end)

  it("requires modules with -l", function()
    local r = T.run({ "-l", "cjson", "-e", "print(cjson.encode({1,2}))" })
    assert.are.equal("[1,2]\n", r.stdout)
    r = T.run({ "-l", "J=cjson", "-e", "print(J.encode({3}))" })
    assert.are.equal("[3]\n", r.stdout)
  end)

  it("reads the script from standard input with -", function()
    local r = T.run({ "-", "a" }, { stdin = "print('stdin', ...)" })
    assert.are.equal("stdin\ta\n", r.stdout)
  end)

  it("runs standard input when it is not a terminal and nothing else is given", function()
    local r = T.run({}, { stdin = "print(6 * 7)" })
    assert.are.equal("42\n", r.stdout)
  end)

  it("prints the version with -v", function()
    local r = T.run({ "-v" })
    assert.are.equal(0, r.status)
    assert.matches("^bai %d+%.%d+%.%d+ %(Lua 5%.4", r.stdout)
  end)

  it("preloads cjson and finds the embedded modules from any directory", function()
    local r = T.run({ "-e", "print(require('batchai').version == require('batchai._host').version)" }, { cwd = "/" })
    assert.are.equal("true\n", r.stdout)
  end)

  it("runs LUA_INIT_5_4 or LUA_INIT (@FILE too) first, and ignores them with -E", function()
    local r = T.run({ "-e", "print(x)" }, { env = { LUA_INIT = "x = 'init'" } })
    assert.are.equal("init\n", r.stdout)
    local file = T.write(T.tmpdir() .. "/init.lua", "x = 'from file'")
    r = T.run({ "-e", "print(x)" }, { env = { LUA_INIT_5_4 = "@" .. file, LUA_INIT = "x = 'not this'" } })
    assert.are.equal("from file\n", r.stdout)
    r = T.run({ "-E", "-e", "print(x)" }, { env = { LUA_INIT = "x = 'init'" } })
    assert.are.equal("nil\n", r.stdout)
    r = T.run({ "-e", "print('not reached')" }, { env = { LUA_INIT = "error('bad init')" } })
    assert.are.equal(1, r.status)
    assert.are.equal("", r.stdout)
    assert.matches("^bai: LUA_INIT:1: bad init\nstack traceback:\n", r.stderr)
  end)

  it("turns warnings on with -W", function()
    assert.are.equal("Lua warning: hello\n", T.run({ "-W", "-e", "warn('hello')" }).stderr)
    assert.are.equal("", T.run({ "-e", "warn('hello')" }).stderr)
  end)

  it("loads lua/ from BAI_LUA_DIR instead of the embedded copy", function()
    local dir = T.tmpdir()
    T.write(dir .. "/batchai/pretty.lua", "return { format = function() return 'from disk' end }")
    local probe = "print(require('batchai.pretty').format(1))"
    assert.are.equal("from disk\n", T.run({ "-e", probe }, { env = { BAI_LUA_DIR = dir } }).stdout)
    assert.are.equal("1\n", T.run({ "-e", probe }, { env = { BAI_LUA_DIR = false } }).stdout)
  end)

  it("stops a running script on Ctrl-C (SIGINT) with 'interrupted!' and status 1, even in a sleep", function()
    local dir = T.tmpdir()
    -- A busy loop (the CPU-time limit ends it should SIGINT not), and a 60 s sleep that must end early.
    for _, body in ipairs({ "while true do end", "require('batchai._sys').sleep(60)" }) do
      local script = T.write(dir .. "/spin.lua", "io.open(arg[1], 'w'):close()\n" .. body .. "\n")
      os.remove(dir .. "/ready")
      local started = require("batchai._sys").monotime()
      local r = T.exec({ "sh", "-c", [[
        (ulimit -t 20; exec "$0" "$1" "$2") & pid=$!
        i=0; while [ ! -e "$2" ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i + 1)); done
        kill -INT $pid; wait $pid]], T.bai, script, dir .. "/ready" }, { env = { XDG_CONFIG_HOME = dir } })
      assert.are.equal(1, r.status, r.stderr)
      -- As with lua: a position when the signal lands inside a Lua function.
      assert.matches("^bai: [^\n]-interrupted!\nstack traceback:\n", r.stderr)
      assert.is_true(require("batchai._sys").monotime() - started < 50, body)  -- not the whole sleep
    end
  end)

  it("exits 0 after os.exit(true) and with the code of os.exit(n)", function()
    assert.are.equal(0, T.run({ "-e", "os.exit(true)" }).status)
    assert.are.equal(7, T.run({ "-e", "os.exit(7)" }).status)
  end)
end)

describe("bad input to the host", function()
  it("reports a missing script with one line and status 1", function()
    local r = T.run({ "/nonexistent/script.lua" })
    assert.are.equal(1, r.status)
    assert.are.equal("bai: cannot open /nonexistent/script.lua: No such file or directory\n", r.stderr)
  end)

  it("reports a syntax error as bai: FILE:LINE: message", function()
    local dir = T.tmpdir()
    local script = T.write(dir .. "/bad.lua", "x = = 1\n")
    local r = T.run({ script })
    assert.are.equal(1, r.status)
    assert.matches("^bai: " .. script:gsub("%p", "%%%0") .. ":1: unexpected symbol near '='", r.stderr)
  end)

  it("reports a runtime error with FILE:LINE and a traceback", function()
    local dir = T.tmpdir()
    local script = T.write(dir .. "/boom.lua", "local function f()\n  error('boom')\nend\nf()\n")
    local r = T.run({ script })
    assert.are.equal(1, r.status)
    assert.matches("^bai: " .. script:gsub("%p", "%%%0") .. ":2: boom\nstack traceback:\n", r.stderr)
    assert.matches("in local 'f'", r.stderr)
  end)

  it("reports an error object without a traceback when it has __tostring", function()
    local r = T.run({ "-e", "error(setmetatable({}, {__tostring = function() return 'custom' end}))" })
    assert.are.equal(1, r.status)
    assert.are.equal("bai: custom\n", r.stderr)
  end)

  it("treats an unknown option as a usage error (status 2, one hint)", function()
    local r = T.run({ "-x" })
    assert.are.equal(2, r.status)
    assert.are.equal("bai: unrecognized option '-x'\nTry 'bai help' for usage.\n", r.stderr)
    r = T.run({ "--frobnicate" })
    assert.are.equal(2, r.status)
    assert.matches("unrecognized option '%-%-frobnicate'", r.stderr)
  end)

  it("treats a missing option argument as a usage error", function()
    local r = T.run({ "-e" })
    assert.are.equal(2, r.status)
    assert.are.equal("bai: missing argument to option '-e'\nTry 'bai help' for usage.\n", r.stderr)
    r = T.run({ "run" })
    assert.are.equal(2, r.status)
    assert.matches("missing SCRIPT after 'run'", r.stderr)
  end)

  it("suggests the nearest command for an unknown one", function()
    local r = T.run({ "hepl" })
    assert.are.equal(2, r.status)
    assert.are.equal("bai: unknown command 'hepl' (did you mean 'help'?)\nTry 'bai help' for usage.\n", r.stderr)
  end)

  it("reports an error in a -e statement", function()
    local r = T.run({ "-e", "nil_function()" })
    assert.are.equal(1, r.status)
    assert.matches("^bai: %(command line%):1: attempt to call a nil value %(global 'nil_function'%)", r.stderr)
  end)
end)

describe("commands", function()
  it("prints the overview with help, -h and --help", function()
    for _, args in ipairs({ { "help" }, { "-h" }, { "--help" } }) do
      local r = T.run(args)
      assert.are.equal(0, r.status)
      assert.matches("usage: bai %[options%] %[SCRIPT %[ARGS%.%.%.%]%]", r.stdout)
      assert.matches("\n  repl ", r.stdout)
    end
  end)

  it("prints a command's help with help NAME and NAME --help", function()
    local a = T.run({ "help", "repl" })
    local b = T.run({ "repl", "--help" })
    assert.are.equal(0, a.status)
    assert.matches("^usage: bai repl\n", a.stdout)
    assert.are.equal(a.stdout, b.stdout)
  end)

  it("refuses an unknown help topic with a suggestion", function()
    local r = T.run({ "help", "plugin-apj" })
    assert.are.equal(2, r.status)
    assert.matches("no help for 'plugin%-apj' %(did you mean 'plugin%-api'%?%)", r.stderr)
  end)

  it("prints versions with bai version", function()
    local r = T.run({ "version" })
    assert.are.equal(0, r.status)
    assert.matches("^bai %d+%.%d+%.%d+\n  Lua 5%.4", r.stdout)
    assert.matches("lua%-cjson", r.stdout)
  end)

  it("rejects unexpected arguments and unknown options of a command", function()
    local r = T.run({ "version", "extra" })
    assert.are.equal(2, r.status)
    assert.are.equal("bai: unexpected argument 'extra'\nTry 'bai help version' for usage.\n", r.stderr)
    r = T.run({ "plugins", "--verbos" })
    assert.are.equal(2, r.status)
    assert.matches("unknown option '%-%-verbos'", r.stderr)
  end)
end)

describe("the test runner (spec/run.lua)", function()
  local run_lua = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]+$") or ".") .. "/run.lua"

  it("ends with 'N passed, N failed, N skipped' and exits non-zero on a failure, an error or a broken spec file", function()
    local dir = T.tmpdir()
    local mixed = T.write(dir .. "/mixed_spec.lua", [[
      describe("mixed", function()
        it("passes", function() end)
        it("fails", function() assert.are.equal(1, 2) end)
        it("errors", function() error("boom") end)
        pending("later")
      end)]])
    local r = T.exec({ T.bai, run_lua, mixed }, { env = { CI = "true" } })
    assert.are.equal(1, r.status)
    assert.matches("\n1 passed, 2 failed, 1 skipped\n$", r.stdout)
    local green = T.write(dir .. "/green_spec.lua", 'describe("green", function() it("passes", function() end) end)')
    r = T.exec({ T.bai, run_lua, green }, { env = { CI = "true" } })
    assert.are.equal(0, r.status, r.stdout)
    assert.matches("\n1 passed, 0 failed, 0 skipped\n$", r.stdout)
    local broken = T.write(dir .. "/broken_spec.lua", 'describe("never closed", function()')
    r = T.exec({ T.bai, run_lua, broken }, { env = { CI = "true" } })
    assert.are.equal(1, r.status, r.stdout)
    assert.matches("\n0 passed, 1 failed, 0 skipped\n$", r.stdout)
  end)
end)

describe("busted compatibility", function()
  it("runs busted with --lua pointing at bai", function()
    if not T.has_command("lua5.4") then return pending("lua5.4 not installed") end
    local dir = T.tmpdir()
    T.write(dir .. "/tiny_spec.lua", [[
      describe("inside bai", function()
        it("has the host", function() assert.truthy(require("batchai._host").version) end)
      end)]])
    local r = T.exec({ "lua5.4", "/usr/bin/busted", "--lua=" .. T.bai, "-o", "plainTerminal", "tiny_spec.lua" }, { cwd = dir })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("1 success", r.stdout)
  end)

  it("runs the project's own specs from the repository root with busted --lua", function()
    if not T.has_command("lua5.4") then return pending("lua5.4 not installed") end
    local spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]+$") or "."
    local root = require("batchai._sys").realpath(spec_dir .. "/..")
    local r = T.exec({ "lua5.4", "/usr/bin/busted", "--lua=" .. T.bai, "-o", "plainTerminal",
      "--filter=the.version.with.%-v", "spec/host_spec.lua" },  -- busted re-runs itself unquoted: no spaces
      { cwd = root, env = { BAI = false, BAI_SPEC_TMP = false } })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("1 success / 0 failures / 0 errors", r.stdout)
  end)
end)

describe("make install", function()
  it("installs a binary that runs from any directory with its modules", function()
    local build = T.bai:match("^(.*)/bin/bai$")
    if not build or not T.has_command("make") then return pending("not running from a build tree") end
    local prefix = T.tmpdir() .. "/prefix"
    local r = T.exec({ "make", "-s", "install-files", "BUILD=" .. build, "PREFIX=" .. prefix })
    assert.are.equal(0, r.status, r.stderr)
    local installed = prefix .. "/bin/bai"
    r = T.exec({ installed, "-e", "print(require('batchai').version, require('batchai._host').lib_dir())" },
      { cwd = "/", env = { BAI_LUA_DIR = false, BAI_LIB_DIR = false } })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^%d+%.%d+%.%d+\t" .. prefix:gsub("%p", "%%%0") .. "/bin/%.%./lib/bai\n$", r.stdout)
    r = T.exec({ installed, "help" }, { cwd = "/" })
    assert.are.equal(0, r.status)
  end)
end)

describe("batchai.util's files", function()
  local util = require "batchai.util"

  it("writes a file in place and reads it back", function()
    local path = T.tmpdir() .. "/f.txt"
    assert.is_true(util.write_file(path, "one\n"))
    assert.are.equal("one\n", util.read_file(path))
    assert.is_true(util.write_file(path, ""))
    assert.are.equal("", util.read_file(path))
  end)

  it("returns nil and an error naming the path when it cannot", function()
    local path = T.tmpdir() .. "/missing/f.txt"
    local ok, err = util.write_file(path, "x")
    assert.is_nil(ok)
    assert.are.equal(path .. ": No such file or directory", err)
    ok, err = util.read_file(path)
    assert.is_nil(ok)
    assert.are.equal(path .. ": No such file or directory", err)
  end)
end)

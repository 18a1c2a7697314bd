-- The REPL: evaluation semantics, the printer, completion, and a real terminal.
local T = require "testkit"
local pretty = require "batchai.pretty"
local repl = require "batchai.repl"

describe("the REPL without a terminal", function()
  it("prints expression values and runs statements", function()
    local r = T.run({ "repl" }, { stdin = "1 + 1\nx = 'a'\nx .. 'b'\n=x\n" })
    assert.are.equal(0, r.status)
    assert.are.equal('2\n"ab"\n"a"\n', r.stdout)
  end)

  it("continues incomplete statements", function()
    local r = T.run({ "repl" }, { stdin = "function f(n)\n  return n * 2\nend\nf(21)\n" })
    assert.are.equal("42\n", r.stdout)
  end)

  it("reports errors, goes on, and exits 1 when a statement failed", function()
    local r = T.run({ "repl" }, { stdin = "error('bad')\n'after'\nx = = 1\n" })
    assert.are.equal(1, r.status)
    assert.are.equal('"after"\n', r.stdout)
    assert.matches("^stdin:1: bad\n", r.stderr)
    assert.matches("stdin:1: unexpected symbol near '='\n$", r.stderr)
  end)

  it("has the batchai module as the global bai", function()
    local r = T.run({ "repl" }, { stdin = "bai.version == require('batchai').version\n" })
    assert.are.equal("true\n", r.stdout)
  end)

  it("runs -i after a script", function()
    local dir = T.tmpdir()
    local script = T.write(dir .. "/s.lua", "answer = 42")
    local r = T.run({ "-i", script }, { stdin = "answer\n" })
    assert.matches("^bai %S+ %(Lua 5%.4[^\n]*\n42\n$", r.stdout)
  end)
end)

describe("the printer", function()
  it("prints nested tables with the array part first and sorted keys", function()
    assert.are.equal('{ "x", "y", a = 1, b = { true } }', pretty.format({ "x", "y", b = { true }, a = 1 }))
    assert.are.equal('{ [1.5] = 1, ["end"] = 2, ["two words"] = 3 }', pretty.format({ [1.5] = 1, ["end"] = 2, ["two words"] = 3 }))
  end)

  it("marks cycles", function()
    local t = {}
    t.self = t
    assert.are.equal("{ self = <cycle: " .. tostring(t) .. "> }", pretty.format(t))
  end)

  it("elides long tables and deep nesting", function()
    local big = {}
    for i = 1, 100 do big[i] = i end
    local text = pretty.format(big)
    assert.matches(", 40,%s+%.%.%. %(60 more%)\n}$", text)
    assert.are.equal("{ a = { b = {...} } }", pretty.format({ a = { b = { c = 1 } } }, { max_depth = 2 }))
  end)

  it("quotes strings and keeps float and integer apart", function()
    assert.are.equal('"a\\nb\\t\\"q\\"\\\\"', pretty.format('a\nb\t"q"\\'))
    assert.are.equal("1.0", pretty.format(1.0))
    assert.are.equal("1", pretty.format(1))
  end)

  it("uses __tostring when a value has one", function()
    local v = setmetatable({}, { __tostring = function() return "JobProperties{...}" end })
    assert.are.equal("{ job = JobProperties{...} }", pretty.format({ job = v }))
  end)
end)

describe("completion", function()
  it("completes globals and keywords", function()
    assert.are.same({ "print" }, repl.complete("pri", 1, 3))
    assert.are.same({ "function" }, repl.complete("x = functi", 5, 10))
  end)

  it("completes fields of nested tables", function()
    local c = repl.complete("string.fo", 1, 9)
    assert.are.same({ "string.format" }, c)
    c = repl.complete("print(table.u", 7, 13)
    assert.are.same({ "table.unpack" }, c)
  end)

  it("completes methods after a colon, from the metatable's __index", function()
    _G.completion_probe = "text"
    local c = repl.complete("completion_probe:up", 1, 19)
    assert.are.same({ "completion_probe:upper" }, c)
    _G.completion_probe = nil
  end)

  it("asks a value's __complete for its names", function()
    _G.completion_probe = setmetatable({}, { __complete = function() return { "alpha", "beta" } end })
    assert.are.same({ "completion_probe.alpha", "completion_probe.beta" }, repl.complete("completion_probe.", 1, 17))
    _G.completion_probe = nil
  end)

  it("completes the lazily loaded fields of bai", function()
    _G.bai = require "batchai"
    local c = repl.complete("bai.plu", 1, 7)
    assert.are.same({ "bai.plugins" }, c)
  end)
end)

describe("the REPL on a terminal", function()
  -- Driven through tmux: a real pseudo-terminal, keys sent, the screen read back.
  local session = "bai-repl-" .. require("batchai._sys").getpid()
  local state

  local function tmux(...)
    local words = { "tmux", "-L", session, ... }
    return T.exec(words)
  end
  local function keys(text) tmux("send-keys", "-t", session, "-l", text) end
  local function press(key) tmux("send-keys", "-t", session, key) end
  -- The visible screen without trailing blank space.
  local function screen() return (tmux("capture-pane", "-p", "-t", session).stdout:gsub("%s+$", "")) end
  local function wait_for(pattern)
    for _ = 1, 100 do
      local s = screen()
      if s:find(pattern) then return s end
      require("batchai._sys").sleep(0.05)
    end
    error("timed out waiting for " .. pattern .. " in:\n" .. screen())
  end
  local function start()
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30",
      ("env XDG_STATE_HOME=%s XDG_CONFIG_HOME=%s %s; sleep 60"):format(state, state, T.quote(T.bai)))
    wait_for("\n>$")
  end

  before_each(function()
    if not T.has_command("tmux") then return end
    state = T.tmpdir()
  end)
  after_each(function()
    if T.has_command("tmux") then tmux("kill-server") end
  end)

  it("edits lines, completes with Tab, and interrupts with Ctrl-C", function()
    if not T.has_command("tmux") then return pending("tmux not installed") end
    start()
    keys("string.fo")
    press("Tab")
    keys('("%d", 7)')
    press("Enter")
    wait_for('"7"')
    keys("while true do end")
    press("Enter")
    require("batchai._sys").sleep(0.2)
    press("C-c")
    wait_for("interrupted!")
    keys("'still here'")
    press("Enter")
    wait_for('"still here"')
    keys("unfinished(")
    press("C-c")
    keys("1 + 2")
    press("Enter")
    local s = wait_for("\n3\n>$")
    assert.matches("\n> unfinished%(%^C\n> 1 %+ 2\n3\n>$", s)
  end)

  it("survives a completer that raises: Tab completes nothing, the line stays", function()
    if not T.has_command("tmux") then return pending("tmux not installed") end
    start()
    keys("require('batchai._readline').set_completer(function() error('broken completer') end)")
    press("Enter")
    keys("pri")
    press("Tab")
    keys("nt('typed', 1 + 1)")
    press("Enter")
    local s = wait_for("\ntyped +2\n>$")
    assert.matches("completer'%) end%)\n> print%('typed', 1 %+ 1%)\ntyped +2\n>$", s)
  end)

  it("keeps history across sessions", function()
    if not T.has_command("tmux") then return pending("tmux not installed") end
    start()
    keys("remembered = 99")
    press("Enter")
    press("C-d")
    wait_for("remembered = 99\n>%s*$")
    tmux("kill-server")
    start()
    press("Up")
    wait_for("> remembered = 99")
    assert.matches("remembered = 99\n", T.read(state .. "/bai/history"))
  end)
end)

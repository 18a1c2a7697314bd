-- bai.shell: POSIX quoting of hostile values, checked by a real shell.
local T = require "testkit"
local bai = require "batchai"
local shell = bai.shell

-- The words a real /bin/sh sees for a command-line tail, one per line of a
-- file written by printf (NUL-separated, so newlines inside words survive).
local function sh_words(tail)
  local dir = T.tmpdir()
  local out = dir .. "/words"
  local script = "printf '%s\\0' " .. tail .. " > " .. T.quote(out)
  local r = T.exec({ "sh", "-c", script })
  assert.are.equal(0, r.status, r.stderr)
  local data = T.read(out)
  local words = {}
  for w in data:gmatch("([^%z]*)%z") do words[#words + 1] = w end
  return words
end

local HOSTILE = {
  "'; rm -rf ~", "$(touch /tmp/bai-pwned)", "`id`", "a b", "tab\there", "new\nline", "it's",
  '"double"', "back\\slash", "*", "?", "[a]", "~", "~/x", "$HOME", "${HOME}", "!event", "#comment",
  "a;b", "a&b", "a|b", "a>b", "<in", "(sub)", "{a,b}", "-flag", "--opt=x", "=start", "",
  "ünïcødé", "%", "@", "\127del", " lead", "trail ",
}

describe("bai.shell.quote", function()
  it("keeps every hostile value one literal word in a real shell", function()
    local parts = {}
    for i, v in ipairs(HOSTILE) do parts[i] = shell.quote(v) end
    local words = sh_words(table.concat(parts, " "))
    assert.are.same(HOSTILE, words)
    assert.is_nil(io.open("/tmp/bai-pwned", "r"))
  end)

  it("leaves safe words alone and single-quotes the rest", function()
    assert.are.equal("train.py", shell.quote("train.py"))
    assert.are.equal("--lr=0.1", shell.quote("--lr=0.1"))
    assert.are.equal("''", shell.quote(""))
    assert.are.equal("''\\''; rm -rf ~'", shell.quote("'; rm -rf ~"))
    assert.are.equal("'a b'", shell.quote("a b"))
    assert.are.equal("'~'", shell.quote("~"))
    assert.are.equal("'=x'", shell.quote("=x"))
  end)

  it("writes numbers so that they read back exactly", function()
    assert.are.equal("32", shell.quote(32))
    assert.are.equal("0.1", shell.quote(0.1))
    assert.are.equal("1e-05", shell.quote(1e-5))
    assert.are.equal("2.0", shell.quote(2.0))
    assert.are.equal("0.30000000000000004", shell.quote(0.1 + 0.2))
    assert.are.equal("true", shell.quote(true))
  end)

  it("refuses what cannot be an argument", function()
    assert.has_error(function() shell.quote(nil) end, "bad argument #1 to 'quote' (string, number or boolean expected, got no value)")
    assert.has_error(function() shell.quote({}) end, "bad argument #1 to 'quote' (string, number or boolean expected, got table)")
    assert.has_error(function() shell.quote("a\0b") end, "bad argument #1 to 'quote' (a shell argument cannot contain a NUL byte)")
    local ok, err = pcall(shell.quote, 0 / 0)
    assert.is_false(ok)
    assert.matches("cannot pass [-]?nan as an argument", err)
  end)

  it("blames the caller's line, however it is reached", function()
    local src = debug.getinfo(1, "S").short_src
    local here = debug.getinfo(1, "l").currentline
    local _, err = pcall(function() local w = shell.quote(1 / 0) return w end)
    assert.are.equal(("%s:%d: bai.shell: cannot pass inf as an argument"):format(src, here + 1), err)
    _, err = pcall(function() local w = shell.number(-1 / 0) return w end)
    assert.are.equal(("%s:%d: bai.shell: cannot pass -inf as an argument"):format(src, here + 3), err)
    _, err = pcall(function() local w = shell.args { a = "x\0y" } return w end)
    assert.are.equal(("%s:%d: bad argument #1 to 'quote' (a shell argument cannot contain a NUL byte)"):format(src, here + 5), err)
    _, err = pcall(function() local w = shell.join { 1, 1 / 0 } return w end)
    assert.are.equal(("%s:%d: bad argument #1 to 'join' (item 2: bai.shell: cannot pass inf as an argument)"):format(src, here + 7), err)
  end)
end)

describe("bai.shell.join", function()
  it("joins quoted words that a shell splits back exactly", function()
    local list = { "--lr", 0.001, "--name", "'; rm -rf ~", "--empty", "", "--n", 3 }
    assert.are.same({ "--lr", "0.001", "--name", "'; rm -rf ~", "--empty", "", "--n", "3" }, sh_words(shell.join(list)))
    assert.are.equal("--lr 0.001 --name ''\\''; rm -rf ~'", shell.join { "--lr", 0.001, "--name", "'; rm -rf ~" })
  end)

  it("refuses holes and bad items, naming the item", function()
    assert.has_error(function() shell.join { "a", nil, "c" } end, "bad argument #1 to 'join' (item 2 is nil: the array has a hole)")
    assert.has_error(function() shell.join { "a", {} } end, "bad argument #1 to 'join' (item 2: string, number or boolean expected, got table)")
    assert.has_error(function() shell.join("a b") end, "bad argument #1 to 'join' (array expected, got string)")
  end)
end)

describe("bai.shell.args and bai.shell.env", function()
  it("turns a point into options in its key order", function()
    local p = bai.sweep.grid({ lr = { 0.1 }, batch = { 32 }, name = { "a b" }, fast = { true }, slow = { false } },
      { order = { "lr", "batch", "name", "fast", "slow" } }):at(1)
    assert.are.equal("--lr 0.1 --batch 32 --name 'a b' --fast", shell.args(p))
    assert.are.equal("--lr=0.1 --batch=32 '--name=a b' --fast", shell.args(p, { style = "=" }))
    assert.are.equal("-lr 0.1", shell.args(p, { prefix = "-", only = { "lr" } }))
    assert.are.same({ "--lr", "0.1", "--batch", "32", "--name", "a b", "--fast" }, sh_words(shell.args(p)))
  end)

  it("turns a point into environment variables", function()
    local p = bai.sweep.grid { lr = { 0.001 }, ["model-name"] = { "x" } }:at(1)
    assert.are.same({ { name = "HP_LR", value = "0.001" }, { name = "HP_MODEL_NAME", value = "x" } }, shell.env(p, { prefix = "hp_" }))
    assert.has_error(function() shell.env { a_b = 1, ["a-b"] = 2 } end, "bad argument #1 to 'env' (parameters 'a-b' and 'a_b' both become A_B)")
  end)
end)

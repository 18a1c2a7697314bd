-- Shell completion scripts: generated from the command tables, kept current, and working.
local T = require "testkit"

local root = (debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]+$") or ".")
local dir = root .. "/scripts/completion"

describe("shell completion", function()
  it("is what the generator makes from the current command tables", function()
    local out = T.tmpdir()
    local r = T.run({ dir .. "/generate.lua", out })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal(T.read(out .. "/bai.bash"), T.read(dir .. "/bai.bash"),
      "scripts/completion/bai.bash is stale: run bai scripts/completion/generate.lua")
    assert.are.equal(T.read(out .. "/_bai"), T.read(dir .. "/_bai"),
      "scripts/completion/_bai is stale: run bai scripts/completion/generate.lua")
  end)

  local function complete(line)
    local words = {}
    for w in line:gmatch("%S+") do words[#words + 1] = w end
    if line:sub(-1) == " " then words[#words + 1] = "" end
    local quoted = {}
    for i, w in ipairs(words) do quoted[i] = T.quote(w) == w and w or T.quote(w) end
    local script = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _bai; printf '%%s\\n' \"${COMPREPLY[@]}\"")
      :format(T.quote(dir .. "/bai.bash"), table.concat(quoted, " "):gsub("''", "\"\""), #words - 1)
    local r = T.exec({ "bash", "-c", script })
    assert.are.equal(0, r.status, r.stderr)
    local got = {}
    for w in r.stdout:gmatch("[^\n]+") do got[#got + 1] = w end
    return got
  end

  it("completes commands, sub-commands, options and their values in bash", function()
    assert.are.same({ "job" }, complete("bai jo"))
    assert.are.same({ "terminate" }, complete("bai job te"))
    assert.are.same({ "--no-wait" }, complete("bai job create --no"))
    assert.are.same({ "json", "jsonl" }, complete("bai job list -o js"))
    assert.are.same({ "--location" }, complete("bai workspace create --loc"))
    assert.are.same({ "--output" }, complete("bai experiment list --ou"))
    assert.are.same({ "--help" }, complete("bai config show --he"))
    assert.are.same({ "--plugin" }, complete("bai --pl"), "bai's own options, from bai --help")
    assert.are.same({ "sweep" }, complete("bai help sw"))
    assert.are.same({ "stdout" }, complete("bai job logs x --stream stdo"))
  end)

  it("completes a file after job create -f, and nothing after job logs -f (a flag there)", function()
    local dir = T.tmpdir()
    T.write(dir .. "/job.json", "{}")
    assert.are.same({ dir .. "/job.json" }, complete("bai job create x -f " .. dir .. "/jo"))
    assert.are.same({}, complete("bai job logs x -f " .. dir .. "/jo"))
    assert.are.same({}, complete("bai job files x --path " .. dir .. "/jo"), "--path is on the endpoint")
  end)

  it("is valid zsh", function()
    if not T.has_command("zsh") then
      pending("zsh is not installed")
      return
    end
    local r = T.exec({ "zsh", "-n", dir .. "/_bai" })
    assert.are.equal(0, r.status, r.stderr)
  end)
end)

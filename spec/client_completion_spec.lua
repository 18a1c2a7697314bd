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

  -- Completes each line (as if Tab was pressed at its end) in an interactive
  -- zsh driven through zpty; returns the command lines after completion.
  local ZSH_DRIVER = [==[
zmodload zsh/zpty
dir=$1 outfile=$2; shift 2
zpty -b z zsh -f -i
zpty -w z "fpath=($dir \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "show-buffer() { print -r -- \"\$BUFFER\" >> $outfile; BUFFER=''; }; zle -N show-buffer; bindkey '^X' show-buffer"
for line in "$@"; do zpty -n -w z "$line"$'\t\x18'; done
zpty -w z "print -r -- END >> $outfile"
for i in {1..600}; do
  [[ -f $outfile ]] && grep -q '^END$' $outfile && break
  sleep 0.1
done
zpty -d z
]==]
  local function zsh_complete(lines)
    local tmp = T.tmpdir()
    local driver = T.write(tmp .. "/driver.zsh", ZSH_DRIVER)
    local words = { "zsh", "-f", driver, dir, tmp .. "/out" }
    for _, line in ipairs(lines) do words[#words + 1] = line end
    local r = T.exec(words)
    assert.are.equal(0, r.status, r.stderr)
    local got = {}
    for line in (T.read(tmp .. "/out") or ""):gmatch("[^\n]+") do got[#got + 1] = line end
    assert.are.equal("END", table.remove(got), "zsh did not finish")
    return got
  end

  it("is valid zsh, and completes commands, sub-commands, options and their values in zsh", function()
    if not T.has_command("zsh") then
      pending("zsh is not installed")
      return
    end
    local r = T.exec({ "zsh", "-n", dir .. "/_bai" })
    assert.are.equal(0, r.status, r.stderr)
    local files = T.tmpdir()
    T.write(files .. "/job.json", "{}")
    assert.are.same({
      "bai workspace ",
      "bai job terminate ",
      "bai job create x --no-wait ",
      "bai workspace create --location ",
      "bai experiment list --output ",
      "bai job list -o json",
      "bai job logs x --stream stdout ",
      "bai job create x -f " .. files .. "/job.json ",
      "bai job logs x -f " .. files .. "/jo",
    }, zsh_complete {
      "bai wor", "bai job te", "bai job create x --no", "bai workspace create --loc", "bai experiment list --outp",
      "bai job list -o js", "bai job logs x --stream stdo", "bai job create x -f " .. files .. "/jo",
      "bai job logs x -f " .. files .. "/jo",
    })
  end)
end)

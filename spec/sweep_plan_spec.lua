-- From points to trials: exact JSON, content hashes, job names, collisions, previews.
local bai = require "batchai"
local S = bai.sweep
local codec = require "batchai.sweep.codec"
local naming = require "batchai.sweep.naming"

local function job(command)
  return {
    cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
    customToolkitSettings = { commandLine = command },
  }
end

local function template(p)
  return job("python3 train.py " .. bai.shell.args(p))
end

describe("sweep JSON codec", function()
  it("keeps integers and floats apart through a round trip", function()
    local text = codec.encode { a = 32, b = 32.0, c = 0.1, d = 1e-5, e = -0.0, f = 2 ^ 53 }
    assert.are.equal('{"a":32,"b":32.0,"c":0.1,"d":1e-05,"e":-0.0,"f":9007199254740992.0}', text)
    local back = codec.decode(text)
    assert.are.equal("integer", math.type(back.a))
    assert.are.equal("float", math.type(back.b))
    assert.are.same({ a = 32, b = 32.0, c = 0.1, d = 1e-5, e = -0.0, f = 2 ^ 53 }, back)
  end)

  it("sorts keys, escapes strings and reads unicode escapes", function()
    assert.are.equal('{"a":[1,"x\\n\\"y\\""],"b":{"c":true}}', codec.encode { b = { c = true }, a = { 1, 'x\n"y"' } })
    assert.are.equal("é😀", codec.decode('"\\u00e9\\ud83d\\ude00"'))
  end)

  it("reads the NaN and Infinity that Python writes, and writes null in strict mode", function()
    local v = codec.decode('{"loss": NaN, "best": -Infinity}')
    assert.is_true(v.loss ~= v.loss)
    assert.are.equal(-math.huge, v.best)
    assert.are.equal('{"loss":null}', codec.encode({ loss = 0 / 0 }, { strict = true }))
  end)

  it("says where a text is not JSON", function()
    assert.are.same({ nil, "invalid JSON at line 2 column 8: ',' or '}' expected" }, { codec.decode('{"a":1,\n "b":2 "c"}') })
    assert.are.same({ nil, "invalid JSON at line 1 column 3: trailing characters" }, { codec.decode("1 2") })
  end)

  it("hashes the same text to the same 16 hex digits and other texts elsewhere", function()
    local h = codec.hash("hello")
    assert.matches("^%x+$", h)
    assert.are.equal(16, #h)
    assert.are.equal(h, codec.hash("hello"))
    assert.are_not.equal(h, codec.hash("hellp"))
    assert.are_not.equal(codec.hash(string.rep("a", 40)), codec.hash(string.rep("a", 41)))
  end)
end)

describe("sweep job names", function()
  it("fills templates with parameters and formats", function()
    local name = naming.compile("lr{lr}-b{batch}-{opt}")
    assert.are.equal("lr0.001-b32-adam", name({ lr = 0.001, batch = 32, opt = "adam" }, { index = 1, hash = "" }))
    local fmt = naming.compile("lr{lr:.0e}-{index:03d}-{sweep}-{hash}")
    assert.are.equal("lr1e-03-007-s-0123456789ab", fmt({ lr = 0.001 }, { index = 7, hash = "0123456789abcdef", sweep = "s" }))
    local optional = naming.compile("o{momentum?}")
    assert.are.equal("o", optional({}, { index = 1, hash = "" }))
  end)

  it("reports malformed templates and missing parameters", function()
    assert.has_error(function() naming.compile("lr{lr") end, 'job name template "lr{lr": \'{\' at 3 is not closed')
    assert.has_error(function() naming.compile("a{}") end, 'job name template "a{}": bad placeholder {}')
    local f = naming.compile("lr{lr}")
    assert.has_error(function() f({}, { index = 4, hash = "" }) end,
      'job name template "lr{lr}": trial 4 has no parameter \'lr\' (write {lr?} if it may be absent)')
  end)

  it("sanitizes to the Batch AI name rules and keeps long names distinct", function()
    assert.are.equal("lr0_001-b32", naming.sanitize("lr0.001-b32"))
    assert.are.equal("a_b_c___", naming.sanitize("a b/c'é"))
    local long1 = naming.sanitize(string.rep("x", 70) .. "1")
    local long2 = naming.sanitize(string.rep("x", 70) .. "2")
    assert.are.equal(64, #long1)
    assert.are_not.equal(long1, long2)
    assert.is_true(naming.valid(long1))
    assert.is_nil(naming.sanitize(""))
    assert.are.equal("name-r2", naming.retry_name("name", 2))
    assert.are.equal(64, #naming.retry_name(string.rep("y", 64), 12))
  end)
end)

describe("sweep plans", function()
  local space = S.grid { lr = S.logspace(1e-3, 1e-1, 3), batch = { 32, 64 } }

  it("names every trial from the template and hashes each job", function()
    local plan = assert(S.plan(space, template, { name = "lr-sweep", job_name = "lr{lr}-b{batch}" }))
    assert.are.equal(6, #plan)
    local names = {}
    for i, t in ipairs(plan.trials) do
      names[i] = t.name
      assert.are.equal(i, t.index)
      assert.are.equal(16, #t.hash)
    end
    assert.are.same({ "lr0_001-b32", "lr0_01-b32", "lr0_1-b32", "lr0_001-b64", "lr0_01-b64", "lr0_1-b64" }, names)
    assert.are.equal('{"batch":64,"lr":0.01}', plan.trials[5].point)
    assert.are.same({ batch = 64, lr = 0.01 }, plan:point(plan.trials[5]))
  end)

  it("names trials by sweep and content hash by default, the same on every run", function()
    local a = assert(S.plan(space, template, { name = "lr-sweep" }))
    local b = assert(S.plan(space, template, { name = "lr-sweep" }))
    assert.matches("^lr%-sweep%-%x%x%x%x%x%x%x%x%x%x%x%x$", a.trials[1].name)
    for i = 1, #a do assert.are.equal(a.trials[i].name, b.trials[i].name) end
  end)

  it("refuses two different jobs under one name before anything is submitted", function()
    local plan, err = S.plan(space, template, { name = "s", job_name = "b{batch}" })
    assert.is_nil(plan)
    assert.are.equal('trials 1 {"batch":32,"lr":0.001} and 2 {"batch":32,"lr":0.01} are different jobs with the same name \'b32\'; make the job name template tell them apart (for example add {hash})', err)
  end)

  it("catches names that only sanitizing made equal", function()
    local s = S.grid { tag = { "a.b", "a_b" } }
    local plan, err = S.plan(s, template, { name = "s", job_name = "t-{tag}" })
    assert.is_nil(plan)
    assert.matches("are different jobs with the same name 't%-a_b'", err)
  end)

  it("refuses the same job twice", function()
    local plan, err = S.plan(S.grid { seed = { 1, 2 } }, function() return job("true") end, { name = "s" })
    assert.is_nil(plan)
    assert.matches("^trials 1 {\"seed\":1} and 2 {\"seed\":2} are the same job 's%-%x+'; a sweep runs each job once", err)
    assert.truthy(S.plan(S.grid { seed = { 1, 2 } }, function() return job("true") end, { name = "s", job_name = "rep{index}" }))
  end)

  it("names the trial whose template fails or returns nothing", function()
    local _, err = S.plan(space, function(p) if p.batch == 64 then error("no 64", 0) end return template(p) end, { name = "s" })
    assert.are.equal('trial 4 {"batch":64,"lr":0.001}: the template failed: no 64', err)
    _, err = S.plan(space, function() end, { name = "s" })
    assert.are.equal('trial 1 {"batch":32,"lr":0.001}: the template returned nothing (a JobProperties value is needed)', err)
  end)

  it("validates every job with the typed schema, naming the trial and the field", function()
    local _, err = S.plan(space, function(p)
      local j = template(p)
      if p.batch == 64 then j.nodeCount = 0 end
      return j
    end, { name = "s" })
    assert.are.equal('trial 4 {"batch":64,"lr":0.001}: JobProperties.nodeCount: integer >= 1 expected, got 0', err)
    _, err = S.plan(space, function() return bai.PyTorchSettings { pythonScriptFilePath = "x.py" } end, { name = "s" })
    assert.are.equal('trial 1 {"batch":32,"lr":0.001}: the template returned a PyTorchSettings value (a JobProperties value is needed)', err)
    local base = bai.JobProperties(job("true"))
    local plan = assert(S.plan(space, function(p)
      return base:with { customToolkitSettings = { commandLine = "python3 train.py " .. bai.shell.args(p) } }
    end, { name = "s" }))
    assert.are.equal(6, #plan)
  end)

  it("caps the trials with max_total", function()
    local plan = assert(S.plan(space, template, { name = "s", max_total = 4 }))
    assert.are.equal(4, #plan)
  end)

  it("rebuilds a job from its point and notices a template that is not deterministic", function()
    local plan = assert(S.plan(space, template, { name = "s", keep_jobs = false }))
    assert.is_true(bai.JobProperties(template(plan:point(plan.trials[3]))) == plan:job(3))
    local calls = 0
    local flaky = assert(S.plan(space, function(p) calls = calls + 1 return job("run " .. calls) end, { name = "s", keep_jobs = false }))
    assert.has_error(function() flaky:job(2) end,
      "trial 2 (" .. flaky.trials[2].name .. "): the template returned a different job than before; templates must be deterministic")
  end)

  it("previews the count, the names and the parameters, submitting nothing", function()
    local out = {}
    local sink = { write = function(_, ...) for _, s in ipairs { ... } do out[#out + 1] = s end end }
    local plan = S.preview(space, template, { name = "lr-sweep", job_name = "lr{lr}-b{batch}", output = sink })
    assert.are.equal(6, #plan)
    assert.are.equal([[
sweep lr-sweep: 6 trials
  #  name         batch     lr
  1  lr0_001-b32     32  0.001
  2  lr0_01-b32      32   0.01
  3  lr0_1-b32       32    0.1
  4  lr0_001-b64     64  0.001
  5  lr0_01-b64      64   0.01
  6  lr0_1-b64       64    0.1

6 jobs valid, all names distinct; nothing submitted (dry run).
]], table.concat(out))
  end)

  it("lists every invalid trial in a preview", function()
    local ok, err = pcall(S.preview, space, function(p) if p.lr > 0.005 then return nil end return template(p) end,
      { name = "s", output = { write = function() end } })
    assert.is_false(ok)
    assert.matches("4 trials are invalid:\n  trial 2 ", err)
  end)

  it("shortens long previews", function()
    local big = S.grid { a = S.range(1, 100) }
    local out = {}
    S.preview(big, template, { name = "s", job_name = "a{a}", limit = 10, output = { write = function(_, s) out[#out + 1] = s end } })
    local text = table.concat(out)
    assert.matches("\n +5  a5 +5\n +%.%.%. 90 more %.%.%.\n +96  a96 +96\n", text)
  end)
end)

describe("exp:submit misuse", function()
  it("blames the caller's line, before any request", function()
    local exp = bai.experiment { endpoint = "https://127.0.0.1:9", subscription = "s", resource_group = "g",
      workspace = "w", name = "e" }
    local src = debug.getinfo(1, "S").short_src
    local here = debug.getinfo(1, "l").currentline
    local _, err = pcall(function() local r = exp:submit({ a = { 1 } }, template, { nmae = "x" }) return r end)
    assert.are.equal(("%s:%d: invalid option 'nmae' to exp:submit (did you mean 'name'?)"):format(src, here + 1), err)
    _, err = pcall(function() local r = exp:submit({ a = { 1 } }, template, { concurrency = 0 }) return r end)
    assert.are.equal(("%s:%d: exp:submit: 'concurrency' must be an integer >= 1, got 0"):format(src, here + 3), err)
    _, err = pcall(function() local r = exp:submit({ a = { 1 } }, function() end, { name = "s", dry_run = true }) return r end)
    assert.matches("^" .. src:gsub("%p", "%%%0") .. ":" .. (here + 5) .. ": trial 1 ", err)
  end)

  it("names the argument or option whose type is wrong, at the caller's line", function()
    local exp = bai.experiment { endpoint = "https://127.0.0.1:9", subscription = "s", resource_group = "g",
      workspace = "w", name = "e" }
    local src = debug.getinfo(1, "S").short_src
    local cases = {
      { { 3, template }, "exp:submit: 'space' must be a space or a table of parameters, got number" },
      { { { a = { 1 } }, 3 }, "exp:submit: 'template' must be a function(point) returning a job, got number" },
      { { { a = { 1 } }, template, { interval = "x" } }, "exp:submit: 'interval' must be a number of seconds > 0, got string" },
      { { { a = { 1 } }, template, { on_state_change = 3 } },
        "exp:submit: 'on_state_change' must be a function(job_name, new_state, old_state, job), got number" },
      { { { a = { 1 } }, template, { job_name = 3 } },
        "exp:submit: 'job_name': job name template must be a non-empty string or a function, got number" },
      { { { a = { 1 } }, template, { dir = 3 } }, "exp:submit: 'dir' must be a non-empty string, got number" },
      { { { a = { 1 } }, template, { limit = "x" } }, "exp:submit: 'limit' must be an integer >= 1, got x" },
      { { { a = { 1 } }, template, { progress = 3 } }, "exp:submit: 'progress' must be true, false or \"plain\", got number" },
      { { { a = { 1 } }, template, { metrics = { stdout = 3 } } },
        "exp:submit: 'metrics.stdout' must be a table of metric = Lua pattern, got number" },
      { { { a = { 1 } }, template, { metrics = { fil = "m.json" } } }, "exp:submit: unknown key 'metrics.fil' (did you mean 'file'?)" },
      { { { a = { 1 } }, template, { early_stopping = {} } },
        "exp:submit: 'early_stopping' must be a policy (bai.sweep.median, bandit or truncation)" },
    }
    for _, case in ipairs(cases) do
      local args = case[1]
      local line = debug.getinfo(1, "l").currentline
      local ok, err = pcall(function() local r = exp:submit(args[1], args[2], args[3]) return r end)
      assert.is_false(ok)
      assert.are.equal(("%s:%d: %s"):format(src, line + 1, case[2]), err)
    end
  end)

  it("checks run:wait's options", function()
    local run = setmetatable({}, require("batchai.sweep.run").Run)
    local src = debug.getinfo(1, "S").short_src
    local line = debug.getinfo(1, "l").currentline
    local _, err = pcall(function() local r = run:wait { timeout = "soon" } return r end)
    assert.are.equal(("%s:%d: run:wait: 'timeout' must be a number of seconds >= 0, got soon"):format(src, line + 1), err)
    _, err = pcall(function() local r = run:wait { interval = 0 } return r end)
    assert.are.equal(("%s:%d: run:wait: 'interval' must be a number of seconds > 0, got 0"):format(src, line + 3), err)
  end)
end)

-- Results tables, the HTML report, metrics parsing and early-stopping policies.
local T = require "testkit"
local results = require "batchai.sweep.results"
local report = require "batchai.sweep.report"
local metrics = require "batchai.sweep.metrics"
local stopping = require "batchai.sweep.stopping"
local codec = require "batchai.sweep.codec"

local KEYS = { "lr", "batch" }

local function record(i, lr, batch, state, m, extra)
  local r = {
    index = i, name = ("lr%s-b%d"):format(tostring(lr):gsub("%.", "_"), batch), point = { lr = lr, batch = batch },
    state = state, exit_code = state == "succeeded" and 0 or (state == "failed" and 1 or nil),
    started = 100.0, ended = 100.0 + i, metrics = m,
  }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local function sample()
  local rows = {
    results.row(record(1, 0.1, 32, "succeeded", { val_loss = 0.5, acc = 0.8 }), KEYS),
    results.row(record(2, 0.01, 32, "succeeded", { val_loss = 0.25, acc = 0.9 }), KEYS),
    results.row(record(3, 0.1, 64, "failed", nil, { error = "exit code 1" }), KEYS),
    results.row(record(4, 0.01, 64, "succeeded", { val_loss = 0.75, acc = 0.7 },
      { stopped = { policy = "median", reason = "behind the median" } }), KEYS),
  }
  return results.new(rows, KEYS)
end

describe("sweep results", function()
  it("finds the best trial by a metric, lowest or highest", function()
    local r = sample()
    assert.are.equal(2, r:best("val_loss").index)
    assert.are.equal(2, r:best("acc", "max").index)
    assert.are.equal(4, r:best("acc", "min").index)
    assert.is_nil(r:best("nothing"))
    assert.has_error(function() r:best("acc", "up") end, "bad argument #2 to 'best' (\"min\" or \"max\" expected, got up)")
  end)

  it("reads parameters and metrics as fields of a row and prints one line", function()
    local best = sample():best("val_loss")
    assert.are.equal(0.01, best.lr)
    assert.are.equal(0.25, best.val_loss)
    assert.are.equal("trial 2 lr0_01-b32: succeeded acc=0.9 val_loss=0.25 (lr=0.01 batch=32)", tostring(best))
  end)

  it("marks early-stopped trials and keeps the endpoint's state aside", function()
    local row = sample()[4]
    assert.are.equal("stopped", row.state)
    assert.are.equal("succeeded", row.job_state)
    assert.are.equal("stopped: behind the median", row.note)
  end)

  it("sorts by metrics, parameters or columns, missing values last", function()
    local r = sample()
    local function order(rs) local out = {} for row in rs:rows() do out[#out + 1] = row.index end return out end
    assert.are.same({ 2, 1, 4, 3 }, order(r:sort("val_loss")))
    assert.are.same({ 4, 1, 2, 3 }, order(r:sort("val_loss", "desc")))
    assert.are.same({ 2, 4, 1, 3 }, order(r:sort("lr")))
    assert.are.same({ 4, 3, 2, 1 }, order(r:sort(function(a, b) return a.index > b.index end)))
  end)

  it("filters by a function or by field values", function()
    local r = sample()
    assert.are.equal(2, #r:filter { state = "succeeded" })
    assert.are.equal(4, r:filter({ state = "stopped" })[1].index)
    assert.are.equal(1, #r:filter { batch = 32, lr = 0.01 })
    assert.are.equal(2, #r:filter(function(row) return (row.acc or 0) >= 0.8 end))
  end)

  it("prints an aligned table", function()
    assert.are.equal([[
index  name        state      exit  time    lr  batch  acc  val_loss  note
    1  lr0_1-b32   succeeded     0  1.0s   0.1     32  0.8       0.5
    2  lr0_01-b32  succeeded     0  2.0s  0.01     32  0.9      0.25
    3  lr0_1-b64   failed        1  3.0s   0.1     64                 exit code 1
    4  lr0_01-b64  stopped       0  4.0s  0.01     64  0.7      0.75  stopped: behind the median
]], sample():format("table"))
  end)

  it("writes CSV with full precision", function()
    local r = results.new({ results.row(record(1, 0.1, 32, "succeeded", { loss = 1 / 3, note = 'say "hi", ok' }), KEYS) }, KEYS)
    assert.are.equal('index,name,state,exit_code,duration,lr,batch,loss,note\n1,lr0_1-b32,succeeded,0,1,0.1,32,0.3333333333333333,"say ""hi"", ok"\n',
      r:format("csv"))
  end)

  it("writes strict JSON, NaN as null", function()
    local r = results.new({ results.row(record(1, 0.1, 32, "succeeded", { loss = 0 / 0 }), KEYS) }, KEYS)
    local v = assert(codec.decode(r:format("json")))
    assert.are.equal(1, #v)
    assert.are.same({ lr = 0.1, batch = 32 }, v[1].params)
    assert.is_nil(v[1].metrics.loss)
    assert.are.equal("succeeded", v[1].state)
    assert.has_error(function() r:format("xml") end, 'bad argument #1 to \'format\' ("table", "csv" or "json" expected, got xml)')
  end)

  it("writes a file atomically in the format its name says, refusing bad arguments", function()
    local dir = T.tmpdir()
    local r = sample()
    assert.is_true(r:write(dir .. "/r.csv"))
    assert.are.equal(r:format("csv"), T.read(dir .. "/r.csv"))
    assert.is_true(r:write(dir .. "/r.txt", "json"))
    assert.are.equal(r:format("json"), T.read(dir .. "/r.txt"))
    local ok, err = r:write(dir .. "/missing/r.csv")
    assert.is_nil(ok)
    assert.matches("No such file or directory", err)
    local src = debug.getinfo(1, "S").short_src
    local line = debug.getinfo(1, "l").currentline
    local _, e1 = pcall(function() local x = r:write(3) return x end)
    local _, e2 = pcall(function() local x = r:write(dir .. "/r", "xml") return x end)
    assert.are.equal(("%s:%d: bad argument #1 to 'write' (file path expected, got number)"):format(src, line + 1), e1)
    assert.are.equal(("%s:%d: bad argument #2 to 'write' (\"table\", \"csv\" or \"json\" expected, got xml)"):format(src, line + 2), e2)
  end)

  it("flattens nested metrics into dotted names", function()
    local row = results.row(record(1, 0.1, 32, "succeeded", { val = { loss = 1, acc = 0.5 }, steps = 10 }), KEYS)
    assert.are.same({ ["val.loss"] = 1, ["val.acc"] = 0.5, steps = 10 }, row.metrics)
  end)
end)

describe("sweep report", function()
  it("writes one self-contained HTML file with an SVG plot per metric and parameter", function()
    local r = sample()
    local curves = { val_loss = {
      { row = r[1], series = { { 1, 0.9 }, { 2, 0.7 }, { 3, 0.5 } } },
      { row = r[2], series = { { 1, 0.8 }, { 2, 0.4 }, { 3, 0.25 } } },
    } }
    local html = report.html(r, { name = "lr<sweep>", experiment = "ws/exp", curves = curves })
    assert.matches("^<!DOCTYPE html>", html)
    assert.truthy(html:find("<h1>Sweep lr&lt;sweep&gt;</h1>", 1, true))
    local _, svgs = html:gsub("<svg ", "")
    assert.are.equal(5, svgs)   -- acc and val_loss against lr and batch, and val_loss over steps
    assert.truthy(html:find("<figcaption>val_loss against lr</figcaption>", 1, true))
    assert.truthy(html:find("<figcaption>val_loss over steps</figcaption>", 1, true))
    assert.truthy(html:find('class="best"', 1, true))
    assert.truthy(html:find("<td>acc</td><td>highest</td>", 1, true))
    assert.truthy(html:find("<td>val_loss</td><td>lowest</td>", 1, true))
    -- Nothing is fetched when the page is viewed: no scripts, links or remote URLs.
    assert.is_nil(html:find("<script", 1, true))
    assert.is_nil(html:find("<link", 1, true))
    local stripped = html:gsub('xmlns="http://www.w3.org/2000/svg"', "")
    assert.is_nil(stripped:find("https?://"))
  end)

  it("uses a log axis for parameters spanning decades", function()
    local rows = {}
    for i, lr in ipairs { 1e-5, 1e-4, 1e-3, 1e-2 } do
      rows[i] = results.row(record(i, lr, 32, "succeeded", { loss = i }), KEYS)
    end
    local svg = report.scatter(rows, "loss", "lr", KEYS)
    for _, label in ipairs { "1e-5", "1e-4", "0.001", "0.01" } do
      assert.truthy(svg:find(">" .. label .. "</text>", 1, true), label)
    end
  end)

  it("escapes every text it writes", function()
    assert.are.equal("&lt;a href=&quot;x&quot;&gt; &amp; &#39;", report.escape('<a href="x"> & \''))
  end)

  it("is well-formed: valid HTML, and each plot valid SVG XML (xmllint)", function()
    local dir = T.tmpdir()
    local html = report.html(sample(), { name = "s & t" })
    local path = T.write(dir .. "/report.html", html)
    local r = T.exec({ "xmllint", "--html", "--noout", path })
    assert.are.equal(0, r.status, r.stderr)
    -- libxml2's parser is HTML 4: it flags HTML 5 and SVG tag names, nothing else may appear.
    for message in r.stderr:gmatch("HTML parser error : ([^\n]*)") do
      assert.matches("^Tag %w+ invalid$", message)
    end
    local n = 0
    for svg in html:gmatch("<svg .-</svg>") do
      n = n + 1
      local svg_path = T.write(dir .. "/plot" .. n .. ".svg", svg)
      local x = T.exec({ "xmllint", "--noout", svg_path })
      assert.are.equal(0, x.status, x.stderr)
    end
    assert.are.equal(4, n)
  end)
end)

describe("sweep metrics files", function()
  it("reads JSON lines with steps, skipping a torn last line", function()
    local recs, bad = metrics.parse_lines('{"epoch":1,"loss":0.9}\n{"epoch":2,"loss":0.5}\n{"epoch":3,"lo')
    assert.are.equal(0, bad)
    assert.are.equal(2, #recs)
    assert.are.same({ { 1, 0.9 }, { 2, 0.5 } }, metrics.series(recs, "loss"))
    local numbered = metrics.parse_lines('{"loss":3}\n{"loss":2}\nnot json\n')
    assert.are.same({ { 1, 3 }, { 2, 2 } }, metrics.series(numbered, "loss"))
    assert.are.same({ epoch = 2, loss = 0.5, step = 2 }, metrics.last_values(recs))
  end)

  it("reads a final metrics object and numbers on standard output", function()
    assert.are.same({ loss = 0.1 }, metrics.parse_final('{"loss": 0.1}'))
    assert.are.same({ nil, "metrics must be a JSON object" }, { metrics.parse_final("[1]") })
    assert.are.same({ acc = 0.93, loss = 0.2 },
      metrics.from_text("epoch 1 loss=0.5 acc=0.8\nepoch 2 loss=0.2 acc=0.93\n", { loss = "loss=(%S+)", acc = "acc=(%S+)" }))
  end)
end)

describe("sweep early stopping", function()
  local function trial(name, values, running)
    local series = {}
    for i, v in ipairs(values) do series[i] = { i, v } end
    return { name = name, series = series, running = running ~= false }
  end

  local function names(decisions)
    local out = {}
    for i, d in ipairs(decisions) do out[i] = d.name end
    return out
  end

  it("stops trials behind the median of the others' running averages", function()
    local policy = stopping.median { metric = "loss", grace = 2, min_trials = 2 }
    local trials = {
      trial("good", { 1.0, 0.5, 0.3 }, false),
      trial("fine", { 1.0, 0.6, 0.4 }, false),
      trial("bad", { 1.0, 0.95, 0.9 }),
      trial("ok", { 0.9, 0.55 }),
    }
    local decisions = policy:decide(trials)
    assert.are.same({ "bad" }, names(decisions))
    assert.are.equal("median stopping: best loss 0.9 by step 3 is worse than the median 0.6333 of 2 other trials' running averages", decisions[1].reason)
    assert.are.equal(3, decisions[1].step)
    assert.are.same({}, policy:decide(trials))  -- each step is evaluated once
  end)

  it("waits for the grace period and enough trials", function()
    local policy = stopping.median { metric = "loss", grace = 5 }
    assert.are.same({}, policy:decide { trial("a", { 1, 1, 1 }), trial("b", { 0, 0, 0 }, false) })
    local few = stopping.median { metric = "loss", grace = 1, min_trials = 3 }
    assert.are.same({}, few:decide { trial("a", { 9, 9 }), trial("b", { 0, 0 }, false) })
  end)

  it("stops trials outside the bandit's slack of the leader", function()
    local policy = stopping.bandit { metric = "acc", mode = "max", slack_factor = 0.2, grace = 1 }
    local decisions = policy:decide {
      trial("leader", { 0.5, 0.8 }, false), trial("close", { 0.5, 0.7 }), trial("far", { 0.4, 0.6 }),
    }
    assert.are.same({ "far" }, names(decisions))
    assert.are.equal("bandit: best acc 0.6 by step 2 is outside the slack of the leader's 0.8 (limit 0.6667)", decisions[1].reason)
    local amount = stopping.bandit { metric = "loss", slack_amount = 0.1, grace = 1 }
    assert.are.same({ "b" }, names(amount:decide { trial("a", { 0.5 }, false), trial("b", { 0.65 }) }))
  end)

  it("cuts the worst percentile with truncation", function()
    local policy = stopping.truncation { metric = "loss", percentile = 50, grace = 1, min_trials = 4 }
    local decisions = policy:decide {
      trial("a", { 0.1 }), trial("b", { 0.2 }), trial("c", { 0.3 }), trial("d", { 0.4 }),
    }
    assert.are.same({ "c", "d" }, names(decisions))
  end)

  it("stops a trial whose metric became NaN", function()
    local policy = stopping.median { metric = "loss" }
    local decisions = policy:decide { trial("nan", { 1, 0 / 0 }) }
    assert.are.equal("loss is NaN at step 2", decisions[1].reason)
  end)

  it("checks its options", function()
    assert.has_error(function() stopping.median { metric = "loss", grase = 1 } end, "median: unknown option 'grase' (did you mean 'grace'?)")
    assert.has_error(function() stopping.bandit { metric = "loss" } end, "bandit: give exactly one of 'slack_factor' and 'slack_amount'")
    assert.has_error(function() stopping.median {} end, "median: 'metric' (a metric name) is required")
  end)
end)

describe("sweep progress", function()
  local progress = require "batchai.sweep.progress"
  -- An output that keeps what is written (the display's stderr).
  local function sink()
    local out = { text = "" }
    function out.write(self, ...) for _, s in ipairs { ... } do self.text = self.text .. s end return self end
    function out.flush() end
    return out
  end

  it("prints plain lines when the counts change, and failures as they happen", function()
    local out = sink()
    local p = progress.new { name = "s", total = 4, out = out, live = false, every = 0 }
    p:update({ total = 4, pending = 4 }, "submitting")
    p:update({ total = 4, pending = 4 }, "submitting")
    p:event("sweep s: trial 2 b failed: exit code 1")
    p:update({ total = 4, running = 1, succeeded = 2, failed = 1 }, "watching")
    local lines = {}
    for line in out.text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(3, #lines, out.text)
    assert.matches("^sweep s | submitting | 0/4 done | 4 pending | elapsed %d", lines[1])
    assert.are.equal("sweep s: trial 2 b failed: exit code 1", lines[2])
    assert.matches("^sweep s | watching | 3/4 done | 1 running, 2 succeeded, 1 failed | [%d.]+/min | eta [^|]+ | elapsed ", lines[3])
  end)

  it("redraws one live line on a terminal, printing events above it", function()
    local out = sink()
    local p = progress.new { name = "s", total = 2, out = out, live = true }
    p:update({ total = 2, queued = 2 }, "submitted")
    p:event("sweep s: stopping trial 1 a: NaN")
    p:finish({ total = 2, succeeded = 1, stopped = 1 }, "done")
    assert.matches("^\r\27%[Ksweep s | submitted | 0/2 done | 2 queued | elapsed [^\n]*\r\27%[Ksweep s: stopping trial 1 a: NaN\n", out.text)
    assert.matches("\r\27%[Ksweep s | done | 2/2 done | 1 succeeded, 1 stopped | [^\n]*\n$", out.text)
  end)
end)

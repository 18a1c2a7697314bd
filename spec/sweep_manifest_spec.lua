-- The sweep manifest on disk: journaled updates, atomic snapshots, torn
-- writes, crashes between compaction steps, exact numbers, locking.
local T = require "testkit"
local manifest = require "batchai.sweep.manifest"
local codec = require "batchai.sweep.codec"

local function opts() return { dir = T.tmpdir() } end

local function lines(path)
  local out = {}
  for line in (T.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

describe("sweep manifest", function()
  it("creates the folder with a header snapshot and an empty journal", function()
    local o = opts()
    local m = assert(manifest.open("s1", { keys = codec.array { "lr", "batch" }, experiment = { name = "e" } }, o))
    local dir = o.dir .. "/s1"
    assert.are.equal(dir, m.dir)
    local snap = lines(dir .. "/manifest.jsonl")
    assert.are.equal(1, #snap)
    local header = codec.decode(snap[1])
    assert.are.equal("bai-sweep/1", header.format)
    assert.are.equal("s1", header.name)
    assert.are.equal(1, header.generation)
    assert.are.same({ "lr", "batch" }, header.keys)
    assert.are.same({ '{"journal":1}' }, lines(dir .. "/journal.jsonl"))
    assert(m:close())
    assert.are.same({ "s1" }, manifest.list(o))
  end)

  it("journals each update at once and replays it on load", function()
    local o = opts()
    local m = assert(manifest.open("s", {}, o))
    m:update("t1", { index = 1, point = { lr = 0.1, batch = 32 }, hash = "ab", state = "pending" })
    m:update("t2", { index = 2, point = { lr = 0.01, batch = 32 }, state = "pending" })
    m:update("t1", { state = "queued", job = "t1", submitted = 1700000000.5 })
    m:update("t1", { exit_code = 3 }, { "hash" })
    -- Another process reads while this one still holds the manifest open.
    local r = assert(manifest.load("s", o))
    local t1 = r:trial("t1")
    assert.are.equal("queued", t1.state)
    assert.are.equal(32, t1.point.batch)
    assert.are.equal("integer", math.type(t1.point.batch))
    assert.are.equal(0.1, t1.point.lr)
    assert.are.equal(1700000000.5, t1.submitted)
    assert.is_nil(t1.hash)
    assert.are.same({ "t1", "t2" }, r.order)
    assert.are.same({ total = 2, queued = 1, pending = 1 }, r:counts())
    assert(m:close())
    local again = assert(manifest.load("s", o))
    assert.are.same(r.by_name, again.by_name)
    assert.are.equal(2, #lines(o.dir .. "/s/manifest.jsonl") - 1)
  end)

  it("ignores a torn last journal line and drops it at the next open", function()
    local o = opts()
    local m = assert(manifest.open("s", {}, o))
    m:update("t1", { index = 1, state = "pending" })
    m:update("t1", { state = "queued" })
    m.journal:write('{"name":"t1","state":"runn')   -- killed in the middle of a write
    m.journal:flush()
    local r = assert(manifest.load("s", o))
    assert.are.equal("queued", r:trial("t1").state)
    assert.is_true(r.torn)
    m.journal:close(); m.journal = nil
    if m.lock then m.lock:release() end
    local m2 = assert(manifest.open("s", {}, o))
    assert.are.equal("queued", m2:trial("t1").state)
    assert.are.same({ '{"journal":' .. m2.header.generation .. '}' }, lines(o.dir .. "/s/journal.jsonl"))
    m2:update("t1", { state = "running" })
    assert(m2:close())
    assert.are.equal("running", assert(manifest.load("s", o)):trial("t1").state)
  end)

  it("loses nothing when a compaction stops between its two writes", function()
    local o = opts()
    local m = assert(manifest.open("s", {}, o))
    m:update("t1", { index = 1, state = "pending" })
    m:update("t1", { state = "succeeded", metrics = { loss = 0.25 } })
    local old_journal = T.read(o.dir .. "/s/journal.jsonl")
    assert(m:compact())
    -- As if the process died after the new snapshot, before the journal restarted:
    T.write(o.dir .. "/s/journal.jsonl", old_journal)
    local r = assert(manifest.load("s", o))
    assert.are.equal("succeeded", r:trial("t1").state)
    assert.are.equal(0.25, r:trial("t1").metrics.loss)
    assert(m:close())
  end)

  it("compacts a long journal into the snapshot", function()
    local o = opts()
    local m = assert(manifest.open("s", {}, o))
    for i = 1, 5000 do m:update("t" .. (i % 7), { index = i % 7, n = i }) end
    assert.is_true(#lines(o.dir .. "/s/journal.jsonl") < 5000)
    local r = assert(manifest.load("s", o))
    assert.are.equal(5000, r:trial("t2").n)  -- 5000 % 7 == 2: t2 had the last update
    assert(m:close())
  end)

  it("keeps trials in index order", function()
    local o = opts()
    local m = assert(manifest.open("s", {}, o))
    m:update("b", { index = 2 })
    m:update("a", { index = 3 })
    m:update("c", { index = 1 })
    assert(m:close())
    assert.are.same({ "c", "b", "a" }, assert(manifest.load("s", o)).order)
  end)

  it("says when a sweep does not exist, suggesting a near name", function()
    local o = opts()
    assert(assert(manifest.open("lr-sweep", {}, o)):close())
    local m, err, code = manifest.load("lr-swep", o)
    assert.is_nil(m)
    assert.are.equal(("no sweep named 'lr-swep' in %s (did you mean 'lr-sweep'?)"):format(o.dir), err)
    assert.are.equal("not_found", code)
  end)

  it("refuses a file that is not a manifest", function()
    local o = opts()
    T.write(o.dir .. "/x/manifest.jsonl", '{"format":"other"}\n')
    local m, err = manifest.load("x", o)
    assert.is_nil(m)
    assert.are.equal(o.dir .. "/x/manifest.jsonl: not a bai sweep manifest (format other, expected bai-sweep/1)", err)
  end)

  it("removes a sweep's folder", function()
    local o = opts()
    assert(assert(manifest.open("gone", {}, o)):close())
    assert(manifest.remove("gone", o))
    assert.is_false(manifest.exists("gone", o))
  end)

  it("lets one process at a time run a sweep", function()
    local o = opts()
    local m = assert(manifest.open("s", {}, o))
    local script = T.write(o.dir .. "/try.lua", ([[
      local m, err, code = require("batchai.sweep.manifest").open("s", {}, { dir = %q })
      print(m and "opened" or (code .. ": " .. err))
    ]]):format(o.dir))
    local r = T.run({ script })
    assert.are.equal(("busy: sweep 's' is being run by another process (%s/s/lock is held)\n"):format(o.dir), r.stdout)
    assert(m:close())
    r = T.run({ script })
    assert.are.equal("opened\n", r.stdout)
  end)
end)

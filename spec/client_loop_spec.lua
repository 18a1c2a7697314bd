-- batchai.client.loop: tasks, pools and requests without threads.
local loop = require "batchai.client.loop"

describe("batchai.client.loop", function()
  it("never runs more tasks of a pool than its concurrency", function()
    local pool = loop.pool { concurrency = 4 }
    local running, peak, done = 0, 0, 0
    for i = 1, 20 do
      pool:spawn(function()
        running = running + 1
        peak = math.max(peak, running)
        loop.sleep(0.01 * (i % 3))
        running = running - 1
        done = done + 1
      end)
      assert.is_true(pool.running <= 4)
    end
    pool:wait()
    assert.are.equal(20, done)
    assert.are.equal(4, peak)
  end)

  it("overlaps waits: 10 tasks sleep at the same time, and wake in the order they are due", function()
    local asleep, peak, woke = 0, 0, {}
    loop.map({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, function(n)  -- each due later than the one before
      asleep = asleep + 1
      peak = math.max(peak, asleep)
      loop.sleep(0.02 * n)
      asleep = asleep - 1
      woke[#woke + 1] = n
    end, { concurrency = 10 })
    assert.are.equal(10, peak, "every task was asleep at once")
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, woke)
  end)

  it("map keeps the order of its input; each takes a lazy iterator", function()
    local out = loop.map({ 3, 1, 2 }, function(x) loop.sleep(x / 100) return x * 10 end, { concurrency = 3 })
    assert.are.same({ 30, 10, 20 }, out)
    local seen = {}
    local items, i = { "a", "b", "c" }, 0
    local function next_item()
      i = i + 1
      if items[i] then return i, items[i] end
    end
    loop.each(next_item, function(k, v) loop.sleep(0.01) seen[k] = v end, { concurrency = 2 })
    assert.are.same({ "a", "b", "c" }, seen)
  end)

  it("joins a task for its results, and re-raises its error", function()
    local t = loop.spawn(function(a, b) loop.sleep(0.01) return a + b, "x" end, 2, 3)
    assert.are.same({ 5, "x" }, { t:join() })
    local bad = loop.spawn(function() loop.sleep(0.01) error("task failed here") end)
    local ok, err = pcall(bad.join, bad)
    assert.is_false(ok)
    assert.matches("task failed here", err)
    assert.matches("stack traceback", err)
  end)

  it("stops a pool at the first error: the next spawn raises it, structured errors unchanged", function()
    local pool = loop.pool { concurrency = 2 }
    local e = setmetatable({ code = "Boom" }, { __tostring = function() return "boom" end })
    pool:spawn(function() error(e) end)
    local ok, err = pcall(pool.spawn, pool, function() end)
    assert.is_false(ok)
    assert.are.equal(e, err)
    ok, err = pcall(pool.wait, pool)
    assert.is_false(ok)
    assert.are.equal(e, err)
  end)

  it("lets tasks spawn tasks and wait for pools of their own", function()
    local total = 0
    local outer = loop.pool { concurrency = 2 }
    for _ = 1, 3 do
      outer:spawn(function()
        local inner = loop.pool { concurrency = 2 }
        for _ = 1, 3 do inner:spawn(function() loop.sleep(0.01) total = total + 1 end) end
        inner:wait()
      end)
    end
    outer:wait()
    assert.are.equal(9, total)
  end)

  it("runs requests from a coroutine of the script's own by driving the loop", function()
    local S = require "serve"
    local srv = S.start { slots = 0, tcp = false }
    finally(function() srv:stop() end)
    srv:make_experiment("ws", "a")
    local gen = coroutine.wrap(function()
      for _ = 1, 2 do
        local status, body = loop.request { url = "http://localhost" .. S.exp_path("ws", "a") .. "?" .. S.API,
          unix_socket = srv.socket }
        coroutine.yield(status, require("cjson").decode(body).name)
      end
    end)
    assert.are.same({ 200, "a" }, { gen() })
    -- and inside a task, a wrapped generator still works
    local t = loop.spawn(function() return gen() end)
    assert.are.same({ 200, "a" }, { t:join() })
  end)

  it("raises instead of hanging when waiting for nothing", function()
    local s = loop.signal()
    assert.has_error(function() s:wait() end,
      "batchai.client.loop: waiting for something that can never happen (nothing in flight)")
  end)

  it("checks its arguments", function()
    assert.has_error(function() loop.pool { concurrency = 0 } end,
      "bad argument #1 to 'pool' (field 'concurrency': integer >= 1 expected)")
    assert.has_error(function() loop.pool { concurency = 2 } end,
      "invalid field 'concurency' in loop.pool (did you mean 'concurrency'?)")
    assert.has_error(function() loop.spawn(42) end, "bad argument #1 to 'spawn' (function expected)")
  end)
end)

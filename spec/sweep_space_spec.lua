-- Search spaces: every value type and composition, sizes, order, laziness, seeds.
local T = require "testkit"
local bai = require "batchai"
local S = bai.sweep

local function all(space)
  local out = {}
  for p in space:points() do
    local copy = {}
    for k, v in pairs(p) do copy[k] = v end
    out[#out + 1] = copy
  end
  return out
end

local function keys_in_order(p)
  local ks = {}
  for k in pairs(p) do ks[#ks + 1] = k end
  return ks
end

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  return (tostring(err):gsub("^[^:]*:%d+: ", ""))
end

describe("sweep values", function()
  it("takes plain lists and choice lists", function()
    local s = S.grid { opt = { "sgd", "adam" } }
    assert.are.same({ { opt = "sgd" }, { opt = "adam" } }, all(s))
    assert.are.equal(3, #S.choice { 1, 2, 3 })
  end)

  it("keeps scalars and const tables as single values", function()
    local s = S.grid { epochs = 10, name = "x", flag = true, layers = S.const { 64, 64 }, lr = { 0.1, 0.2 } }
    assert.are.equal(2, #s)
    local p = s:at(2)
    assert.are.equal(10, p.epochs)
    assert.are.equal("x", p.name)
    assert.are.equal(true, p.flag)
    assert.are.same({ 64, 64 }, p.layers)
    assert.are.equal(0.2, p.lr)
  end)

  it("makes integer ranges inclusive of hi, like a numeric for loop", function()
    local r = S.range(1, 10, 3)
    assert.are.same({ { x = 1 }, { x = 4 }, { x = 7 }, { x = 10 } }, all(S.grid { x = r }))
    assert.are.equal("integer", math.type(S.grid { x = r }:at(1).x))
    assert.are.same({ { x = 5 }, { x = 3 }, { x = 1 } }, all(S.grid { x = S.range(5, 1, -2) }))
    assert.are.equal(10, #S.range(1, 10))
  end)

  it("rounds float ranges to clean values and keeps them floats", function()
    local values = {}
    for p in S.grid { x = S.range(0, 1, 0.1) }:points() do values[#values + 1] = p.x end
    assert.are.equal(11, #values)
    assert.are.equal(0.3, values[4])
    assert.are.equal(1.0, values[11])
    assert.are.equal("float", math.type(values[1]))
  end)

  it("refuses empty and zero-step ranges", function()
    assert.are.equal("range(1, 0, 1) is empty", err_of(S.range, 1, 0, 1))
    assert.are.equal("range: step must not be 0", err_of(S.range, 1, 2, 0))
    assert.are.equal("range: lo must be a number, got string", err_of(S.range, "1", 2))
  end)

  it("gives linspace and logspace n values with exact ends", function()
    local lin = {}
    for p in S.grid { x = S.linspace(0, 1, 5) }:points() do lin[#lin + 1] = p.x end
    assert.are.same({ 0.0, 0.25, 0.5, 0.75, 1.0 }, lin)
    local lg = {}
    for p in S.grid { x = S.logspace(1e-4, 1e-1, 4) }:points() do lg[#lg + 1] = p.x end
    assert.are.same({ 1e-4, 1e-3, 1e-2, 1e-1 }, lg)
    assert.are.equal("logspace: lo and hi must be > 0, got 0 and 1", err_of(S.logspace, 0, 1, 3))
    assert.are.equal("linspace: n must be an integer >= 1, got 0", err_of(S.linspace, 0, 1, 0))
  end)

  it("lists the files matching a glob, sorted, with ** for any depth", function()
    local dir = T.tmpdir()
    T.write(dir .. "/data/b.csv", "")
    T.write(dir .. "/data/a.csv", "")
    T.write(dir .. "/data/notes.txt", "")
    T.write(dir .. "/data/.hidden.csv", "")
    T.write(dir .. "/data/deep/c.csv", "")
    local flat = S.grid { input = S.files(dir .. "/data/*.csv") }
    assert.are.same({ { input = dir .. "/data/a.csv" }, { input = dir .. "/data/b.csv" } }, all(flat))
    local deep = S.files(dir .. "/data/**/*.csv")
    assert.are.equal(3, #deep)
    assert.are.same({ dir .. "/data/a.csv", dir .. "/data/b.csv", dir .. "/data/deep/c.csv" },
      { deep.values[1], deep.values[2], deep.values[3] })
    assert.are.equal(1, #S.files(dir .. "/data/[a]?csv"))
    assert.are.equal(("files: no file matches '%s/none/*.csv'"):format(dir), err_of(S.files, dir .. "/none/*.csv"))
  end)
end)

describe("sweep grid", function()
  it("orders keys by name and varies the last fastest", function()
    local s = S.grid { lr = { 0.1, 0.01 }, batch = { 32, 64, 128 } }
    assert.are.equal(6, #s)
    assert.are.same({ "batch", "lr" }, s:keys())
    assert.are.same({
      { batch = 32, lr = 0.1 }, { batch = 32, lr = 0.01 }, { batch = 64, lr = 0.1 },
      { batch = 64, lr = 0.01 }, { batch = 128, lr = 0.1 }, { batch = 128, lr = 0.01 },
    }, all(s))
  end)

  it("takes an explicit key order", function()
    local s = S.grid({ lr = { 0.1, 0.01 }, batch = { 32, 64 } }, { order = { "lr", "batch" } })
    assert.are.same({ "lr", "batch" }, s:keys())
    assert.are.same({ lr = 0.1, batch = 64 }, all(s)[2])
    assert.are.same({ "lr", "batch" }, keys_in_order(s:at(1)))
    assert.are.equal("grid: 'order' names 'bach', which is not a parameter (did you mean 'batch'?)",
      err_of(S.grid, { lr = { 1 }, batch = { 2 } }, { order = { "lr", "bach" } }))
  end)

  it("gives points whose pairs follow the key order and that print in it", function()
    local s = S.grid { zeta = { 1 }, alpha = { "a" }, mid = { 2.5 } }
    local p = s:at(1)
    assert.are.same({ "alpha", "mid", "zeta" }, keys_in_order(p))
    assert.are.equal('{alpha="a", mid=2.5, zeta=1}', tostring(p))
    p.extra = 1
    assert.are.same({ "alpha", "mid", "zeta", "extra" }, keys_in_order(p))
  end)

  it("indexes any point directly, the same as iterating", function()
    local s = S.grid { a = S.range(1, 7), b = { "x", "y", "z" }, c = S.linspace(0, 1, 5) }
    local i = 0
    for p in s:points() do
      i = i + 1
      assert.are.same(p, s:at(i))
    end
    assert.are.equal(105, i)
    assert.is_nil(s:at(106))
    assert.is_nil(s:at(0))
  end)

  it("flattens a zip inside a grid into the points", function()
    local s = S.grid { lr = { 0.1, 0.01 }, model = S.zip { depth = { 2, 4, 8 }, width = { 64, 128, 256 } } }
    assert.are.equal(6, #s)
    assert.are.same({ "lr", "depth", "width" }, s:keys())
    assert.are.same({ lr = 0.1, depth = 4, width = 128 }, all(s)[2])
    assert.are.same({ lr = 0.01, depth = 8, width = 256 }, all(s)[6])
  end)

  it("flattens nested tables of parameters", function()
    local s = S.grid { optim = { lr = { 1, 2 }, wd = { 0, 1 } }, seed = { 7 } }
    assert.are.equal(4, #s)
    assert.are.same({ lr = 1, wd = 1, seed = 7 }, all(s)[2])
  end)

  it("refuses a parameter that appears twice", function()
    assert.are.equal("grid: parameter 'lr' appears twice",
      err_of(S.grid, { lr = { 1 }, sub = S.zip { lr = { 1 } } }))
  end)

  it("explains what a value cannot be", function()
    assert.are.equal("grid: 'f' is a function; use bai.sweep.derived(fn) for a computed parameter",
      err_of(S.grid, { f = function() end }))
    assert.are.equal("grid: 'x' is an empty table (give a list of values or a table of parameters)",
      err_of(S.grid, { x = {} }))
  end)

  it("iterates a 10^8-point grid lazily in constant memory", function()
    local s = S.grid { a = S.range(1, 100), b = S.range(1, 100), c = S.range(1, 100), d = S.range(1, 100) }
    assert.are.equal(100000000, #s)
    assert.are.same({ a = 100, b = 100, c = 100, d = 100 }, s:at(100000000))
    assert.are.same({ a = 51, b = 1, c = 1, d = 1 }, s:at(50000001))
    collectgarbage()
    local before, peak, n = collectgarbage("count"), 0, 0
    for p in s:points() do
      n = n + 1
      if n % 10000 == 0 then
        local kb = collectgarbage("count")
        if kb > peak then peak = kb end
        if n == 300000 then break end
      end
    end
    assert.is_true(peak - before < 16 * 1024, ("memory grew by %.0f KB"):format(peak - before))
  end)

  it("keeps a range of 10^8 values lazy", function()
    local r = S.range(1, 100000000)
    assert.are.equal(100000000, #r)
    local s = S.grid { x = r }
    assert.are.same({ x = 99999999 }, s:at(99999999))
  end)
end)

describe("sweep zip", function()
  it("pairs values and checks that the lengths are equal", function()
    local s = S.zip { depth = { 2, 4 }, width = { 64, 128 } }
    assert.are.same({ { depth = 2, width = 64 }, { depth = 4, width = 128 } }, all(s))
    assert.are.equal("zip: 'depth' has 3 values but 'width' has 2",
      err_of(S.zip, { depth = { 2, 4, 8 }, width = { 64, 128 } }))
  end)

  it("repeats a constant alongside paired lists", function()
    local s = S.zip { depth = { 2, 4 }, width = { 64, 128 }, act = "relu" }
    assert.are.same({ act = "relu", depth = 4, width = 128 }, all(s)[2])
  end)

  it("zips sub-spaces of equal size", function()
    local s = S.zip { S.grid { a = { 1, 2 }, b = { 3, 4 } }, c = { 10, 20, 30, 40 } }
    assert.are.same({ c = 30, a = 2, b = 3 }, all(s)[3])
  end)

  it("refuses distributions", function()
    assert.are.equal("zip: 'x' is uniform(0, 1); zip needs lists of values", err_of(S.zip, { x = S.uniform(0, 1) }))
  end)
end)

describe("sweep cases, concat, where and derived", function()
  it("gives each case its own parameters", function()
    local s = S.grid {
      lr = { 0.1 },
      optimizer = S.cases { sgd = { momentum = { 0, 0.9 } }, adam = { beta1 = { 0.9, 0.99 }, beta2 = 0.999 }, lbfgs = {} },
    }
    assert.are.equal(5, #s)
    assert.are.same({
      { lr = 0.1, optimizer = "adam", beta1 = 0.9, beta2 = 0.999 },
      { lr = 0.1, optimizer = "adam", beta1 = 0.99, beta2 = 0.999 },
      { lr = 0.1, optimizer = "lbfgs" },
      { lr = 0.1, optimizer = "sgd", momentum = 0 },
      { lr = 0.1, optimizer = "sgd", momentum = 0.9 },
    }, all(s))
    assert.are.same(all(s)[4], s:at(4))
  end)

  it("chains spaces with concat", function()
    local s = S.concat(S.grid { a = { 1, 2 } }, { b = { "x" } }, S.zip { a = { 3 }, b = { "y" } })
    assert.are.equal(4, #s)
    assert.are.same({ { a = 1 }, { a = 2 }, { b = "x" }, { a = 3, b = "y" } }, all(s))
    assert.are.same({ b = "x" }, s:at(3))
  end)

  it("filters with where and counts the result", function()
    local s = S.grid { a = S.range(1, 10), b = S.range(1, 10) }:where(function(p) return p.a < p.b end)
    assert.are.equal(45, #s)
    for p in s:points() do assert.is_true(p.a < p.b) end
    assert.are.same({ a = 1, b = 3 }, s:at(2))
  end)

  it("computes derived parameters from the others", function()
    local s = S.grid { lr = { 0.1, 0.2 }, warmup = S.derived(function(p) return p.lr * 10 end) }
    assert.are.same({ { lr = 0.1, warmup = 1.0 }, { lr = 0.2, warmup = 2.0 } }, all(s))
    local d = S.grid { n = { 1, 2 } }:derive { double = function(p) return p.n * 2 end }
    assert.are.same({ n = 2, double = 4 }, d:at(2))
  end)
end)

describe("sweep sampling", function()
  local space = {
    lr = S.loguniform(1e-5, 1e-1), batch = S.randint(16, 128), dropout = S.uniform(0, 0.5),
    opt = S.cases { sgd = { momentum = S.uniform(0, 1) }, adam = {} },
  }

  it("refuses to enumerate distributions and says how to sample them", function()
    assert.are.equal("the space has no size: 'lr' is loguniform(1e-05, 0.1); sample it with bai.sweep.random(space, { n = ..., seed = ... })",
      err_of(function() return #S.grid { lr = S.loguniform(1e-5, 1e-1) } end))
    assert.are.equal("points: the space cannot be enumerated: 'x' is normal(0, 1); sample it with bai.sweep.random(space, { n = ..., seed = ... })",
      err_of(function() return S.grid { x = S.normal(0, 1) }:points() end))
  end)

  it("draws the same points from the same seed, and other points from another", function()
    local a = all(S.random(space, { n = 20, seed = 42 }))
    local b = all(S.random(space, { n = 20, seed = 42 }))
    local c = all(S.random(space, { n = 20, seed = 43 }))
    assert.are.same(a, b)
    assert.are_not.same(a, c)
    assert.are.same(a, all(S.random(space, { n = 20, seed = 42 })))
    assert.are.same(all(S.random(space, { n = 5, seed = "name" })), all(S.random(space, { n = 5, seed = "name" })))
  end)

  it("keeps the first points when n grows", function()
    local small = all(S.random(space, { n = 10, seed = 7 }))
    local big = all(S.random(space, { n = 30, seed = 7 }))
    for i = 1, 10 do assert.are.same(small[i], big[i]) end
  end)

  it("draws within each distribution's bounds", function()
    local seen_lo, seen_hi = false, false
    for p in S.random({ x = S.randint(1, 3), u = S.uniform(2, 3), l = S.loguniform(1e-3, 1), q = S.quniform(0, 1, 0.25), qi = S.qrandint(0, 100, 10) }, { n = 300, seed = 1 }):points() do
      assert.are.equal("integer", math.type(p.x))
      assert.is_true(p.x >= 1 and p.x <= 3)
      if p.x == 1 then seen_lo = true end
      if p.x == 3 then seen_hi = true end
      assert.is_true(p.u >= 2 and p.u < 3)
      assert.is_true(p.l >= 1e-3 and p.l < 1)
      assert.is_true(p.q == 0 or p.q == 0.25 or p.q == 0.5 or p.q == 0.75 or p.q == 1.0)
      assert.are.equal("integer", math.type(p.qi))
      assert.are.equal(0, p.qi % 10)
    end
    assert.is_true(seen_lo and seen_hi)
  end)

  it("draws normal values with the right mean and spread", function()
    local sum, sq, n = 0, 0, 4000
    for p in S.random({ x = S.normal(5, 2) }, { n = n, seed = 3 }):points() do
      sum = sum + p.x
      sq = sq + p.x * p.x
    end
    local mean = sum / n
    local sd = math.sqrt(sq / n - mean * mean)
    assert.is_true(math.abs(mean - 5) < 0.15, "mean " .. mean)
    assert.is_true(math.abs(sd - 2) < 0.15, "sd " .. sd)
    for p in S.random({ x = S.lognormal(0, 1) }, { n = 50, seed = 3 }):points() do assert.is_true(p.x > 0) end
  end)

  it("follows choice weights", function()
    local counts = { a = 0, b = 0 }
    for p in S.random({ x = S.choice({ "a", "b" }, { weights = { 3, 1 } }), y = S.uniform(0, 1) }, { n = 2000, seed = 5 }):points() do
      counts[p.x] = counts[p.x] + 1
    end
    assert.is_true(counts.a > 1350 and counts.a < 1650, "a drawn " .. counts.a .. " times")
  end)

  it("samples a finite space without replacement", function()
    local grid = S.grid { a = S.range(1, 10), b = S.range(1, 10) }
    local seen = {}
    for p in S.random(grid, { n = 100, seed = 9 }):points() do
      local key = p.a .. "/" .. p.b
      assert.is_nil(seen[key])
      seen[key] = true
    end
    assert.are.equal("random: n = 101 is more than the 100 points of the space (sample with replace = true, or iterate the space itself)",
      err_of(S.random, grid, { n = 101 }))
    assert.are.equal(101, #S.random(grid, { n = 101, replace = true }))
  end)

  it("rejects points with where while sampling", function()
    for p in S.random(S.where({ a = S.uniform(0, 1), b = S.uniform(0, 1) }, function(p) return p.a < p.b end), { n = 50, seed = 2 }):points() do
      assert.is_true(p.a < p.b)
    end
  end)

  it("checks its options", function()
    assert.are.equal("random: 'n' (the number of points) must be an integer >= 1, got nothing", err_of(S.random, space, {}))
    assert.are.equal("random: unknown option 'sed' (did you mean 'seed'?)", err_of(S.random, space, { n = 1, sed = 1 }))
  end)

  it("gives the Sobol sequence, and scrambles it by seed keeping its balance", function()
    local plain = all(S.sobol({ x = S.uniform(0, 1), y = S.uniform(0, 1) }, { n = 8, scramble = false }))
    assert.are.same({
      { x = 0.0, y = 0.0 }, { x = 0.5, y = 0.5 }, { x = 0.75, y = 0.25 }, { x = 0.25, y = 0.75 },
      { x = 0.375, y = 0.375 }, { x = 0.875, y = 0.875 }, { x = 0.625, y = 0.125 }, { x = 0.125, y = 0.625 },
    }, plain)
    local dims = { a = S.uniform(0, 1), b = S.uniform(0, 1), c = S.uniform(0, 1), d = S.uniform(0, 1), e = S.uniform(0, 1) }
    local scrambled = all(S.sobol(dims, { n = 32, seed = 11 }))
    for _, k in ipairs { "a", "b", "c", "d", "e" } do
      local strata = {}
      for _, p in ipairs(scrambled) do
        local s = math.floor(p[k] * 32)
        assert.is_nil(strata[s], "two points in one stratum of " .. k)
        strata[s] = true
      end
    end
    assert.are.same(scrambled, all(S.sobol(dims, { n = 32, seed = 11 })))
    assert.are_not.same(scrambled, all(S.sobol(dims, { n = 32, seed = 12 })))
  end)

  it("uses each stratum once per parameter in a Latin hypercube", function()
    local pts = all(S.lhs({ x = S.uniform(0, 10), y = S.loguniform(1, 1000) }, { n = 20, seed = 4 }))
    local xs, ys = {}, {}
    for _, p in ipairs(pts) do
      local xs_i, ys_i = math.floor(p.x / 10 * 20), math.floor(math.log(p.y, 1000) * 20)
      assert.is_nil(xs[xs_i])
      assert.is_nil(ys[ys_i])
      xs[xs_i], ys[ys_i] = true, true
    end
    local centered = all(S.lhs({ x = S.uniform(0, 1) }, { n = 4, seed = 4, centered = true }))
    local values = {}
    for _, p in ipairs(centered) do values[#values + 1] = p.x end
    table.sort(values)
    assert.are.same({ 0.125, 0.375, 0.625, 0.875 }, values)
  end)

  it("refuses to sample a where-filtered space with sobol or lhs", function()
    assert.are.equal("sobol: cannot sample a space filtered by where(); filter the samples instead: sobol(space, {...}):where(pred)",
      err_of(S.sobol, S.where({ a = S.uniform(0, 1) }, function() return true end), { n = 4 }))
  end)
end)

describe("sweep sampling primitives", function()
  local sampling = require "batchai.sweep.sampling"

  it("computes normal quantiles to double precision", function()
    assert.is_true(math.abs(sampling.normal_quantile(0.975) - 1.959963984540054) < 1e-14)
    assert.is_true(math.abs(sampling.normal_quantile(0.8413447460685429) - 1.0) < 1e-14)
    assert.is_true(math.abs(sampling.normal_quantile(1e-10) + 6.361340902404056) < 1e-12)
  end)

  it("makes keyed permutations that are bijections", function()
    for _, n in ipairs { 1, 2, 7, 64, 1000 } do
      local perm = sampling.permutation(n, 1234)
      local seen = {}
      for i = 0, n - 1 do
        local v = perm(i)
        assert.is_true(v >= 0 and v < n)
        assert.is_nil(seen[v])
        seen[v] = true
      end
    end
  end)
end)

describe("sweep misuse", function()
  -- The message of fn's error, which must be raised at line `line` of this file.
  local function raised_at(line, fn)
    local ok, err = pcall(fn)
    assert.is_false(ok)
    local src = debug.getinfo(1, "S").short_src
    local prefix = ("%s:%d: "):format(src, line)
    assert.are.equal(prefix, tostring(err):sub(1, #prefix), tostring(err))
    return tostring(err):sub(#prefix + 1)
  end
  local space = S.grid { a = { 1, 2 } }

  it("names the quantized distribution whose arguments are wrong", function()
    local line = debug.getinfo(1, "l").currentline
    assert.are.equal("qloguniform: need 0 < lo < hi, got -1 and 2", raised_at(line + 1, function() local r = S.qloguniform(-1, 2, 1); return r end))
    assert.are.equal("qnormal: sigma must be > 0, got -1", raised_at(line + 2, function() local r = S.qnormal(0, -1, 1); return r end))
    assert.are.equal("quniform: lo must be < hi, got 2 and 1", raised_at(line + 3, function() local r = S.quniform(2, 1, 1); return r end))
    assert.are.equal("qrandint: lo must be <= hi, got 2 and 1", raised_at(line + 4, function() local r = S.qrandint(2, 1, 1); return r end))
    assert.are.equal("qlognormal: q must be > 0, got 0", raised_at(line + 5, function() local r = S.qlognormal(0, 1, 0); return r end))
    assert.are.equal("quniform(0, 1, q=0.25)", tostring(S.quniform(0, 1, 0.25)))
    for p in S.random({ a = S.qloguniform(1, 100, 5), b = S.qnormal(0, 1, 0.5), c = S.qlognormal(0, 1, 0.25) }, { n = 200, seed = 3 }):points() do
      assert.are.equal("integer", math.type(p.a))
      assert.are.equal(0, p.a % 5)
      assert.is_true(p.a >= 0 and p.a <= 100, tostring(p.a))
      assert.are.equal(0.0, p.b % 0.5)
      assert.are.equal(0.0, p.c % 0.25)
      assert.is_true(p.c >= 0)
    end
  end)

  it("checks the arguments of space methods, naming them", function()
    local line = debug.getinfo(1, "l").currentline
    assert.are.equal("list: 'limit' must be an integer >= 0, got \"x\"", raised_at(line + 1, function() local r = space:list("x"); return r end))
    assert.are.equal("at: 'i' must be an integer (a point's number from 1), got 1.5", raised_at(line + 2, function() local r = space:at(1.5); return r end))
    assert.are.equal("bad self to 'points' (a space expected, got number); call it as space:points(...)",
      raised_at(line + 4, function() local r = space.points(5); return r end))
    assert.are.equal("bad self to 'keys' (a space expected, got nil); call it as space:keys(...)",
      raised_at(line + 6, function() local r = space.keys(); return r end))
    assert.are.equal("derive: 'x' must be a function, got number", raised_at(line + 7, function() local r = space:derive { x = 3 }; return r end))
    assert.are.same({ { a = 1 } }, (function() local l = space:list(1); return { { a = l[1].a } } end)())
  end)

  it("checks the arguments of preview and plan, naming them", function()
    local function template() return nil end
    local line = debug.getinfo(1, "l").currentline
    assert.are.equal("preview: options must be a table, got number", raised_at(line + 1, function() local r = S.preview(space, template, 3); return r end))
    assert.are.equal("preview: unknown option 'limt' (did you mean 'limit'?)", raised_at(line + 2, function() local r = space:preview(template, { limt = 3 }); return r end))
    assert.are.equal("preview: 'limit' must be an integer >= 1, got 0", raised_at(line + 3, function() local r = S.preview(space, template, { limit = 0 }); return r end))
    assert.are.equal("plan: 'template' must be a function(point) returning a job, got number", raised_at(line + 4, function() local r = S.plan(space, 3); return r end))
    assert.are.equal("plan: 'space' must be a space or a table of parameters, got number", raised_at(line + 5, function() local r = S.plan(3, template); return r end))
    assert.are.equal("plan: 'name' (the sweep's) must be 1 to 64 letters, digits, '-' or '_', got \"a b\"",
      raised_at(line + 7, function() local r = S.plan(space, template, { name = "a b" }); return r end))
    assert.are.equal("plan: 'job_name': job name template \"{x\": '{' at 1 is not closed",
      raised_at(line + 9, function() local r = S.plan(space, template, { job_name = "{x" }); return r end))
    -- Invalid trials are an expected failure: nil and the message.
    local plan, err = S.plan(space, template, { name = "s" })
    assert.is_nil(plan)
    assert.are.equal('trial 1 {"a":1}: the template returned nothing (a JobProperties value is needed)', err)
  end)

  it("checks the options of the stopping policies, at the caller's line", function()
    local line = debug.getinfo(1, "l").currentline
    assert.are.equal("median: 'metric' (a metric name) is required", raised_at(line + 1, function() local r = S.median { metric = 3 }; return r end))
    assert.are.equal("median: 'grace' must be an integer >= 0", raised_at(line + 2, function() local r = S.median { metric = "x", grace = -1 }; return r end))
    assert.are.equal("bandit: the slack must be a number >= 0", raised_at(line + 3, function() local r = S.bandit { metric = "x", slack_factor = -1 }; return r end))
    assert.are.equal("truncation: 'percentile' must be a number between 0 and 100", raised_at(line + 4, function() local r = S.truncation { metric = "x", percentile = 100 }; return r end))
    assert.are.equal("bad argument #1 to 'median' (table expected, got string)", raised_at(line + 5, function() local r = S.median("loss"); return r end))
  end)
end)

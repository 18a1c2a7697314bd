-- Benchmark: iterate the 1,000,000 points of a 4-parameter grid with
-- bai.sweep, against a hand-written nested Lua loop building the same point
-- tables, in the same run.  Prints points/s, the Lua heap's peak and the
-- process's peak RSS for each, and the ratios (goal: sweep within 2x).
--   build/bin/bai scripts/bench/sweep_points.lua [ROUNDS]
-- Each approach runs in its own child process so that peak RSS is its own.
local sys = require "batchai._sys"

local function peak_rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

local function values()
  local lr, batch, depth, seed = {}, {}, {}, {}
  for i = 1, 10 do lr[i] = 10 ^ (-i / 2) end
  for i = 1, 10 do batch[i] = 16 * i end
  for i = 1, 100 do depth[i] = "d" .. i end
  for i = 1, 100 do seed[i] = i end
  return lr, batch, depth, seed
end

-- Child mode: run one approach, print seconds, heap peak KB and RSS peak KB.
local mode = arg[1]
if mode == "nested" or mode == "sweep" then
  local lr, batch, depth, seed = values()
  local heap_peak, n, checksum = 0, 0, 0
  collectgarbage()
  local t0 = sys.monotime()
  if mode == "nested" then
    for _, a in ipairs(lr) do
      for _, b in ipairs(batch) do
        for _, c in ipairs(depth) do
          for _, d in ipairs(seed) do
            local p = { lr = a, batch = b, depth = c, seed = d }
            n = n + 1
            checksum = checksum + p.seed + p.batch
            if n % 65536 == 0 then heap_peak = math.max(heap_peak, collectgarbage("count")) end
          end
        end
      end
    end
  else
    local S = require("batchai").sweep
    local space = S.grid { lr = lr, batch = batch, depth = depth, seed = seed }
    for p in space:points() do
      n = n + 1
      checksum = checksum + p.seed + p.batch
      if n % 65536 == 0 then heap_peak = math.max(heap_peak, collectgarbage("count")) end
    end
  end
  local seconds = sys.monotime() - t0
  assert(n == 1000000, "expected 1,000,000 points, got " .. n)
  print(("%.6f %.0f %d %d"):format(seconds, heap_peak, peak_rss_kb(), checksum))
  os.exit(0)
end

local rounds = tonumber(mode) or 3
local bai_bin = os.getenv("BAI") or sys.realpath("/proc/self/exe")
local script = arg[0]

local function run(which)
  local best
  for _ = 1, rounds do
    local p = assert(io.popen(("%q %q %s"):format(bai_bin, script, which)))
    local out = p:read("a")
    p:close()
    local seconds, heap, rss, checksum = out:match("^(%S+) (%S+) (%S+) (%S+)")
    assert(seconds, "child failed: " .. out)
    local r = { seconds = tonumber(seconds), heap = tonumber(heap), rss = tonumber(rss), checksum = checksum }
    if not best or r.seconds < best.seconds then best = r end
  end
  return best
end

local nested = run("nested")
local sweep = run("sweep")
assert(nested.checksum == sweep.checksum, "the two approaches saw different points")
print(("1,000,000 points of a 4-parameter grid (10 x 10 x 100 x 100), best of %d runs each"):format(rounds))
print(("%-22s %12s %14s %14s"):format("", "points/s", "Lua heap peak", "RSS peak"))
for _, row in ipairs { { "hand-written loop", nested }, { "bai.sweep.grid", sweep } } do
  local r = row[2]
  print(("%-22s %12.0f %11.1f MB %11.1f MB"):format(row[1], 1e6 / r.seconds, r.heap / 1024, r.rss / 1024))
end
print(("time ratio sweep/loop: %.2fx (goal <= 2x); RSS ratio: %.2fx"):format(sweep.seconds / nested.seconds, sweep.rss / nested.rss))

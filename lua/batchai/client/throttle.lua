-- batchai.client.throttle: client-side token buckets, one per kind of
-- operation (read, write, delete), as ARM budgets requests per principal.
-- A request takes one token; with none left it waits for the refill (tokens
-- go negative, so waiters queue fairly).  The endpoint's
-- x-ms-ratelimit-remaining-* headers can only lower what we think is left.
local sys = require "batchai._sys"
local loop = require "batchai.client.loop"

local M = {}

local KINDS = { "read", "write", "delete" }

local Bucket = {}
Bucket.__index = Bucket

local function new_bucket(spec, now)
  return setmetatable({ capacity = spec.bucket, refill = spec.refill, tokens = spec.bucket, last = now,
    waited = 0, wait_total = 0 }, Bucket)
end

-- Adds what refilled since the last look (`now` in seconds of the throttle's clock).
function Bucket:update(now)
  self.tokens = math.min(self.capacity, self.tokens + (now - self.last) * self.refill)
  self.last = now
end

-- Takes one token; returns the seconds the caller must wait first (0 if none).
function Bucket:take(now)
  self:update(now)
  self.tokens = self.tokens - 1
  if self.tokens >= 0 then return 0 end
  return -self.tokens / self.refill
end

local Throttle = {}
Throttle.__index = Throttle

--- throttle.new{ read = {bucket=, refill=}, write = ..., delete = ... }
function M.new(budgets)
  local clock = sys.monotime
  local now = clock()
  return setmetatable({ clock = clock,
    read = new_bucket(budgets.read, now), write = new_bucket(budgets.write, now), delete = new_bucket(budgets.delete, now),
  }, Throttle)
end

--- Makes the buckets read the time from clock() (seconds) from now on.  Specs
-- stop the clock so that what the buckets decide does not depend on how fast
-- the machine runs.
function Throttle:use_clock(clock)
  self.clock = clock
  local now = clock()
  for _, kind in ipairs(KINDS) do self[kind].last = now end
end

--- Waits (suspending the task, or driving the loop) until a `kind` request may go.
function Throttle:acquire(kind)
  local bucket = self[kind] or self.read
  local wait = bucket:take(self.clock())
  if wait > 0 then
    bucket.waited = bucket.waited + 1
    bucket.wait_total = bucket.wait_total + wait
    loop.sleep(wait)
  end
end

local header_kinds = {
  ["x-ms-ratelimit-remaining-subscription-reads"] = "read",
  ["x-ms-ratelimit-remaining-subscription-writes"] = "write",
  ["x-ms-ratelimit-remaining-subscription-deletes"] = "delete",
  ["x-ms-ratelimit-remaining-tenant-reads"] = "read",
  ["x-ms-ratelimit-remaining-tenant-writes"] = "write",
  ["x-ms-ratelimit-remaining-tenant-deletes"] = "delete",
  ["x-ms-ratelimit-remaining-subscription-global-reads"] = "read",
  ["x-ms-ratelimit-remaining-subscription-global-writes"] = "write",
  ["x-ms-ratelimit-remaining-subscription-global-deletes"] = "delete",
}

--- Lowers the buckets to what the endpoint says remains (raw header block).
function Throttle:observe(raw_headers)
  if not raw_headers:find("[Xx]%-[Mm][Ss]%-[Rr]atelimit") then return end
  for line in raw_headers:gmatch("[^\r\n]+") do
    local name, value = line:match("^([^:]+):%s*(%d+)")
    local kind = name and header_kinds[name:lower()]
    if kind then
      local bucket = self[kind]
      local remaining = tonumber(value)
      bucket:update(self.clock())  -- the count is the endpoint's as of now
      if remaining < bucket.tokens then bucket.tokens = remaining end
    end
  end
end

--- { read = { tokens=, waited=, wait_total= }, ... } for diagnostics and specs:
-- tokens left as of the last request, how many requests had to wait, and the
-- seconds of waiting decided in all.
function Throttle:stats()
  local s = {}
  for _, kind in ipairs(KINDS) do
    local b = self[kind]
    s[kind] = { tokens = b.tokens, waited = b.waited, wait_total = b.wait_total }
  end
  return s
end

return M

-- batchai.client.throttle: client-side token buckets, one per kind of
-- operation (read, write, delete), as ARM budgets requests per principal.
-- A request takes one token; with none left it waits for the refill (tokens
-- go negative, so waiters queue fairly).  The endpoint's
-- x-ms-ratelimit-remaining-* headers can only lower what we think is left.
local sys = require "batchai._sys"
local loop = require "batchai.client.loop"

local M = {}

local Bucket = {}
Bucket.__index = Bucket

local function new_bucket(spec)
  return setmetatable({ capacity = spec.bucket, refill = spec.refill, tokens = spec.bucket, last = sys.monotime(),
    waited = 0 }, Bucket)
end

-- Takes one token; returns the seconds the caller must wait first (0 if none).
function Bucket:take()
  local now = sys.monotime()
  self.tokens = math.min(self.capacity, self.tokens + (now - self.last) * self.refill)
  self.last = now
  self.tokens = self.tokens - 1
  if self.tokens >= 0 then return 0 end
  return -self.tokens / self.refill
end

local Throttle = {}
Throttle.__index = Throttle

--- throttle.new{ read = {bucket=, refill=}, write = ..., delete = ... }
function M.new(budgets)
  return setmetatable({
    read = new_bucket(budgets.read), write = new_bucket(budgets.write), delete = new_bucket(budgets.delete),
  }, Throttle)
end

--- Waits (suspending the task, or driving the loop) until a `kind` request may go.
function Throttle:acquire(kind)
  local bucket = self[kind] or self.read
  local wait = bucket:take()
  if wait > 0 then
    bucket.waited = bucket.waited + 1
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
      if remaining < bucket.tokens then bucket.tokens = remaining end
    end
  end
end

--- { read = { tokens=, waited= }, ... } for diagnostics and specs.
function Throttle:stats()
  local s = {}
  for _, kind in ipairs { "read", "write", "delete" } do
    s[kind] = { tokens = self[kind].tokens, waited = self[kind].waited }
  end
  return s
end

return M

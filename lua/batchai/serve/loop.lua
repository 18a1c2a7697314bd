-- bai serve's event loop: one thread, poll(2) over watched descriptors (MHD's
-- epoll fds, pidfds, the signalfd), timers, and end-of-round hooks (the store's
-- group commit runs there, so everything a round wrote shares one fsync).
local proc = require "batchai._proc"
local sys = require "batchai._sys"

local M = {}
local Loop = {}
Loop.__index = Loop

function M.new()
  return setmetatable({ watchers = {}, fds = {}, timers = {}, round_hooks = {}, timeout_hooks = {}, deferred = {},
    running = false }, Loop)
end

local function rebuild_fds(self)
  local fds = {}
  for fd in pairs(self.watchers) do fds[#fds + 1] = fd end
  self.fds = fds
end

--- Calls fn() whenever fd is readable (until unwatch).
function Loop:watch(fd, fn)
  self.watchers[fd] = fn
  rebuild_fds(self)
end

function Loop:unwatch(fd)
  self.watchers[fd] = nil
  rebuild_fds(self)
end

--- Calls fn() once after `delay` seconds; returns a timer with :cancel().
function Loop:timer(delay, fn)
  local t = { at = sys.monotime() + delay, fn = fn }
  function t.cancel() t.fn = nil end
  self.timers[#self.timers + 1] = t
  return t
end

--- Calls fn() at the end of every round, in registration order.
function Loop:on_round_end(fn) self.round_hooks[#self.round_hooks + 1] = fn end

--- Calls fn() once at the end of this round, after the end-of-round hooks: after
-- the round's commit and the answers it released (work that must not delay them).
function Loop:defer(fn) self.deferred[#self.deferred + 1] = fn end

--- fn() -> milliseconds the loop may sleep at most (or nil), asked every round.
function Loop:add_timeout_source(fn) self.timeout_hooks[#self.timeout_hooks + 1] = fn end

--- Calls fn() every round right after the ready descriptors' watchers (for
-- libraries that need a call when their own timeout expires, like MHD).
function Loop:add_ticker(fn)
  self.tickers = self.tickers or {}
  self.tickers[#self.tickers + 1] = fn
end

function Loop:stop() self.running = false end

-- Milliseconds the next poll may wait: until the first timer, or what a
-- timeout source asks.  Drops cancelled and fired timers from the list.
local function next_timeout(self, now)
  local wait = 60000
  local timers, n, dead = self.timers, #self.timers, 0
  for i = 1, n do
    local t = timers[i]
    if t.fn then
      local ms = math.ceil((t.at - now) * 1000)
      if ms < wait then wait = ms < 0 and 0 or ms end
    else
      dead = dead + 1
    end
  end
  if dead > 0 then
    local live = {}
    for i = 1, n do
      if timers[i].fn then live[#live + 1] = timers[i] end
    end
    self.timers = live
  end
  if #self.deferred > 0 then return 0 end -- deferred from a deferred function: the next round
  local hooks = self.timeout_hooks
  for i = 1, #hooks do
    local ms = hooks[i]()
    if ms and ms < wait then wait = ms end
  end
  return wait
end

--- One round: wait for events (at most max_wait ms), dispatch them, fire due
-- timers, run the round hooks.
function Loop:round(max_wait)
  local wait = next_timeout(self, sys.monotime())
  if max_wait and max_wait < wait then wait = max_wait end
  local ready = proc.poll(self.fds, wait)
  local watchers = self.watchers
  for i = 1, #ready do
    local fn = watchers[ready[i]]
    if fn then fn() end
  end
  local tickers = self.tickers
  if tickers then
    for i = 1, #tickers do tickers[i]() end
  end
  local timers = self.timers
  if #timers > 0 then
    local now = sys.monotime()
    local due
    for i = 1, #timers do
      local t = timers[i]
      if t.fn and t.at <= now then
        due = due or {}
        due[#due + 1] = t
      end
    end
    if due then
      for _, t in ipairs(due) do
        local fn = t.fn
        t.fn = nil
        if fn then fn() end
      end
    end
  end
  local hooks = self.round_hooks
  for i = 1, #hooks do hooks[i]() end
  local deferred = self.deferred
  if #deferred > 0 then
    self.deferred = {}
    for i = 1, #deferred do deferred[i]() end
  end
end

--- Runs rounds until stop().
function Loop:run()
  self.running = true
  while self.running do self:round() end
end

return M

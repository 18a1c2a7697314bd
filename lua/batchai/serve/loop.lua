-- bai serve's event loop: one thread, poll(2) over watched descriptors (MHD's
-- epoll fds, pidfds, the signalfd), timers, and end-of-round hooks (the store's
-- group commit runs there, so everything a round wrote shares one fsync).
local proc = require "batchai._proc"
local sys = require "batchai._sys"

local M = {}
local Loop = {}
Loop.__index = Loop

function M.new()
  return setmetatable({ watchers = {}, fds = {}, timers = {}, round_hooks = {}, timeout_hooks = {}, running = false }, Loop)
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

--- fn() -> milliseconds the loop may sleep at most (or nil), asked every round.
function Loop:add_timeout_source(fn) self.timeout_hooks[#self.timeout_hooks + 1] = fn end

--- Calls fn() every round right after the ready descriptors' watchers (for
-- libraries that need a call when their own timeout expires, like MHD).
function Loop:add_ticker(fn)
  self.tickers = self.tickers or {}
  self.tickers[#self.tickers + 1] = fn
end

function Loop:stop() self.running = false end

local function next_timeout(self, now)
  local wait = 60000
  local live = {}
  for _, t in ipairs(self.timers) do
    if t.fn then
      live[#live + 1] = t
      local ms = math.max(0, math.ceil((t.at - now) * 1000))
      if ms < wait then wait = ms end
    end
  end
  self.timers = live
  for _, f in ipairs(self.timeout_hooks) do
    local ms = f()
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
  for i = 1, #ready do
    local fn = self.watchers[ready[i]]
    if fn then fn() end
  end
  for _, fn in ipairs(self.tickers or {}) do fn() end
  local now = sys.monotime()
  local due = {}
  for _, t in ipairs(self.timers) do
    if t.fn and t.at <= now then due[#due + 1] = t end
  end
  for _, t in ipairs(due) do
    local fn = t.fn
    t.fn = nil
    if fn then fn() end
  end
  for i = 1, #self.round_hooks do self.round_hooks[i]() end
end

--- Runs rounds until stop().
function Loop:run()
  self.running = true
  while self.running do self:round() end
end

return M

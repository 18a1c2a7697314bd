-- batchai.client.loop: many requests in flight at once, without threads.
--
-- Every HTTP exchange of the client goes through loop.request, which runs on
-- one libcurl multi handle per process.  Concurrency comes from tasks:
-- coroutines that the loop resumes as their transfers complete.
--
--   local loop = require "batchai.client.loop"
--
--   local pool = loop.pool { concurrency = 32 }     -- at most 32 tasks at once (on 32 reused coroutines)
--   for name, props in pairs(jobs) do
--     pool:spawn(function() assert(exp:create_job(name, props, { wait = false })) end)
--   end                                            -- spawn waits while 32 run, returns nothing
--   pool:wait()                                     -- all done; raises a task's error
--
--   loop.map(list, fn, { concurrency = N })  -> results   results[i] = fn(list[i]) (first value)
--   loop.each(iterator, fn, { concurrency = N })          fn(...) for each value of a lazy iterator
--   loop.spawn(fn, ...) -> task; task:join() -> fn's results (raises fn's error)
--   loop.request(req)   -> status, body, headers | nil, message, code   (req as batchai._http add)
--   loop.sleep(seconds)
--   loop.in_task()      -> true inside a task
--   loop.signal()       -> s; s:wait() suspends until the next s:fire()
--
-- Rules.  Any client call (exp:job, exp:create_job, ws:experiments() ...) may be
-- made inside a task: it suspends only that task.  Outside a task (the main
-- script, or a coroutine of your own) the same call drives the loop until its
-- answer arrives, so plain sequential scripts need none of this.  Within a
-- pool, a task that raises stops further spawns: the next pool:spawn or
-- pool:wait raises that error (after the tasks already running have ended, for
-- wait).  A task must not yield by itself (coroutine.yield) except through
-- these functions.
local http = require "batchai._http"
local sys = require "batchai._sys"

local M = {}

local monotime = sys.monotime
local co_running, co_resume, co_yield, co_status = coroutine.running, coroutine.resume, coroutine.yield, coroutine.status
local co_isyieldable = coroutine.isyieldable

local multi            -- the batchai.HttpMulti, made on first use
local multi_options = {}
local tasks = setmetatable({}, { __mode = "k" })  -- coroutine -> task
local ready = {}       -- coroutines to resume on the next step, in order
local ready_first, ready_last = 1, 0
local timers = {}      -- binary heap of { due, ref }

--- Options for the multi handle (max_host_connections, ca_file, user_agent, ...),
-- applied when it is next created.  Returns the handle if one exists.
function M.configure(options)
  for k, v in pairs(options) do multi_options[k] = v end
  return multi
end

local function get_multi()
  if not multi then multi = http.multi(multi_options) end
  return multi
end
M.multi = get_multi

-- ---- timers -----------------------------------------------------------

local function heap_push(due, ref)
  local n = #timers + 1
  timers[n] = { due, ref }
  while n > 1 do
    local parent = n // 2
    if timers[parent][1] <= timers[n][1] then break end
    timers[parent], timers[n] = timers[n], timers[parent]
    n = parent
  end
end

local function heap_pop()
  local top = timers[1]
  local n = #timers
  timers[1] = timers[n]
  timers[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, smallest = 2 * i, 2 * i + 1, i
    if l <= n and timers[l][1] < timers[smallest][1] then smallest = l end
    if r <= n and timers[r][1] < timers[smallest][1] then smallest = r end
    if smallest == i then break end
    timers[i], timers[smallest] = timers[smallest], timers[i]
    i = smallest
  end
  return top
end

-- ---- waking -------------------------------------------------------------

local function make_ready(co)
  ready_last = ready_last + 1
  ready[ready_last] = co
end

local resume_task

-- A finished transfer or timer: resumes the task waiting for it, or fills the
-- waiter table of a caller that drives the loop.
local function wake(ref, a, b, c)
  if type(ref) == "thread" then
    resume_task(ref, a, b, c)
  else
    ref.done = true
    ref[1], ref[2], ref[3] = a, b, c
  end
end

-- One round: resumes ready tasks, drives transfers (waiting at most max_wait
-- seconds for one to finish, less when a timer is due sooner), fires timers.
local function step(max_wait)
  while ready_first <= ready_last do
    local co = ready[ready_first]
    ready[ready_first] = nil
    ready_first = ready_first + 1
    resume_task(co)
  end
  local m = get_multi()
  local wait = max_wait or 1
  if timers[1] then
    local until_due = timers[1][1] - monotime()
    if until_due < wait then wait = until_due end
  end
  if wait < 0 then wait = 0 end
  if m:perform(wait) > 0 then
    local next_done = m.next
    while true do
      local ref, a, b, c = next_done(m)
      if ref == nil then break end
      wake(ref, a, b, c)
    end
  end
  local now = monotime()
  while timers[1] and timers[1][1] <= now do
    wake(heap_pop()[2])
  end
end

local function idle()
  return ready_first > ready_last and not timers[1] and (not multi or multi:pending() == 0)
end

-- Drives the loop until waiter.done; raises if nothing could ever set it.
local function drive(waiter)
  while not waiter.done do
    if idle() then error("batchai.client.loop: waiting for something that can never happen (nothing in flight)", 3) end
    step(1)
  end
end

-- Is the running coroutine a task we may suspend?
local function current_task()
  local co = co_running()
  local task = tasks[co]
  if task and co_isyieldable() then return co end
  return nil
end

function M.in_task() return current_task() ~= nil end

-- ---- requests and sleeping -----------------------------------------------

--- One HTTP exchange: status, body, headers | nil, message, code.
function M.request(req)
  local m = get_multi()
  local co = current_task()
  if co then
    local id, err = m:add(co, req)
    if not id then return nil, err, "REQUEST_FAILED" end
    return co_yield()
  end
  local waiter = { done = false }
  local id, err = m:add(waiter, req)
  if not id then return nil, err, "REQUEST_FAILED" end
  drive(waiter)
  return waiter[1], waiter[2], waiter[3]
end

--- Waits `seconds` (suspending only the task when inside one).
function M.sleep(seconds)
  local due = monotime() + math.max(0, seconds)
  local co = current_task()
  if co then
    heap_push(due, co)
    co_yield()
    return
  end
  local waiter = { done = false }
  heap_push(due, waiter)
  drive(waiter)
end

-- ---- signals: wait until something changes -------------------------------

local Signal = {}
Signal.__index = Signal

local function new_signal() return setmetatable({ waiting = {} }, Signal) end

--- loop.signal() -> s; s:wait() suspends until the next s:fire().
M.signal = new_signal

-- Suspends until the next fire().
function Signal:wait()
  local co = current_task()
  if co then
    self.waiting[#self.waiting + 1] = co
    co_yield()
    return
  end
  local waiter = { done = false }
  self.waiting[#self.waiting + 1] = waiter
  drive(waiter)
end

function Signal:fire()
  local waiting = self.waiting
  if #waiting == 0 then return end
  self.waiting = {}
  for _, w in ipairs(waiting) do
    if type(w) == "thread" then make_ready(w) else w.done = true end
  end
end

-- ---- tasks ---------------------------------------------------------------

local Task = {}
Task.__index = Task
Task.__name = "batchai.Task"
function Task:__tostring()
  return ("batchai.Task (%s)"):format(self.done and (self.ok and "done" or "failed") or "running")
end

local function traceback(err)
  if type(err) == "table" then return err end  -- structured errors keep their fields
  return debug.traceback(tostring(err), 2)
end

local unpack, pack = table.unpack, table.pack

-- Resumes a task with values; when it ends, records its outcome and wakes
-- whoever waits for it.
function resume_task(co, ...)
  local ok, err = co_resume(co, ...)
  if not ok then  -- only the task wrapper itself can fail here
    local task = tasks[co]
    task.results = { n = 1, err }
  end
  if co_status(co) == "dead" then
    local task = tasks[co]
    tasks[co] = nil
    task.done = true
    task.ok = task.results[1] == true
    task.finished:fire()
  end
end

--- Starts fn(...) as a task and runs it until it first waits.  Returns the task.
function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'spawn' (function expected)", 2) end
  local task = setmetatable({ done = false, finished = new_signal() }, Task)
  local co = coroutine.create(function(...)
    task.results = pack(xpcall(fn, traceback, ...))
  end)
  tasks[co] = task
  resume_task(co, ...)
  return task
end


--- Waits for the task to end; returns fn's results or raises its error.
function Task:join()
  while not self.done do self.finished:wait() end
  if not self.ok then error(self.results[2], 0) end
  return unpack(self.results, 2, self.results.n)
end

-- ---- pools -----------------------------------------------------------------

local Pool = {}
Pool.__index = Pool
Pool.__name = "batchai.Pool"
function Pool:__tostring()
  return ("batchai.Pool (%d running, limit %d)"):format(self.running, self.concurrency)
end

--- loop.pool{ concurrency = N } -> a pool running at most N tasks at once.
-- Its tasks run on worker coroutines that the pool keeps and reuses, so a
-- million spawns create at most N coroutines.
function M.pool(options)
  options = options or {}
  for k in pairs(options) do
    if k ~= "concurrency" then
      error(("invalid field '%s' in loop.pool%s"):format(tostring(k),
        require("batchai.util").did_you_mean(tostring(k), { "concurrency" })), 2)
    end
  end
  local n = options.concurrency or 32
  if math.type(n) ~= "integer" or n < 1 then
    error("bad argument #1 to 'pool' (field 'concurrency': integer >= 1 expected)", 2)
  end
  return setmetatable({ concurrency = n, running = 0, changed = new_signal(), error = nil, spawned = 0,
    idle = {}, workers = 0 }, Pool)
end

local function raise_pool_error(pool)
  error(pool.error, 0)
end

-- The body of a worker coroutine: runs one job, reports it, parks until the
-- pool hands it the next (fn and up to four arguments).
local function worker(pool, fn, a, b, c, d)
  local self_co = co_running()
  while true do
    local ok, err = xpcall(fn, traceback, a, b, c, d)
    pool.running = pool.running - 1
    if not ok and not pool.error then pool.error = err end
    pool.changed:fire()
    pool.idle[#pool.idle + 1] = self_co
    fn, a, b, c, d = co_yield()
  end
end

--- Runs fn(...) once fewer than `concurrency` of this pool's tasks run (it
-- starts at once, and the call returns when fn first waits or ends).
-- Raises the error of an earlier task of the pool, if one failed.
function Pool:spawn(fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'spawn' (function expected)", 2) end
  while self.running >= self.concurrency and not self.error do self.changed:wait() end
  if self.error then raise_pool_error(self) end
  self.running = self.running + 1
  self.spawned = self.spawned + 1
  if select("#", ...) > 4 then
    local args = pack(...)
    local inner = fn
    fn = function() return inner(unpack(args, 1, args.n)) end
  end
  local idle = self.idle
  local co = idle[#idle]
  if co then
    idle[#idle] = nil
  else
    self.workers = self.workers + 1
    co = coroutine.create(worker)
    tasks[co] = setmetatable({ done = false, finished = new_signal() }, Task)
    resume_task(co, self, fn, ...)
    return
  end
  resume_task(co, fn, ...)
end

--- Waits until every task of the pool has ended; raises the first task error.
function Pool:wait()
  while self.running > 0 do self.changed:wait() end
  if self.error then raise_pool_error(self) end
end

--- results[i] = first value of fn(list[i], i), at most `concurrency` at once.
function M.map(list, fn, options)
  local pool = M.pool { concurrency = options and options.concurrency or 32 }
  local results = {}
  for i = 1, #list do
    pool:spawn(function() results[i] = fn(list[i], i) end)
  end
  pool:wait()
  return results
end

--- Calls fn(...) for each set of values the iterator gives, at most
-- `concurrency` at once; memory stays bounded for any number of items.
function M.each(iterator, fn, options)
  local pool = M.pool { concurrency = options and options.concurrency or 32 }
  for a, b, c in iterator do
    pool:spawn(fn, a, b, c)
  end
  pool:wait()
end

--- Runs the loop until nothing is in flight and no task waits on a timer.
function M.run()
  while not idle() do step(1) end
end

--- Counts for diagnostics: transfers pending, timers, the multi's statistics.
function M.stats()
  local s = multi and multi:stats() or {}
  s.pending = multi and multi:pending() or 0
  s.timers = #timers
  return s
end

return M

-- Progress of a sweep on stderr: a live status line on a terminal (counts by
-- state, rate, elapsed time, ETA, with failures printed above it as they
-- happen), or plain periodic lines when stderr is not a terminal.
local sys = require "batchai._sys"
local tabulate = require "batchai.sweep.tabulate"

local M = {}

local format, concat = string.format, table.concat

local ORDER = { "pending", "queued", "running", "terminating", "succeeded", "failed", "stopped", "conflict", "rejected" }
local DONE = { succeeded = true, failed = true, stopped = true, conflict = true, rejected = true }
M.DONE = DONE

local Progress = {}
Progress.__index = Progress

--- opts: name, total, out (default io.stderr), live (default: out is a
-- terminal), every (seconds between plain lines, default 10), enabled.
function M.new(opts)
  local out = opts.out or io.stderr
  local live = opts.live
  if live == nil then live = sys.isatty(out) and os.getenv("TERM") ~= "dumb" end
  return setmetatable({
    name = opts.name, total = opts.total or 0, out = out, live = live, every = opts.every or 10,
    enabled = opts.enabled ~= false, started = sys.monotime(), last_line = nil, last_time = -math.huge,
    drawn = false, done_at_start = nil,
  }, Progress)
end

-- "12 queued, 4 running, 30 succeeded, 2 failed"
local function counts_text(counts)
  local parts = {}
  for _, state in ipairs(ORDER) do
    local n = counts[state]
    if n and n > 0 then parts[#parts + 1] = format("%d %s", n, state) end
  end
  for state, n in pairs(counts) do
    if state ~= "total" and n > 0 and not DONE[state] and state ~= "pending" and state ~= "queued"
      and state ~= "running" and state ~= "terminating" then
      parts[#parts + 1] = format("%d %s", n, state)
    end
  end
  return concat(parts, ", ")
end

--- The status text for counts (state -> n): counts, done/total, rate, elapsed, ETA.
function Progress:text(counts, phase)
  local done = 0
  for state, n in pairs(counts) do if DONE[state] then done = done + n end end
  if self.done_at_start == nil then self.done_at_start = done end
  local elapsed = sys.monotime() - self.started
  local parts = { format("sweep %s", self.name) }
  if phase then parts[#parts + 1] = phase end
  parts[#parts + 1] = format("%d/%d done", done, self.total)
  local text = counts_text(counts)
  if text ~= "" then parts[#parts + 1] = text end
  local finished_here = done - self.done_at_start
  if finished_here > 0 and elapsed > 0 then
    local rate = finished_here / elapsed
    parts[#parts + 1] = format("%.1f/min", rate * 60)
    local remaining = self.total - done
    if remaining > 0 then parts[#parts + 1] = "eta " .. tabulate.duration(remaining / rate) end
  end
  parts[#parts + 1] = "elapsed " .. tabulate.duration(elapsed)
  return concat(parts, " | ")
end

--- Shows the status: redraws the live line, or prints a plain line when the
-- counts changed and `every` seconds passed (or force).
function Progress:update(counts, phase, force)
  if not self.enabled then return end
  local line = self:text(counts, phase)
  if self.live then
    local cols = sys.term_size(2) or 100
    if #line > cols - 1 then line = line:sub(1, cols - 2) .. "…" end
    self.out:write("\r\27[K", line)
    self.out:flush()
    self.drawn = true
  else
    local now = sys.monotime()
    local key = line:gsub(" | elapsed.*$", ""):gsub(" | eta [^|]*", ""):gsub(" | [%d.]+/min", "")
    if force or (key ~= self.last_line and now - self.last_time >= self.every) then
      self.out:write(line, "\n")
      self.out:flush()
      self.last_line, self.last_time = key, now
    end
  end
end

--- Prints a line of its own (a failure, a stop), above the live line.
function Progress:event(text)
  if not self.enabled then return end
  if self.live and self.drawn then self.out:write("\r\27[K") end
  self.out:write(text, "\n")
  self.out:flush()
end

--- Ends the display with a final status line.
function Progress:finish(counts, phase)
  if not self.enabled then return end
  if self.live then
    self:update(counts, phase)
    self.out:write("\n")
    self.out:flush()
    self.drawn = false
  else
    self:update(counts, phase, true)
  end
end

return M

-- A sweep's manifest: what was planned, submitted and observed, kept on disk
-- under .bai/sweeps/NAME/ so that re-running a sweep submits only what is
-- missing and `bai sweep status|results|report` work without the script.
--
-- Format (JSON lines, exact numbers via batchai.sweep.codec):
--   manifest.jsonl  the snapshot, replaced atomically (write, fsync, rename):
--                   line 1 the header {"format":"bai-sweep/1","name":..,
--                   "generation":G, "experiment":{..}, "keys":[..], ...},
--                   then one line per trial record (see below).
--   journal.jsonl   changes since the snapshot, one JSON object per line,
--                   appended and flushed as they happen: {"journal":G} first,
--                   then {"name":TRIAL, field = value, ..., "unset":[fields]}
--                   (merged into that trial, creating it) or {"header":{..}}.
--                   A torn last line (the process killed mid-write) is ignored.
--   lock            flock'd by the process running the sweep.
-- Loading replays the journal over the snapshot; compaction writes a new
-- snapshot with generation G+1 and restarts the journal.  Replaying is
-- idempotent, so a crash between the two steps loses nothing.
--
-- Trial record: index (position in the space, from 1), name (the trial's
-- base job name), hash (of the job's content), point (parameters), state
-- ("pending" before submission, then the job's executionState, or "conflict"),
-- job (the current job name: name, or name-rN after retries), attempt,
-- history (earlier attempts), submitted/started/ended (epoch seconds),
-- exit_code, error, metrics, stopped ({policy, reason, step}), stale (no
-- longer in the space).
local codec = require "batchai.sweep.codec"
local util = require "batchai.util"
local sys = require "batchai._sys"

local M = {}

M.FORMAT = "bai-sweep/1"

local format, concat = string.format, table.concat

--- The folder holding every sweep's folder: opts.dir, else $BAI_SWEEP_DIR,
-- else .bai/sweeps under the current directory.
function M.root(opts)
  local dir = opts and opts.dir or os.getenv("BAI_SWEEP_DIR")
  if dir and dir ~= "" then return dir end
  return (sys.getcwd() or ".") .. "/.bai/sweeps"
end

function M.path(name, opts)
  return M.root(opts) .. "/" .. name
end

--- Names of the sweeps that have a manifest under the root, sorted.
function M.list(opts)
  local root = M.root(opts)
  local names = sys.list_dir(root) or {}
  local out = {}
  for _, name in ipairs(names) do
    if sys.stat(root .. "/" .. name .. "/manifest.jsonl") then out[#out + 1] = name end
  end
  return out
end

function M.exists(name, opts)
  return sys.stat(M.path(name, opts) .. "/manifest.jsonl") ~= nil
end

local Manifest = {}
Manifest.__index = Manifest
Manifest.__name = "batchai.sweep.Manifest"

function Manifest.__tostring(m)
  return format("batchai.sweep.Manifest(%s, %d trials)", m.dir, #m.order)
end

local function merge(record, change)
  for k, v in pairs(change) do
    if k ~= "unset" and k ~= "name" then record[k] = v end
  end
  if change.unset then
    for _, k in ipairs(change.unset) do record[k] = nil end
  end
end

-- Parses the snapshot and journal texts into (header, records by name, order).
-- Returns nil, message when the snapshot is unreadable; journal_ok is false
-- when its last line was torn or its generation does not match.
local function parse(dir, snapshot, journal)
  local header, by_name, order = nil, {}, {}
  local line_no = 0
  for line in snapshot:gmatch("[^\n]+") do
    line_no = line_no + 1
    local v, err = codec.decode(line)
    if not v then return nil, format("%s/manifest.jsonl line %d: %s", dir, line_no, err) end
    if line_no == 1 then
      if v.format ~= M.FORMAT then
        return nil, format("%s/manifest.jsonl: not a bai sweep manifest (format %s, expected %s)",
          dir, tostring(v.format), M.FORMAT)
      end
      header = v
    else
      if type(v.name) ~= "string" then return nil, format("%s/manifest.jsonl line %d: trial without a name", dir, line_no) end
      if not by_name[v.name] then order[#order + 1] = v.name end
      by_name[v.name] = v
    end
  end
  if not header then return nil, format("%s/manifest.jsonl is empty", dir) end
  local torn, generation_ok = false, true
  if journal and journal ~= "" then
    local first = true
    local complete = journal:sub(-1) == "\n"
    for line in journal:gmatch("[^\n]+") do
      local v = codec.decode(line)
      if not v then  -- torn at the end, or corrupt in the middle: keep what came before
        torn = true
        break
      end
      if first then
        first = false
        -- An older journal was already folded into this snapshot (a crash
        -- between the two writes of a compaction); a newer one means a
        -- compaction raced with this read.
        if v.journal ~= header.generation then
          generation_ok = (v.journal or 0) < (header.generation or 0)
          break
        end
      elseif v.header then
        merge(header, v.header)
      elseif type(v.name) == "string" then
        local record = by_name[v.name]
        if not record then
          record = { name = v.name }
          by_name[v.name] = record
          order[#order + 1] = v.name
        end
        merge(record, v)
      end
    end
    if not complete and not torn then torn = true end
  end
  return header, by_name, order, torn, generation_ok
end

local function sort_order(m)
  table.sort(m.order, function(a, b)
    local ra, rb = m.by_name[a], m.by_name[b]
    local ia, ib = ra.index or math.huge, rb.index or math.huge
    if ia ~= ib then return ia < ib end
    return a < b
  end)
end

-- Loads the manifest in dir (reading again when a compaction raced with us).
local function load(dir)
  for _ = 1, 5 do
    local snapshot, err = util.read_file(dir .. "/manifest.jsonl")
    if not snapshot then return nil, err end
    local journal = util.read_file(dir .. "/journal.jsonl")
    local header, by_name, order, torn, generation_ok = parse(dir, snapshot, journal)
    if not header then return nil, by_name end
    if generation_ok then
      local m = setmetatable({ dir = dir, header = header, by_name = by_name, order = order, torn = torn }, Manifest)
      sort_order(m)
      return m
    end
    sys.sleep(0.01)
  end
  return nil, dir .. "/journal.jsonl: does not match manifest.jsonl (another process keeps rewriting it)"
end

--- Opens a sweep's manifest for reading: returns it, or nil and a message
-- ("no sweep named X" when it does not exist).
function M.load(name, opts)
  local dir = M.path(name, opts)
  if not sys.stat(dir .. "/manifest.jsonl") then
    local known = M.list(opts)
    local hint = ""
    if #known > 0 then hint = util.did_you_mean(name, known) end
    return nil, format("no sweep named '%s' in %s%s", name, M.root(opts), hint), "not_found"
  end
  return load(dir)
end

--- Opens (creating when needed) a sweep's manifest for writing, holding its
-- lock.  `header` is the header for a new manifest.  Returns the manifest,
-- or nil and a message (another process running the same sweep is one).
function M.open(name, header, opts)
  local dir = M.path(name, opts)
  local ok, err = sys.mkdir(dir, 493, true)
  if not ok then return nil, err end
  local lock, lock_err = require("batchai._proc").lock(dir .. "/lock")
  if not lock then
    if lock_err == "locked" then
      return nil, format("sweep '%s' is being run by another process (%s/lock is held)", name, dir), "busy"
    end
    return nil, lock_err
  end
  local m
  if sys.stat(dir .. "/manifest.jsonl") then
    local load_err
    m, load_err = load(dir)
    if not m then return nil, load_err end
  else
    local h = {}
    for k, v in pairs(header or {}) do h[k] = v end
    h.format, h.name, h.generation = M.FORMAT, name, 0
    h.created = h.created or sys.now()
    m = setmetatable({ dir = dir, header = h, by_name = {}, order = {} }, Manifest)
  end
  m.lock = lock
  m.writable = true
  -- A torn journal, or a new manifest: write a clean snapshot now.
  local snap_ok, snap_err = m:compact()
  if not snap_ok then return nil, snap_err end
  return m
end

--- Removes a sweep's folder (manifest, journal, report).  Returns true or nil, err.
function M.remove(name, opts)
  local dir = M.path(name, opts)
  if not sys.stat(dir) then return nil, format("no sweep named '%s' in %s", name, M.root(opts)) end
  local names = sys.list_dir(dir) or {}
  for _, entry in ipairs(names) do
    local path = dir .. "/" .. entry
    local st = sys.stat(path)
    if st and st.type == "directory" then
      for _, inner in ipairs(sys.list_dir(path) or {}) do os.remove(path .. "/" .. inner) end
    end
    os.remove(path)
  end
  local ok, err = os.remove(dir)
  if not ok then return nil, err end
  return true
end

-- ---- reading ------------------------------------------------------------------

function Manifest:trial(name) return self.by_name[name] end

--- Trial records in index order (stale trials, which have no place in the
-- current space, keep their old index).
function Manifest:trials()
  local out = {}
  for i, name in ipairs(self.order) do out[i] = self.by_name[name] end
  return out
end

function Manifest:count() return #self.order end

--- Counts of the current (not stale) trials by state: { pending = n,
-- queued = n, ... } with early-stopped ones as "stopped", plus total.
function Manifest:counts()
  local counts = { total = 0 }
  for _, name in ipairs(self.order) do
    local r = self.by_name[name]
    if not r.stale then
      local state = r.stopped and "stopped" or (r.state or "pending")
      counts[state] = (counts[state] or 0) + 1
      counts.total = counts.total + 1
    end
  end
  return counts
end

-- ---- writing ------------------------------------------------------------------

local function journal_handle(m)
  if not m.journal then
    local f, err = io.open(m.dir .. "/journal.jsonl", "ab")
    if not f then error(format("cannot append to the sweep journal: %s", err), 0) end
    f:setvbuf("full", 65536)
    m.journal = f
  end
  return m.journal
end

local function append(m, record)
  if not m.writable then error("the manifest was opened read-only", 2) end
  local f = journal_handle(m)
  f:write(codec.encode(record), "\n")
  m.pending_lines = (m.pending_lines or 0) + 1
  m.journal_lines = (m.journal_lines or 0) + 1
  if not m.batching then f:flush() end
end

--- Groups many updates into one write: m:batch(function() ... end).
-- Everything is flushed when fn returns (or raises).
function Manifest:batch(fn)
  local was = self.batching
  self.batching = true
  local ok, err = pcall(fn)
  self.batching = was
  if not was and self.journal then self.journal:flush() end
  if not ok then error(err, 0) end
end

--- Adds or changes a trial: fields are merged into its record (creating it);
-- opts_unset lists fields to remove.  Journaled at once.
function Manifest:update(name, fields, unset)
  local record = self.by_name[name]
  if not record then
    record = { name = name }
    self.by_name[name] = record
    self.order[#self.order + 1] = name
    self.unsorted = true
  end
  local change = { name = name }
  for k, v in pairs(fields) do
    if k ~= "name" then
      record[k] = v
      change[k] = v
    end
  end
  if unset and #unset > 0 then
    for _, k in ipairs(unset) do record[k] = nil end
    change.unset = codec.array(unset)
  end
  append(self, change)
  if self.journal_lines > math.max(4096, 2 * #self.order) and not self.batching then
    assert(self:compact())
  end
  return record
end

--- Changes header fields (journaled).
function Manifest:set_header(fields)
  for k, v in pairs(fields) do self.header[k] = v end
  append(self, { header = fields })
end

--- Writes a new snapshot atomically and restarts the journal.  Returns true or nil, err.
function Manifest:compact()
  if not self.writable then return nil, "the manifest was opened read-only" end
  if self.unsorted then sort_order(self); self.unsorted = false end
  local header = {}
  for k, v in pairs(self.header) do header[k] = v end
  header.generation = (self.header.generation or 0) + 1
  header.updated = sys.now()
  local lines = { codec.encode(header) }
  for _, name in ipairs(self.order) do lines[#lines + 1] = codec.encode(self.by_name[name]) end
  lines[#lines + 1] = ""
  -- Snapshot first: a crash before the journal restarts leaves an older
  -- journal, which readers know to skip (its lines are in the snapshot).
  if self.journal then self.journal:close(); self.journal = nil end
  local ok, err = sys.write_file(self.dir .. "/manifest.jsonl", concat(lines, "\n"))
  if not ok then return nil, err end
  ok, err = sys.write_file(self.dir .. "/journal.jsonl", codec.encode({ journal = header.generation }) .. "\n")
  if not ok then return nil, err end
  self.header = header
  self.journal_lines = 0
  self.torn = false
  return true
end

--- Flushes, writes a final snapshot and releases the lock.
function Manifest:close()
  if not self.writable then return true end
  local ok, err = self:compact()
  if self.journal then self.journal:close(); self.journal = nil end
  if self.lock then self.lock:release(); self.lock = nil end
  self.writable = false
  if not ok then return nil, err end
  return true
end

Manifest.__close = Manifest.close
Manifest.__gc = function(m) if m.journal then pcall(m.journal.flush, m.journal) end end

return M

-- bai serve's durable state: SQLite in WAL mode, one connection, and group
-- commit (every write of one event-loop round shares one transaction; answers
-- wait until it is durable).
--
-- Use: store:write(fn) runs fn inside the round's transaction (a savepoint per
-- call, so one failing write does not undo the others); store:after_commit(fn)
-- queues fn(ok, err) for when the round is durable; store:flush() commits.
--
-- Durability without blocking: transactions commit with synchronous=NORMAL
-- (the WAL is written, not synced), then a syncer thread fdatasyncs the WAL
-- while the event loop goes on; a batch's callbacks run (store:synced(), when
-- the syncer's fd is readable) once a sync that started after its commit is
-- done.  That is synchronous=FULL's guarantee, with the next rounds' work
-- overlapping the disk flush.  Reads may see a committed write before it is
-- durable (it already survives a crash of the endpoint; only a crash of the
-- machine in that window can undo it, and then nobody was told it succeeded).
local sqlite = require "batchai._sqlite"

local M = {}
local Store = {}
Store.__index = Store

local SCHEMA_VERSION = 2

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS workspaces (
  id INTEGER PRIMARY KEY,
  sub TEXT NOT NULL COLLATE NOCASE,
  rg TEXT NOT NULL COLLATE NOCASE,
  name TEXT NOT NULL COLLATE NOCASE,
  location TEXT NOT NULL,
  tags TEXT NOT NULL,
  state TEXT NOT NULL,
  created REAL NOT NULL,
  state_time REAL NOT NULL,
  body TEXT NOT NULL,
  UNIQUE (sub, rg, name));
CREATE INDEX IF NOT EXISTS workspaces_by_sub ON workspaces (sub, id);
CREATE INDEX IF NOT EXISTS workspaces_by_rg ON workspaces (sub, rg, id);
CREATE TABLE IF NOT EXISTS experiments (
  id INTEGER PRIMARY KEY,
  ws_id INTEGER NOT NULL,
  name TEXT NOT NULL COLLATE NOCASE,
  state TEXT NOT NULL,
  created REAL NOT NULL,
  state_time REAL NOT NULL,
  body TEXT NOT NULL,
  UNIQUE (ws_id, name));
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY,
  exp_id INTEGER NOT NULL,
  name TEXT NOT NULL COLLATE NOCASE,
  arm_id TEXT NOT NULL,
  location TEXT NOT NULL,
  spec TEXT NOT NULL,
  view TEXT,
  cluster TEXT NOT NULL,
  priority INTEGER NOT NULL,
  node_count INTEGER NOT NULL,
  segment TEXT NOT NULL,
  prov_state TEXT NOT NULL,
  prov_time REAL NOT NULL,
  exec_state TEXT NOT NULL,
  exec_time REAL NOT NULL,
  created REAL NOT NULL,
  started REAL,
  ended REAL,
  exit_code INTEGER,
  errors TEXT,
  handle TEXT,
  stop_reason TEXT,
  body TEXT NOT NULL,
  UNIQUE (exp_id, name));
CREATE INDEX IF NOT EXISTS jobs_by_exp ON jobs (exp_id, id);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (cluster, exec_state, priority DESC, id);
-- queued jobs not yet handed to an executor (one that queues keeps them queued with a handle)
CREATE INDEX IF NOT EXISTS jobs_unlaunched ON jobs (cluster, priority DESC, id) WHERE exec_state = 'queued' AND handle IS NULL;
-- the jobs a restart re-attaches, and the jobs being deleted: small partial
-- indexes, so that neither a start nor a deletion reads every job
CREATE INDEX IF NOT EXISTS jobs_live ON jobs (id)
  WHERE exec_state IN ('running', 'terminating') OR (exec_state = 'queued' AND handle IS NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_being_deleted ON jobs (id) WHERE prov_state = 'deleting';
CREATE TABLE IF NOT EXISTS operations (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  resource TEXT NOT NULL,
  status TEXT NOT NULL,
  created REAL NOT NULL,
  ended REAL,
  error TEXT);
]]

local JOB_COLUMNS = "id, exp_id, name, arm_id, location, spec, view, cluster, priority, node_count, segment, prov_state, prov_time, "
  .. "exec_state, exec_time, created, started, ended, exit_code, errors, handle, stop_reason, body"
local JOB_FIELDS = {}
for name in JOB_COLUMNS:gmatch("[%w_]+") do JOB_FIELDS[#JOB_FIELDS + 1] = name end
local WS_COLUMNS = "id, sub, rg, name, location, tags, state, created, state_time, body"
local WS_FIELDS = {}
for name in WS_COLUMNS:gmatch("[%w_]+") do WS_FIELDS[#WS_FIELDS + 1] = name end
local EXP_COLUMNS = "id, ws_id, name, state, created, state_time, body"
local EXP_FIELDS = {}
for name in EXP_COLUMNS:gmatch("[%w_]+") do EXP_FIELDS[#EXP_FIELDS + 1] = name end

local pack = table.pack
local function to_row(fields, ...)
  if (...) == nil then return nil end
  local values, row = pack(...), {}
  for i = 1, #fields do row[fields[i]] = values[i] end
  return row
end

local CACHE_LIMIT = 20000 -- job bodies kept for GET (about 1 KB each)

local STATEMENTS = {
  ws_get = "SELECT " .. WS_COLUMNS .. " FROM workspaces WHERE sub = ? AND rg = ? AND name = ?",
  ws_insert = "INSERT INTO workspaces (sub, rg, name, location, tags, state, created, state_time, body) "
    .. "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  ws_update = "UPDATE workspaces SET tags = ?, state = ?, state_time = ?, body = ? WHERE id = ?",
  ws_delete = "DELETE FROM workspaces WHERE id = ?",
  ws_list_sub = "SELECT id, body FROM workspaces WHERE sub = ? AND id > ? ORDER BY id LIMIT ?",
  ws_list_rg = "SELECT id, body FROM workspaces WHERE sub = ? AND rg = ? AND id > ? ORDER BY id LIMIT ?",
  exp_get = "SELECT " .. EXP_COLUMNS .. " FROM experiments WHERE ws_id = ? AND name = ?",
  exp_insert = "INSERT INTO experiments (ws_id, name, state, created, state_time, body) VALUES (?, ?, ?, ?, ?, ?)",
  exp_update = "UPDATE experiments SET state = ?, state_time = ?, body = ? WHERE id = ?",
  exp_delete = "DELETE FROM experiments WHERE id = ?",
  exp_list = "SELECT id, body FROM experiments WHERE ws_id = ? AND id > ? ORDER BY id LIMIT ?",
  exp_ids_of_ws = "SELECT id FROM experiments WHERE ws_id = ?",
  exp_id_of = "SELECT e.id FROM experiments e JOIN workspaces w ON e.ws_id = w.id "
    .. "WHERE w.sub = ? AND w.rg = ? AND w.name = ? AND e.name = ?",
  job_body_in_exp = "SELECT id, body FROM jobs WHERE exp_id = ? AND name = ?",
  job_get = "SELECT " .. JOB_COLUMNS .. " FROM jobs WHERE exp_id = ? AND name = ?",
  job_by_id = "SELECT " .. JOB_COLUMNS .. " FROM jobs WHERE id = ?",
  job_insert = "INSERT INTO jobs (exp_id, name, arm_id, location, spec, view, cluster, priority, node_count, segment, "
    .. "prov_state, prov_time, exec_state, exec_time, created, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  job_update = "UPDATE jobs SET prov_state = ?, prov_time = ?, exec_state = ?, exec_time = ?, started = ?, "
    .. "ended = ?, exit_code = ?, errors = ?, handle = ?, stop_reason = ?, body = ? WHERE id = ?",
  job_delete = "DELETE FROM jobs WHERE id = ?",
  job_list = "SELECT id, body FROM jobs WHERE exp_id = ? AND id > ? ORDER BY id LIMIT ?",
  job_count_in_exp = "SELECT count(*) FROM jobs WHERE exp_id = ?",
  jobs_of_exp = "SELECT id FROM jobs WHERE exp_id = ?",
  jobs_in_state = "SELECT " .. JOB_COLUMNS .. " FROM jobs WHERE exec_state = ? ORDER BY id",
  jobs_live = "SELECT " .. JOB_COLUMNS .. " FROM jobs "
    .. "WHERE exec_state IN ('running', 'terminating') OR (exec_state = 'queued' AND handle IS NOT NULL) ORDER BY id",
  jobs_deleting = "SELECT " .. JOB_COLUMNS .. " FROM jobs WHERE prov_state = 'deleting' ORDER BY id",
  next_queued = "SELECT " .. JOB_COLUMNS .. " FROM jobs WHERE cluster = ? AND exec_state = 'queued' "
    .. "AND handle IS NULL AND prov_state = 'succeeded' ORDER BY priority DESC, id LIMIT 1",
  queued_clusters = "SELECT DISTINCT cluster FROM jobs WHERE exec_state = 'queued'",
  count_by_state = "SELECT exec_state, count(*) FROM jobs GROUP BY exec_state",
  ws_by_id = "SELECT " .. WS_COLUMNS .. " FROM workspaces WHERE id = ?",
  ws_deleting = "SELECT " .. WS_COLUMNS .. " FROM workspaces WHERE state = 'deleting'",
  exp_by_id = "SELECT " .. EXP_COLUMNS .. " FROM experiments WHERE id = ?",
  exp_deleting = "SELECT " .. EXP_COLUMNS .. " FROM experiments WHERE state = 'deleting'",
  ws_exp_count = "SELECT count(*) FROM experiments WHERE ws_id = ?",
  op_insert = "INSERT INTO operations (id, kind, resource, status, created) VALUES (?, ?, ?, ?, ?)",
  op_get = "SELECT id, kind, resource, status, created, ended, error FROM operations WHERE id = ?",
  op_finish = "UPDATE operations SET status = ?, ended = ?, error = ? WHERE id = ?",
  op_running = "SELECT id, kind, resource FROM operations WHERE status = 'InProgress'",
  op_prune = "DELETE FROM operations WHERE ended IS NOT NULL AND ended < ?",
  savepoint = "SAVEPOINT w", -- nested savepoints may share a name: RELEASE takes the innermost
  release = "RELEASE w",
  rollback_to = "ROLLBACK TO w",
  meta_get = "SELECT value FROM meta WHERE key = ?",
  meta_set = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
}

local function check(ok, err, what)
  if ok == nil and err then error(("store: %s: %s"):format(what, tostring(err)), 0) end
  return ok, err
end

-- Sets the database up (pragmas, schema, syncer, statements) and wraps it;
-- raises "store: ..." (check) when SQLite refuses.
local function setup(db, path)
  local self = setmetatable({ db = db, path = path, pending = {}, in_batch = false, sync = "FULL", batch_sync = "FULL",
    waiting = {}, body_cache = {}, cache_keys = {}, cached = 0, exp_ids = {}, exp_ids_n = 0 }, Store)
  -- page_size first: it only applies to a new database, before WAL mode fixes it
  -- (16 KiB pages hold several ~2.5 KB job rows; 4 KiB pages would waste a third)
  -- locking_mode=EXCLUSIVE before the first access: the endpoint is the only
  -- user of its database (DIR/lock says so), so transactions take no file locks
  -- and the WAL index lives in memory (no -shm file)
  for _, pragma in ipairs({ "PRAGMA locking_mode=EXCLUSIVE", "PRAGMA page_size=16384", "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=OFF", "PRAGMA cache_size=-32768", "PRAGMA busy_timeout=5000",
    "PRAGMA wal_autocheckpoint=4000",
    -- reads map the database file instead of copying its pages: a GET of a job
    -- not in the page cache costs a page-table lookup, not a 16 KiB pread
    "PRAGMA mmap_size=2147418112" }) do
    check(db:exec(pragma))
  end
  check(db:exec("BEGIN IMMEDIATE"))
  local version = db:prepare("PRAGMA user_version")
  local have = version:first()
  version:finalize()
  if have == 1 then check(db:exec("ALTER TABLE jobs ADD COLUMN view TEXT"), nil, "migration to version 2") end
  check(db:exec(SCHEMA), nil, "schema")
  check(db:exec("PRAGMA user_version = " .. SCHEMA_VERSION))
  check(db:exec("COMMIT")) -- synchronous=FULL: the WAL file (and its directory entry) is durable
  check(db:exec("PRAGMA synchronous=NORMAL"))
  -- savepoints journal their pages in memory, not in a temporary file (set
  -- after the migrations above: building an index sorts in temporary files)
  check(db:exec("PRAGMA temp_store=MEMORY"))
  local syncer, serr = sqlite.syncer{ path = path .. "-wal" }
  if not syncer then error(("store: %s"):format(tostring(serr)), 0) end
  self.syncer = syncer
  self.stmt = {}
  for name, sql in pairs(STATEMENTS) do
    local st, err = db:prepare(sql)
    if not st then error(("store: preparing %s: %s"):format(name, tostring(err)), 0) end
    self.stmt[name] = st
  end
  return self
end

--- Opens (creating when needed) the database at path: a Store | nil, message
-- (the file cannot be opened, is not a database, the disk fails).
function M.open(path)
  local db, open_err = sqlite.open(path)
  if not db then return nil, ("store: %s: %s"):format(path, tostring(open_err)) end
  local ok, self = pcall(setup, db, path)
  if not ok then
    db:close()
    return nil, tostring(self)
  end
  return self
end

function Store:close()
  for _, st in pairs(self.stmt) do st:finalize() end
  self.stmt = {}
  if self.in_batch then self.db:exec("COMMIT") end
  self:drain()
  self.syncer:close()
  self.db:close()
end

-- ---- batching --------------------------------------------------------------

--- Runs fn(store) inside this round's transaction; its writes become durable at
-- the next flush.  A Lua error in fn rolls back fn's own writes and re-raises.
function Store:write(fn, ...)
  if not self.in_batch then
    check(self.db:exec("BEGIN IMMEDIATE"), nil, "begin")
    self.in_batch = true
    self.batch_sync = self.sync
  end
  local st = self.stmt
  check(st.savepoint:run())
  local results = pack(pcall(fn, self, ...))
  if results[1] then
    st.release:run()
    return table.unpack(results, 2, results.n)
  end
  st.rollback_to:run()
  st.release:run()
  self:forget_ids() -- they may name rows the rollback removed
  error(results[2], 0)
end

--- Like write(fn, ...), for a function whose only change to the database is
-- its last statement (one INSERT or UPDATE; nothing after it can fail): SQLite
-- makes that statement atomic by itself, so no savepoint is taken (a savepoint
-- copies every page the statement touches).
function Store:write_single(fn, ...)
  if not self.in_batch then
    check(self.db:exec("BEGIN IMMEDIATE"), nil, "begin")
    self.in_batch = true
    self.batch_sync = self.sync
  end
  local results = pack(pcall(fn, self, ...))
  if results[1] then return table.unpack(results, 2, results.n) end
  self:forget_ids()
  error(results[2], 0)
end

--- "FULL" (default: what the API acknowledges survives power loss: callbacks
-- wait for the WAL sync) or "NORMAL" (the scheduler's own transitions: they
-- survive a crash of the endpoint, and the next sync makes them durable too;
-- callbacks run right after the commit).  Applies from the next batch.
function Store:set_sync(level) self.sync = level end

--- Queues fn(ok, err) to run once this round is durable (or failed to be).
-- Outside a batch it runs at the next flush too, with ok = true.
function Store:after_commit(fn)
  self.pending[#self.pending + 1] = fn
end

--- Commits the round.  The queued callbacks run in order: now when the
-- commit failed or needs no sync, else once the syncer made it durable.
function Store:flush()
  local ok, err, sync = true, nil, false
  if self.in_batch then
    self.in_batch = false
    local done, e = self.db:exec("COMMIT")
    if not done then
      ok, err = false, tostring(e)
      self.db:exec("ROLLBACK")
      self:drop_cache() -- it may hold bodies of the rolled-back round
      self:forget_ids()
    else
      sync = self.batch_sync == "FULL"
    end
  end
  local pending = self.pending
  if #pending > 0 then self.pending = {} end
  if sync then
    local ticket = self.syncer:request()
    if #pending > 0 then self.waiting[#self.waiting + 1] = { ticket, pending } end
    return ok, err
  end
  for i = 1, #pending do pending[i](ok, err) end
  return ok, err
end

-- Runs the callbacks of the batches made durable by the synced ticket `done`.
local function run_synced(self, done, err)
  local waiting = self.waiting
  local n = 0
  while waiting[n + 1] and waiting[n + 1][1] <= done do n = n + 1 end
  if n == 0 then return end
  local ready = table.move(waiting, 1, n, 1, {})
  self.waiting = table.move(waiting, n + 1, #waiting, 1, {})
  for _, batch in ipairs(ready) do
    local callbacks = batch[2]
    for i = 1, #callbacks do callbacks[i](err == nil, err) end
  end
end

--- The syncer's descriptor: readable when store:synced() has callbacks to run.
function Store:sync_fd() return self.syncer:fd() end

--- Runs the callbacks of the batches that became durable (never blocks).
function Store:synced()
  local done, err = self.syncer:poll()
  run_synced(self, done, err)
end

--- Waits until every committed batch is durable and runs its callbacks (at stop).
function Store:drain()
  local last = self.waiting[#self.waiting]
  if not last then return end
  local done, err = self.syncer:wait(last[1])
  run_synced(self, done, err)
end

--- Whether flush() has work (callbacks waiting for the syncer do not count).
function Store:busy()
  return self.in_batch or #self.pending > 0
end

-- ---- queries (each a prepared statement) ------------------------------------

function Store:meta(key) return (self.stmt.meta_get:first(key)) end
function Store:set_meta(key, value) check(self.stmt.meta_set:run(key, value)) end

function Store:workspace(sub, rg, name) return to_row(WS_FIELDS, self.stmt.ws_get:first(sub, rg, name)) end

function Store:insert_workspace(w)
  check(self.stmt.ws_insert:run(w.sub, w.rg, w.name, w.location, w.tags, w.state, w.created, w.state_time, w.body))
  return self.db:last_insert_rowid()
end

function Store:update_workspace(w)
  check(self.stmt.ws_update:run(w.tags, w.state, w.state_time, w.body, w.id))
end

function Store:delete_workspace(id)
  self:forget_ids()
  check(self.stmt.ws_delete:run(id))
end

--- Rows { id, body } after `after_id`, at most limit, for a subscription (and resource group).
function Store:list_workspaces(sub, rg, after_id, limit)
  if rg then return check(self.stmt.ws_list_rg:rows(sub, rg, after_id, limit)) end
  return check(self.stmt.ws_list_sub:rows(sub, after_id, limit))
end

function Store:experiment(ws_id, name) return to_row(EXP_FIELDS, self.stmt.exp_get:first(ws_id, name)) end

function Store:insert_experiment(e)
  check(self.stmt.exp_insert:run(e.ws_id, e.name, e.state, e.created, e.state_time, e.body))
  return self.db:last_insert_rowid()
end

function Store:update_experiment(e) check(self.stmt.exp_update:run(e.state, e.state_time, e.body, e.id)) end
function Store:delete_experiment(id)
  self:forget_ids()
  check(self.stmt.exp_delete:run(id))
end
function Store:list_experiments(ws_id, after_id, limit) return check(self.stmt.exp_list:rows(ws_id, after_id, limit)) end

function Store:experiment_ids(ws_id)
  local ids = {}
  for _, r in ipairs(check(self.stmt.exp_ids_of_ws:rows(ws_id))) do ids[#ids + 1] = r[1] end
  return ids
end

local ID_CACHE_LIMIT = 10000
--- The id of an experiment by its full name, or nil.  Found ids are kept, by
-- the names as given (exp_ids[sub][rg][ws][exp]; each spelling of a name that
-- SQLite's NOCASE matched is an entry of its own), until an experiment or a
-- workspace is deleted or a write is rolled back.
function Store:experiment_id(sub, rg, ws, exp)
  local ids = self.exp_ids
  local t = ids[sub]
  t = t and t[rg]
  t = t and t[ws]
  local id = t and t[exp]
  if id then return id end
  id = self.stmt.exp_id_of:first(sub, rg, ws, exp)
  if id then
    if self.exp_ids_n >= ID_CACHE_LIMIT then
      self:forget_ids()
      ids = self.exp_ids
    end
    local by_rg = ids[sub] or {}
    ids[sub] = by_rg
    local by_ws = by_rg[rg] or {}
    by_rg[rg] = by_ws
    local by_exp = by_ws[ws] or {}
    by_ws[ws] = by_exp
    by_exp[exp] = id
    self.exp_ids_n = self.exp_ids_n + 1
  end
  return id
end

function Store:forget_ids()
  if self.exp_ids_n > 0 then self.exp_ids, self.exp_ids_n = {}, 0 end
end

--- The stored GET body of a job, by its full name, or nil.  Bodies are cached
-- by request path (bounded; dropped when the job changes).
function Store:job_body(sub, rg, ws, exp, job, path)
  local exp_id = self:experiment_id(sub, rg, ws, exp)
  if not exp_id then return nil end
  local id, body = self.stmt.job_body_in_exp:first(exp_id, job)
  if id and path then
    if self.cached >= CACHE_LIMIT then self:drop_cache() end
    self.body_cache[path] = body
    -- the paths cached for a job: one (a string), or several spellings (a table)
    local keys = self.cache_keys[id]
    if not keys then
      self.cache_keys[id] = path
    elseif type(keys) == "string" then
      self.cache_keys[id] = { keys, path }
    else
      keys[#keys + 1] = path
    end
    self.cached = self.cached + 1
  end
  return body
end

--- The cached GET body for a request path, or nil.
function Store:cached_body(path) return self.body_cache[path] end

function Store:drop_cache()
  self.body_cache, self.cache_keys, self.cached = {}, {}, 0
end

local function invalidate(self, id)
  local keys = self.cache_keys[id]
  if keys then
    if type(keys) == "string" then
      self.body_cache[keys] = nil
    else
      for _, k in ipairs(keys) do self.body_cache[k] = nil end
    end
    self.cache_keys[id] = nil
  end
end

function Store:job(exp_id, name) return to_row(JOB_FIELDS, self.stmt.job_get:first(exp_id, name)) end
function Store:job_by_id(id) return to_row(JOB_FIELDS, self.stmt.job_by_id:first(id)) end

function Store:insert_job(j)
  check(self.stmt.job_insert:run(j.exp_id, j.name, j.arm_id, j.location, j.spec, j.view, j.cluster, j.priority,
    j.node_count, j.segment, j.prov_state, j.prov_time, j.exec_state, j.exec_time, j.created, j.body or ""))
  return self.db:last_insert_rowid()
end

--- Writes a job's mutable fields (states, times, outcome, handle, body).
function Store:update_job(j)
  invalidate(self, j.id)
  check(self.stmt.job_update:run(j.prov_state, j.prov_time, j.exec_state, j.exec_time, j.started, j.ended,
    j.exit_code, j.errors, j.handle, j.stop_reason, j.body, j.id))
end

function Store:delete_job(id)
  invalidate(self, id)
  check(self.stmt.job_delete:run(id))
end
function Store:list_jobs(exp_id, after_id, limit) return check(self.stmt.job_list:rows(exp_id, after_id, limit)) end

function Store:job_ids(exp_id)
  local ids = {}
  for _, r in ipairs(check(self.stmt.jobs_of_exp:rows(exp_id))) do ids[#ids + 1] = r[1] end
  return ids
end

local function rows_to_jobs(rows)
  local jobs = {}
  for i, r in ipairs(rows) do jobs[i] = to_row(JOB_FIELDS, table.unpack(r, 1, #JOB_FIELDS)) end
  return jobs
end

function Store:jobs_in_state(state) return rows_to_jobs(check(self.stmt.jobs_in_state:rows(state))) end
--- Jobs whose processes may live: running or terminating, or queued in an
-- executor's backend (queued with a handle).
function Store:live_jobs() return rows_to_jobs(check(self.stmt.jobs_live:rows())) end
function Store:jobs_being_deleted() return rows_to_jobs(check(self.stmt.jobs_deleting:rows())) end

--- The next job to start on a cluster: highest priority, then oldest.
function Store:next_queued(cluster) return to_row(JOB_FIELDS, self.stmt.next_queued:first(cluster)) end

function Store:queued_clusters()
  local names = {}
  for _, r in ipairs(check(self.stmt.queued_clusters:rows())) do names[#names + 1] = r[1] end
  return names
end

function Store:count_by_state()
  local counts = {}
  for _, r in ipairs(check(self.stmt.count_by_state:rows())) do counts[r[1]] = r[2] end
  return counts
end

function Store:insert_operation(id, kind, resource, status, created)
  check(self.stmt.op_insert:run(id, kind, resource, status, created))
end

function Store:operation(id)
  local id_, kind, resource, status, created, ended, err = self.stmt.op_get:first(id)
  if not id_ then return nil end
  return { id = id_, kind = kind, resource = resource, status = status, created = created, ended = ended, error = err }
end

function Store:finish_operation(id, status, ended, err) check(self.stmt.op_finish:run(status, ended, err, id)) end

function Store:running_operations()
  local ops = {}
  for _, r in ipairs(check(self.stmt.op_running:rows())) do ops[#ops + 1] = { id = r[1], kind = r[2], resource = r[3] } end
  return ops
end

function Store:workspace_by_id(id) return to_row(WS_FIELDS, self.stmt.ws_by_id:first(id)) end
function Store:experiment_by_id(id) return to_row(EXP_FIELDS, self.stmt.exp_by_id:first(id)) end
function Store:experiment_count(ws_id) return (self.stmt.ws_exp_count:first(ws_id)) end
function Store:job_count(exp_id) return (self.stmt.job_count_in_exp:first(exp_id)) end

function Store:workspaces_being_deleted()
  local out = {}
  for i, r in ipairs(check(self.stmt.ws_deleting:rows())) do out[i] = to_row(WS_FIELDS, table.unpack(r, 1, #WS_FIELDS)) end
  return out
end

function Store:experiments_being_deleted()
  local out = {}
  for i, r in ipairs(check(self.stmt.exp_deleting:rows())) do out[i] = to_row(EXP_FIELDS, table.unpack(r, 1, #EXP_FIELDS)) end
  return out
end

function Store:prune_operations(before) check(self.stmt.op_prune:run(before)) end

return M

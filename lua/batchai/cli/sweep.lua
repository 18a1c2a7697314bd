-- `bai sweep`: run a sweep script, and show, cancel, delete, tabulate or
-- report a sweep by name (from its manifest under .bai/sweeps/NAME/).
local cli = require "batchai.cli"
local manifest_mod = require "batchai.sweep.manifest"
local results_mod = require "batchai.sweep.results"
local tabulate = require "batchai.sweep.tabulate"
local codec = require "batchai.sweep.codec"
local util = require "batchai.util"
local sys = require "batchai._sys"

local M = {}

M.summary = "run, resume, watch and collect sweeps of jobs"
M.usage = "bai sweep run FILE [--dry-run] [--retry-failed] [ARGS...] | status|results|report|cancel|delete NAME | list"
M.own_help = true
M.help = [[
Commands:
  run FILE [ARGS...]       run a sweep script (exp:submit in it submits, resumes and watches)
      --dry-run            validate every job and print the trials; submit nothing
      --retry-failed       resubmit the failed trials (as NAME-r1, NAME-r2...; history kept)
  status NAME              counts by state and every trial, refreshed from the endpoint
  results NAME             the results table
      -o, --output FORMAT  table (default), csv or json
      --sort KEY           sort by a metric, parameter or column (--desc for descending)
      --best METRIC        only the best trial by METRIC (lowest; --max for highest)
      --state STATE        only trials in STATE (succeeded, failed, stopped...)
  report NAME              write an HTML report with plots of each metric against
                           each parameter (-o FILE; default .bai/sweeps/NAME/report.html)
      --max METRIC         METRIC improves upwards (repeatable; default: guessed by name)
  cancel NAME              terminate the sweep's queued and running jobs
  delete NAME              delete the sweep's jobs from the endpoint and its manifest
      --keep-jobs          remove only the manifest
  list                     the sweeps under .bai/sweeps
Common options:
  --dir DIR                the folder holding the sweeps (default ./.bai/sweeps, or $BAI_SWEEP_DIR)
  --no-refresh             use the manifest as it is, without asking the endpoint

A sweep script builds a space and a template and calls exp:submit(space, template,
{ name = ..., max_running = ... }); running it again submits only what is missing.
]]

local function print_help()
  io.stdout:write("usage: ", M.usage, "\n\n", M.summary, "\n\n", M.help)
end

-- ---- run ----------------------------------------------------------------------------

-- The error of a sweep script as `bai` reports it: Ctrl-C (the host's
-- "interrupted!") ends with status 130 and says how to resume; other errors
-- keep their traceback.
local function script_error(err)
  if type(err) == "table" and (err.bai_usage or err.bai_exit) then return err end
  local text = tostring(err)
  if text:find("interrupted!", 1, true) then
    return { bai_exit = 130, message = "interrupted; run the same command again to resume the sweep "
      .. "(the jobs already submitted are adopted, none is submitted twice)" }
  end
  return { bai_exit = 1, message = debug.traceback(text, 2) }
end

-- FILE is the first word that is not an option; --dry-run and --retry-failed
-- may come before or after it; every other word after FILE (and everything
-- after "--") goes to the script as its arguments.
local function run_script(args)
  local flags, file, script_words = {}, nil, {}
  local i, only_words = 1, false
  while i <= #args do
    local a = args[i]
    if only_words then
      if file then script_words[#script_words + 1] = a else file = a end
    elseif a == "--dry-run" then flags.dry_run = true
    elseif a == "--retry-failed" then flags.retry_failed = true
    elseif a == "--" then only_words = true
    elseif (a == "-h" or a == "--help") and not file then print_help() return 0
    elseif file then script_words[#script_words + 1] = a
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      cli.usage_error(("unknown option '%s' for 'bai sweep run'%s"):format(a,
        util.did_you_mean(a, { "--dry-run", "--retry-failed" })), "sweep")
    else
      file = a
    end
    i = i + 1
  end
  if not file then cli.usage_error("bai sweep run: missing FILE (the sweep script)", "sweep") end
  local chunk, err = loadfile(file, "t")
  if not chunk then cli.exit(1, err) end
  local script_args = { [0] = file }
  for _, w in ipairs(script_words) do script_args[#script_args + 1] = w end
  _G.arg = script_args
  local run_mod = require "batchai.sweep.run"
  run_mod.defaults.dry_run = flags.dry_run
  run_mod.defaults.retry_failed = flags.retry_failed
  local ok, err = xpcall(chunk, script_error, table.unpack(script_args, 1, #script_args))
  if not ok then error(err, 0) end
  return 0
end

-- ---- reading a sweep by name ------------------------------------------------------------

local COMMON = {
  { nil, "dir", arg = "DIR" },
  { nil, "no-refresh" },
}

local function parse(args, command, extra, max)
  local spec = { command = "sweep " .. command, options = {}, min = 1, max = max or 1, positional = "NAME (the sweep's name)" }
  for _, o in ipairs(COMMON) do spec.options[#spec.options + 1] = o end
  for _, o in ipairs(extra or {}) do spec.options[#spec.options + 1] = o end
  spec.help = function() print_help() end
  return cli.parse(args, spec)
end

-- Ends the command with "no sweep named NAME in DIR (did you mean ...?)"
-- unless the sweep has a manifest (manifest.open would create one).
local function must_exist(name, mopts)
  if not manifest_mod.exists(name, mopts) then
    local _, err = manifest_mod.load(name, mopts)
    cli.exit(1, err)
  end
end

-- The manifest of NAME, writable (refreshed from the endpoint) when no other
-- process holds it and refresh is wanted; read-only otherwise.
-- Returns manifest, experiment (or nil), and a note for the user (or nil).
local function open_sweep(name, opts, want_refresh, fetch)
  local mopts = { dir = opts.dir }
  must_exist(name, mopts)
  local m, err, code = manifest_mod.open(name, nil, mopts)
  local note
  if not m then
    if code ~= "busy" then cli.exit(1, err) end
    m, err = manifest_mod.load(name, mopts)
    if not m then cli.exit(1, err) end
    note = "being run by another process: showing its manifest as last written"
    return m, nil, note
  end
  if not want_refresh then return m, nil, nil end
  local run_mod = require "batchai.sweep.run"
  local exp_ok, exp = pcall(run_mod.experiment_of, m.header)
  if not exp_ok then
    return m, nil, "not refreshed: " .. tostring(exp)
  end
  local ok, run_or_err = run_mod.refresh(exp, m)
  if not ok then
    return m, exp, "not refreshed from the endpoint (" .. tostring(run_or_err) .. "): showing the last known states"
  end
  if fetch then
    run_mod.queue_unfetched(run_or_err)
    run_mod.fetch_pending_metrics(run_or_err)
  end
  return m, exp, nil
end

-- Tells the user what open_sweep noted, if anything.
local function show_note(m, note)
  if note then io.stderr:write("bai: sweep ", m.header.name, ": ", note, "\n") end
end

-- Releases the manifest when open_sweep could take it for writing.
local function release(m)
  if m.writable then m:close() end
end

local function experiment_text(header)
  local e = header.experiment or {}
  if not e.experiment then return "?" end
  return ("%s/%s/%s"):format(e.resource_group or "?", e.workspace or "?", e.experiment)
end

local function counts_line(counts)
  local parts = {}
  for _, s in ipairs(util.sorted_keys(counts)) do
    if s ~= "total" then parts[#parts + 1] = ("%d %s"):format(counts[s], s) end
  end
  return table.concat(parts, ", ")
end

local function status(args)
  local opts, rest = parse(args, "status", { { "o", "output", arg = "FORMAT", choices = { "table", "json" }, default = "table" } })
  local m, _, note = open_sweep(rest[1], opts, not opts.no_refresh, false)
  local rows = results_mod.from_manifest(m)
  local counts = m:counts()
  if opts.output == "json" then
    local trials = {}
    for i, record in ipairs(m:trials()) do trials[i] = record end
    io.stdout:write(codec.encode({ name = m.header.name, experiment = m.header.experiment, counts = counts,
      trials = codec.array(trials) }, { strict = true }), "\n")
  else
    io.stdout:write(("sweep %s: %d trials in experiment %s\n  %s\n"):format(m.header.name, counts.total,
      experiment_text(m.header), counts_line(counts)))
    local headers = { "#", "job", "state", "exit", "time" }
    local keys = rows:param_names()
    for _, k in ipairs(keys) do headers[#headers + 1] = k end
    headers[#headers + 1] = "note"
    local table_rows = {}
    for row in rows:rows() do
      local r = { row.index, row.job, row.state, row.exit_code, row.duration and tabulate.duration(row.duration) or nil }
      local c = 5
      for _, k in ipairs(keys) do c = c + 1; r[c] = row.params[k] end
      r[c + 1] = row.note
      table_rows[#table_rows + 1] = r
    end
    io.stdout:write(tabulate.table(headers, table_rows, { indent = "  ", max_width = 60 }))
  end
  show_note(m, note)
  release(m)
  return 0
end

-- The states a trial can be in (the endpoint's, and the sweep's own).
local STATES = { pending = true, queued = true, running = true, terminating = true, succeeded = true,
  failed = true, stopped = true, conflict = true, rejected = true }

local function results(args)
  local opts, rest = parse(args, "results", {
    { "o", "output", arg = "FORMAT", choices = { "table", "csv", "json" }, default = "table" },
    { nil, "sort", arg = "KEY" }, { nil, "desc" }, { nil, "best", arg = "METRIC" }, { nil, "max" },
    { nil, "state", arg = "STATE" },
  })
  local m, _, note = open_sweep(rest[1], opts, not opts.no_refresh, true)
  local r = results_mod.from_manifest(m)
  -- A state or sort key that no trial can have is a typo, not an empty result.
  local function refuse(what, value, known)
    release(m)
    cli.exit(1, ("sweep %s: no %s '%s'%s"):format(m.header.name, what, value, util.did_you_mean(value, known)))
  end
  if opts.state then
    if not STATES[opts.state] then refuse("trial state", opts.state, STATES) end
    r = r:filter { state = opts.state }
  end
  if opts.sort then
    local known = {}
    for _, k in ipairs(results_mod.COLUMNS) do known[#known + 1] = k end
    for _, k in ipairs(r:param_names()) do known[#known + 1] = k end
    for _, k in ipairs(r:metric_names()) do known[#known + 1] = k end
    local found = false
    for _, k in ipairs(known) do if k == opts.sort then found = true end end
    if not found then refuse("column, parameter or metric", opts.sort, known) end
    r = r:sort(opts.sort, opts.desc and "desc" or "asc")
  end
  if opts.best then
    local best = r:best(opts.best, opts.max and "max" or "min")
    if not best then
      release(m)
      cli.exit(1, ("sweep %s: no trial has a numeric metric '%s'%s"):format(m.header.name, opts.best,
        util.did_you_mean(opts.best, r:metric_names())))
    end
    r = results_mod.new({ best }, r.keys)
  end
  io.stdout:write(r:format(opts.output))
  show_note(m, note)
  release(m)
  return 0
end

local function report(args)
  local opts, rest = parse(args, "report", { { "o", "output", arg = "FILE" }, { nil, "max", arg = "METRIC", multi = true } })
  local m, _, note = open_sweep(rest[1], opts, not opts.no_refresh, true)
  local r = results_mod.from_manifest(m)
  local modes = {}
  for _, metric in ipairs(opts.max) do modes[metric] = "max" end
  -- Intermediate metrics downloaded while the sweep ran, per trial.
  local curves = {}
  local metrics_mod = require "batchai.sweep.metrics"
  for row in r:rows() do
    local text = util.read_file(m.dir .. "/curves/" .. row.job .. ".jsonl")
    if text then
      local recs = metrics_mod.parse_lines(text)
      for _, metric in ipairs(r:metric_names()) do
        local series = metrics_mod.series(recs, metric)
        if #series > 0 then
          curves[metric] = curves[metric] or {}
          table.insert(curves[metric], { row = row, series = series })
        end
      end
    end
  end
  local html = require("batchai.sweep.report").html(r, {
    name = m.header.name, experiment = experiment_text(m.header), modes = modes, curves = curves,
    generated = os.date("!%Y-%m-%d %H:%M UTC"),
  })
  local path = opts.output or (m.dir .. "/report.html")
  local ok, err = sys.write_file(path, html)
  release(m)
  if not ok then cli.exit(1, err) end
  io.stdout:write(path, "\n")
  show_note(m, note)
  return 0
end

local function cancel(args)
  local opts, rest = parse(args, "cancel", {})
  local m, exp, note = open_sweep(rest[1], opts, true, false)
  if not exp then
    local ok, e = pcall(require("batchai.sweep.run").experiment_of, m.header)
    if not ok then cli.exit(1, tostring(e)) end
    exp = e
  end
  local n, err = require("batchai.sweep.run").cancel(exp, m)
  release(m)
  if note and not note:find("^being run") then show_note(m, note) end
  if not n then cli.exit(1, ("sweep %s: %s"):format(m.header.name, tostring(err))) end
  io.stdout:write(("sweep %s: terminated %d job%s\n"):format(m.header.name, n, n == 1 and "" or "s"))
  return 0
end

local function delete(args)
  local opts, rest = parse(args, "delete", { { nil, "keep-jobs" } })
  local name = rest[1]
  local mopts = { dir = opts.dir }
  must_exist(name, mopts)
  local m, err, code = manifest_mod.open(name, nil, mopts)
  if not m then
    if code == "busy" then cli.exit(1, ("sweep %s is being run by another process; stop it first"):format(name)) end
    cli.exit(1, err)
  end
  local deleted = 0
  if not opts.keep_jobs then
    local run_mod = require "batchai.sweep.run"
    local ok, exp = pcall(run_mod.experiment_of, m.header)
    if not ok then m:close(); cli.exit(1, tostring(exp)) end
    local names = {}
    for _, record in ipairs(m:trials()) do
      if record.state ~= "pending" and record.state ~= "conflict" and record.state ~= "rejected" then
        names[#names + 1] = record.job or record.name
      end
      for _, h in ipairs(record.history or {}) do names[#names + 1] = h.job end
    end
    local failures = {}
    require("batchai.client.loop").map(names, function(job_name)
      local dok, derr = exp:delete_job(job_name, { wait = false })
      if dok then deleted = deleted + 1 else failures[#failures + 1] = derr end
      return true
    end, { concurrency = 16 })
    if #failures > 0 then
      m:close()
      cli.exit(1, ("sweep %s: %d job%s could not be deleted (first: %s); the manifest is kept"):format(
        name, #failures, #failures == 1 and "" or "s", tostring(failures[1])))
    end
  end
  m:close()
  local ok, rerr = manifest_mod.remove(name, mopts)
  if not ok then cli.exit(1, rerr) end
  if opts.keep_jobs then
    io.stdout:write(("sweep %s: manifest removed, jobs kept\n"):format(name))
  else
    io.stdout:write(("sweep %s: deleted %d job%s and the manifest\n"):format(name, deleted, deleted == 1 and "" or "s"))
  end
  return 0
end

local function list(args)
  local opts = cli.parse(args, { command = "sweep list", options = { { nil, "dir", arg = "DIR" } }, max = 0 })
  local names = manifest_mod.list { dir = opts.dir }
  if #names == 0 then
    io.stdout:write(("no sweeps in %s\n"):format(manifest_mod.root { dir = opts.dir }))
    return 0
  end
  local rows = {}
  for _, name in ipairs(names) do
    local m = manifest_mod.load(name, { dir = opts.dir })
    if m then
      local counts = m:counts()
      rows[#rows + 1] = { name, experiment_text(m.header), counts.total, counts_line(counts) }
    end
  end
  io.stdout:write(tabulate.table({ "sweep", "experiment", "trials", "states" }, rows, { max_width = 60 }))
  return 0
end

local COMMANDS = { run = run_script, status = status, results = results, report = report,
  cancel = cancel, delete = delete, list = list }

function M.run(args)
  local sub = args[1]
  if sub == nil or sub == "-h" or sub == "--help" or sub == "help" then
    print_help()
    return sub == nil and 2 or 0
  end
  local fn = COMMANDS[sub]
  if not fn then
    cli.usage_error(("unknown sweep command '%s'%s"):format(sub, util.did_you_mean(sub, COMMANDS)), "sweep")
  end
  local rest = {}
  for i = 2, #args do rest[#rest + 1] = args[i] end
  return fn(rest)
end

return M

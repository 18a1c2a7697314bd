-- The Batch AI 2018-05-01 REST API of bai serve: routing, parameter checks,
-- the handlers of workspaces, experiments, jobs and operations, ARM errors,
-- paging and long-running operations.
--
-- Writes go through ctx.store:write and are answered after the round's group
-- commit (ctx.store:after_commit), so every 2xx is durable.  Reads answer at once.
local wire = require "batchai.serve.wire"
local model = require "batchai.serve.model"
local validate = require "batchai.serve.validate"
local sys = require "batchai._sys"

local M = {}

local API_VERSION = "2018-05-01"
M.API_VERSION = API_VERSION
local encode, decode, iso = wire.encode, wire.decode, wire.iso_time
local now = sys.now
local current_path -- the path of the request being handled (for operationresults' Location)

-- ---- errors ----------------------------------------------------------------

local ApiError = {}
ApiError.__index = ApiError
ApiError.__tostring = function(e) return ("%d %s: %s"):format(e.status, e.code, e.message) end

--- Raises an HTTP error answer (caught by M.handle; rolls back a write in progress).
local function fail(status, code, message, target, details)
  error(setmetatable({ status = status, code = code, message = message, target = target, details = details }, ApiError), 0)
end
M.fail = fail

local function not_found(kind, name)
  fail(404, "ResourceNotFound", ("The %s '%s' was not found."):format(kind, name))
end

local function parent_not_found(kind, name)
  fail(404, "ParentResourceNotFound",
    ("Can not perform requested operation on nested resource. Parent resource '%s' (%s) not found."):format(name, kind))
end

-- ---- parameters --------------------------------------------------------------

-- The Batch AI name rule is the schema's (batchai.schema.kinds, as the client and sweeps use it).
local resource_name = require("batchai.schema.kinds").resource_name

local function check_name(param, value)
  if not resource_name(value) then
    fail(400, "InvalidParameter", ("The %s '%s' is invalid: it must be 1 to 64 characters: letters, digits, "
      .. "'-' and '_'."):format(param, value), param)
  end
  return value
end

local function check_resource_group(value)
  if #value > 90 or not value:find("^[%w_%-%.%(%)]+$") or value:sub(-1) == "." then
    fail(400, "InvalidParameter", ("The resourceGroupName '%s' is invalid: it must be 1 to 90 characters: letters, "
      .. "digits, '-', '_', '.', '(' and ')', not ending in '.'."):format(value), "resourceGroupName")
  end
  return value
end

local function check_subscription(value)
  if not value:find("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") then
    fail(400, "InvalidSubscriptionId", ("The provided subscription identifier '%s' is malformed or invalid: a GUID "
      .. "such as 00000000-0000-0000-0000-000000000000 is expected."):format(value), "subscriptionId")
  end
  return value
end

local function int_arg(req, name, default, min, max)
  local v = req:arg(name)
  if v == nil then return default end
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < min or n > max then
    fail(400, "InvalidParameter", ("The value '%s' of query parameter '%s' is invalid: an integer from %d to %d is "
      .. "expected."):format(v, name, min, max), name)
  end
  return math.tointeger(n)
end

local function decode_object(body, what)
  local v, err = decode(body)
  if v == nil then
    fail(400, "InvalidRequestContent", ("The request content was invalid and could not be deserialized: %s."):format(err))
  end
  if type(v) ~= "table" or (next(v) ~= nil and #v > 0) then
    fail(400, "InvalidRequestContent", ("The request content must be a JSON object (%s)."):format(what))
  end
  return v
end

-- ---- answers -------------------------------------------------------------------

local function base_url(ctx, req)
  return ctx.scheme .. "://" .. (req:header("Host") or "localhost")
end

--- Answers once the round's writes are durable (500 when the commit failed).
local function reply_after_commit(ctx, req, status, body, headers)
  ctx.store:after_commit(function(ok, err)
    if ok then
      ctx.reply(req, status, type(body) == "function" and body() or body, headers)
    else
      ctx.reply(req, 500, wire.error_body("InternalServerError", "The change could not be stored: " .. tostring(err)))
    end
  end)
end

--- Starts a tracked long-running operation; returns its id and the 202 headers.
local function new_operation(ctx, req, st, kind, resource, sub, location)
  local id = wire.uuid()
  st:insert_operation(id, kind, resource, "InProgress", now())
  local base = base_url(ctx, req) .. "/subscriptions/" .. sub .. "/providers/Microsoft.BatchAI/locations/"
    .. wire.url_escape(location)
  local q = "?api-version=" .. API_VERSION
  return id, {
    ["Location"] = base .. "/operationresults/" .. id .. q,
    ["Azure-AsyncOperation"] = base .. "/operationstatuses/" .. id .. q,
    ["Retry-After"] = tostring(ctx.config.retry_after),
  }
end

--- One page of a list: rows are { id, body }; the next link resumes after the
-- last id shown, so entries added or deleted meanwhile never shift the pages.
local function list_page(ctx, req, path, rows, limit)
  local parts = {}
  local more = #rows > limit
  for i = 1, math.min(#rows, limit) do parts[i] = rows[i][2] end
  local out = '{"value":[' .. table.concat(parts, ",") .. "]"
  if more then
    out = out .. ',"nextLink":' .. encode(base_url(ctx, req) .. path .. "?api-version=" .. API_VERSION
      .. "&maxresults=" .. limit .. "&$skiptoken=" .. rows[limit][1])
  end
  return out .. "}"
end

local function page_args(req)
  local limit = int_arg(req, "maxresults", 1000, 1, 1000)
  local token = req:arg("$skiptoken")
  local after = 0
  if token then
    after = math.tointeger(tonumber(token))
    if not after or after < 0 then
      fail(400, "InvalidParameter", ("The $skiptoken '%s' is invalid; use the nextLink as returned."):format(token), "$skiptoken")
    end
  end
  return limit, after
end

-- ---- operations list -----------------------------------------------------------

local OPERATIONS = {
  { "workspaces/read", "List or get Batch AI workspaces", "Batch AI Workspaces", "Lists Batch AI workspaces or gets the properties of a Batch AI workspace" },
  { "workspaces/write", "Create or update Batch AI workspace", "Batch AI Workspaces", "Creates a new Batch AI workspace or updates an existing Batch AI workspace" },
  { "workspaces/delete", "Delete Batch AI workspace", "Batch AI Workspaces", "Deletes a Batch AI workspace" },
  { "workspaces/experiments/read", "List or get Batch AI experiments", "Batch AI Experiments", "Lists Batch AI experiments or gets the properties of a Batch AI experiment" },
  { "workspaces/experiments/write", "Create or update Batch AI experiment", "Batch AI Experiments", "Creates a new Batch AI experiment or updates an existing Batch AI experiment" },
  { "workspaces/experiments/delete", "Delete Batch AI experiment", "Batch AI Experiments", "Deletes a Batch AI experiment" },
  { "workspaces/experiments/jobs/read", "List or get Batch AI jobs", "Batch AI Jobs", "Lists Batch AI jobs or gets the properties of a Batch AI job" },
  { "workspaces/experiments/jobs/write", "Create or update Batch AI job", "Batch AI Jobs", "Creates a new Batch AI job or updates an existing Batch AI job" },
  { "workspaces/experiments/jobs/delete", "Delete Batch AI job", "Batch AI Jobs", "Deletes a Batch AI job" },
  { "workspaces/experiments/jobs/terminate/action", "Terminate Batch AI job", "Batch AI Jobs", "Terminates a Batch AI job" },
  { "workspaces/experiments/jobs/remoteLoginInformation/action", "List Batch AI job remote-login information", "Batch AI Jobs", "Lists remote-login information for a Batch AI job" },
  { "workspaces/experiments/jobs/listoutputfiles/action", "List Batch AI job output files", "Batch AI Jobs", "Lists output files for a Batch AI job" },
  { "locations/operationresults/read", "Get Batch AI Operation Result", "Batch AI Operation Results", "Gets Batch AI async operation result at the specified Azure region" },
  { "locations/operationstatuses/read", "Get Batch AI Operation Status", "Batch AI Operation Statuses", "Gets Batch AI async operation status at the specified Azure region" },
}
local operations_body
local function list_operations(ctx, req)
  if not operations_body then
    local value = {}
    for i, o in ipairs(OPERATIONS) do
      value[i] = { name = "Microsoft.BatchAI/" .. o[1], origin = "user,system",
        display = { provider = "Microsoft Batch AI", operation = o[2], resource = o[3], description = o[4] } }
    end
    operations_body = encode({ value = value })
  end
  ctx.reply(req, 200, operations_body)
end

-- ---- workspaces ------------------------------------------------------------------

local function get_workspace_row(st, sub, rg, name)
  local w = st:workspace(sub, rg, name)
  if not w then not_found("workspace", name) end
  return w
end

local function check_tags(tags)
  if tags == nil then return {} end
  if type(tags) ~= "table" or #tags > 0 then fail(400, "InvalidParameter", "tags must be an object of strings.", "tags") end
  local n = 0
  for k, v in pairs(tags) do
    n = n + 1
    if type(v) ~= "string" then
      fail(400, "InvalidParameter", ("The value of tag '%s' must be a string."):format(k), "tags." .. k)
    end
    if #k > 512 or #v > 256 then
      fail(400, "InvalidParameter", ("Tag '%s' is too long (names up to 512, values up to 256 characters)."):format(k), "tags." .. k)
    end
  end
  if n > 50 then fail(400, "InvalidParameter", "At most 50 tags are allowed.", "tags") end
  return tags
end

local function put_workspace(ctx, req, sub, rg, name, body)
  local b = decode_object(body, "WorkspaceCreateParameters")
  if type(b.location) ~= "string" or b.location == "" then
    fail(400, "InvalidParameter", "The location of the workspace is required (WorkspaceCreateParameters.location).", "location")
  end
  local tags = check_tags(b.tags)
  local out = ctx.store:write(function(st)
    local t = now()
    local w = st:workspace(sub, rg, name)
    if w then
      if w.state == "deleting" then
        fail(409, "Conflict", ("The workspace '%s' is being deleted."):format(w.name))
      end
      local norm = function(s) return (s:lower():gsub("%s", "")) end
      if norm(w.location) ~= norm(b.location) then
        fail(400, "InvalidResourceLocation", ("The resource '%s' already exists in location '%s' in resource group '%s'. "
          .. "A resource with the same name cannot be created in location '%s'."):format(w.name, w.location, w.rg, b.location))
      end
      w.tags = encode(tags)
      w.body = model.workspace_body(w)
      st:update_workspace(w)
      return w.body
    end
    w = { sub = sub, rg = rg, name = name, location = b.location, tags = encode(tags), state = "succeeded",
      created = t, state_time = t }
    w.body = model.workspace_body(w)
    st:insert_workspace(w)
    ctx.log:event("workspace_created", { workspace = model.workspace_id(sub, rg, name) })
    return w.body
  end)
  reply_after_commit(ctx, req, 200, out)
end

local function patch_workspace(ctx, req, sub, rg, name, body)
  local b = decode_object(body, "WorkspaceUpdateParameters")
  local out = ctx.store:write(function(st)
    local w = get_workspace_row(st, sub, rg, name)
    if b.tags ~= nil then
      w.tags = encode(check_tags(b.tags))
      w.body = model.workspace_body(w)
      st:update_workspace(w)
    end
    return w.body
  end)
  reply_after_commit(ctx, req, 200, out)
end

local function list_workspaces(ctx, req, path, sub, rg)
  local limit, after = page_args(req)
  ctx.reply(req, 200, list_page(ctx, req, path, ctx.store:list_workspaces(sub, rg, after, limit + 1), limit))
end

-- ---- deletion (cascading, asynchronous while processes run) ------------------------

--- Marks a job deleted-to-be; returns whether it still has processes to stop.
local function begin_job_delete(ctx, st, j)
  local t = now()
  if j.prov_state ~= "deleting" then
    j.prov_state, j.prov_time = "deleting", t
    -- (a queued job already handed to an executor that queues is stopped instead)
    if j.exec_state == "queued" and not ctx.scheduler:is_active(j) then j.exec_state, j.exec_time = "failed", t end
    j.body = model.job_body(j)
    st:update_job(j)
  end
  return ctx.scheduler:is_active(j)
end

--- Deletes whatever is marked deleting and no longer has live processes, then
-- completes the operations waiting on it.  Idempotent; run after every stop
-- and at start.
function M.sweep_deletions(ctx)
  local st = ctx.store
  st:write(function()
    local t = now()
    for _, j in ipairs(st:jobs_being_deleted()) do
      if not ctx.scheduler:is_active(j) then
        st:delete_job(j.id)
        ctx.log:event("job_deleted", { job = j.arm_id })
      end
    end
    for _, e in ipairs(st:experiments_being_deleted()) do
      if st:job_count(e.id) == 0 then st:delete_experiment(e.id) end
    end
    for _, w in ipairs(st:workspaces_being_deleted()) do
      if st:experiment_count(w.id) == 0 then st:delete_workspace(w.id) end
    end
    for _, op in ipairs(st:running_operations()) do
      local kind, id = op.resource:match("^(%a+):(%d+)$")
      id = math.tointeger(tonumber(id))
      local done = false
      if kind == "job" then
        local j = st:job_by_id(id)
        if op.kind == "terminate" then
          done = not j or (j.exec_state ~= "terminating" and j.exec_state ~= "running")
        else
          done = not j
        end
      elseif kind == "exp" then
        done = not st:experiment_by_id(id)
      elseif kind == "ws" then
        done = not st:workspace_by_id(id)
      else
        done = true
      end
      if done then st:finish_operation(op.id, "Succeeded", t, nil) end
    end
  end)
end

--- Stops every active job of the list for deletion; sweeps when each is gone.
local function stop_for_delete(ctx, jobs)
  for _, j in ipairs(jobs) do
    ctx.scheduler:stop(j, "delete", function() M.sweep_deletions(ctx) end)
  end
end

-- Inside the deletion's write: 200 when no job of the resource still runs,
-- else 202 with the headers of a new delete operation on `target` (and the jobs).
local function deletion_status(ctx, req, st, target, w, active)
  if #active == 0 then return 200 end
  local _, h = new_operation(ctx, req, st, "delete", target, w.sub, w.location)
  return 202, h, active
end

-- After the deletion's write: removes what is done, stops the running jobs once
-- the write is durable, and answers.
local function answer_deletion(ctx, req, status, headers, active)
  if status == 200 then M.sweep_deletions(ctx) end
  if active then ctx.store:after_commit(function(ok) if ok then stop_for_delete(ctx, active) end end) end
  reply_after_commit(ctx, req, status, "", headers)
end

local function delete_workspace(ctx, req, sub, rg, name)
  local status, headers, active = ctx.store:write(function(st)
    local w = st:workspace(sub, rg, name)
    if not w then return 204 end
    local active = {}
    for _, exp_id in ipairs(st:experiment_ids(w.id)) do
      for _, job_id in ipairs(st:job_ids(exp_id)) do
        local j = st:job_by_id(job_id)
        if begin_job_delete(ctx, st, j) then active[#active + 1] = j end
      end
      local e = st:experiment_by_id(exp_id)
      if e.state ~= "deleting" then
        e.state, e.state_time = "deleting", now()
        e.body = model.experiment_body(w, e)
        st:update_experiment(e)
      end
    end
    if w.state ~= "deleting" then
      w.state, w.state_time = "deleting", now()
      w.body = model.workspace_body(w)
      st:update_workspace(w)
    end
    ctx.log:event("workspace_delete", { workspace = model.workspace_id(w.sub, w.rg, w.name), running_jobs = #active })
    return deletion_status(ctx, req, st, "ws:" .. w.id, w, active)
  end)
  answer_deletion(ctx, req, status, headers, active)
end

-- ---- experiments ---------------------------------------------------------------------

local function get_experiment_rows(st, sub, rg, ws, exp, as_parent)
  local w = st:workspace(sub, rg, ws)
  if not w then parent_not_found("workspace", ws) end
  local e = st:experiment(w.id, exp)
  if not e then
    if as_parent then parent_not_found("experiment", exp) end
    not_found("experiment", exp)
  end
  return w, e
end

local function put_experiment(ctx, req, sub, rg, ws, name, body)
  if body:find("%S") then decode_object(body, "Experiment create parameters") end
  local out = ctx.store:write(function(st)
    local w = st:workspace(sub, rg, ws)
    if not w then parent_not_found("workspace", ws) end
    if w.state == "deleting" then fail(409, "Conflict", ("The workspace '%s' is being deleted."):format(w.name)) end
    local e = st:experiment(w.id, name)
    if e then
      if e.state == "deleting" then fail(409, "Conflict", ("The experiment '%s' is being deleted."):format(e.name)) end
      return e.body
    end
    local t = now()
    e = { ws_id = w.id, name = name, state = "succeeded", created = t, state_time = t }
    e.body = model.experiment_body(w, e)
    st:insert_experiment(e)
    ctx.log:event("experiment_created", { experiment = model.experiment_id(w.sub, w.rg, w.name, name) })
    return e.body
  end)
  reply_after_commit(ctx, req, 200, out)
end

local function delete_experiment(ctx, req, sub, rg, ws, name)
  local status, headers, active = ctx.store:write(function(st)
    local w = st:workspace(sub, rg, ws)
    if not w then return 204 end
    local e = st:experiment(w.id, name)
    if not e then return 204 end
    local active = {}
    for _, job_id in ipairs(st:job_ids(e.id)) do
      local j = st:job_by_id(job_id)
      if begin_job_delete(ctx, st, j) then active[#active + 1] = j end
    end
    if e.state ~= "deleting" then
      e.state, e.state_time = "deleting", now()
      e.body = model.experiment_body(w, e)
      st:update_experiment(e)
    end
    ctx.log:event("experiment_delete", { experiment = model.experiment_id(w.sub, w.rg, w.name, e.name), running_jobs = #active })
    return deletion_status(ctx, req, st, "exp:" .. e.id, w, active)
  end)
  answer_deletion(ctx, req, status, headers, active)
end

-- ---- jobs --------------------------------------------------------------------------------

local function validation_failure(errors)
  local details = {}
  for i, e in ipairs(errors) do
    details[i] = { code = "InvalidParameter", message = e.message, target = e.path }
  end
  local first = errors[1]
  local message = ("%s: %s"):format(first.path, first.message)
  if #errors > 1 then message = message .. (" (and %d more error%s; see details)"):format(#errors - 1, #errors > 2 and "s" or "") end
  fail(400, "InvalidParameter", message, first.path, details)
end

--- The cluster name of a job: the last segment of cluster.id (an ARM id or a bare name).
function M.cluster_name(props)
  local id = props.cluster and props.cluster.id
  if type(id) ~= "string" then return nil end
  return id:match("([^/]+)/*$")
end

local function put_job(ctx, req, sub, rg, ws, exp, name, body)
  local b = decode_object(body, "JobCreateParameters")
  -- defaults the service fills in, so that re-PUT with or without them is identical
  if type(b.properties) == "table" then
    local p = b.properties
    if p.schedulingPriority == nil then p.schedulingPriority = "normal" end
    if p.constraints == nil then p.constraints = {} end
    if type(p.constraints) == "table" and p.constraints.maxWallClockTime == nil then p.constraints.maxWallClockTime = "P7D" end
  end
  local spec, spec_text = validate.job_create(b)
  if not spec then validation_failure(spec_text) end
  local p = spec.properties
  local wall = model.duration_seconds(p.constraints.maxWallClockTime)
  if not wall or wall <= 0 then
    fail(400, "InvalidParameter", ("JobCreateParameters.properties.constraints.maxWallClockTime: '%s' is not a positive "
      .. "ISO-8601 duration (e.g. 'PT1H30M') or TimeSpan (e.g. '1.12:00:00')."):format(tostring(p.constraints.maxWallClockTime)),
      "properties.constraints.maxWallClockTime")
  end
  local priority = model.PRIORITY[p.schedulingPriority]
  if not priority then
    fail(400, "InvalidParameter", ("JobCreateParameters.properties.schedulingPriority: '%s' is not one of low, normal, high.")
      :format(tostring(p.schedulingPriority)), "properties.schedulingPriority")
  end
  local cluster_name = M.cluster_name(p)
  local cluster = cluster_name and ctx.clusters:find(cluster_name)
  if not cluster then
    fail(400, "InvalidParameter", ("The cluster '%s' is not known to this endpoint; known clusters: %s.")
      :format(tostring(cluster_name), table.concat(ctx.clusters:names(), ", ")), "properties.cluster.id")
  end
  -- (its only change is the INSERT at its end: no savepoint needed)
  local out, created = ctx.store:write_single(function(st)
    local w, e = get_experiment_rows(st, sub, rg, ws, exp, true)
    if w.state == "deleting" or e.state == "deleting" then
      fail(409, "Conflict", ("The %s '%s' is being deleted."):format(w.state == "deleting" and "workspace" or "experiment",
        w.state == "deleting" and w.name or e.name))
    end
    local j = st:job(e.id, name)
    if j then
      if j.prov_state == "deleting" then fail(409, "Conflict", ("The job '%s' is being deleted."):format(j.name)) end
      if j.spec ~= spec_text then
        fail(409, "Conflict", ("The job '%s' already exists with different properties. Batch AI jobs cannot be updated: "
          .. "delete it first or create the job under another name."):format(j.name))
      end
      return j.body, nil
    end
    local t = now()
    j = {
      exp_id = e.id, name = name, arm_id = model.job_id(w.sub, w.rg, w.name, e.name, name), location = w.location,
      spec = spec_text, cluster = cluster.name, priority = priority, node_count = math.tointeger(p.nodeCount) or 1,
      segment = table.concat({ w.sub, w.rg, "workspaces", w.name, "experiments", e.name, "jobs", name, wire.uuid() }, "/"),
      prov_state = "succeeded", prov_time = t, exec_state = "queued", exec_time = t, created = t,
      view = model.job_view(spec, spec_text),
    }
    j.body = model.job_body(j)
    j.id = st:insert_job(j)
    return j.body, j
  end)
  if created then
    ctx.log:event("job_created", { job = created.arm_id, cluster = cluster.name, nodes = created.node_count })
    ctx.scheduler:hold(created.id)
    ctx.store:after_commit(function(ok) ctx.scheduler:submitted(created, ok) end)
  end
  reply_after_commit(ctx, req, 200, out)
end

local function job_row(st, sub, rg, ws, exp, name)
  local _, e = get_experiment_rows(st, sub, rg, ws, exp, true)
  local j = st:job(e.id, name)
  if not j then not_found("job", name) end
  return j, e
end

local function get_job(ctx, req, sub, rg, ws, exp, name)
  local body = ctx.store:job_body(sub, rg, ws, exp, name)
  if body then return ctx.reply(req, 200, body) end
  job_row(ctx.store, sub, rg, ws, exp, name)
  not_found("job", name)
end

local function delete_job(ctx, req, sub, rg, ws, exp, name)
  local status, headers, active = ctx.store:write(function(st)
    local w = st:workspace(sub, rg, ws)
    local e = w and st:experiment(w.id, exp)
    local j = e and st:job(e.id, name)
    if not j then return 204 end
    ctx.log:event("job_delete", { job = j.arm_id })
    if not begin_job_delete(ctx, st, j) then
      st:delete_job(j.id)
      return 200
    end
    local _, h = new_operation(ctx, req, st, "delete", "job:" .. j.id, w.sub, w.location)
    return 202, h, { j }
  end)
  if active then ctx.store:after_commit(function(ok) if ok then stop_for_delete(ctx, active) end end) end
  reply_after_commit(ctx, req, status, "", headers)
end

local function terminate_job(ctx, req, sub, rg, ws, exp, name)
  local status, headers, target = ctx.store:write(function(st)
    local j = job_row(st, sub, rg, ws, exp, name)
    if j.prov_state == "deleting" then fail(409, "Conflict", ("The job '%s' is being deleted."):format(j.name)) end
    if j.exec_state == "succeeded" or j.exec_state == "failed" then return 200 end
    ctx.log:event("job_terminate", { job = j.arm_id, state = j.exec_state })
    local handed = ctx.scheduler:is_active(j) -- a queued job may wait in an executor's backend (Slurm)
    if j.exec_state == "queued" and not handed then
      ctx.scheduler:fail_queued(st, j, { code = "JobTerminated", message = "The job was terminated by the user before it started." })
      return 200
    end
    if j.exec_state == "running" or j.exec_state == "queued" then
      local t = now()
      j.exec_state, j.exec_time, j.stop_reason = "terminating", t, "terminate"
      j.body = model.job_body(j)
      st:update_job(j)
    end
    local _, h = new_operation(ctx, req, st, "terminate", "job:" .. j.id, sub, j.location)
    return 202, h, j
  end)
  if target then
    ctx.store:after_commit(function(ok)
      if ok then ctx.scheduler:stop(target, "terminate", function() M.sweep_deletions(ctx) end) end
    end)
  end
  reply_after_commit(ctx, req, status, "", headers)
end

local function list_jobs(ctx, req, path, sub, rg, ws, exp)
  local limit, after = page_args(req)
  local _, e = get_experiment_rows(ctx.store, sub, rg, ws, exp, true)
  ctx.reply(req, 200, list_page(ctx, req, path, ctx.store:list_jobs(e.id, after, limit + 1), limit))
end

local function remote_login(ctx, req, sub, rg, ws, exp, name)
  local j = job_row(ctx.store, sub, rg, ws, exp, name)
  local value = {}
  if j.exec_state == "running" or j.exec_state == "terminating" then
    value = ctx.scheduler:remote_login(j) or {}
  end
  ctx.reply(req, 200, encode({ value = value }))
end

-- ---- operations (LRO status) ---------------------------------------------------------------

local function get_operation(ctx, req, kind, id)
  local op = ctx.store:operation(id)
  if not op then fail(404, "ResourceNotFound", ("The operation '%s' was not found."):format(id)) end
  if kind == "operationstatuses" then
    local body = { name = op.id, status = op.status, startTime = iso(op.created), endTime = op.ended and iso(op.ended) or nil }
    if op.error then body.error = decode(op.error) end
    return ctx.reply(req, 200, encode(body))
  end
  if op.status == "InProgress" then
    return ctx.reply(req, 202, "", { ["Location"] = base_url(ctx, req) .. current_path .. "?api-version=" .. API_VERSION,
      ["Retry-After"] = tostring(ctx.config.retry_after) })
  end
  if op.status == "Succeeded" then return ctx.reply(req, op.kind == "delete" and 204 or 200, "") end
  local e = decode(op.error or "{}") or {}
  ctx.reply(req, 500, wire.error_body(e.code or "OperationFailed", e.message or "The operation failed."))
end

-- ---- routing ------------------------------------------------------------------------------------

local function split(path)
  local s, n = {}, 0
  for seg in path:gmatch("[^/]+") do
    n = n + 1
    s[n] = seg
  end
  return s, n
end

local function method_not_allowed(method, what)
  fail(405, "MethodNotAllowed", ("The method '%s' is not supported for %s."):format(method, what))
end

local function no_route(path)
  fail(404, "NotFound", ("No Batch AI 2018-05-01 operation matches the path '%s'."):format(path))
end

-- Resolves /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.BatchAI/workspaces/...
local function route_workspace_tree(ctx, req, method, path, body, s, n)
  local sub, rg = check_subscription(s[2]), check_resource_group(s[4])
  if n == 7 then
    if method ~= "GET" then method_not_allowed(method, "a list of workspaces") end
    return list_workspaces(ctx, req, path, sub, rg)
  end
  local ws = check_name("workspaceName", s[8])
  if n == 8 then
    if method == "GET" then
      local w = get_workspace_row(ctx.store, sub, rg, ws)
      return ctx.reply(req, 200, w.body)
    elseif method == "PUT" then return put_workspace(ctx, req, sub, rg, ws, body)
    elseif method == "PATCH" then return patch_workspace(ctx, req, sub, rg, ws, body)
    elseif method == "DELETE" then return delete_workspace(ctx, req, sub, rg, ws)
    end
    method_not_allowed(method, "a workspace")
  end
  if s[9]:lower() ~= "experiments" then no_route(path) end
  if n == 9 then
    if method ~= "GET" then method_not_allowed(method, "a list of experiments") end
    local limit, after = page_args(req)
    local w = ctx.store:workspace(sub, rg, ws)
    if not w then parent_not_found("workspace", ws) end
    return ctx.reply(req, 200, list_page(ctx, req, path, ctx.store:list_experiments(w.id, after, limit + 1), limit))
  end
  local exp = check_name("experimentName", s[10])
  if n == 10 then
    if method == "GET" then
      local _, e = get_experiment_rows(ctx.store, sub, rg, ws, exp)
      return ctx.reply(req, 200, e.body)
    elseif method == "PUT" then return put_experiment(ctx, req, sub, rg, ws, exp, body)
    elseif method == "DELETE" then return delete_experiment(ctx, req, sub, rg, ws, exp)
    end
    method_not_allowed(method, "an experiment")
  end
  if s[11]:lower() ~= "jobs" then no_route(path) end
  if n == 11 then
    if method ~= "GET" then method_not_allowed(method, "a list of jobs") end
    return list_jobs(ctx, req, path, sub, rg, ws, exp)
  end
  local job = check_name("jobName", s[12])
  if n == 12 then
    if method == "GET" then return get_job(ctx, req, sub, rg, ws, exp, job)
    elseif method == "PUT" then return put_job(ctx, req, sub, rg, ws, exp, job, body)
    elseif method == "DELETE" then return delete_job(ctx, req, sub, rg, ws, exp, job)
    end
    method_not_allowed(method, "a job")
  end
  if n == 13 then
    local action = s[13]:lower()
    if action ~= "terminate" and action ~= "listoutputfiles" and action ~= "listremotelogininformation" then no_route(path) end
    if method ~= "POST" then method_not_allowed(method, "the job action '" .. s[13] .. "'") end
    if action == "terminate" then return terminate_job(ctx, req, sub, rg, ws, exp, job) end
    if action == "listremotelogininformation" then return remote_login(ctx, req, sub, rg, ws, exp, job) end
    local j = job_row(ctx.store, sub, rg, ws, exp, job)
    return ctx.files.list(ctx, req, path, j)
  end
  no_route(path)
end

local function route(ctx, req, method, path, body)
  local s, n = split(path)
  local k1 = s[1] and s[1]:lower()
  if k1 == "providers" and n == 3 and s[2]:lower() == "microsoft.batchai" and s[3]:lower() == "operations" then
    if method ~= "GET" then method_not_allowed(method, "the operations list") end
    return list_operations(ctx, req)
  end
  if k1 ~= "subscriptions" or n < 5 then no_route(path) end
  if s[3]:lower() == "providers" then
    if s[4]:lower() ~= "microsoft.batchai" then no_route(path) end
    local sub = check_subscription(s[2])
    if n == 5 and s[5]:lower() == "workspaces" then
      if method ~= "GET" then method_not_allowed(method, "a list of workspaces") end
      return list_workspaces(ctx, req, path, sub, nil)
    end
    if n == 8 and s[5]:lower() == "locations" then
      local kind = s[7]:lower()
      if kind == "operationresults" or kind == "operationstatuses" then
        if method ~= "GET" then method_not_allowed(method, "an operation") end
        return get_operation(ctx, req, kind, s[8])
      end
    end
    no_route(path)
  end
  if n >= 7 and s[3]:lower() == "resourcegroups" and s[5]:lower() == "providers"
    and s[6]:lower() == "microsoft.batchai" and s[7]:lower() == "workspaces" then
    return route_workspace_tree(ctx, req, method, path, body, s, n)
  end
  no_route(path)
end

local JOB_PATH = "^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft%.BatchAI/workspaces/([^/]+)"
  .. "/experiments/([^/]+)/jobs/([^/]+)$"

--- Handles one authenticated API request (anything but /files and /bai).
function M.handle(ctx, req, method, path, body)
  if method == "GET" and req:arg("api-version") == API_VERSION then
    -- the hot path: GET of an existing job, its stored body (cached, or one indexed lookup)
    local store = ctx.store
    local found = store:cached_body(path)
    if not found then
      local sub, rg, ws, exp, job = path:match(JOB_PATH)
      if sub then found = store:job_body(sub, rg, ws, exp, job, path) end
    end
    if found then return ctx.reply(req, 200, found) end
  end
  current_path = path
  local ok, err = xpcall(function()
    local version = req:arg("api-version")
    if version == nil then
      fail(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all "
        .. "requests; this endpoint supports api-version '" .. API_VERSION .. "'.", "api-version")
    elseif version ~= API_VERSION then
      fail(400, "InvalidApiVersionParameter", ("The api-version '%s' is not supported; the supported api-version is '%s'.")
        :format(version, API_VERSION), "api-version")
    end
    route(ctx, req, method, path, body)
  end, function(e)
    if getmetatable(e) == ApiError then return e end
    return debug.traceback(tostring(e), 2)
  end)
  if ok then return end
  if getmetatable(err) == ApiError then
    return ctx.reply(req, err.status, wire.error_body(err.code, err.message, err.target, err.details))
  end
  ctx.log:event("internal_error", { path = path, error = tostring(err) })
  ctx.reply(req, 500, wire.error_body("InternalServerError", "The endpoint failed to handle the request; see its log."))
end

return M

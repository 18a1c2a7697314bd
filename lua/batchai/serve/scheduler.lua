-- Placeholder scheduler (milestone 1): jobs stay queued.
local wire = require "batchai.serve.wire"
local model = require "batchai.serve.model"
local sys = require "batchai._sys"

local M = {}
local S = {}
S.__index = S

function M.new(ctx) return setmetatable({ ctx = ctx }, S) end
function S:start() end
function S:shutdown() end
function S:submitted(job) end
function S:is_active(job) return false end
function S:stop(job, reason, on_done) if on_done then on_done() end end
function S:remote_login(job) return {} end

function S:fail_queued(st, j, err)
  local t = sys.now()
  j.exec_state, j.exec_time, j.ended = "failed", t, t
  j.errors = wire.encode({ err }, "errors")
  j.body = model.job_body(j)
  st:update_job(j)
end

return M

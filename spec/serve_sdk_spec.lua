-- The official JavaScript SDK (@azure/arm-batchai, scripts/npm) works against
-- bai serve unchanged: only the base URL and the token differ.
local S = require "serve"
local T = require "testkit"
local cjson = require "cjson"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]+$") or "spec"
local npm_dir = here .. "/../scripts/npm"
local missing
if not T.has_command("node") then
  missing = "node is not installed"
elseif T.read(npm_dir .. "/node_modules/@azure/arm-batchai/package.json") == nil then
  missing = "@azure/arm-batchai is not installed in scripts/npm/node_modules"
end

describe("the official Batch AI JavaScript SDK against bai serve", function()
  local what = "creates, gets, lists, terminates and deletes a job"
  if missing and os.getenv("CI") then
    -- under CI a missing SDK is a failure, not a skip
    it(what, function() error(missing .. ", but .ci/run's setup should have installed it (scripts/setup.sh)") end)
    return
  elseif missing then
    pending(what .. ": " .. missing .. " (run scripts/setup.sh)")
    return
  end
  it(what, function()
    local srv = S.start{ slots = 2 }
    local r = T.exec({ "node", npm_dir .. "/sdk_compat.js", srv.url, srv.token, S.SUB }, { timeout = 120 })
    local log = T.read(srv.log_path)
    srv:stop()
    local steps = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local s = cjson.decode(line)
      steps[s.step] = s.value
    end
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.are.same({ name = "sdkws", location = "eastus", provisioningState = "succeeded", tags = { via = "sdk" } }, steps.workspace)
    assert.are.same({ name = "sdkexp", provisioningState = "succeeded" }, steps.experiment)
    assert.are.same({ name = "sdkjob", toolType = "custom", executionState = "queued", secrets = { { name = "S" } } }, steps.job)
    assert.are.same({ name = "sdkjob", creationTime = true }, steps.recreate)
    assert.are.same({ executionState = "running", startTime = true }, steps.get)
    assert.are.same({ "extra0", "extra1", "extra2", "sdkjob" }, steps.list)
    assert.are.equal("stderr.txt", steps.files[1].name)
    assert.is_true(steps.files[1].hasUrl)
    assert.are.same({ executionState = "failed", error = "JobTerminated" }, steps.terminated)
    assert.are.same({ statusCode = 404, code = "ResourceNotFound" }, steps.deleted)
    assert.are.same({}, steps.workspaces)
    assert.is_nil(log:find("sdk-secret", 1, true))
  end)
end)

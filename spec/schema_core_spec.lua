-- The typed schema: constructors, errors with field paths, immutability, with, JSON.
local bai = require "batchai"
local schema = require "batchai.schema"

local function base_job()
  return bai.JobProperties {
    cluster = { id = "local" },
    nodeCount = 2,
    stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
    pyTorchSettings = { pythonScriptFilePath = "train.py", communicationBackend = "gloo" },
    outputDirectories = { { id = "MODEL", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/models" } },
  }
end

describe("schema core", function()
  it("builds a job from one table literal, coercing nested tables", function()
    local job = base_job()
    assert.are.equal("JobProperties", schema.type_of(job))
    assert.are.equal("ResourceId", schema.type_of(job.cluster))
    assert.are.equal("OutputDirectory[]", schema.type_of(job.outputDirectories))
    assert.are.equal("MODEL", job.outputDirectories[1].id)
    assert.are.equal("Gloo", job.pyTorchSettings.communicationBackend)
  end)

  it("raises with the field path on misuse", function()
    local ok, err = pcall(bai.JobProperties, {
      cluster = { id = "local" }, nodeCount = 0, stdOutErrPathPrefix = "x",
      pyTorchSettings = { pythonScriptFilePath = "a" },
    })
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'JobProperties' %(JobProperties.nodeCount: integer >= 1 expected, got 0%)$", err)
  end)

  it("encodes the create body", function()
    assert.are.equal('{"properties":{"cluster":{"id":"local"},"nodeCount":2,'
      .. '"pyTorchSettings":{"pythonScriptFilePath":"train.py","communicationBackend":"Gloo"},'
      .. '"stdOutErrPathPrefix":"$AZ_BATCHAI_MOUNT_ROOT/logs",'
      .. '"outputDirectories":[{"id":"MODEL","pathPrefix":"$AZ_BATCHAI_MOUNT_ROOT/models"}]}}',
      base_job():to_json())
  end)

  it("with merges nested settings and compares by value", function()
    local a = base_job():with { pyTorchSettings = { commandLineArgs = "--lr 0.1" } }
    assert.are.equal("train.py", a.pyTorchSettings.pythonScriptFilePath)
    assert.are.equal("--lr 0.1", a.pyTorchSettings.commandLineArgs)
    assert.is_true(a == base_job():with { pyTorchSettings = { commandLineArgs = "--lr 0.1" } })
    assert.is_false(a == base_job())
  end)

  it("check accepts integral floats as decoded by cjson", function()
    local v, errs = schema.check(require("cjson").decode(base_job():to_json()), "JobCreateParameters")
    assert.is_nil(errs)
    assert.is_true(v.properties == base_job())
  end)

  it("has C helpers that ignore extra arguments", function()
    local fast = require "batchai._schema"
    local other = {}
    local copy = fast.clone({ a = 1, b = "x" }, other)
    assert.are.same({ a = 1, b = "x" }, copy)
    assert.is_nil(next(other))
    assert.are.same({}, fast.clone({}, 42))
    assert.are.equal('"q\\""', fast.quote('q"', 1))
  end)
end)

-- Typed values as a user meets them: immutable, equal by value, :with, printing
-- in spec order, iteration, errors raised at the caller, REPL completion, help.
local bai = require "batchai"
local schema = require "batchai.schema"
local null = require("cjson").null
local T = require "testkit"

local function base_job()
  return bai.JobProperties {
    cluster = { id = "local" },
    nodeCount = 1,
    stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
    pyTorchSettings = { pythonScriptFilePath = "train.py", commandLineArgs = "--lr 0.1" },
    outputDirectories = { { id = "MODEL", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/models" } },
  }
end

describe("typed values", function()
  it("build from one table literal, nested tables and arrays becoming their types", function()
    local job = base_job()
    assert.are.equal("JobProperties", schema.type_of(job))
    assert.are.equal("ResourceId", schema.type_of(job.cluster))
    assert.are.equal("PyTorchSettings", schema.type_of(job.pyTorchSettings))
    assert.are.equal("OutputDirectory[]", schema.type_of(job.outputDirectories))
    assert.are.equal("OutputDirectory", schema.type_of(job.outputDirectories[1]))
    assert.are.equal("MODEL", job.outputDirectories[1].id)
    assert.is_nil(schema.type_of(job:to_wire()))
  end)

  it("are immutable, nested values and lists too", function()
    local job = base_job()
    assert.has_error(function() job.nodeCount = 2 end,
      "cannot assign JobProperties.nodeCount: JobProperties values are immutable (use :with{...} for a changed copy)")
    assert.has_error(function() job.pyTorchSettings.processCount = 2 end,
      "cannot assign PyTorchSettings.processCount: PyTorchSettings values are immutable (use :with{...} for a changed copy)")
    assert.has_error(function() job.outputDirectories[2] = {} end,
      "cannot assign [2]: OutputDirectory[] values are immutable (use :with{...} on the value holding it)")
    local ws = schema.decode({ name = "w", tags = { team = "a" } }, "Workspace")
    local tags = ws.tags
    tags.team = "b"
    assert.are.equal("a", ws.tags.team)
    assert.are.equal(1, job.nodeCount)
  end)

  it("compare by value", function()
    assert.is_true(base_job() == base_job())
    assert.is_false(base_job() == base_job():with { nodeCount = 2 })
    assert.is_false(base_job().cluster == bai.ResourceId { id = "other" })
    assert.is_false(base_job().outputDirectories == bai.JobProperties(base_job():to_wire()):with {
      outputDirectories = {} }.outputDirectories)
    assert.is_false(base_job() == base_job():to_wire())
    assert.is_true(base_job():with {} == base_job())
  end)

  it(":with replaces fields and merges nested settings tables", function()
    local job = base_job()
    local changed = job:with { nodeCount = 4, pyTorchSettings = { commandLineArgs = "--lr 0.01", processCount = 8 } }
    assert.are.equal(4, changed.nodeCount)
    assert.are.equal("train.py", changed.pyTorchSettings.pythonScriptFilePath)
    assert.are.equal("--lr 0.01", changed.pyTorchSettings.commandLineArgs)
    assert.are.equal(8, changed.pyTorchSettings.processCount)
    assert.are.equal("--lr 0.1", job.pyTorchSettings.commandLineArgs, "the original is unchanged")
    assert.are.equal(rawequal(job.cluster, changed.cluster), true, "unchanged parts are shared")
    -- Deeper merges, arrays replaced whole, typed values replace.
    local c = changed:with { containerSettings = { imageSourceRegistry = { image = "a" } } }
    c = c:with { containerSettings = { imageSourceRegistry = { serverUrl = "r.io" }, shmSize = "1g" } }
    assert.are.equal("a", c.containerSettings.imageSourceRegistry.image)
    assert.are.equal("r.io", c.containerSettings.imageSourceRegistry.serverUrl)
    local outs = c:with { outputDirectories = { { id = "LOGS", pathPrefix = "/l" } } }.outputDirectories
    assert.are.equal(1, #outs)
    assert.are.equal("LOGS", outs[1].id)
    assert.are.equal("other", c:with { cluster = bai.ResourceId { id = "other" } }.cluster.id)
    -- cjson.null (also schema.null) removes a field.
    assert.is_nil(c:with { containerSettings = null }.containerSettings)
    assert.are.equal(null, schema.null)
  end)

  it(":with raises like a constructor, naming every error", function()
    local job = base_job()
    local ok, err = pcall(job.with, job, { nodecount = 2, pyTorchSettings = { processCount = 0 }, cluster = null })
    assert.is_false(ok)
    assert.are.equal("bad argument #1 to 'with' (JobProperties.cluster: required field missing; "
      .. "JobProperties.pyTorchSettings.processCount: integer >= 1 expected, got 0; "
      .. "JobProperties.nodecount: unknown field (did you mean 'nodeCount'?))", err)
    assert.has_error(function() job:with(5) end, "bad argument #1 to 'with' (table expected, got 5)")
    assert.has_error(function() job:with { executionState = "running" } end,
      "bad argument #1 to 'with' (JobProperties.executionState: read-only field (set by the service))")
  end)

  it("constructors raise at the caller's line", function()
    local dir = T.tmpdir()
    local script = T.write(dir .. "/job.lua", [[
local bai = require "batchai"
local job = bai.JobProperties {
  cluster = { id = "local" }, nodeCount = 0, stdOutErrPathPrefix = "/l",
  customToolkitSettings = { commandLine = "true" },
}
]])
    local r = T.run({ script })
    assert.are.equal(1, r.status)
    assert.are.equal("bai: " .. script .. ":2: bad argument #1 to 'JobProperties' (JobProperties.nodeCount: "
      .. "integer >= 1 expected, got 0)", r.stderr:match("^[^\n]*"))
    assert.has_error(function() bai.JobProperties("x") end,
      [[bad argument #1 to 'JobProperties' (JobProperties: table expected, got "x")]])
    assert.has_error(function() bai.validate({}, "JobPropertys") end,
      "bad argument #2 to 'validate' (type name expected, got \"JobPropertys\" (did you mean 'JobProperties'?))")
  end)

  it("print in spec order, on one line when short, secrets as ***", function()
    assert.are.equal('ResourceId { id = "local" }', tostring(bai.ResourceId { id = "local" }))
    assert.are.equal([[
JobProperties {
  cluster = { id = "local" },
  nodeCount = 1,
  pyTorchSettings = { pythonScriptFilePath = "train.py", commandLineArgs = "--lr 0.1" },
  stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
  outputDirectories = { { id = "MODEL", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/models" } },
}]], tostring(base_job()))
    local creds = bai.PrivateRegistryCredentials { password = "hunter2", username = "me" }
    assert.are.equal('PrivateRegistryCredentials { username = "me", password = "***" }', tostring(creds))
    assert.are.equal(tostring(creds), require("batchai.pretty").format(creds))
    assert.are.equal('EnvironmentVariableWithSecretValue[] { { name = "T", value = "***" } }', tostring(
      bai.JobProperties(base_job():to_wire()):with { secrets = { { name = "T", value = "hunter2" } } }.secrets))
  end)

  it("iterate their fields in spec order with pairs, lists with ipairs", function()
    local names = {}
    for k in pairs(base_job()) do names[#names + 1] = k end
    assert.are.same({ "cluster", "nodeCount", "pyTorchSettings", "stdOutErrPathPrefix", "outputDirectories" }, names)
    local ids = {}
    for i, d in ipairs(base_job().outputDirectories) do ids[i] = d.id end
    assert.are.same({ "MODEL" }, ids)
    assert.are.equal(1, #base_job().outputDirectories)
  end)

  it("offer their fields and methods to the REPL's completion", function()
    local repl = require "batchai.repl"
    rawset(_G, "job", base_job())
    rawset(_G, "bai", bai)
    local ok, err = pcall(function()
      assert.are.same({ "job.nodeCount" }, repl.complete("x = job.no", 5, 10))
      assert.are.same({ "job:to_json", "job:to_wire", "job:with" }, repl.complete("job:", 1, 4))
      assert.are.same({ "job.pyTorchSettings.commandLineArgs", "job.pyTorchSettings.communicationBackend" },
        repl.complete("job.pyTorchSettings.comm", 1, 24))
      assert.are.same({ "bai.PyTorchSettings" }, repl.complete("bai.PyT", 1, 7))
      assert.are.same({ "bai.JobConstraints", "bai.JobPreparation", "bai.JobProperties" }, repl.complete("bai.Job", 1, 7))
      assert.are.same({ "job.outputDirectories:to_json", "job.outputDirectories:to_wire" },
        repl.complete("job.outputDirectories:", 1, 22))
    end)
    rawset(_G, "job", nil)
    rawset(_G, "bai", nil)
    assert(ok, err)
  end)
end)

describe("bai help for types", function()
  it("bai help JobProperties lists fields, types, required, defaults and rules", function()
    local r = T.run({ "help", "JobProperties" })
    assert.are.equal(0, r.status)
    local out = r.stdout
    assert.truthy(out:find("^JobProperties: A training job"))
    assert.truthy(out:find('\n  schedulingPriority              string; "low", "normal" or "high"; default\n'
      .. '                                  "normal"\n'
      .. "      Priority of the job in the cluster's queue.\n", 1, true))
    assert.truthy(out:find("\n  nodeCount                       integer >= 1; required\n", 1, true))
    assert.truthy(out:find("\n  outputDirectories               array of OutputDirectory\n", 1, true))
    assert.truthy(out:find("\n  executionState                  string; read-only;", 1, true))
    assert.truthy(out:find("\nRules:\n  - Exactly one toolkit settings table", 1, true))
    assert.truthy(out:find("\nBuild: bai.JobProperties{ ... }", 1, true))
    assert.are.equal(out, T.run({ "help", "jobproperties" }).stdout)
  end)

  it("bai help TYPE describes every type: summary, every field with its kind, how to build or read it", function()
    for _, name in ipairs(schema.type_names()) do
      local r = T.run({ "help", name })
      assert.are.equal(0, r.status, name)
      assert.are.equal("", r.stderr, name)
      local ct = schema.type_info(name)
      assert.are.equal(name .. ": " .. ct.def.summary, r.stdout:match("^[^\n]*"), name)
      assert.truthy(r.stdout:find("\nFields, in wire order:\n", 1, true), name)
      for _, f in ipairs(schema.fields(name)) do
        assert.truthy(r.stdout:find("\n  " .. f.name .. (" "):rep(32 - #f.name), 1, true), name .. "." .. f.name)
      end
      local last = ct.def.constructor and ("Build: bai." .. name .. "{ ... }")
        or ('Read: bai.schema.decode(json, "' .. name .. '")')
      assert.truthy(r.stdout:find("\n" .. last, 1, true), name)
    end
  end)

  it("bai help types lists every type with its summary", function()
    local r = T.run({ "help", "types" })
    assert.are.equal(0, r.status)
    for _, name in ipairs(schema.type_names()) do
      assert.truthy(r.stdout:find("\n  " .. name .. " ", 1, true), name)
    end
    assert.truthy(r.stdout:find("\n  PyTorchSettings                     A PyTorch job\n", 1, true))
  end)

  it("secret fields say so, and typos get a suggestion", function()
    assert.truthy(T.run({ "help", "AzureStorageCredentialsInfo" }).stdout
      :find("\n  accountKey                      string; secret\n", 1, true))
    local r = T.run({ "help", "PyTorchSetings" })
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find("did you mean 'PyTorchSettings'?", 1, true))
  end)
end)

describe("batchai._schema", function()
  it("ignores extra arguments to its helpers", function()
    local fast = require "batchai._schema"
    local other = {}
    local copy = fast.clone({ a = 1, b = "x" }, other)
    assert.are.same({ a = 1, b = "x" }, copy)
    assert.is_nil(next(other))
    assert.are.same({}, fast.clone({}, 42))
    assert.are.equal('"q\\""', fast.quote('q"', 1))
  end)
end)

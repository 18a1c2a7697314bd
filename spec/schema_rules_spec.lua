-- The cross-field rules the spec states in its descriptions: one passing and one
-- failing case each, with the exact message, at construction and through :with.
local bai = require "batchai"
local schema = require "batchai.schema"
local null = require("cjson").null

local vault = { sourceVault = { id = "/vaults/kv" }, secretUrl = "https://kv.vault.azure.net/secrets/s" }

local function job(fields)
  local t = { cluster = { id = "local" }, nodeCount = 2, stdOutErrPathPrefix = "/logs" }
  for k, v in pairs(fields) do t[k] = v end
  return t
end

-- The messages of validate(t, name), in order.
local function errors_of(t, name)
  local ok, errs = bai.validate(t, name or "JobProperties")
  if ok then return {} end
  local out = {}
  for i, e in ipairs(errs) do out[i] = tostring(e) end
  return out
end

-- The message a constructor or :with raised, without the position.
local function raised(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("exactly one toolkit settings table", function()
  it("accepts each toolkit alone", function()
    local toolkits = {
      cntkSettings = { pythonScriptFilePath = "a.py" }, pyTorchSettings = { pythonScriptFilePath = "a.py" },
      tensorFlowSettings = { pythonScriptFilePath = "a.py" }, caffeSettings = { configFilePath = "s.prototxt" },
      caffe2Settings = { pythonScriptFilePath = "a.py" }, chainerSettings = { pythonScriptFilePath = "a.py" },
      customToolkitSettings = { commandLine = "true" }, customMpiSettings = { commandLine = "hostname" },
      horovodSettings = { pythonScriptFilePath = "a.py" },
    }
    for key, settings in pairs(toolkits) do
      assert.are.same({}, errors_of(job { [key] = settings }), key)
    end
  end)

  it("refuses none and names both of two", function()
    assert.are.same({ "JobProperties: one toolkit settings table expected (cntkSettings, pyTorchSettings, "
      .. "tensorFlowSettings, caffeSettings, caffe2Settings, chainerSettings, customToolkitSettings, "
      .. "customMpiSettings or horovodSettings), got none" }, errors_of(job {}))
    assert.are.same({ "JobProperties.caffeSettings: only one toolkit settings table allowed, got pyTorchSettings "
      .. "and caffeSettings" }, errors_of(job { pyTorchSettings = { pythonScriptFilePath = "a.py" },
      caffeSettings = { configFilePath = "s" } }))
    assert.are.same({ "JobProperties.pyTorchSettings: only one toolkit settings table allowed, got cntkSettings, "
      .. "pyTorchSettings and horovodSettings" }, errors_of(job { cntkSettings = { pythonScriptFilePath = "a" },
      pyTorchSettings = { pythonScriptFilePath = "a" }, horovodSettings = { pythonScriptFilePath = "a" } }))
  end)

  it("holds through :with, where null removes a toolkit", function()
    local base = bai.JobProperties(job { pyTorchSettings = { pythonScriptFilePath = "a.py" } })
    assert.are.equal("bad argument #1 to 'with' (JobProperties.tensorFlowSettings: only one toolkit settings table "
      .. "allowed, got pyTorchSettings and tensorFlowSettings)",
      raised(base.with, base, { tensorFlowSettings = { pythonScriptFilePath = "t.py" } }))
    local tf = base:with { pyTorchSettings = null, tensorFlowSettings = { pythonScriptFilePath = "t.py" } }
    assert.are.equal("tensorflow", schema.tool_type(tf))
    assert.is_nil(tf.pyTorchSettings)
    assert.matches("got none%)$", raised(base.with, base, { pyTorchSettings = null }))
  end)
end)

describe("TensorFlow counts", function()
  local distributed = { pythonScriptFilePath = "t.py", workerCommandLineArgs = "--worker",
    parameterServerCommandLineArgs = "--ps", workerCount = 4, parameterServerCount = 2 }

  it("allows workerCount and parameterServerCount for distributed runs, servers <= nodeCount", function()
    assert.are.same({}, errors_of(job { tensorFlowSettings = distributed }))
    assert.are.same({ "JobProperties.tensorFlowSettings.parameterServerCount: integer <= nodeCount (1) expected, got 2" },
      errors_of(job { nodeCount = 1, tensorFlowSettings = distributed }))
  end)

  it("refuses the counts on a single-process run", function()
    assert.are.same({}, errors_of(job { tensorFlowSettings = { pythonScriptFilePath = "t.py",
      masterCommandLineArgs = "--x" } }))
    assert.are.same({
      "JobProperties.tensorFlowSettings.workerCount: allowed only for distributed training (with "
        .. "workerCommandLineArgs or parameterServerCommandLineArgs)",
      "JobProperties.tensorFlowSettings.parameterServerCount: allowed only for distributed training (with "
        .. "workerCommandLineArgs or parameterServerCommandLineArgs)",
    }, errors_of(job { tensorFlowSettings = { pythonScriptFilePath = "t.py", workerCount = 2, parameterServerCount = 1 } }))
  end)

  it("checks again when :with changes nodeCount", function()
    local base = bai.JobProperties(job { tensorFlowSettings = distributed })
    assert.are.equal(2, base:with { nodeCount = 3 }.tensorFlowSettings.parameterServerCount)
    assert.are.equal("bad argument #1 to 'with' (JobProperties.tensorFlowSettings.parameterServerCount: integer <= "
      .. "nodeCount (1) expected, got 2)", raised(base.with, base, { nodeCount = 1 }))
  end)

  it("gives the executor the task counts", function()
    assert.are.same({ distributed = true, workers = 4, parameter_servers = 2 },
      schema.tensorflow_tasks(bai.JobProperties(job { tensorFlowSettings = distributed })))
    assert.are.same({ distributed = true, workers = 2, parameter_servers = 1 },
      schema.tensorflow_tasks(job { tensorFlowSettings = { pythonScriptFilePath = "t.py", workerCommandLineArgs = "w" } }))
    assert.are.same({ distributed = false, workers = 1, parameter_servers = 0 },
      schema.tensorflow_tasks(job { tensorFlowSettings = { pythonScriptFilePath = "t.py" } }))
    assert.is_nil(schema.tensorflow_tasks(job { customToolkitSettings = {} }))
  end)
end)

describe("CNTK language", function()
  local function cntk(settings) return errors_of(settings, "CNTKsettings") end

  it("BrainScript needs configFilePath and takes no python fields", function()
    assert.are.same({}, cntk { languageType = "BrainScript", configFilePath = "c.cntk", commandLineArgs = "x=1" })
    assert.are.same({ 'CNTKsettings.configFilePath: required when languageType is "BrainScript"' },
      cntk { languageType = "BrainScript" })
    assert.are.same({
      'CNTKsettings.pythonScriptFilePath: allowed only when languageType is "Python" (languageType is "BrainScript")',
      'CNTKsettings.pythonInterpreterPath: allowed only when languageType is "Python" (languageType is "BrainScript")',
    }, cntk { languageType = "BrainScript", configFilePath = "c", pythonScriptFilePath = "a.py",
      pythonInterpreterPath = "/usr/bin/python3" })
  end)

  it("Python (also the default) needs pythonScriptFilePath and takes no configFilePath", function()
    assert.are.same({}, cntk { pythonScriptFilePath = "a.py", pythonInterpreterPath = "/usr/bin/python3" })
    assert.are.same({}, cntk { languageType = "Python", pythonScriptFilePath = "a.py" })
    assert.are.same({ 'CNTKsettings.pythonScriptFilePath: required when languageType is "Python"' },
      cntk { languageType = "Python" })
    assert.are.same({ 'CNTKsettings.configFilePath: allowed only when languageType is "BrainScript" (languageType '
      .. 'defaults to "Python")' }, cntk { pythonScriptFilePath = "a.py", configFilePath = "c" })
  end)
end)

describe("Caffe entry point", function()
  local function caffe(settings) return errors_of(settings, "CaffeSettings") end

  it("takes configFilePath or pythonScriptFilePath, not both, not neither", function()
    assert.are.same({}, caffe { configFilePath = "solver.prototxt", processCount = 2 })
    assert.are.same({}, caffe { pythonScriptFilePath = "train.py", pythonInterpreterPath = "/usr/bin/python3" })
    assert.are.same({ "CaffeSettings: configFilePath or pythonScriptFilePath expected, got neither" },
      caffe { commandLineArgs = "-gpu all" })
    assert.are.same({ "CaffeSettings.pythonScriptFilePath: not allowed together with configFilePath" },
      caffe { configFilePath = "s", pythonScriptFilePath = "a.py" })
  end)

  it("takes pythonInterpreterPath only with a script", function()
    assert.are.same({ "CaffeSettings.pythonInterpreterPath: allowed only with pythonScriptFilePath" },
      caffe { configFilePath = "s", pythonInterpreterPath = "/usr/bin/python3" })
  end)
end)

describe("exactly one of a secret and its Key Vault reference", function()
  local pairs_to_check = {
    { "PrivateRegistryCredentials", { username = "me" }, "password", "passwordSecretReference" },
    { "AzureStorageCredentialsInfo", {}, "accountKey", "accountKeySecretReference" },
    { "EnvironmentVariableWithSecretValue", { name = "TOKEN" }, "value", "valueSecretReference" },
  }
  for _, case in ipairs(pairs_to_check) do
    local name, base, plain, reference = case[1], case[2], case[3], case[4]
    it(name .. ": " .. plain .. " or " .. reference, function()
      local function with(extra)
        local t = {}
        for k, v in pairs(base) do t[k] = v end
        for k, v in pairs(extra) do t[k] = v end
        return errors_of(t, name)
      end
      assert.are.same({}, with { [plain] = "s3cret" })
      assert.are.same({}, with { [reference] = vault })
      assert.are.same({ ("%s: %s or %s expected, got neither"):format(name, plain, reference) }, with {})
      assert.are.same({ ("%s.%s: not allowed together with %s"):format(name, reference, plain) },
        with { [plain] = "s3cret", [reference] = vault })
    end)
  end

  it("holds through :with on the nested value", function()
    local creds = bai.PrivateRegistryCredentials { username = "me", password = "pw" }
    assert.are.equal("bad argument #1 to 'with' (PrivateRegistryCredentials.passwordSecretReference: not allowed "
      .. "together with password)", raised(creds.with, creds, { passwordSecretReference = vault }))
    local swapped = creds:with { password = null, passwordSecretReference = vault }
    assert.is_nil(swapped.password)
    assert.are.equal("https://kv.vault.azure.net/secrets/s", swapped.passwordSecretReference.secretUrl)
  end)
end)

describe("unique names", function()
  it("environment variable names are unique across environmentVariables and secrets", function()
    assert.are.same({}, errors_of(job { customToolkitSettings = {},
      environmentVariables = { { name = "A", value = "1" }, { name = "B", value = "2" } },
      secrets = { { name = "C", value = "3" } } }))
    assert.are.same({
      'JobProperties.environmentVariables[2].name: duplicate environment variable name "A" (also environmentVariables[1].name)',
      'JobProperties.secrets[1].name: duplicate environment variable name "B" (also environmentVariables[3].name)',
    }, errors_of(job { customToolkitSettings = {},
      environmentVariables = { { name = "A", value = "1" }, { name = "A", value = "2" }, { name = "B", value = "" } },
      secrets = { { name = "B", value = "3" } } }))
  end)

  it("input ids are unique, output ids are unique, and the two lists are apart", function()
    assert.are.same({}, errors_of(job { customToolkitSettings = {},
      inputDirectories = { { id = "DATA", path = "/d" }, { id = "MODEL", path = "/m" } },
      outputDirectories = { { id = "MODEL", pathPrefix = "/o" } } }))
    assert.are.same({ 'JobProperties.outputDirectories[2].id: duplicate id "MODEL" (also outputDirectories[1].id)' },
      errors_of(job { customToolkitSettings = {},
        outputDirectories = { { id = "MODEL", pathPrefix = "/o" }, { id = "MODEL", pathPrefix = "/p" } } }))
    assert.are.same({ 'JobProperties.inputDirectories[2].id: duplicate id "X" (also inputDirectories[1].id)' },
      errors_of(job { customToolkitSettings = {},
        inputDirectories = { { id = "X", path = "/a" }, { id = "X", path = "/b" } } }))
  end)

  it("checks again when :with replaces a list", function()
    local base = bai.JobProperties(job { customToolkitSettings = {}, environmentVariables = { { name = "A", value = "1" } } })
    assert.are.equal("bad argument #1 to 'with' (JobProperties.secrets[1].name: duplicate environment variable name "
      .. '"A" (also environmentVariables[1].name))', raised(base.with, base, { secrets = { { name = "A", value = "x" } } }))
  end)
end)

describe("processCount", function()
  it("defaults to nodeCount, and is on the wire only when given", function()
    local v = bai.JobProperties(job { nodeCount = 3, horovodSettings = { pythonScriptFilePath = "h.py" } })
    assert.are.equal(3, schema.process_count(v))
    assert.is_nil(v:to_json():find("processCount"))
    local given = v:with { horovodSettings = { processCount = 12 } }
    assert.are.equal(12, schema.process_count(given))
    assert.truthy(given:to_json():find('"processCount":12', 1, true))
  end)

  it("is the task count for TensorFlow and 1 for Caffe2 and custom toolkits", function()
    assert.are.equal(6, schema.process_count(job { nodeCount = 4, tensorFlowSettings = { pythonScriptFilePath = "t",
      workerCommandLineArgs = "w", parameterServerCount = 2 } }))
    assert.are.equal(1, schema.process_count(job { nodeCount = 4, caffe2Settings = { pythonScriptFilePath = "c" } }))
    assert.are.equal(1, schema.process_count(job { nodeCount = 4, customToolkitSettings = {} }))
    assert.are.equal(4, schema.process_count({ properties = job { nodeCount = 4.0, customMpiSettings = { commandLine = "x" } } }))
  end)
end)

describe("derived facts", function()
  it("tool_type names the toolkit, custommpi for custom MPI; reads mpi and pytorch", function()
    assert.are.equal("custommpi", schema.tool_type(job { customMpiSettings = { commandLine = "x" } }))
    assert.are.equal("pytorch", schema.tool_type(bai.JobProperties(job { pyTorchSettings = { pythonScriptFilePath = "a" } })))
    assert.are.equal("custommpi", schema.tool_type({ properties = { toolType = "mpi" } }))
    assert.are.equal("pytorch", schema.tool_type({ toolType = "PyTorch" }))
    assert.is_nil(schema.tool_type({}))
    local kind, key, settings = schema.toolkit(job { chainerSettings = { pythonScriptFilePath = "c.py" } })
    assert.are.equal("chainer", kind)
    assert.are.equal("chainerSettings", key)
    assert.are.same({ pythonScriptFilePath = "c.py" }, settings)
  end)

  it("max_wall_clock_seconds reads constraints, one week by default", function()
    assert.are.equal(7 * 86400, schema.max_wall_clock_seconds(job {}))
    assert.are.equal(5400, schema.max_wall_clock_seconds(bai.JobProperties(job { customToolkitSettings = {},
      constraints = { maxWallClockTime = "01:30:00" } })))
    assert.are.equal(90061.5, schema.duration_seconds("P1DT1H1M1.5S"))
    assert.is_nil(schema.duration_seconds("soon"))
  end)
end)

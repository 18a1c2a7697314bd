-- Every type of the job model: a valid value, its required fields, its scalar
-- kinds (one passing and one failing case each, with the exact message).
local bai = require "batchai"
local schema = require "batchai.schema"

local function errors_of(t, name)
  local ok, errs = bai.validate(t, name)
  if ok then return {} end
  local out = {}
  for i, e in ipairs(errs) do out[i] = tostring(e) end
  return out
end

local vault = { sourceVault = { id = "/vaults/kv" }, secretUrl = "https://kv.vault.azure.net/secrets/pw" }

-- Type name -> a valid plain table, and the errors of an empty table.
local cases = {
  { "ResourceId", { id = "local" }, { "ResourceId.id: required field missing" } },
  { "JobConstraints", { maxWallClockTime = "P1D" }, {} },
  { "ContainerSettings", { imageSourceRegistry = { image = "ubuntu" }, shmSize = "2g" },
    { "ContainerSettings.imageSourceRegistry: required field missing" } },
  { "ImageSourceRegistry", { serverUrl = "https://reg.example", image = "me/img:1",
      credentials = { username = "me", password = "pw" } },
    { "ImageSourceRegistry.image: required field missing" } },
  { "PrivateRegistryCredentials", { username = "me", passwordSecretReference = vault },
    { "PrivateRegistryCredentials.username: required field missing",
      "PrivateRegistryCredentials: password or passwordSecretReference expected, got neither" } },
  { "KeyVaultSecretReference", vault,
    { "KeyVaultSecretReference.sourceVault: required field missing",
      "KeyVaultSecretReference.secretUrl: required field missing" } },
  { "CNTKsettings", { languageType = "BrainScript", configFilePath = "cifar.cntk" },
    { 'CNTKsettings.pythonScriptFilePath: required when languageType is "Python" (the default)' } },
  { "CaffeSettings", { configFilePath = "solver.prototxt" },
    { "CaffeSettings: configFilePath or pythonScriptFilePath expected, got neither" } },
  { "Caffe2Settings", { pythonScriptFilePath = "train.py" },
    { "Caffe2Settings.pythonScriptFilePath: required field missing" } },
  { "ChainerSettings", { pythonScriptFilePath = "train.py", processCount = 2 },
    { "ChainerSettings.pythonScriptFilePath: required field missing" } },
  { "PyTorchSettings", { pythonScriptFilePath = "train.py", communicationBackend = "MPI" },
    { "PyTorchSettings.pythonScriptFilePath: required field missing" } },
  { "TensorFlowSettings", { pythonScriptFilePath = "train.py", masterCommandLineArgs = "--x" },
    { "TensorFlowSettings.pythonScriptFilePath: required field missing" } },
  { "HorovodSettings", { pythonScriptFilePath = "train.py", processCount = 8 },
    { "HorovodSettings.pythonScriptFilePath: required field missing" } },
  { "CustomMpiSettings", { commandLine = "mpirun hostname" },
    { "CustomMpiSettings.commandLine: required field missing" } },
  { "CustomToolkitSettings", { commandLine = "echo hi" }, {} },
  { "JobPreparation", { commandLine = "pip install -r req.txt" },
    { "JobPreparation.commandLine: required field missing" } },
  { "EnvironmentVariable", { name = "LR", value = "0.1" },
    { "EnvironmentVariable.name: required field missing", "EnvironmentVariable.value: required field missing" } },
  { "EnvironmentVariableWithSecretValue", { name = "TOKEN", valueSecretReference = vault },
    { "EnvironmentVariableWithSecretValue.name: required field missing",
      "EnvironmentVariableWithSecretValue: value or valueSecretReference expected, got neither" } },
  { "InputDirectory", { id = "DATA", path = "/data" },
    { "InputDirectory.id: required field missing", "InputDirectory.path: required field missing" } },
  { "OutputDirectory", { id = "MODEL", pathPrefix = "/out", pathSuffix = "m" },
    { "OutputDirectory.id: required field missing", "OutputDirectory.pathPrefix: required field missing" } },
  { "MountVolumes", { unmanagedFileSystems = { { mountCommand = "mount -t tmpfs none", relativeMountPath = "tmp" } } },
    {} },
  { "AzureFileShareReference", { accountName = "acct", azureFileUrl = "https://acct.file.core.windows.net/share",
      credentials = { accountKey = "k" }, relativeMountPath = "afs", fileMode = "0644", directoryMode = "0755" },
    { "AzureFileShareReference.accountName: required field missing",
      "AzureFileShareReference.azureFileUrl: required field missing",
      "AzureFileShareReference.credentials: required field missing",
      "AzureFileShareReference.relativeMountPath: required field missing" } },
  { "AzureBlobFileSystemReference", { accountName = "acct", containerName = "data",
      credentials = { accountKeySecretReference = vault }, relativeMountPath = "bfs", mountOptions = "-o ro" },
    { "AzureBlobFileSystemReference.accountName: required field missing",
      "AzureBlobFileSystemReference.containerName: required field missing",
      "AzureBlobFileSystemReference.credentials: required field missing",
      "AzureBlobFileSystemReference.relativeMountPath: required field missing" } },
  { "AzureStorageCredentialsInfo", { accountKey = "k" },
    { "AzureStorageCredentialsInfo: accountKey or accountKeySecretReference expected, got neither" } },
  { "FileServerReference", { fileServer = { id = "/fileservers/nfs" }, sourceDirectory = "/export",
      relativeMountPath = "nfs", mountOptions = "rw" },
    { "FileServerReference.fileServer: required field missing",
      "FileServerReference.relativeMountPath: required field missing" } },
  { "UnmanagedFileSystemReference", { mountCommand = "mount -t nfs host:/x", relativeMountPath = "x" },
    { "UnmanagedFileSystemReference.mountCommand: required field missing",
      "UnmanagedFileSystemReference.relativeMountPath: required field missing" } },
  { "JobProperties", { cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "/logs",
      customToolkitSettings = { commandLine = "true" } },
    { "JobProperties.cluster: required field missing", "JobProperties.nodeCount: required field missing",
      "JobProperties.stdOutErrPathPrefix: required field missing",
      "JobProperties: one toolkit settings table expected (cntkSettings, pyTorchSettings, tensorFlowSettings, "
        .. "caffeSettings, caffe2Settings, chainerSettings, customToolkitSettings, customMpiSettings or "
        .. "horovodSettings), got none" } },
}

describe("every type of the job model", function()
  for _, case in ipairs(cases) do
    local name, valid, empty_errors = case[1], case[2], case[3]
    it(name .. " builds from a valid table, on bai and by name", function()
      local v = bai[name](valid)
      assert.are.equal(name, schema.type_of(v))
      assert.is_true(v == schema.new(name, valid))
      assert.is_true(v == schema[name](valid))
      assert.is_true(bai.validate(v))
      assert.are.same(valid, v:to_wire())
    end)
    it(name .. " reports every required field of an empty table", function()
      assert.are.same(empty_errors, errors_of({}, name))
    end)
    it(name .. " rejects unknown fields, suggesting the nearest", function()
      local t = {}
      for k, x in pairs(valid) do t[k] = x end
      local first = schema.fields(name)[1].name
      t[first:upper()] = t[first] or "x"
      local errs = errors_of(t, name)
      assert.are.equal(("%s.%s: unknown field (did you mean '%s'?)"):format(name, first:upper(), first), errs[#errs])
    end)
  end

  it("covers every constructor the issue names", function()
    local names = { "JobProperties", "ResourceId", "ContainerSettings", "ImageSourceRegistry",
      "PrivateRegistryCredentials", "KeyVaultSecretReference", "CNTKsettings", "CaffeSettings", "Caffe2Settings",
      "ChainerSettings", "PyTorchSettings", "TensorFlowSettings", "HorovodSettings", "CustomMpiSettings",
      "CustomToolkitSettings", "JobPreparation", "EnvironmentVariable", "EnvironmentVariableWithSecretValue",
      "InputDirectory", "OutputDirectory", "MountVolumes", "AzureBlobFileSystemReference",
      "AzureFileShareReference", "AzureStorageCredentialsInfo", "FileServerReference",
      "UnmanagedFileSystemReference", "JobConstraints" }
    local tested = {}
    for _, case in ipairs(cases) do tested[case[1]] = true end
    for _, name in ipairs(names) do
      assert.are.equal("function", type(bai[name]), name)
      assert.is_true(tested[name], name)
    end
  end)

  it("reads every response type with decode", function()
    local samples = {
      Job = { id = "/j", name = "j", type = "Microsoft.BatchAI/workspaces/experiments/jobs", properties = {} },
      JobListResult = { value = { { name = "a" } }, nextLink = "https://next" },
      JobExecutionInfo = { startTime = "2018-06-01T00:00:00Z", exitCode = 0, errors = { { code = "c", message = "m",
        details = { { name = "n", value = "v" } } } } },
      Workspace = { id = "/w", name = "w", type = "t", location = "eastus", tags = { team = "ml" },
        properties = { creationTime = "2018-06-01T00:00:00Z", provisioningState = "succeeded" } },
      WorkspaceListResult = { value = {} },
      WorkspaceCreateParameters = { location = "eastus", tags = {} },
      WorkspaceUpdateParameters = { tags = { a = "b" } },
      Experiment = { name = "e", properties = { provisioningState = "creating" } },
      ExperimentListResult = { value = { { name = "e" } } },
      File = { name = "f.txt", fileType = "file", downloadUrl = "https://x", properties = { contentLength = 12,
        lastModified = "2018-06-01T00:00:00Z" } },
      FileListResult = { value = { { name = "d", fileType = "directory" } } },
      RemoteLoginInformation = { nodeId = "n", ipAddress = "10.0.0.4", port = 50000 },
      RemoteLoginInformationListResult = { value = { { nodeId = "n" } } },
      CloudError = { error = { code = "NotFound", message = "m", target = "t", details = { { code = "x" } } } },
      Operation = { name = "Microsoft.BatchAI/jobs/read", display = { provider = "p", operation = "o",
        resource = "r", description = "d" }, origin = "user,system", properties = { any = { 1, 2 } } },
      OperationListResult = { value = {} },
    }
    for name, t in pairs(samples) do
      local v, errs = schema.decode(t, name)
      assert.is_nil(errs, name)
      assert.are.same(t, v:to_wire(), name)
      assert.is_true(schema.decode(v:to_json(), name) == v, name)
    end
  end)

  it("lists every type for help, in a stable order", function()
    local names = schema.type_names()
    assert.are.equal("JobProperties", names[1])
    assert.are.equal(#cases + 24, #names)
  end)
end)

describe("scalar kinds", function()
  local function job(fields)
    local t = { cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "/logs",
      customToolkitSettings = { commandLine = "true" } }
    for k, v in pairs(fields) do t[k] = v end
    return t
  end
  local function err(t, name)
    return errors_of(t, name or "JobProperties")[1]
  end

  it("strings refuse other types and invalid UTF-8, and required ones refuse \"\"", function()
    assert.is_nil(err(job { stdOutErrPathPrefix = "é/logs" }))
    assert.are.equal("JobProperties.stdOutErrPathPrefix: string expected, got 12", err(job { stdOutErrPathPrefix = 12 }))
    assert.are.equal("JobProperties.stdOutErrPathPrefix: valid UTF-8 string expected",
      err(job { stdOutErrPathPrefix = "\xff" }))
    assert.are.equal('JobProperties.stdOutErrPathPrefix: non-empty string expected, got ""',
      err(job { stdOutErrPathPrefix = "" }))
    assert.is_nil(err({ pythonScriptFilePath = "a", commandLineArgs = "" }, "PyTorchSettings"))
  end)

  it("counts are integers >= 1: 1.0 is 1, 1.5 and \"2\" are refused", function()
    local v = schema.check(job { nodeCount = 3.0 }, "JobProperties")
    assert.are.equal("integer", math.type(v.nodeCount))
    assert.are.equal("JobProperties.nodeCount: integer >= 1 expected, got 0", err(job { nodeCount = 0 }))
    assert.are.equal("JobProperties.nodeCount: integer >= 1 expected, got 1.5", err(job { nodeCount = 1.5 }))
    assert.are.equal('JobProperties.nodeCount: integer >= 1 expected, got "2"', err(job { nodeCount = "2" }))
    assert.are.equal("JobProperties.nodeCount: integer <= 2147483647 expected, got 2147483648",
      err(job { nodeCount = 2147483648 }))
  end)

  it("every count of every type (nodeCount, processCount, workerCount, ...) refuses 0, 1.5 and \"2\"", function()
    local checked = 0
    for _, case in ipairs(cases) do
      local name, valid = case[1], case[2]
      for _, f in ipairs(schema.fields(name)) do
        if f.kind == "count" then
          for _, bad in ipairs({ 0, -3, 1.5, "2" }) do
            local t = {}
            for k, x in pairs(valid) do t[k] = x end
            t[f.name] = bad
            assert.are.same({ ("%s.%s: integer >= 1 expected, got %s"):format(name, f.name,
              type(bad) == "string" and '"' .. bad .. '"' or tostring(bad)) }, errors_of(t, name))
          end
          checked = checked + 1
        end
      end
    end
    assert.are.equal(9, checked)   -- nodeCount, the processCount of six toolkits, TensorFlow's two counts
    assert.are.equal("JobProperties.tensorFlowSettings.workerCount: integer >= 1 expected, got 0",
      err(job { customToolkitSettings = schema.null, tensorFlowSettings = { pythonScriptFilePath = "t.py",
        workerCommandLineArgs = "--w", workerCount = 0 } }))
  end)

  it("enums take the spec's values in any case and store the spec's spelling", function()
    assert.are.equal("high", bai.JobProperties(job { schedulingPriority = "HIGH" }).schedulingPriority)
    assert.are.equal('JobProperties.schedulingPriority: "low", "normal" or "high" expected, got "urgent"',
      err(job { schedulingPriority = "urgent" }))
    assert.are.equal("BrainScript", bai.CNTKsettings { languageType = "brainscript", configFilePath = "c" }.languageType)
    assert.are.equal('CNTKsettings.languageType: "BrainScript" or "Python" expected, got "Lua"',
      err({ languageType = "Lua", pythonScriptFilePath = "a" }, "CNTKsettings"))
    assert.are.equal("Gloo", bai.PyTorchSettings { pythonScriptFilePath = "a", communicationBackend = "gloo" }
      .communicationBackend)
    assert.are.equal('PyTorchSettings.communicationBackend: "TCP", "Gloo" or "MPI" expected, got "NCCL"',
      err({ pythonScriptFilePath = "a", communicationBackend = "NCCL" }, "PyTorchSettings"))
  end)

  it("maxWallClockTime takes ISO-8601 and TimeSpan durations, storing ISO-8601", function()
    local cases_ok = { P7D = "P7D", PT1H30M = "PT1H30M", ["P1DT12H"] = "P1DT12H", ["PT0.5S"] = "PT0.5S",
      P2W = "P2W", ["7.00:00:00"] = "P7D", ["01:30:00"] = "PT1H30M", ["1.02:03:04.5"] = "P1DT2H3M4.5S",
      ["00:10"] = "PT10M" }
    for given, stored in pairs(cases_ok) do
      assert.are.equal(stored, bai.JobConstraints { maxWallClockTime = given }.maxWallClockTime, given)
    end
    for _, bad in ipairs({ "7 days", "P", "PT", "P1H", "PT1D", "1:2", "24:00:00", "7.00:60:00", "-PT1H", "P1.5D" }) do
      assert.are.equal('JobConstraints.maxWallClockTime: ISO-8601 duration (e.g. "P7D", "PT1H30M") or TimeSpan '
        .. '(e.g. "7.00:00:00") expected, got "' .. bad .. '"', err({ maxWallClockTime = bad }, "JobConstraints"), bad)
    end
    assert.are.equal('JobConstraints.maxWallClockTime: positive duration expected, got "PT0S"',
      err({ maxWallClockTime = "PT0S" }, "JobConstraints"))
  end)

  it("environment variable names are shell names", function()
    assert.is_nil(err({ name = "_LR2", value = "x" }, "EnvironmentVariable"))
    assert.are.equal("EnvironmentVariable.name: environment variable name (letters, digits and '_', not starting "
      .. 'with a digit) expected, got "2LR"', err({ name = "2LR", value = "x" }, "EnvironmentVariable"))
    assert.are.equal("EnvironmentVariableWithSecretValue.name: environment variable name (letters, digits and '_', "
      .. 'not starting with a digit) expected, got "MY-VAR"', err({ name = "MY-VAR", value = "x" },
      "EnvironmentVariableWithSecretValue"))
  end)

  it("directory ids are letters, digits and '_'", function()
    assert.is_nil(err({ id = "data_2", path = "/d" }, "InputDirectory"))
    assert.are.equal([[InputDirectory.id: id of letters, digits and '_' expected, got "my-data"]],
      err({ id = "my-data", path = "/d" }, "InputDirectory"))
    assert.are.equal([[OutputDirectory.id: id of letters, digits and '_' expected, got ""]],
      err({ id = "", pathPrefix = "/o" }, "OutputDirectory"))
  end)

  it("mount paths are relative, without '..'", function()
    local t = { mountCommand = "mount x", relativeMountPath = "data/x" }
    assert.is_nil(err(t, "UnmanagedFileSystemReference"))
    for _, bad in ipairs({ "/mnt", "../up", "a/../../b", "" }) do
      t.relativeMountPath = bad
      local expected = bad == "" and [[UnmanagedFileSystemReference.relativeMountPath: non-empty string expected, got ""]]
        or ([[UnmanagedFileSystemReference.relativeMountPath: relative path without '..' expected, got "%s"]]):format(bad)
      assert.are.equal(expected, err(t, "UnmanagedFileSystemReference"))
    end
  end)

  it("output directory prefixes are absolute: \"/...\" or \"$VARIABLE/...\"", function()
    assert.is_nil(err({ id = "M", pathPrefix = "/out" }, "OutputDirectory"))
    assert.is_nil(err({ id = "M", pathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/models" }, "OutputDirectory"))
    assert.are.equal([[OutputDirectory.pathPrefix: absolute path (starting with "/" or "$VARIABLE") expected, got "out"]],
      err({ id = "M", pathPrefix = "out" }, "OutputDirectory"))
    assert.are.equal([[OutputDirectory.pathPrefix: non-empty string expected, got ""]],
      err({ id = "M", pathPrefix = "" }, "OutputDirectory"))
    local read = schema.decode({ id = "M", pathPrefix = "out" }, "OutputDirectory")
    assert.are.equal("out", read.pathPrefix, "read mode keeps what the service reports")
  end)

  it("file modes are octal", function()
    local t = { accountName = "a", azureFileUrl = "u", credentials = { accountKey = "k" }, relativeMountPath = "m",
      fileMode = "0640" }
    assert.is_nil(err(t, "AzureFileShareReference"))
    t.fileMode = "rwx"
    assert.are.equal([[AzureFileShareReference.fileMode: octal file mode (e.g. "0777") expected, got "rwx"]],
      err(t, "AzureFileShareReference"))
  end)

  it("nested types and arrays refuse the wrong shapes", function()
    assert.are.equal([[JobProperties.cluster: table expected, got "local"]], err(job { cluster = "local" }))
    assert.are.equal("JobProperties.cluster: ResourceId table expected, got an array", err(job { cluster = { "x" } }))
    assert.are.equal([[JobProperties.outputDirectories: array expected, got a table with key "id"]],
      err(job { outputDirectories = { id = "X", pathPrefix = "/o" } }))
    assert.are.equal("JobProperties.outputDirectories: array without holes expected",
      err(job { outputDirectories = { [2] = { id = "X", pathPrefix = "/o" } } }))
    assert.are.equal("JobProperties.outputDirectories[2].pathPrefix: required field missing",
      err(job { outputDirectories = { { id = "A", pathPrefix = "/o" }, { id = "B" } } }))
    assert.are.equal("JobProperties.cluster: ResourceId expected, got JobConstraints",
      err(job { cluster = bai.JobConstraints {} }))
  end)

  it("read-only fields are refused on create", function()
    assert.are.equal("JobProperties.executionState: read-only field (set by the service)",
      err(job { executionState = "running" }))
  end)

  it("secret values never appear in messages", function()
    assert.are.equal("PrivateRegistryCredentials.password: string expected, got number",
      err({ username = "u", password = 12345 }, "PrivateRegistryCredentials"))
    -- A string where credentials or a secret variable belong is likely the secret itself.
    assert.are.equal("JobProperties.secrets[1]: table expected, got string", err(job { secrets = { "hunter2" } }))
    assert.are.equal("JobProperties.secrets: array expected, got string", err(job { secrets = "hunter2" }))
    assert.are.equal("ImageSourceRegistry.credentials: table expected, got string",
      err({ image = "x", credentials = "hunter2" }, "ImageSourceRegistry"))
    assert.are.equal("AzureFileShareReference.credentials: table expected, got string",
      err({ accountName = "a", azureFileUrl = "u", credentials = "hunter2", relativeMountPath = "m" },
        "AzureFileShareReference"))
    assert.are.equal('JobProperties.environmentVariables[1]: table expected, got "plain"',
      err(job { environmentVariables = { "plain" } }))
  end)

  it("resource names: 1 to 64 letters, digits, '-' or '_'", function()
    assert.are.equal("lr-sweep_01", schema.resource_name("lr-sweep_01", "experiment"))
    assert.are.equal(("x"):rep(64), schema.resource_name(("x"):rep(64), "job"))
    for _, bad in ipairs({ "", ("x"):rep(65), "a b", "a.b", "é" }) do
      local ok, msg = schema.resource_name(bad, "job")
      assert.is_nil(ok)
      assert.are.equal("job name of 1 to 64 letters, digits, '-' or '_' expected, got "
        .. require("batchai.schema.kinds").describe(bad), msg)
    end
  end)
end)

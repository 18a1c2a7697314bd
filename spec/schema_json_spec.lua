-- The schema's wire JSON: exact create bodies, round trips of a realistic job per
-- toolkit, GET and list responses (fixtures in spec/fixtures/schema, written for
-- these specs in the shape of the spec's examples), job files, secrets.
local bai = require "batchai"
local schema = require "batchai.schema"
local cjson = require "cjson"
local T = require "testkit"

local fixtures = debug.getinfo(1, "S").source:match("^@(.*)/[^/]+$") .. "/fixtures/schema/"

local function fixture(name)
  local text = T.read(fixtures .. name)
  assert(text, name)
  return text
end

-- Plain data with integral floats made integers (cjson decodes 1 as 1.0), for comparisons.
local function normalize(x)
  if type(x) == "number" then return math.tointeger(x) or x end
  if type(x) ~= "table" then return x end
  local out = {}
  for k, v in pairs(x) do out[k] = normalize(v) end
  return out
end

local toolkit_files = {
  "job-tensorflow-ps.json", "job-pytorch.json", "job-horovod.json", "job-cntk-brainscript.json",
  "job-cntk-python.json", "job-caffe-config.json", "job-caffe-script.json", "job-caffe2.json", "job-chainer.json",
  "job-custom-mpi.json", "job-custom-full.json",
}

describe("create bodies", function()
  it("are exactly the wire JSON: spec order, arrays stay arrays, integers stay integers, no nulls", function()
    local job = bai.JobProperties {
      stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
      nodeCount = 2.0,
      cluster = { id = "local" },
      customMpiSettings = { commandLine = 'echo "hi"\tthere', processCount = 4 },
      inputDirectories = {},
      environmentVariables = { { name = "A", value = "é/ü" } },
      constraints = {},
    }
    assert.are.equal('{"properties":{"cluster":{"id":"local"},"nodeCount":2,'
      .. '"customMpiSettings":{"commandLine":"echo \\"hi\\"\\tthere","processCount":4},'
      .. '"stdOutErrPathPrefix":"$AZ_BATCHAI_MOUNT_ROOT/logs","inputDirectories":[],'
      .. '"environmentVariables":[{"name":"A","value":"é/ü"}],"constraints":{}}}', job:to_json())
    assert.are.equal(job:to_json(), schema.encode(job))
    assert.are.equal(job:to_json(), schema.encode(schema.check(cjson.decode(job:to_json()), "JobCreateParameters")))
  end)

  it("to_wire gives the plain properties; other values give their own object", function()
    local job = bai.JobProperties { cluster = { id = "c" }, nodeCount = 1, stdOutErrPathPrefix = "/l",
      caffe2Settings = { pythonScriptFilePath = "a.py" } }
    assert.are.same({ cluster = { id = "c" }, nodeCount = 1, stdOutErrPathPrefix = "/l",
      caffe2Settings = { pythonScriptFilePath = "a.py" } }, job:to_wire())
    assert.are.equal('{"pythonScriptFilePath":"a.py"}', job.caffe2Settings:to_json())
    assert.are.equal('[{"id":"X","path":"/x"}]', bai.JobProperties(job:to_wire()):with {
      inputDirectories = { { id = "X", path = "/x" } } }.inputDirectories:to_json())
  end)

  it("schema.encode writes plain wire tables of a named type with arrays kept", function()
    assert.are.equal('{"name":"j","properties":{"nodeCount":1,"inputDirectories":[],"outputDirectories":[]}}',
      schema.encode({ name = "j", properties = { outputDirectories = {}, inputDirectories = {}, nodeCount = 1.0,
        schedulingPriority = cjson.null } }, "Job"))
    assert.are.equal('{"value":[],"nextLink":"https://x/y"}', schema.encode({ value = {}, nextLink = "https://x/y" },
      "JobListResult"))
    assert.are.equal('{"location":"eastus","extra":{"a":true,"b":[1,2.5]}}',
      schema.encode({ location = "eastus", extra = { b = { 1, 2.5 }, a = true } }, "WorkspaceCreateParameters"))
  end)
end)

describe("a realistic job per toolkit", function()
  for _, file in ipairs(toolkit_files) do
    it("round-trips " .. file, function()
      local job = assert(bai.load_job(fixtures .. file))
      local doc = cjson.decode(fixture(file))
      doc["$schema"] = nil
      -- The wire JSON holds exactly the file's job.
      assert.are.same(normalize(doc), normalize(cjson.decode(job:to_json())))
      -- ... and reads back equal, strictly and leniently, and from to_wire.
      assert.is_true(schema.check(cjson.decode(job:to_json()), "JobCreateParameters").properties == job)
      assert.is_true(schema.decode(job:to_json(), "JobCreateParameters").properties == job)
      assert.is_true(bai.JobProperties(job:to_wire()) == job)
      assert.is_true(bai.validate(job:to_wire(), "JobProperties"))
      -- The toolType is the one of its settings table.
      local tool_types = { ["job-tensorflow-ps.json"] = "tensorflow", ["job-pytorch.json"] = "pytorch",
        ["job-horovod.json"] = "horovod", ["job-cntk-brainscript.json"] = "cntk", ["job-cntk-python.json"] = "cntk",
        ["job-caffe-config.json"] = "caffe", ["job-caffe-script.json"] = "caffe", ["job-caffe2.json"] = "caffe2",
        ["job-chainer.json"] = "chainer", ["job-custom-mpi.json"] = "custommpi", ["job-custom-full.json"] = "custom" }
      assert.are.equal(tool_types[file], schema.tool_type(job))
    end)
  end

  it("keeps secrets on the wire but never in print", function()
    local job = assert(bai.load_job(fixtures .. "job-custom-full.json"))
    local text = tostring(job)
    for _, secret in ipairs({ "ZGVtby1hY2NvdW50LWtleQ==", "cmVnaXN0cnktcGFzc3dvcmQ=", "dG9rZW4tdmFsdWU=" }) do
      assert.truthy(job:to_json():find(secret, 1, true))
      assert.falsy(text:find(secret, 1, true))
      assert.falsy(require("batchai.pretty").format(job):find(secret, 1, true))
    end
    assert.truthy(text:find('secrets = {\n    { name = "API_TOKEN", value = "***" },', 1, true))
    assert.truthy(text:find('password = "***"', 1, true))
    assert.truthy(text:find('accountKey = "***"', 1, true))
  end)

  it("redact removes secret values from wire tables and values", function()
    local job = assert(bai.load_job(fixtures .. "job-custom-full.json"))
    local wire = job:to_wire()
    local redacted = schema.redact(wire)
    assert.is_nil(redacted.secrets[1].value)
    assert.are.equal("API_TOKEN", redacted.secrets[1].name)
    assert.are.equal("https://demo-kv.vault.azure.net/secrets/db-password", redacted.secrets[2].valueSecretReference.secretUrl)
    assert.is_nil(redacted.containerSettings.imageSourceRegistry.credentials.password)
    assert.are.equal("demo", redacted.containerSettings.imageSourceRegistry.credentials.username)
    assert.is_nil(redacted.mountVolumes.azureBlobFileSystems[1].credentials.accountKey)
    assert.are.equal("dG9rZW4tdmFsdWU=", wire.secrets[1].value, "the input is left alone")
    local job_doc = schema.redact({ name = "j", properties = wire, unknownField = { 1 } })
    assert.is_nil(job_doc.properties.secrets[1].value)
    assert.are.same({ 1 }, job_doc.unknownField)
    assert.are.same(redacted, schema.redact(job))
    local text = schema.encode(schema.redact({ properties = wire }), "Job")
    assert.falsy(text:find("dG9rZW4tdmFsdWU=", 1, true))
  end)
end)

describe("responses", function()
  it("decode a GET job with read-only fields and the stale 'priority' key", function()
    local job, errs = schema.decode(fixture("get-job.json"), "Job")
    assert.is_nil(errs)
    assert.are.equal("demo_job", job.name)
    local p = job.properties
    assert.are.equal("normal", p.schedulingPriority)
    assert.are.equal("running", p.executionState)
    assert.are.equal("custom", p.toolType)
    assert.are.equal("2018-06-14T22:23:00.115Z", p.executionInfo.startTime)
    assert.truthy(p.jobOutputDirectoryPathSegment:find("/jobs/demo_job/", 1, true))
    assert.are.equal("custom", schema.tool_type(job))
    -- The response re-encodes with its read-only fields; its properties give a create body without them.
    assert.is_true(schema.decode(job:to_json(), "Job") == job)
    local body = cjson.decode(p:to_json()).properties
    assert.is_nil(body.executionState)
    assert.is_nil(body.toolType)
    assert.are.equal("echo hi | tee $AZ_BATCHAI_OUTPUT_OUTPUTS/hi.txt", body.customToolkitSettings.commandLine)
    -- A job read back can be submitted again.
    local again = bai.JobProperties(p)
    assert.is_nil(again.executionState)
    assert.are.equal(p:to_json(), again:to_json())
  end)

  it("decode a job list, tolerating unknown fields and enum values, reading mpi as custommpi", function()
    local list, errs = schema.decode(fixture("list-jobs.json"), "JobListResult")
    assert.is_nil(errs)
    assert.are.equal(2, #list.value)
    assert.truthy(list.nextLink:find("skiptoken=2", 1, true))
    local failed, other = list.value[1].properties, list.value[2].properties
    assert.are.equal("custommpi", failed.toolType)
    assert.are.equal(137, failed.executionInfo.exitCode)
    assert.are.equal("integer", math.type(failed.executionInfo.exitCode))
    assert.are.equal("JobKilled", failed.executionInfo.errors[1].code)
    assert.are.equal("tvm-1", failed.executionInfo.errors[1].details[1].value)
    assert.are.equal("P7D", failed.constraints.maxWallClockTime)
    assert.are.equal("API_TOKEN", failed.secrets[1].name)
    assert.is_nil(failed.secrets[1].value)
    assert.is_nil(failed.retryCount)
    assert.are.equal(4, schema.process_count(failed))
    assert.are.equal("paused", other.executionState)
    assert.are.equal("nccl", other.pyTorchSettings.communicationBackend)
    assert.are.equal("pytorch", other.toolType)
    -- Submitting a job read back checks it strictly: the unknown backend is refused.
    local ok, err = pcall(bai.JobProperties, other)
    assert.is_false(ok)
    assert.matches('JobProperties.pyTorchSettings.communicationBackend: "TCP", "Gloo" or "MPI" expected, got "nccl"', err)
  end)

  it("decode other resources and errors", function()
    local ws = assert(schema.decode(fixture("get-workspace.json"), "Workspace"))
    assert.are.same({ team = "vision" }, ws.tags)
    assert.are.equal("succeeded", ws.properties.provisioningState)
    local files = assert(schema.decode(fixture("list-output-files.json"), "FileListResult"))
    assert.are.equal(6149, files.value[1].properties.contentLength)
    assert.are.equal("directory", files.value[2].fileType)
    assert.is_nil(files.value[2].downloadUrl)
    local err = assert(schema.decode(fixture("cloud-error.json"), "CloudError"))
    assert.are.equal("properties.nodeCount", err.error.details[1].target)
  end)

  it("decode reports type errors with paths, and invalid JSON", function()
    local v, errs = schema.decode('{"properties":{"nodeCount":"two","outputDirectories":{"id":"x"}}}', "Job")
    assert.is_nil(v)
    assert.are.equal('Job.properties.nodeCount: integer >= 1 expected, got "two"; '
      .. 'Job.properties.outputDirectories: array expected, got a table with key "id"', tostring(errs))
    assert.are.equal("properties.nodeCount", errs[1].field)
    assert.are.equal("Job.properties.nodeCount", errs[1].path)
    assert.are.equal("InvalidValue", errs[1].code)
    v, errs = schema.decode("{nope", "Job")
    assert.is_nil(v)
    assert.matches("^Job: invalid JSON: ", tostring(errs))
    assert.are.equal("InvalidJson", errs[1].code)
    v, errs = schema.decode("[1,2]", "Job")
    assert.are.equal("Job: Job table expected, got an array", tostring(errs))
  end)

  it("check validates a create body as the server reads it", function()
    local body = cjson.decode(fixture("job-pytorch.json"))
    body["$schema"] = nil
    local v, errs = schema.check(body, "JobCreateParameters")
    assert.is_nil(errs)
    assert.are.equal(4, v.properties.pyTorchSettings.processCount)
    body.properties.nodeCount = 0.0
    body.properties.pyTorchSettings.processCount = 1.5
    v, errs = schema.check(body, "JobCreateParameters")
    assert.is_nil(v)
    assert.are.equal(2, #errs)
    assert.are.same({ path = "JobCreateParameters.properties.nodeCount", field = "properties.nodeCount",
      message = "integer >= 1 expected, got 0", code = "InvalidValue" }, setmetatable(errs[1], nil))
    assert.are.equal("properties.pyTorchSettings.processCount", errs[2].field)
    v, errs = schema.check({}, "JobCreateParameters")
    assert.are.equal("JobCreateParameters.properties: required field missing", tostring(errs))
    v, errs = schema.check("x", "JobCreateParameters")
    assert.are.equal('JobCreateParameters: table expected, got "x"', tostring(errs))
    assert.are.equal("", errs[1].field)
  end)
end)

describe("job files", function()
  it("load like az batchai job create --config-file, with overrides", function()
    local job = assert(bai.load_job(fixtures .. "job-horovod.json", { nodeCount = 2, cluster = { id = "local" } }))
    assert.are.equal(2, job.nodeCount)
    assert.are.equal("local", job.cluster.id)
    assert.are.equal(8, job.horovodSettings.processCount)
  end)

  it("fill in defaults only where the file has no value (a null counts as none)", function()
    local file = fixtures .. "job-horovod.json"
    local job = assert(bai.load_job(file, nil, { nodeCount = 3, cluster = { id = "local" } }))
    assert.are.equal(4, job.nodeCount)
    assert.matches("/clusters/gpu_cluster$", job.cluster.id)
    local dir = T.tmpdir()
    T.write(dir .. "/null.json", '{"properties": {"cluster": null, "nodeCount": 1, "stdOutErrPathPrefix": "/tmp",'
      .. ' "customToolkitSettings": {"commandLine": "true"}}}')
    job = assert(bai.load_job(dir .. "/null.json", { nodeCount = 4 }, { cluster = { id = "c1" }, nodeCount = 5 }))
    assert.are.equal("c1", job.cluster.id)
    assert.are.equal(4, job.nodeCount)
    assert.has_error(function() bai.load_job(file, nil, "c1") end, "bad argument #3 to 'load_job' (table expected, got \"c1\")")
  end)

  it("name the file and the field path in every error", function()
    local file = fixtures .. "job-invalid.json"
    local job, errs = bai.load_job(file)
    assert.is_nil(job)
    local lines = {}
    for i, e in ipairs(errs) do lines[i] = tostring(e) end
    assert.are.same({
      file .. ": properties.cluster: required field missing",
      file .. ": properties.nodeCount: integer >= 1 expected, got 0",
      file .. ": properties.pyTorchSettings.pythonScriptFilePath: required field missing",
      file .. ": properties.pyTorchSettings.pythonScriptFile: unknown field (did you mean 'pythonScriptFilePath'?)",
      file .. ': properties.outputDirectories[2].id: duplicate id "MODEL" (also outputDirectories[1].id)',
    }, lines)
    assert.are.equal(file, errs[1].file)
    assert.are.equal("properties.cluster", errs[1].field)
  end)

  it("report unreadable files and bad JSON", function()
    local dir = T.tmpdir()
    local job, errs = bai.load_job(dir .. "/missing.json")
    assert.is_nil(job)
    assert.are.equal(dir .. "/missing.json: cannot read the job file: No such file or directory", tostring(errs))
    T.write(dir .. "/bad.json", '{"properties": ')
    job, errs = bai.load_job(dir .. "/bad.json")
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/bad%.json: invalid JSON: ", tostring(errs))
    T.write(dir .. "/array.json", "[1]")
    job, errs = bai.load_job(dir .. "/array.json")
    assert.are.equal(dir .. '/array.json: JSON object {"properties": {...}} expected', tostring(errs))
    assert.has_error(function() bai.load_job(42) end, "bad argument #1 to 'load_job' (file name expected, got 42)")
  end)
end)

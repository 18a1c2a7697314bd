-- The spec's own examples (x-ms-examples of Batch AI 2018-05-01, copied verbatim
-- into spec/fixtures/schema/examples): every request and response body of the
-- job model, workspaces, experiments, output files, remote logins and operations
-- decodes, re-encodes to the same data and decodes back to an equal value.
local bai = require "batchai"
local schema = require "batchai.schema"
local cjson = require "cjson"
local T = require "testkit"

local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]+$") .. "/fixtures/schema/examples/"

local function example(name)
  local text = assert(T.read(dir .. name .. ".json"), name)
  return cjson.decode(text)
end

-- The data of a JSON document as our encoder writes it: integral floats become
-- integers (cjson reads 1 as 1.0) and nulls are absent (absent optional fields
-- are never written as null).
local function normalize(x)
  if type(x) == "number" then return math.tointeger(x) or x end
  if type(x) ~= "table" then return x end
  local out = {}
  for k, v in pairs(x) do
    if v ~= cjson.null then out[k] = normalize(v) end
  end
  return out
end

-- Older service responses spell schedulingPriority "priority"; decode reads
-- it as schedulingPriority, which is what re-encoding writes.
local function with_scheduling_priority(job)
  local p = job.properties
  if p and p.priority ~= nil then
    p.schedulingPriority, p.priority = p.priority, nil
  end
  return job
end

-- Example file, the type of its 200 response body, a fix-up of the expected data.
local responses = {
  { "PutJob", "Job", with_scheduling_priority },
  { "GetJob", "Job", with_scheduling_priority },
  { "ListJobByExperiment", "JobListResult" },
  { "GetWorkspace", "Workspace" },
  { "PutWorkspace", "Workspace" },
  { "PatchWorkspace", "Workspace" },
  { "ListWorkspace", "WorkspaceListResult" },
  { "ListWorkspaceByResourceGroup", "WorkspaceListResult" },
  { "GetExperiment", "Experiment" },
  { "PutExperiment", "Experiment" },
  { "ListExperimentByWorkspace", "ExperimentListResult" },
  { "ListOutputFiles", "FileListResult" },
  { "JobListRemoteLoginInfo", "RemoteLoginInformationListResult" },
  { "ListOperation", "OperationListResult" },
}

describe("the spec's examples", function()
  for _, case in ipairs(responses) do
    local name, type_name, fix = case[1], case[2], case[3]
    it(name .. ": the 200 body decodes as " .. type_name .. " and round-trips", function()
      local body = example(name).responses["200"].body
      local v, errs = schema.decode(body, type_name)
      assert.is_nil(errs)
      assert.are.equal(type_name, schema.type_of(v))
      local expected = normalize(body)
      if fix then expected = fix(expected) end
      assert.are.same(expected, normalize(cjson.decode(v:to_json())))
      assert.is_true(schema.decode(v:to_json(), type_name) == v)
    end)
  end

  it("PutJob: the request body passes every create rule and encodes to the same data", function()
    local body = example("PutJob").parameters.parameters
    local v, errs = schema.check(body, "JobCreateParameters")
    assert.is_nil(errs)
    local job = v.properties
    assert.are.equal("JobProperties", schema.type_of(job))
    assert.are.same(normalize(body), normalize(cjson.decode(job:to_json())))
    assert.are.equal("custom", schema.tool_type(job))
    assert.are.equal("OUTPUTS", job.outputDirectories[1].id)
    assert.are.equal("ubuntu", job.containerSettings.imageSourceRegistry.image)
    -- The same document as a job file, as `az batchai job create --config-file` read it.
    local file = T.write(T.tmpdir() .. "/job.json", cjson.encode(body))
    assert.is_true(assert(bai.load_job(file)) == job)
  end)

  it("GetJob and ListJobByExperiment: read-only state is read, and the job can be submitted again", function()
    local job = schema.decode(example("GetJob").responses["200"].body, "Job")
    local p = job.properties
    assert.are.equal("normal", p.schedulingPriority)
    assert.are.equal("custom", p.toolType)
    assert.are.equal("running", p.executionState)
    assert.are.equal("succeeded", p.provisioningState)
    assert.are.equal("2017-09-27T23:36:54.115Z", p.executionInfo.startTime)
    assert.are.equal("P7D", p.constraints.maxWallClockTime)
    assert.matches("/jobs/demo_job/", p.jobOutputDirectoryPathSegment)
    local again = bai.JobProperties(p)
    assert.is_nil(again.executionState)
    assert.is_nil(again.toolType)
    assert.are.equal(1, again.nodeCount)
    local list = schema.decode(example("ListJobByExperiment").responses["200"].body, "JobListResult")
    assert.are.equal(1, #list.value)
    assert.is_true(list.value[1].properties.customToolkitSettings == p.customToolkitSettings)
  end)

  it("PutWorkspace and PatchWorkspace: the request bodies pass their checks", function()
    local create, errs = schema.check(example("PutWorkspace").parameters.parameters, "WorkspaceCreateParameters")
    assert.is_nil(errs)
    assert.are.equal('{"location":"eastus"}', create:to_json())
    local update
    update, errs = schema.check(example("PatchWorkspace").parameters.parameters, "WorkspaceUpdateParameters")
    assert.is_nil(errs)
    assert.are.equal('{"tags":{"key1":"value1"}}', update:to_json())
  end)

  it("ListOutputFiles, JobListRemoteLoginInfo and ListOperation keep their values and types", function()
    local files = schema.decode(example("ListOutputFiles").responses["200"].body, "FileListResult")
    assert.are.equal("stderr-job_prep.txt", files.value[1].name)
    assert.are.equal("file", files.value[1].fileType)
    assert.are.equal("integer", math.type(files.value[1].properties.contentLength))
    local logins = schema.decode(example("JobListRemoteLoginInfo").responses["200"].body,
      "RemoteLoginInformationListResult")
    assert.are.equal(50000, logins.value[1].port)
    assert.are.equal("integer", math.type(logins.value[1].port))
    local ops = schema.decode(example("ListOperation").responses["200"].body, "OperationListResult")
    assert.are.equal(26, #ops.value)
    assert.is_nil(ops.value[1].properties, "a null field reads as absent")
  end)
end)

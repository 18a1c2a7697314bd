-- bai serve's REST API: resources, paths, parameters, errors, paging, LRO
-- headers, idempotent re-PUT, secrets, authentication — through real HTTP.
local S = require "serve"
local T = require "testkit"

local SUB = S.SUB
local ws_path, exp_path, job_path = S.ws_path, S.exp_path, S.job_path

local function job_body(extra)
  local p = {
    cluster = { id = "/subscriptions/" .. SUB .. "/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/clusters/local" },
    nodeCount = 1,
    stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
    customToolkitSettings = { commandLine = "echo hi" },
  }
  for k, v in pairs(extra or {}) do p[k] = v end
  return { properties = p }
end

describe("bai serve API", function()
  local srv
  setup(function()
    srv = S.start{ slots = 0 }
    srv:make_experiment("ws", "exp")
  end)
  teardown(function() srv:stop() end)

  describe("workspaces", function()
    it("creates, gets, updates tags and lists them by subscription and resource group", function()
      local r = srv:api("PUT", ws_path("w1", "group-a"), { location = "westus", tags = { team = "ml" } })
      assert.are.equal(200, r.status)
      assert.are.equal("/subscriptions/" .. SUB .. "/resourceGroups/group-a/providers/Microsoft.BatchAI/workspaces/w1", r.json.id)
      assert.are.equal("w1", r.json.name)
      assert.are.equal("Microsoft.BatchAI/workspaces", r.json.type)
      assert.are.equal("westus", r.json.location)
      assert.are.same({ team = "ml" }, r.json.tags)
      assert.are.equal("succeeded", r.json.properties.provisioningState)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", r.json.properties.creationTime)

      r = srv:api("PATCH", ws_path("w1", "group-a"), { tags = { team = "vision" } })
      assert.are.equal(200, r.status)
      assert.are.same({ team = "vision" }, r.json.tags)
      r = srv:api("GET", ws_path("w1", "group-a"))
      assert.are.same({ team = "vision" }, r.json.tags)

      srv:api("PUT", ws_path("w2", "group-b"), { location = "westus" })
      r = srv:api("GET", "/subscriptions/" .. SUB .. "/resourceGroups/group-a/providers/Microsoft.BatchAI/workspaces")
      assert.are.equal(200, r.status)
      assert.are.equal(1, #r.json.value)
      assert.are.equal("w1", r.json.value[1].name)
      r = srv:api("GET", "/subscriptions/" .. SUB .. "/providers/Microsoft.BatchAI/workspaces")
      local names = {}
      for _, w in ipairs(r.json.value) do names[w.name] = true end
      assert.is_true(names.w1 and names.w2 and names.ws)
    end)

    it("treats names case-insensitively, as ARM does, and keeps the first spelling", function()
      local r = srv:api("GET", ws_path("WS"))
      assert.are.equal(200, r.status)
      assert.are.equal("ws", r.json.name)
    end)

    it("refuses a missing location and a change of location", function()
      local r = srv:api("PUT", ws_path("w3"), { tags = {} })
      assert.are.equal(400, r.status)
      assert.are.same({ code = "InvalidParameter", target = "location",
        message = "The location of the workspace is required (WorkspaceCreateParameters.location)." }, r.json.error)
      r = srv:api("PUT", ws_path("ws"), { location = "northeurope" })
      assert.are.equal(400, r.status)
      assert.are.equal("InvalidResourceLocation", r.json.error.code)
    end)

    it("answers 404 ResourceNotFound for a missing workspace and 204 when deleting one", function()
      local r = srv:api("GET", ws_path("nope"))
      assert.are.equal(404, r.status)
      assert.are.same({ code = "ResourceNotFound", message = "The workspace 'nope' was not found." }, r.json.error)
      r = srv:api("DELETE", ws_path("nope"))
      assert.are.equal(204, r.status)
    end)
  end)

  describe("experiments", function()
    it("creates with or without a body, idempotently, and lists them", function()
      local r = srv:api("PUT", exp_path("ws", "e2"))
      assert.are.equal(200, r.status)
      assert.are.equal("Microsoft.BatchAI/workspaces/experiments", r.json.type)
      local created = r.json.properties.creationTime
      r = srv:api("PUT", exp_path("ws", "e2"), { properties = {} })
      assert.are.equal(200, r.status)
      assert.are.equal(created, r.json.properties.creationTime)
      r = srv:api("GET", exp_path("ws", "e2"))
      assert.are.equal(S.exp_path("ws", "e2"), r.json.id)
      r = srv:api("GET", ws_path("ws") .. "/experiments")
      local names = {}
      for _, e in ipairs(r.json.value) do names[#names + 1] = e.name end
      assert.are.same({ "exp", "e2" }, names)
    end)

    it("needs its workspace: 404 ParentResourceNotFound", function()
      local r = srv:api("PUT", exp_path("nows", "e"))
      assert.are.equal(404, r.status)
      assert.are.equal("ParentResourceNotFound", r.json.error.code)
      assert.are.equal("Can not perform requested operation on nested resource. Parent resource 'nows' (workspace) not found.",
        r.json.error.message)
    end)
  end)

  describe("jobs", function()
    it("creates a job: 200 with the job, queued, read-only fields filled in", function()
      local r = srv:api("PUT", job_path("ws", "exp", "j1"), job_body())
      assert.are.equal(200, r.status)
      local p = r.json.properties
      assert.are.equal(job_path("ws", "exp", "j1"), r.json.id)
      assert.are.equal("Microsoft.BatchAI/workspaces/experiments/jobs", r.json.type)
      assert.are.equal("queued", p.executionState)
      assert.are.equal("succeeded", p.provisioningState)
      assert.are.equal("custom", p.toolType)
      assert.are.equal("normal", p.schedulingPriority)
      assert.are.same({ maxWallClockTime = "P7D" }, p.constraints)
      assert.matches("^" .. SUB:gsub("%-", "%%-") .. "/rg/workspaces/ws/experiments/exp/jobs/j1/%x+%-", p.jobOutputDirectoryPathSegment)
      local g = srv:api("GET", job_path("ws", "exp", "j1"))
      assert.are.equal(200, g.status)
      assert.are.same(r.json, g.json)
    end)

    it("re-PUT with identical properties is idempotent; different properties are a 409", function()
      local first = srv:api("PUT", job_path("ws", "exp", "same"), job_body())
      local again = srv:api("PUT", job_path("ws", "exp", "same"), job_body({ schedulingPriority = "normal" }))
      assert.are.equal(200, again.status)
      assert.are.same(first.json, again.json)
      local other = srv:api("PUT", job_path("ws", "exp", "same"), job_body({ nodeCount = 2 }))
      assert.are.equal(409, other.status)
      assert.are.same({ code = "Conflict", message = "The job 'same' already exists with different properties. Batch AI "
        .. "jobs cannot be updated: delete it first or create the job under another name." }, other.json.error)
    end)

    it("never returns secret values", function()
      local body = job_body({ secrets = { { name = "API_KEY", value = "hunter2-very-secret" } },
        environmentVariables = { { name = "PLAIN", value = "visible" } } })
      local r = srv:api("PUT", job_path("ws", "exp", "sec"), body)
      assert.are.equal(200, r.status)
      assert.are.same({ { name = "API_KEY" } }, r.json.properties.secrets)
      assert.are.same({ { name = "PLAIN", value = "visible" } }, r.json.properties.environmentVariables)
      local g = srv:api("GET", job_path("ws", "exp", "sec"))
      local l = srv:api("GET", exp_path("ws", "exp") .. "/jobs")
      for _, text in ipairs({ r.body, g.body, l.body, T.read(srv.log_path) }) do
        assert.is_nil(text:find("hunter2", 1, true))
      end
    end)

    it("refuses an unknown cluster, naming the known ones", function()
      local r = srv:api("PUT", job_path("ws", "exp", "badcluster"), job_body({ cluster = { id = "gpu-farm" } }))
      assert.are.equal(400, r.status)
      assert.are.same({ code = "InvalidParameter", target = "properties.cluster.id",
        message = "The cluster 'gpu-farm' is not known to this endpoint; known clusters: local." }, r.json.error)
    end)

    it("accepts a bare cluster name", function()
      local r = srv:api("PUT", job_path("ws", "exp", "bare"), job_body({ cluster = { id = "local" } }))
      assert.are.equal(200, r.status)
    end)

    it("refuses invalid bodies with the field path as target", function()
      local r = srv:api("PUT", job_path("ws", "exp", "bad"), { properties = { nodeCount = 1 } })
      assert.are.equal(400, r.status)
      assert.are.equal("InvalidParameter", r.json.error.code)
      assert.is_string(r.json.error.target)
      assert.is_true(#r.json.error.details >= 2)
      r = srv:api("PUT", job_path("ws", "exp", "bad"), job_body({ nodeCount = "two" }))
      assert.are.equal(400, r.status)
      local target = "JobCreateParameters.properties.nodeCount"
      assert.are.same({ code = "InvalidParameter", target = target,
        message = target .. ': integer >= 1 expected, got "two"',
        details = { { code = "InvalidParameter", target = target, message = 'integer >= 1 expected, got "two"' } } }, r.json.error)
      r = srv:api("PUT", job_path("ws", "exp", "bad"), job_body({ constraints = { maxWallClockTime = "a week" } }))
      assert.are.equal(400, r.status)
      target = "JobCreateParameters.properties.constraints.maxWallClockTime"
      local why = 'ISO-8601 duration (e.g. "P7D", "PT1H30M") or TimeSpan (e.g. "7.00:00:00") expected, got "a week"'
      assert.are.same({ code = "InvalidParameter", target = target, message = target .. ": " .. why,
        details = { { code = "InvalidParameter", target = target, message = why } } }, r.json.error)
      local g = srv:api("GET", job_path("ws", "exp", "bad"))
      assert.are.equal(404, g.status)
    end)

    it("refuses malformed JSON and non-object bodies", function()
      local r = srv:api("PUT", job_path("ws", "exp", "bad"), '{"properties": ')
      assert.are.equal(400, r.status)
      assert.are.equal("InvalidRequestContent", r.json.error.code)
      r = srv:api("PUT", job_path("ws", "exp", "bad"), "[1,2]")
      assert.are.equal(400, r.status)
      assert.are.equal("InvalidRequestContent", r.json.error.code)
    end)

    it("refuses an oversized body with 413 and keeps serving", function()
      local big = ('{"properties":{"x":"%s"}}'):format(("a"):rep(5 * 1024 * 1024))
      local r = srv:api("PUT", job_path("ws", "exp", "big"), big)
      assert.are.equal(413, r.status)
      assert.are.equal(200, srv:api("GET", job_path("ws", "exp", "j1")).status)
    end)

    it("refuses bad names naming the parameter", function()
      local r = srv:api("PUT", job_path("ws", "exp", "has%20space"), job_body())
      assert.are.equal(400, r.status)
      assert.are.same({ code = "InvalidParameter", target = "jobName",
        message = "The jobName 'has space' is invalid: it must be 1 to 64 characters: letters, digits, '-' and '_'." }, r.json.error)
      r = srv:api("GET", job_path("ws", "exp", ("x"):rep(65)))
      assert.are.equal(400, r.status)
      r = srv:api("GET", "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws")
      assert.are.equal(400, r.status)
      assert.are.equal("InvalidSubscriptionId", r.json.error.code)
    end)

    it("needs the experiment: ParentResourceNotFound", function()
      local r = srv:api("PUT", job_path("ws", "noexp", "j"), job_body())
      assert.are.equal(404, r.status)
      assert.are.equal("ParentResourceNotFound", r.json.error.code)
      r = srv:api("GET", job_path("ws", "exp", "missing"))
      assert.are.equal(404, r.status)
      assert.are.equal("ResourceNotFound", r.json.error.code)
    end)

    it("deletes a queued job synchronously (200), then 204", function()
      srv:api("PUT", job_path("ws", "exp", "del"), job_body())
      local r = srv:api("DELETE", job_path("ws", "exp", "del"))
      assert.are.equal(200, r.status)
      assert.are.equal(404, srv:api("GET", job_path("ws", "exp", "del")).status)
      assert.are.equal(204, srv:api("DELETE", job_path("ws", "exp", "del")).status)
    end)

    it("terminates a queued job at once: failed with a JobTerminated error", function()
      srv:api("PUT", job_path("ws", "exp", "term"), job_body())
      local r = srv:api("POST", job_path("ws", "exp", "term") .. "/terminate")
      assert.are.equal(200, r.status)
      local g = srv:api("GET", job_path("ws", "exp", "term"))
      assert.are.equal("failed", g.json.properties.executionState)
      assert.are.equal("JobTerminated", g.json.properties.executionInfo.errors[1].code)
      assert.are.equal(404, srv:api("POST", job_path("ws", "exp", "nope") .. "/terminate").status)
    end)

    it("lists remote login information (none for a queued job)", function()
      local r = srv:api("POST", job_path("ws", "exp", "j1") .. "/listRemoteLoginInformation")
      assert.are.equal(200, r.status)
      assert.are.equal('{"value":[]}', r.body)
    end)
  end)

  describe("paging", function()
    it("pages with maxresults and nextLink, correct while jobs are added and deleted", function()
      srv:make_experiment("ws", "paged")
      for i = 1, 7 do
        assert.are.equal(200, srv:api("PUT", job_path("ws", "paged", ("p%02d"):format(i)), job_body()).status)
      end
      local seen, pages = {}, 0
      local r = srv:api("GET", exp_path("ws", "paged") .. "/jobs?maxresults=3")
      while true do
        assert.are.equal(200, r.status)
        pages = pages + 1
        for _, j in ipairs(r.json.value) do seen[#seen + 1] = j.name end
        if pages == 1 then
          -- meanwhile: one job already listed goes, one not yet listed goes, one is added
          srv:api("DELETE", job_path("ws", "paged", "p01"))
          srv:api("DELETE", job_path("ws", "paged", "p05"))
          srv:api("PUT", job_path("ws", "paged", "p08"), job_body())
        end
        if not r.json.nextLink then break end
        assert.matches("^" .. srv.url:gsub("%p", "%%%0") .. "/", r.json.nextLink)
        r = srv:request("GET", r.json.nextLink)
      end
      assert.are.same({ "p01", "p02", "p03", "p04", "p06", "p07", "p08" }, seen)
      assert.are.equal(3, pages)
    end)

    it("refuses maxresults outside 1..1000", function()
      for _, v in ipairs({ "0", "1001", "abc" }) do
        local r = srv:api("GET", exp_path("ws", "exp") .. "/jobs?maxresults=" .. v)
        assert.are.equal(400, r.status)
        assert.are.equal("maxresults", r.json.error.target)
      end
    end)
  end)

  describe("protocol", function()
    it("requires api-version 2018-05-01, naming it", function()
      local r = srv:request("GET", ws_path("ws"))
      assert.are.equal(400, r.status)
      assert.are.same({ code = "MissingApiVersionParameter", target = "api-version", message = "The api-version query "
        .. "parameter (?api-version=) is required for all requests; this endpoint supports api-version '2018-05-01'." }, r.json.error)
      r = srv:request("GET", ws_path("ws") .. "?api-version=2017-09-01-preview")
      assert.are.equal(400, r.status)
      assert.are.same({ code = "InvalidApiVersionParameter", target = "api-version", message = "The api-version "
        .. "'2017-09-01-preview' is not supported; the supported api-version is '2018-05-01'." }, r.json.error)
    end)

    it("keeps a connection alive between requests and closes it after idle_timeout", function()
      local s2 = S.start{ slots = 0, tcp = false, config = { idle_timeout = 1 } }
      -- two requests on one connection, then silence: the server closes it
      local client = T.write(T.tmpdir() .. "/client.py", [[
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
buf = b""
def response():
    global buf
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(buf) < length:
        buf += s.recv(65536)
    buf = buf[length:]
    return head.split(b" ")[1].decode()
for _ in range(2):
    s.sendall(b"GET /bai/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
    print(response())
start = time.time()
s.settimeout(20)
print(s.recv(1) == b"", 0.5 < time.time() - start < 5)
]])
      local r = T.exec({ "python3", client, s2.socket }, { timeout = 30 })
      s2:stop()
      assert.are.equal("200\n200\nTrue True\n", r.stdout, r.stderr)
    end)

    it("lists the provider's operations", function()
      local r = srv:request("GET", "/providers/Microsoft.BatchAI/operations?" .. S.API)
      assert.are.equal(200, r.status)
      local names = {}
      for _, o in ipairs(r.json.value) do names[o.name] = o.display.provider end
      assert.are.equal("Microsoft Batch AI", names["Microsoft.BatchAI/workspaces/experiments/jobs/terminate/action"])
    end)

    it("answers unknown paths 404 and wrong methods 405 with ARM error bodies", function()
      local r = srv:api("GET", "/subscriptions/" .. SUB .. "/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/clusterz")
      assert.are.equal(404, r.status)
      assert.are.equal("NotFound", r.json.error.code)
      r = srv:api("POST", job_path("ws", "exp", "j1"))
      assert.are.equal(405, r.status)
      assert.are.equal("MethodNotAllowed", r.json.error.code)
    end)

    it("sets x-ms-request-id and JSON content type", function()
      local r = srv:api("GET", ws_path("ws"))
      assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", r.headers["x-ms-request-id"])
      assert.are.equal("application/json; charset=utf-8", r.headers["content-type"])
    end)
  end)

  describe("security", function()
    it("requires the bearer token over TCP", function()
      local r = srv:api("GET", ws_path("ws"), nil, { token = false })
      assert.are.equal(401, r.status)
      assert.are.equal("AuthenticationFailed", r.json.error.code)
      assert.are.equal('Bearer realm="bai serve"', r.headers["www-authenticate"])
      r = srv:api("GET", ws_path("ws"), nil, { token = ("0"):rep(64) })
      assert.are.equal(401, r.status)
      assert.are.equal("The bearer token is not valid for this endpoint.", r.json.error.message)
    end)

    it("takes the token with any spelling of the Bearer scheme, and checks one sent on the unix socket", function()
      local r = srv:api("GET", ws_path("ws"), nil, { token = false, headers = { Authorization = "bearer  " .. srv.token } })
      assert.are.equal(200, r.status)
      r = srv:api("GET", ws_path("ws"), nil, { token = false, headers = { Authorization = "Bearer " .. srv.token .. "0" } })
      assert.are.equal(401, r.status)
      assert.are.equal("The bearer token is not valid for this endpoint.", r.json.error.message)
      r = srv:api("GET", ws_path("ws"), nil, { unix = true, headers = { Authorization = "Bearer " .. ("0"):rep(64) } })
      assert.are.equal(401, r.status)
    end)

    it("needs no token on the unix socket, whose mode is 0600", function()
      local r = srv:api("GET", ws_path("ws"), nil, { unix = true })
      assert.are.equal(200, r.status)
      local sys = require "batchai._sys"
      assert.are.equal(384, sys.stat(srv.socket).mode)
      assert.are.equal(384, sys.stat(srv.state_dir .. "/token").mode)
      assert.are.equal(384, sys.stat(srv.log_path).mode)
    end)

    it("refuses unknown Host headers", function()
      local r = srv:api("GET", ws_path("ws"), nil, { headers = { Host = "evil.example:80" } })
      assert.are.equal(400, r.status)
      assert.are.equal("InvalidHost", r.json.error.code)
      local port = srv.url:match(":(%d+)$")
      r = srv:api("GET", ws_path("ws"), nil, { headers = { Host = "localhost:" .. port } })
      assert.are.equal(200, r.status)
    end)

    it("writes one structured log line per request, without query strings", function()
      local r = srv:api("GET", ws_path("ws") .. "/experiments/no%22such") -- an invalid name: 400
      assert.are.equal(400, r.status)
      local log = T.read(srv.log_path)
      assert.matches('"event":"request"', log)
      assert.is_nil(log:find("api-version", 1, true))
      local line
      for l in log:gmatch("[^\n]+") do
        if l:find('"status":400', 1, true) and l:find("no\\\"such", 1, true) then line = l end
      end
      local e = require("cjson").decode(line)
      assert.are.same({ "event", "id", "method", "path", "status", "t", "us" }, (function()
        local keys = {}
        for k in pairs(e) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)())
      assert.are.equal("GET", e.method)
      assert.are.equal(ws_path("ws") .. '/experiments/no"such', e.path)
      assert.are.equal(r.headers["x-ms-request-id"], e.id)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", e.t)
      assert.is_true(math.type(e.us) == "integer" or e.us == math.floor(e.us))
    end)
  end)
end)

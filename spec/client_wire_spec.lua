-- The client's ARM wire behaviour (retries, Retry-After, long-running
-- operations, paging, throttling, where the token may go), against a
-- scripted fake that produces what a real endpoint will not on demand, and
-- against a real bai serve where it can (paging with maxresults is in
-- client_api_spec).
local client = require "batchai.client"
local transport = require "batchai.client.transport"
local throttle = require "batchai.client.throttle"
local F = require "fakearm"

local TOKEN = "tok-explicit-0123456789"
local BASE = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws"
local EXP = BASE .. "/experiments/e1"

local function experiment(fake, extra)
  local fields = { endpoint = fake.url, token = TOKEN, subscription = "sub-1", resource_group = "rg",
    workspace = "ws", name = "e1", retry_base_delay = 0.01, lro_interval = 0.01 }
  for k, v in pairs(extra or {}) do fields[k] = v end
  return client.experiment(fields)
end

local JOB = { cluster = { id = "local" }, nodeCount = 1, stdOutErrPathPrefix = "/tmp",
  customToolkitSettings = { commandLine = "true" } }

local function job_body(name, state)
  return { name = name, properties = { provisioningState = state or "succeeded", executionState = "queued",
    nodeCount = 1, cluster = { id = "local" }, stdOutErrPathPrefix = "/tmp",
    customToolkitSettings = { commandLine = "true" } } }
end

local function requests(fake, path)
  local n = 0
  for _, entry in ipairs(fake:log()) do
    if not path or entry.path == path then n = n + 1 end
  end
  return n
end

-- Each spec gets connections of its own: their statistics and throttles start afresh.
describe("client retries", function()
  local fake
  setup(function() fake = F.start() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    client.reset()
  end)

  it("waits what Retry-After says (seconds) after a 429, then succeeds", function()
    fake:script {
      { method = "GET", path = EXP .. "/jobs/j", status = 429, headers = { ["Retry-After"] = "1" },
        body = { error = { code = "TooManyRequests", message = "slow down" } } },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = job_body("j") },
    }
    local exp = experiment(fake)
    local job = assert(exp:job("j"))
    assert.are.equal("j", job.name)
    local stats = client.connection(exp).stats
    assert.are.equal(1, stats.retries)
    assert.are.equal(1, stats.retry_wait, "the one second Retry-After asked for, not the backoff")
    assert.are.equal(2, requests(fake))
  end)

  it("understands Retry-After as an HTTP date", function()
    local raw = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: Wed, 21 Oct 2015 07:28:02 GMT\r\n\r\n"
    assert.are.equal(2, transport.retry_after(raw, 1445412480))  -- 2015-10-21 07:28:00 UTC
    assert.are.equal(0, transport.retry_after(raw, 1445412490), "a date gone by means now")
    -- Through a connection: a date past the retry deadline ends the retries at once
    -- (the backoff it would otherwise fall back to is a hundredth of a second).
    local later = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 60)
    fake:script {
      { method = "GET", path = EXP .. "/jobs/j", status = 503, headers = { ["Retry-After"] = later }, times = 2 },
    }
    local exp = experiment(fake, { retry_deadline = 30 })
    local job, err = exp:job("j")
    assert.is_nil(job)
    assert.are.equal(503, err.status)
    assert.are.equal(1, requests(fake))
    assert.are.equal(0, client.connection(exp).stats.retries)
  end)

  it("retries 408, 500, 502, 503 and 504 with exponential backoff and full jitter", function()
    local script = {}
    for _, status in ipairs { 408, 500, 502, 503, 504 } do
      script[#script + 1] = { method = "PUT", path = EXP .. "/jobs/j", status = status }
    end
    script[#script + 1] = { method = "PUT", path = EXP .. "/jobs/j", status = 200, body = job_body("j") }
    fake:script(script)
    -- Full jitter: each wait is uniform in [0, base * 2^(attempt-1)]; the
    -- same seed gives the same draws, so the waits can be checked exactly.
    math.randomseed(42)
    local expected, ceilings = 0, 0
    for attempt = 1, 5 do
      local ceiling = 0.01 * 2 ^ (attempt - 1)
      expected, ceilings = expected + math.random() * ceiling, ceilings + ceiling
    end
    math.randomseed(42)
    local exp = experiment(fake)
    local job = assert(exp:create_job("j", JOB))
    assert.are.equal("j", job.name)
    assert.are.equal(6, requests(fake))
    local stats = client.connection(exp).stats
    assert.are.equal(5, stats.retries)
    assert.is_true(math.abs(stats.retry_wait - expected) < 1e-12, ("waited %g s, expected %g s"):format(stats.retry_wait, expected))
    assert.is_true(stats.retry_wait < ceilings)
  end)

  it("gives up after the configured attempts with the last error", function()
    fake:script { { method = "GET", path = EXP .. "/jobs/j", status = 503, times = 10, headers = { ["x-ms-request-id"] = "req-42" },
      body = { error = { code = "ServerBusy", message = "try later", target = "jobName" } } } }
    local job, err = experiment(fake, { retry_attempts = 3 }):job("j")
    assert.is_nil(job)
    assert.are.equal(503, err.status)
    assert.are.equal("ServerBusy", err.code)
    assert.are.equal("try later", err.message)
    assert.are.equal("jobName", err.target)
    assert.are.equal("req-42", err.request_id)
    assert.are.equal("get job 'j': ServerBusy: try later (HTTP 503, target 'jobName', request id req-42)", tostring(err))
    assert.are.equal(3, requests(fake))
  end)

  it("does not retry other client errors", function()
    fake:script { { method = "PUT", path = EXP .. "/jobs/j", status = 400,
      body = { error = { code = "InvalidParameter", message = "nodeCount must be >= 1", target = "properties.nodeCount" } } } }
    local job, err = experiment(fake):create_job("j", JOB)
    assert.is_nil(job)
    assert.are.equal("create job 'j': InvalidParameter: nodeCount must be >= 1 (HTTP 400, target 'properties.nodeCount')", tostring(err))
    assert.are.equal(1, requests(fake))
  end)

  it("retries dropped connections, and retries only idempotent requests", function()
    fake:script {
      { method = "GET", path = EXP .. "/jobs/j", action = "drop", times = 2 },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = job_body("j") },
      { method = "POST", path = "/not-idempotent", status = 503, times = 3 },
    }
    local exp = experiment(fake)
    assert(exp:job("j"))
    assert.are.equal(3, requests(fake, EXP .. "/jobs/j"))
    local conn = assert(client.connection(exp))
    local status = conn:request("POST", fake.url .. "/not-idempotent", { operation = "post once" })
    assert.are.equal(503, status)
    assert.are.equal(1, requests(fake, "/not-idempotent"))
  end)

  it("stops retrying when Retry-After would pass the deadline", function()
    fake:script { { method = "GET", path = EXP .. "/jobs/j", status = 429, headers = { ["Retry-After"] = "30" }, times = 2 } }
    local exp = experiment(fake, { retry_deadline = 1 })
    local job, err = exp:job("j")
    assert.is_nil(job)
    assert.are.equal(429, err.status)
    assert.are.equal(1, requests(fake))
    local stats = client.connection(exp).stats
    assert.are.equal(0, stats.retries)
    assert.are.equal(0, stats.retry_wait)
  end)

  it("counts a create that already exists with the same properties as success, and refuses different ones", function()
    local exp = experiment(fake)
    local sent = require("batchai.client.codec").job_create_body(JOB)
    local existing = require("cjson").decode(sent)
    existing.name = "j"
    existing.properties.provisioningState = "succeeded"
    existing.properties.executionState = "running"
    fake:script {
      { method = "PUT", path = EXP .. "/jobs/j", status = 409, body = { error = { code = "Conflict", message = "exists" } } },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = existing },
    }
    local job = assert(exp:create_job("j", JOB))
    assert.are.equal("running", job.properties.executionState)
    local other = require("cjson").decode(sent)
    other.properties.nodeCount = 2
    fake:script {
      { method = "PUT", path = EXP .. "/jobs/j", status = 409, body = { error = { code = "Conflict", message = "job exists with other properties" } } },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = other },
    }
    local none, err = exp:create_job("j", JOB)
    assert.is_nil(none)
    assert.are.equal("Conflict", err.code)
    assert.are.equal(409, err.status)
  end)

  it("never shows the token in an error", function()
    fake:script { { method = "GET", path = EXP .. "/jobs/j", status = 400,
      body = { error = { code = "Bad", message = "got header Bearer " .. TOKEN .. " and " .. TOKEN } } } }
    local _, err = experiment(fake):job("j")
    assert.is_nil(tostring(err):find(TOKEN, 1, true))
    assert.is_nil(err.message:find(TOKEN, 1, true))
    assert.matches("got header Bearer %*%*%* and %*%*%*", tostring(err))
  end)
end)

describe("client long-running operations", function()
  local fake
  setup(function() fake = F.start() end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  it("follows Azure-AsyncOperation before Location, then reads the resource", function()
    fake:script {
      { method = "PUT", path = EXP .. "/jobs/j", status = 202,
        headers = { ["Azure-AsyncOperation"] = fake.url .. "/ops/1", Location = fake.url .. "/loc/1", ["Retry-After"] = "0" } },
      { method = "GET", path = "/ops/1", status = 200, body = { status = "InProgress" } },
      { method = "GET", path = "/ops/1", status = 200, body = { status = "SUCCEEDED" } },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = job_body("j") },
    }
    local job = assert(experiment(fake):create_job("j", JOB))
    assert.are.equal("succeeded", job.properties.provisioningState)
    local paths = {}
    for _, entry in ipairs(fake:log()) do paths[#paths + 1] = entry.method .. " " .. entry.path end
    assert.are.same({ "PUT " .. EXP .. "/jobs/j", "GET /ops/1", "GET /ops/1", "GET " .. EXP .. "/jobs/j" }, paths)
  end)

  it("waits what Retry-After says between polls, else the configured interval", function()
    fake:script {
      { method = "PUT", path = EXP .. "/jobs/j", status = 201, body = job_body("j", "creating"),
        headers = { ["Azure-AsyncOperation"] = fake.url .. "/ops/ra", ["Retry-After"] = "1" } },
      { method = "GET", path = "/ops/ra", status = 200, body = { status = "InProgress" } },
      { method = "GET", path = "/ops/ra", status = 200, body = { status = "InProgress" }, headers = { ["Retry-After"] = "1" } },
      { method = "GET", path = "/ops/ra", status = 200, body = { status = "Succeeded" } },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = job_body("j") },
    }
    local exp = experiment(fake, { lro_interval = 0.05 })
    assert(exp:create_job("j", JOB))
    assert.are.equal(3, requests(fake, "/ops/ra"))
    local waited = client.connection(exp).stats.lro_wait
    assert.is_true(math.abs(waited - (1 + 0.05 + 1)) < 1e-9, "waited " .. waited .. " s: Retry-After, the interval, Retry-After")
  end)

  it("polls Location until it stops answering 202", function()
    fake:script {
      { method = "DELETE", path = EXP .. "/jobs/j", status = 202, headers = { Location = fake.url .. "/loc/2", ["Retry-After"] = "0" } },
      { method = "GET", path = "/loc/2", status = 202, headers = { ["Retry-After"] = "0" }, times = 2 },
      { method = "GET", path = "/loc/2", status = 204 },
    }
    assert.is_true(experiment(fake):delete_job("j"))
    assert.are.equal(3, requests(fake, "/loc/2"))
  end)

  it("returns at once with wait = false", function()
    fake:script { { method = "DELETE", path = EXP .. "/jobs/j", status = 202, headers = { Location = fake.url .. "/loc/3" } } }
    assert.is_true(experiment(fake):delete_job("j", { wait = false }))
    assert.are.equal(0, requests(fake, "/loc/3"))
  end)

  it("reports a failed operation with its error", function()
    fake:script {
      { method = "PUT", path = EXP, status = 202, headers = { ["Azure-AsyncOperation"] = fake.url .. "/ops/f" } },
      { method = "GET", path = "/ops/f", status = 200, body = { status = "Failed", error = { code = "QuotaExceeded", message = "no room" } } },
    }
    local value, err = experiment(fake):create()
    assert.is_nil(value)
    assert.are.equal("create experiment 'e1': QuotaExceeded: no room", tostring(err))
  end)

  it("watches provisioningState when the create answered 201 while still creating", function()
    fake:script {
      { method = "PUT", path = EXP .. "/jobs/j", status = 201, body = job_body("j", "Creating") },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = job_body("j", "creating") },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = job_body("j", "Succeeded") },
    }
    local job = assert(experiment(fake):create_job("j", JOB))
    assert.are.equal("succeeded", job.properties.provisioningState:lower())
    assert.are.equal(2, requests(fake, EXP .. "/jobs/j") - 1)
  end)

  it("gives up at the overall deadline", function()
    fake:script {
      { method = "PUT", path = EXP .. "/jobs/j", status = 202, headers = { ["Azure-AsyncOperation"] = fake.url .. "/ops/slow" } },
      { method = "GET", path = "/ops/slow", status = 200, body = { status = "InProgress" }, times = 1000 },
    }
    local job, err = experiment(fake, { lro_timeout = 0.3, lro_interval = 0.05 }):create_job("j", JOB)
    assert.is_nil(job)
    assert.are.equal("Timeout", err.code)
    assert.are.equal("create job 'j': Timeout: the long-running operation did not finish within 0.3 s", tostring(err))
    -- Polls are at least 0.05 s apart and stop at the deadline: no more than 6 fit in 0.3 s,
    -- however slowly the machine runs.
    local polls = requests(fake, "/ops/slow")
    assert.is_true(polls <= 6, polls .. " polls")
  end)
end)

describe("client paging and where the token goes", function()
  local fake, stranger
  setup(function()
    fake = F.start()
    stranger = F.start()
  end)
  teardown(function()
    fake:stop()
    stranger:stop()
  end)
  before_each(function()
    fake:reset()
    stranger:reset()
  end)

  it("refuses a nextLink on another host and never sends it the token", function()
    fake:script { { method = "GET", path = EXP .. "/jobs", status = 200,
      body = { value = { job_body("a") }, nextLink = stranger.url .. "/steal" } } }
    local it = experiment(fake):jobs()
    assert.are.equal("a", it().name)
    local ok, err = pcall(it)
    assert.is_false(ok)
    assert.are.equal("ForeignHost", err.code)
    assert.matches("refusing to send the token for http://127%.0%.0%.1:%d+ to http://127%.0%.0%.1:%d+", tostring(err))
    assert.are.same({}, stranger:log())
  end)

  it("refuses an LRO URL on another host", function()
    fake:script { { method = "PUT", path = EXP .. "/jobs/j", status = 202,
      headers = { ["Azure-AsyncOperation"] = stranger.url .. "/ops/1" } } }
    local job, err = experiment(fake):create_job("j", JOB)
    assert.is_nil(job)
    assert.are.equal("ForeignHost", err.code)
    assert.are.same({}, stranger:log())
  end)

  it("does not follow redirects", function()
    fake:script { { method = "GET", path = EXP .. "/jobs/j", status = 307, headers = { Location = stranger.url .. "/elsewhere" } } }
    local job, err = experiment(fake):job("j")
    assert.is_nil(job)
    assert.are.equal(307, err.status)
    assert.are.equal(("get job 'j': Redirect: the endpoint redirected to %s; redirects are not followed (HTTP 307)")
      :format(stranger.url), tostring(err))
    assert.are.same({}, stranger:log())
  end)

  it("never sends a token over plain HTTP to another machine", function()
    local exp = client.experiment { endpoint = "http://192.0.2.1:9", token = TOKEN, subscription = "s",
      resource_group = "rg", workspace = "ws", name = "e" }
    local job, err = exp:job("j")
    assert.is_nil(job)
    assert.are.equal("get job 'j': InsecureEndpoint: refusing to send the token over plain HTTP to http://192.0.2.1:9 " ..
      "(use https, a loopback address or a unix socket)", tostring(err))
  end)

  it("names the unix socket it cannot reach", function()
    local path = require("testkit").tmpdir() .. "/none.sock"
    local exp = client.experiment { endpoint = path, subscription = "s", resource_group = "rg", workspace = "ws", name = "e",
      retry_attempts = 2, retry_base_delay = 0.01 }
    local _, err = exp:get()
    assert.are.equal(("get experiment 'e': COULDNT_CONNECT: cannot connect to the unix socket %s"):format(path), tostring(err))
  end)

  it("reports a bad endpoint clearly", function()
    local exp = client.experiment { endpoint = "ftp://x", subscription = "s", resource_group = "rg", workspace = "ws", name = "e" }
    local _, err = exp:get()
    assert.are.equal("InvalidEndpoint: endpoint 'ftp://x' is neither an http(s) URL nor a unix socket path", tostring(err))
  end)
end)

-- The buckets' clock is stopped in these specs: what they decide then depends
-- on the requests alone, not on how fast the machine runs them.
local function stopped_clock() return 1000 end

describe("client throttling", function()
  local fake
  setup(function() fake = F.start() end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    client.reset()
  end)

  it("refills a bucket at its rate up to its size, and queues takers beyond it", function()
    local now = 0
    local t = throttle.new { read = { bucket = 2, refill = 10 }, write = { bucket = 1, refill = 1 }, delete = { bucket = 1, refill = 1 } }
    t:use_clock(function() return now end)
    local b = t.read
    assert.are.same({ 0, 0 }, { b:take(now), b:take(now) })
    assert.are.equal(0.1, b:take(now))
    assert.are.equal(0.2, b:take(now), "the next taker queues behind the first")
    now = 0.3  -- three tokens refilled: the two owed, then one
    assert.are.equal(0, b:take(now))
    now = 10
    b:update(now)
    assert.are.equal(2, b.tokens, "never more than the bucket holds")
  end)

  it("spaces writes by the bucket's refill rate once the bucket is empty (against bai serve)", function()
    local S = require "serve"
    local srv = S.start { slots = 0 }
    finally(function() srv:stop() end)
    srv:make_experiment("ws", "e1")
    local exp = client.experiment { endpoint = srv.url, token = srv.token, subscription = S.SUB, resource_group = "rg",
      workspace = "ws", name = "e1", throttle = "on", throttle_write = { bucket = 2, refill = 10 } }
    local conn = client.connection(exp)
    conn.throttle:use_clock(stopped_clock)
    client.loop.map({ 1, 2, 3, 4, 5, 6 }, function(i) assert(exp:create_job("j" .. i, JOB, { wait = false })) end,
      { concurrency = 6 })
    assert.are.equal(6, conn.stats.requests)
    assert.are.equal(6, #srv:api("GET", S.exp_path("ws", "e1") .. "/jobs").json.value)
    local write = conn.throttle:stats().write
    assert.are.equal(4, write.waited, "two writes from the bucket, four waited for the refill")
    assert.is_true(math.abs(write.wait_total - (0.1 + 0.2 + 0.3 + 0.4)) < 1e-9, "waited " .. write.wait_total .. " s in all")
  end)

  it("is off for a loopback endpoint unless asked for", function()
    local conn = client.connection(experiment(fake))
    assert.is_nil(conn.throttle)
  end)

  it("believes the endpoint's x-ms-ratelimit-remaining headers", function()
    fake:script {
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = job_body("j"),
        headers = { ["x-ms-ratelimit-remaining-subscription-reads"] = "0" } },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = job_body("j") },
    }
    local exp = experiment(fake, { throttle = "on", throttle_read = { bucket = 100, refill = 4 } })
    local conn = client.connection(exp)
    conn.throttle:use_clock(stopped_clock)
    assert(exp:job("j"))
    local read = conn.throttle:stats().read
    assert.are.equal(0, read.tokens, "99 left by our count, none by the endpoint's")
    assert.are.equal(0, read.waited)
    assert(exp:job("j"))
    read = conn.throttle:stats().read
    assert.are.equal(1, read.waited)
    assert.are.equal(0.25, read.wait_total, "a quarter of a second: one token at 4 per second")
  end)
end)

-- The auth chain (explicit token, local endpoint, client credentials, managed
-- identity, az) and the token cache, against a fake token endpoint.
local sys = require "batchai._sys"
local client = require "batchai.client"
local loop = require "batchai.client.loop"
local T = require "testkit"
local F = require "fakearm"

local EXP = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/experiments/e1"
local VARS = { "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
  "AZURE_POD_IDENTITY_AUTHORITY_HOST", "PATH", "BAI_TOKEN" }

describe("client auth chain", function()
  local arm, idp, saved
  setup(function()
    arm = F.start()
    idp = F.start()
    saved = {}
    for _, v in ipairs(VARS) do saved[v] = os.getenv(v) or false end
  end)
  teardown(function()
    for _, v in ipairs(VARS) do sys.setenv(v, saved[v] or nil) end
    arm:stop()
    idp:stop()
  end)
  before_each(function()
    for _, v in ipairs(VARS) do if v ~= "PATH" then sys.setenv(v, nil) end end
    sys.setenv("PATH", saved.PATH or "/usr/bin:/bin")
    -- Nothing answers here: the managed identity probe fails at once.
    sys.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1")
    client.reset()
    arm:reset()
    idp:reset()
    arm:script { { method = "GET", path = EXP .. "/jobs/j", status = 200, body = { name = "j" }, times = 100 } }
  end)

  local function experiment(extra)
    local fields = { endpoint = arm.url, subscription = "sub-1", resource_group = "rg", workspace = "ws", name = "e1" }
    for k, v in pairs(extra or {}) do fields[k] = v end
    return client.experiment(fields)
  end

  local function client_credentials(secret)
    sys.setenv("AZURE_TENANT_ID", "tenant-1")
    sys.setenv("AZURE_CLIENT_ID", "client-1")
    sys.setenv("AZURE_CLIENT_SECRET", secret or "s3cret-value")
    sys.setenv("AZURE_AUTHORITY_HOST", idp.url)
  end

  local function auth_headers()
    local seen = {}
    for _, entry in ipairs(arm:log()) do seen[#seen + 1] = entry.authorization end
    return seen
  end

  it("prefers an explicit token to everything else", function()
    client_credentials()
    assert(experiment { token = "explicit-token-1" }:job("j"))
    assert.are.same({ "Bearer explicit-token-1" }, auth_headers())
    assert.are.same({}, idp:log())
    sys.setenv("BAI_TOKEN", "env-token-22")
    assert(experiment():job("j"))
    assert.are.equal("Bearer env-token-22", auth_headers()[2])
  end)

  it("gets a client-credentials token once for many concurrent requests", function()
    client_credentials()
    local exp = experiment()
    loop.map({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, function() assert(exp:job("j")) end, { concurrency = 10 })
    local headers = auth_headers()
    assert.are.equal(10, #headers)
    for _, h in ipairs(headers) do assert.are.equal("Bearer tok-aad-1", h) end
    local requests = idp:log()
    assert.are.equal(1, #requests)
    assert.are.equal("/tenant-1/oauth2/v2.0/token", requests[1].path)
    assert.matches("grant_type=client_credentials", requests[1].body)
    assert.matches("scope=https%%3A%%2F%%2Fmanagement%.azure%.com%%2F%.default", requests[1].body)
    assert.are.equal("Azure client credentials (AZURE_CLIENT_ID client-1)", client.connection(exp).auth.source)
  end)

  -- The token cache reads a clock the spec moves: refreshes happen at the
  -- times the cache decides, however slowly the requests themselves run.
  local function clocked(exp)
    local clock = { now = 1700000000 }
    client.connection(exp).auth:use_clock(function() return clock.now end)
    return clock
  end

  it("refreshes a token 5 minutes before it expires, not on every request", function()
    client_credentials()
    local exp = experiment()
    local clock = clocked(exp)
    assert(exp:job("j"))              -- an hour's token
    clock.now = clock.now + 3600 - 301
    assert(exp:job("j"))              -- 5 min 1 s before expiry: still good
    clock.now = clock.now + 2
    assert(exp:job("j"))              -- 4 min 59 s before: refreshed
    assert(exp:job("j"))
    assert.are.same({ "Bearer tok-aad-1", "Bearer tok-aad-1", "Bearer tok-aad-2", "Bearer tok-aad-2" }, auth_headers())
    assert.are.equal(2, #idp:log())
  end)

  it("refreshes a short-lived token at half its life", function()
    client_credentials()
    idp:tokens { expires_in = 120 }
    local exp = experiment()
    local clock = clocked(exp)
    assert(exp:job("j"))
    clock.now = clock.now + 59
    assert(exp:job("j"))
    clock.now = clock.now + 2
    assert(exp:job("j"))
    assert.are.same({ "Bearer tok-aad-1", "Bearer tok-aad-1", "Bearer tok-aad-2" }, auth_headers())
  end)

  it("fetches a new token once after a 401", function()
    client_credentials()
    arm:reset()
    arm:script {
      { method = "GET", path = EXP .. "/jobs/j", status = 401, body = { error = { code = "ExpiredAuthenticationToken", message = "expired" } } },
      { method = "GET", path = EXP .. "/jobs/j", status = 200, body = { name = "j" } },
    }
    assert(experiment():job("j"))
    assert.are.same({ "Bearer tok-aad-1", "Bearer tok-aad-2" }, auth_headers())
  end)

  it("reports refused client credentials without the secret", function()
    client_credentials("wrong-secret-value")
    local job, err = experiment():job("j")
    assert.is_nil(job)
    assert.are.equal("client credentials token: invalid_client: bad client credentials (HTTP 401)", tostring(err))
    assert.are.same({}, arm:log())
  end)

  it("never sends the client secret over plain HTTP to another machine", function()
    client_credentials()
    sys.setenv("AZURE_AUTHORITY_HOST", "http://login.example.com")
    local _, err = experiment():job("j")
    assert.are.equal("get job 'j': InsecureAuthority: refusing to send the client secret over plain HTTP to http://login.example.com", tostring(err))
  end)

  it("uses the managed identity endpoint when there are no client credentials", function()
    sys.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", idp.url)
    local exp = experiment()
    assert(exp:job("j"))
    assert.are.same({ "Bearer tok-imds-1" }, auth_headers())
    local request = idp:log()[1]
    assert.are.equal("/metadata/identity/oauth2/token", request.path)
    assert.matches("resource=https%%3A%%2F%%2Fmanagement%.azure%.com%%2F", request.query)
    assert.are.equal("managed identity (IMDS)", client.connection(exp).auth.source)
  end)

  it("falls back to az account get-access-token", function()
    local bin = T.tmpdir()
    T.write(bin .. "/az", [[#!/bin/sh
echo "$@" > "$(dirname "$0")/args"
echo '{"accessToken": "tok-from-az-cli", "expires_on": 4102444800, "tokenType": "Bearer"}'
]])
    os.execute("chmod +x " .. T.quote(bin .. "/az"))
    sys.setenv("PATH", bin .. ":" .. (saved.PATH or "/usr/bin:/bin"))
    local exp = experiment()
    assert(exp:job("j"))
    assert.are.same({ "Bearer tok-from-az-cli" }, auth_headers())
    assert.are.equal("account get-access-token --resource https://management.azure.com/ --output json\n", T.read(bin .. "/args"))
    assert.are.equal("az account get-access-token", client.connection(exp).auth.source)
  end)

  it("says how to get credentials when there are none", function()
    sys.setenv("PATH", T.tmpdir())
    local job, err = experiment():job("j")
    assert.is_nil(job)
    assert.are.equal("NoCredentials", err.code)
    assert.matches("^get job 'j': NoCredentials: no credentials for the endpoint: set BAI_TOKEN, or AZURE_TENANT_ID, " ..
      "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or run where a managed identity is available, or log in with 'az login'", tostring(err))
    assert.are.same({}, arm:log())
  end)

  it("sends the local endpoint's socket requests without the Azure chain", function()
    client_credentials()
    local path = T.tmpdir() .. "/s.sock"
    local sock = F.start { socket = path }
    finally(function() sock:stop() end)
    sock:script { { method = "GET", path = EXP .. "/jobs/j", status = 200, body = { name = "j" } } }
    assert(experiment { endpoint = path }:job("j"))
    assert.are.equal("userdata", type(sock:log()[1].authorization), "JSON null: no Authorization header")
    assert.are.same({}, idp:log())
  end)
end)

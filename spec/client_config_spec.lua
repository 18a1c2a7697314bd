-- Configuration: defaults < config file < profile < environment < options,
-- `bai config` with sources and masked secrets, and clear errors.
local cjson = require "cjson"
local T = require "testkit"

local function config_json(args, opts)
  local r = T.run(args, opts)
  assert.are.equal(0, r.status, r.stderr)
  return cjson.decode(r.stdout), r
end

describe("client configuration", function()
  local home, path
  before_each(function()
    home = T.tmpdir()
    path = home .. "/bai/config.lua"
    T.write(path, [[
return {
  endpoint = "https://management.azure.com",
  subscription = "sub-from-file",
  resource_group = "rg-file",
  concurrency = 8,
  throttle_write = { bucket = 50, refill = 5 },
  profile = "dev",
  profiles = {
    dev = { resource_group = "rg-dev", workspace = "ws-dev" },
    prod = { resource_group = "rg-prod", endpoint = false },
  },
}
]])
  end)

  it("layers file, profile, environment and options, and says where each value came from", function()
    local doc = config_json({ "config", "-o", "json" }, { config_home = home })
    assert.are.same({ value = "sub-from-file", source = "file " .. path }, doc.subscription)
    assert.are.same({ value = "rg-dev", source = ("profile dev (%s)"):format(path) }, doc.resource_group)
    assert.are.same({ value = 8, source = "file " .. path }, doc.concurrency)
    assert.are.same({ value = { bucket = 50, refill = 5 }, source = "file " .. path }, doc.throttle_write)
    assert.are.same({ value = 60, source = "default" }, doc.timeout)
    assert.are.same({ value = "dev", source = "file " .. path }, doc.profile)
    doc = config_json({ "config", "-o", "json" }, { config_home = home, env = { BAI_RESOURCE_GROUP = "rg-env" } })
    assert.are.same({ value = "rg-env", source = "env BAI_RESOURCE_GROUP" }, doc.resource_group)
    doc = config_json({ "config", "-o", "json", "--resource-group", "rg-opt" },
      { config_home = home, env = { BAI_RESOURCE_GROUP = "rg-env" } })
    assert.are.same({ value = "rg-opt", source = "option" }, doc.resource_group)
  end)

  it("selects a profile by BAI_PROFILE or --profile; false unsets a value", function()
    local doc = config_json({ "config", "-o", "json", "--profile", "prod" }, { config_home = home })
    assert.are.equal("rg-prod", doc.resource_group.value)
    assert.is_nil(doc.endpoint.value)
    assert.are.equal("ws-dev" ~= doc.workspace.value and "default" or "", doc.workspace.value)
    assert.are.equal("default (local endpoint)", doc.workspace.source)
    doc = config_json({ "config", "-o", "json" }, { config_home = home, env = { BAI_PROFILE = "prod" } })
    assert.are.same({ value = "prod", source = "env BAI_PROFILE" }, doc.profile)
  end)

  it("prefers BAI_SUBSCRIPTION to AZURE_SUBSCRIPTION_ID, and uses either", function()
    local doc = config_json({ "config", "-o", "json" }, { env = { AZURE_SUBSCRIPTION_ID = "az-sub" } })
    assert.are.same({ value = "az-sub", source = "env AZURE_SUBSCRIPTION_ID" }, doc.subscription)
    doc = config_json({ "config", "-o", "json" }, { env = { AZURE_SUBSCRIPTION_ID = "az-sub", BAI_SUBSCRIPTION = "bai-sub" } })
    assert.are.same({ value = "bai-sub", source = "env BAI_SUBSCRIPTION" }, doc.subscription)
  end)

  it("gives the local endpoint's defaults only when the endpoint is local", function()
    local doc = config_json({ "config", "-o", "json" }, {})
    assert.are.same({ value = "00000000-0000-0000-0000-000000000000", source = "default (local endpoint)" }, doc.subscription)
    doc = config_json({ "config", "-o", "json" }, { env = { BAI_ENDPOINT = "https://management.azure.com" } })
    assert.is_nil(doc.subscription.value)
    assert.are.equal("unset", doc.subscription.source)
    assert.are.equal("managed identity, else az account get-access-token", doc.auth.value)
  end)

  it("never prints secrets", function()
    local secret = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.super-secret-token"
    for _, format in ipairs { "table", "json", "tsv", "jsonl" } do
      local r = T.run({ "config", "-o", format }, { env = { BAI_TOKEN = secret } })
      assert.are.equal(0, r.status)
      assert.is_nil(r.stdout:find("super-secret", 1, true), format)
      assert.matches("%*%*%* %(55 characters%)", r.stdout)
    end
    local r = T.run({ "config", "get", "token" }, { env = { BAI_TOKEN = secret } })
    assert.are.equal("*** (55 characters)\n", r.stdout)
    r = T.run({ "config" }, { env = { BAI_TOKEN = secret } })
    assert.matches("\nauth\tbearer token\tenv BAI_TOKEN\n", r.stdout)
  end)

  it("reports a bad file, variable, option or profile clearly", function()
    T.write(path, "return { concurency = 4 }")
    local r = T.run({ "config" }, { config_home = home })
    assert.are.equal(1, r.status)
    assert.are.equal(("bai: configuration file %s: unknown key 'concurency' (did you mean 'concurrency'?)\n"):format(path), r.stderr)
    T.write(path, "return { profiles = { p = { timeout = 'soon' } } }")
    r = T.run({ "config" }, { config_home = home })
    assert.are.equal(("bai: configuration file %s: key 'timeout' in profile 'p': number expected, got string\n"):format(path), r.stderr)
    T.write(path, "return {")
    r = T.run({ "config" }, { config_home = home })
    assert.matches("^bai: configuration file " .. path:gsub("%p", "%%%0") .. ":1: ", r.stderr)
    local dir = T.tmpdir()
    r = T.run({ "config" }, { env = { BAI_CONFIG = dir } })
    assert.are.equal(1, r.status)
    assert.are.equal(("bai: configuration file %s: Is a directory\n"):format(dir), r.stderr)
    r = T.run({ "config" }, { env = { BAI_CONCURRENCY = "many" } })
    assert.are.equal("bai: environment variable BAI_CONCURRENCY: number expected, got 'many'\n", r.stderr)
    r = T.run({ "config" }, { env = { BAI_THROTTLE = "sometimes" } })
    assert.are.equal("bai: environment variable BAI_THROTTLE: 'sometimes' is not one of auto, on, off\n", r.stderr)
    r = T.run({ "config", "--profile", "staging" })
    assert.are.equal(1, r.status)
    assert.matches("^bai: unknown profile 'staging' %(from option%); profiles in ", r.stderr)
    r = T.run({ "config", "get", "concurency" })
    assert.are.equal(2, r.status)
    assert.matches("^bai: unknown key 'concurency' %(did you mean 'concurrency'%?%)", r.stderr)
  end)

  it("lists every key and the file's path", function()
    local r = T.run({ "config", "keys", "-o", "tsv" })
    assert.matches("\nconcurrency\tBAI_CONCURRENCY\t32\trequests in flight at once\n", r.stdout)
    r = T.run({ "config", "path" }, { config_home = home })
    assert.are.equal(path .. "\n", r.stdout)
    r = T.run({ "config", "path" }, { env = { BAI_CONFIG = "/etc/bai.lua" } })
    assert.are.equal("/etc/bai.lua\n", r.stdout)
    local doc = config_json({ "config", "-o", "json" }, { config_home = home, env = { BAI_CONFIG = "/etc/bai.lua" } })
    assert.are.same({ value = "/etc/bai.lua", source = "env BAI_CONFIG" }, doc.config_file)
    doc = config_json({ "config", "-o", "json" }, { config_home = home, env = { BAI_CONFIG = "" } })
    assert.are.same({ value = path, source = "default" }, doc.config_file)
  end)

  it("applies to the Lua API: constructor fields override everything", function()
    local script = T.write(T.tmpdir() .. "/s.lua", [[
      local bai = require "batchai"
      local exp = bai.experiment { name = "x", resource_group = "rg-arg" }
      print(exp.workspace.subscription, exp.workspace.resource_group, exp.workspace.name, exp.ctx.settings.concurrency)
      print(pcall(bai.experiment, { name = "x", concurrency = 0 }))
    ]])
    local r = T.run({ script }, { config_home = home, env = { BAI_RESOURCE_GROUP = "rg-env", BAI_WORKSPACE = "ws-env" } })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^sub%-from%-file\trg%-arg\tws%-env\t8\nfalse\t", r.stdout)
    assert.matches("option 'concurrency': must be >= 1, got 0", r.stdout)
  end)
end)

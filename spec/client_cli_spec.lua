-- `bai job|experiment|workspace ...` against a real `bai serve`.
local cjson = require "cjson"
local S = require "serve"
local T = require "testkit"

describe("client command line", function()
  local srv, env, dir
  setup(function()
    srv = S.start { slots = 2 }
    env = { BAI_ENDPOINT = srv.socket, BAI_WORKSPACE = "ws", BAI_EXPERIMENT = "e", BAI_LRO_INTERVAL = "0.05" }
    dir = T.tmpdir()
    -- Every spec below may run alone (--filter): the workspace and experiment exist from the start.
    local exp = require("batchai").experiment { endpoint = srv.socket, workspace = "ws", name = "e" }
    assert(exp.workspace:create { location = "local" })
    assert(exp:create())
  end)
  teardown(function() srv:stop() end)

  local function bai(args, extra, config_home)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    return T.run(args, { env = e, timeout = 60, config_home = config_home })
  end

  local function job_file(name, command, extra)
    local doc = { ["$schema"] = "https://raw.githubusercontent.com/Azure/BatchAI/master/schemas/2018-05-01/job.json",
      properties = { nodeCount = 1, cluster = { id = "local" }, stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs",
        customToolkitSettings = { commandLine = command } } }
    for k, v in pairs(extra or {}) do doc.properties[k] = v end
    return T.write(dir .. "/" .. name, cjson.encode(doc))
  end

  it("creates, shows, lists and deletes workspaces and experiments", function()
    local r = bai { "workspace", "create", "ws", "--tag", "team=ml", "-o", "json" }
    assert.are.equal(0, r.status, r.stderr)
    local ws = cjson.decode(r.stdout)
    assert.are.equal("ws", ws.name)
    assert.are.equal("ml", ws.tags.team)
    r = bai { "workspace", "show", "ws", "-o", "table" }
    assert.matches("^Name:         ws\nLocation:     local\nProvisioning: succeeded\nCreated:      %S+\nId:           /subscriptions/00000000%-0000%-0000%-0000%-000000000000/resourceGroups/default/providers/Microsoft%.BatchAI/workspaces/ws\n$", r.stdout)
    r = bai { "workspace", "list", "-o", "tsv" }
    assert.matches("^ws\tlocal\tsucceeded\t%S+\n$", r.stdout)
    r = bai { "experiment", "create", "e", "-o", "jsonl" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("e", cjson.decode(r.stdout).name)
    r = bai { "experiment", "create", "gone" }
    assert.are.equal(0, r.status, r.stderr)
    r = bai { "experiment", "list", "-o", "table" }
    assert.matches("^NAME  STATE      CREATED\ne     succeeded  %S+\ngone  succeeded  %S+\n$", r.stdout)
    assert.are.equal(0, bai({ "experiment", "delete", "gone" }).status)
    r = bai { "experiment", "show", "gone" }
    assert.are.equal(1, r.status)
    assert.matches("^bai: get experiment 'gone': ResourceNotFound: ", r.stderr)
  end)

  it("creates a job from a JSON file as az took it, and from a Lua file", function()
    local r = bai { "job", "create", "fromjson", "-f", job_file("job.json", "echo hello"), "-o", "table" }
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^Name:         fromjson\nState:        ", r.stdout)
    local lua_file = T.write(dir .. "/job.lua", [[
      local bai = require "batchai"
      return bai.JobProperties { cluster = { id = "local" }, nodeCount = 1,
        stdOutErrPathPrefix = "$AZ_BATCHAI_MOUNT_ROOT/logs", customToolkitSettings = { commandLine = "exit 0" } }]])
    r = bai { "job", "create", "fromlua", "-f", lua_file, "-o", "json" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("fromlua", cjson.decode(r.stdout).name)
    r = bai { "job", "create", "fromlua", "-f", lua_file, "-o", "tsv" }
    assert.are.equal(0, r.status, "creating the same job again is success")
  end)

  it("never prints a job's secret values; a re-run with them counts as the same job", function()
    local value = "hunter2-do-not-print"
    local file = job_file("secret.json", "test -n \"$PW\"", { secrets = { { name = "PW", value = value } } })
    local outputs = {}
    for _, args in ipairs {
      { "job", "create", "withsecret", "-f", file, "-o", "json" },
      { "job", "create", "withsecret", "-f", file, "-o", "table" },
      { "job", "show", "withsecret", "-o", "json" },
      { "job", "list", "-o", "jsonl" },
      { "job", "wait", "withsecret" },
    } do
      local r = bai(args)
      assert.are.equal(0, r.status, table.concat(args, " ") .. ": " .. r.stderr)
      outputs[#outputs + 1] = r.stdout .. r.stderr
    end
    local all = table.concat(outputs)
    assert.is_nil(all:find(value, 1, true))
    assert.are.same({ { name = "PW" } }, cjson.decode(outputs[3]).properties.secrets)
  end)

  it("gives a JSON job that names no cluster the one of --cluster, else the configured one", function()
    local file = job_file("nocluster.json", "true", { cluster = cjson.null })
    local r = bai { "job", "create", "given", "-f", file, "--cluster", "nosuch" }
    assert.are.equal(1, r.status)
    assert.matches("nosuch", r.stderr, 1, true)
    r = bai { "job", "create", "configured", "-f", file, "-o", "json" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("local", cjson.decode(r.stdout).properties.cluster.id)
    r = bai { "job", "create", "named", "-f", job_file("named.json", "true"), "--cluster", "nosuch", "-o", "json" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("local", cjson.decode(r.stdout).properties.cluster.id)
  end)

  it("reports a bad job file naming the file and field, and submits nothing", function()
    local bad = job_file("bad.json", "true", { nodeCount = 0 })
    local r = bai { "job", "create", "bad", "-f", bad }
    assert.are.equal(1, r.status)
    assert.matches("^bai: " .. bad:gsub("%p", "%%%0") .. ": properties%.nodeCount: ", r.stderr)
    r = bai { "job", "show", "bad" }
    assert.are.equal(1, r.status)
    r = bai { "job", "create", "x" }
    assert.are.equal(2, r.status)
    assert.are.equal("bai: missing option '--file FILE'\nTry 'bai help job' for usage.\n", r.stderr)
  end)

  it("lists jobs in every format", function()
    assert.are.equal(0, bai({ "job", "create", "l1", "-f", job_file("l1.json", "true") }).status)
    assert.are.equal(0, bai({ "job", "wait", "l1", "-q" }).status)
    local r = bai { "job", "list", "--experiment", "e", "-o", "tsv" }
    assert.matches("\nl1\tsucceeded\t0\t1\tlocal\tcustom\t%S+\n", "\n" .. r.stdout)
    r = bai { "job", "list", "-o", "table" }
    assert.matches("^NAME +STATE +EXIT +NODES +CLUSTER +TOOL +CREATED\n", r.stdout)
    r = bai { "job", "list", "-o", "json" }
    local list = cjson.decode(r.stdout)
    assert.is_true(#list >= 1)
    r = bai { "job", "list", "-o", "jsonl" }
    local lines = 0
    for line in r.stdout:gmatch("[^\n]+") do
      lines = lines + 1
      assert.is_table(cjson.decode(line).properties)
    end
    assert.are.equal(#list, lines)
    r = bai { "job", "show", "l1", "-o", "json" }
    assert.are.equal("l1", cjson.decode(r.stdout).name)
  end)

  it("waits for a job and exits with its exit code; prints state changes", function()
    assert.are.equal(0, bai({ "job", "create", "exit7", "-f", job_file("e7.json", "sleep 0.3; exit 7"), "--no-wait" }).status)
    local r = bai { "job", "wait", "exit7", "--interval", "0.05" }
    assert.are.equal(7, r.status)
    assert.matches("exit7: failed\n$", r.stderr)
    r = bai { "job", "wait", "exit7", "--timeout", "5" }
    assert.are.equal(7, r.status)
  end)

  it("follows logs until the job ends and lists and downloads its files", function()
    assert.are.equal(0, bai({ "job", "create", "talk", "-f", job_file("t.json", "echo a; sleep 0.5; echo b; echo c >&2") }).status)
    local r = bai { "job", "logs", "talk", "-f" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("a\nb\n", r.stdout)
    assert.are.equal("c\n", r.stderr)
    r = bai { "job", "logs", "talk", "--stream", "stderr" }
    assert.are.equal("", r.stdout)
    assert.are.equal("c\n", r.stderr)
    r = bai { "job", "files", "talk", "-o", "tsv" }
    assert.matches("stdout%.txt\tfile\t4\t", r.stdout)
    local out = T.tmpdir()
    r = bai { "job", "files", "talk", "--download", out }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("a\nb\n", T.read(out .. "/stdout.txt"))
  end)

  it("terminates and deletes jobs", function()
    assert.are.equal(0, bai({ "job", "create", "long", "-f", job_file("long.json", "sleep 300") }).status)
    assert.are.equal(0, bai({ "job", "create", "long2", "-f", job_file("long2.json", "sleep 300") }).status)
    local r = bai { "job", "terminate", "long" }
    assert.are.equal(0, r.status, r.stderr)
    r = bai { "job", "delete", "long", "long2" }
    assert.are.equal(0, r.status, r.stderr)
    r = bai { "job", "show", "long2" }
    assert.are.equal(1, r.status)
    assert.matches("^bai: get job 'long2': ResourceNotFound: .* %(HTTP 404, request id %S+%)\n$", r.stderr)
  end)

  it("runs the plugins' before_submit, after_submit and on_state_change hooks", function()
    local home = T.tmpdir()
    local log = home .. "/hooks.log"
    T.write(home .. "/bai/plugins/hooks.lua", ([[
      local function note(line)
        local f = assert(io.open(%q, "a"))
        f:write(line, "\n")
        f:close()
      end
      return { name = "hooks", setup = function(bai)
        bai.hook("before_submit", function(props, name, ctx)
          note("before " .. name .. " " .. ctx.experiment_name)
          return props:with { environmentVariables = { { name = "FROM_PLUGIN", value = "yes" } } }
        end)
        bai.hook("after_submit", function(name, job) note("after " .. name .. " " .. job.name) end)
        bai.hook("on_state_change", function(name, new) note("state " .. name .. " " .. tostring(new)) end)
      end }]]):format(log))
    local r = bai({ "job", "create", "hooked", "-f", job_file("h.json", "test \"$FROM_PLUGIN\" = yes"), "-o", "json" }, nil, home)
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("FROM_PLUGIN", cjson.decode(r.stdout).properties.environmentVariables[1].name)
    r = bai({ "job", "wait", "hooked", "-q", "--interval", "0.05" }, nil, home)
    assert.are.equal(0, r.status, "the job saw the variable the plugin added")
    local lines = T.read(log)
    assert.matches("^before hooked e\nafter hooked hooked\n", lines)
    assert.matches("\nstate hooked succeeded\n$", lines)
  end)

  it("shows the endpoint's error with its code, message, target, request id and every detail", function()
    -- A job value whose JSON is sent as it is: the client's own checks would catch these errors first.
    local file = T.write(dir .. "/raw.lua", [[return setmetatable({}, { __index = {
      to_json = function() return '{"properties":{"nodeCount":0}}' end } })]])
    local r = bai { "job", "create", "raw", "-f", file }
    assert.are.equal(1, r.status)
    local lines = {}
    for line in r.stderr:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.matches("^bai: create job 'raw': InvalidParameter: JobCreateParameters%.properties%.cluster: required field " ..
      "missing %(and 3 more errors; see details%) %(HTTP 400, target 'JobCreateParameters%.properties%.cluster', " ..
      "request id [%x%-]+%)$", lines[1])
    assert.are.same({
      "  JobCreateParameters.properties.cluster: required field missing (InvalidParameter)",
      "  JobCreateParameters.properties.nodeCount: integer >= 1 expected, got 0 (InvalidParameter)",
      "  JobCreateParameters.properties.stdOutErrPathPrefix: required field missing (InvalidParameter)",
      "  JobCreateParameters.properties: one toolkit settings table expected (cntkSettings, pyTorchSettings, " ..
        "tensorFlowSettings, caffeSettings, caffe2Settings, chainerSettings, customToolkitSettings, customMpiSettings " ..
        "or horovodSettings), got none (InvalidParameter)",
    }, { table.unpack(lines, 2) })
    assert.are.equal(1, bai({ "job", "show", "raw" }).status, "nothing was created")
  end)

  it("gives clear usage errors", function()
    local r = bai { "job" }
    assert.are.equal(2, r.status)
    assert.matches("^bai: missing command: one of create, show, list", r.stderr)
    r = bai { "job", "shwo", "x" }
    assert.are.equal("bai: unknown command 'job shwo' (did you mean 'show'?)\nTry 'bai help job' for usage.\n", r.stderr)
    r = bai { "job", "show", "bad name" }
    assert.are.equal(1, r.status)
    assert.are.equal("bai: job name 'bad name' is invalid: 1 to 64 letters, digits, '-' or '_'\n", r.stderr)
    r = bai { "job", "list", "-o", "xml" }
    assert.are.equal(2, r.status)
    assert.matches("invalid value 'xml' for option '%-o' %(choose from table, json, jsonl, tsv%)", r.stderr)
    r = bai { "job", "show", "--help" }
    assert.are.equal(0, r.status)
    assert.matches("^usage: bai job show NAME %[OPTIONS%]", r.stdout)
  end)

  it("answers help and usage errors without loading libcurl", function()
    for _, args in ipairs { { "job", "--help" }, { "job", "show", "--help" }, { "job", "shwo" }, { "experiment", "--help" } } do
      local r = bai(args, { LD_DEBUG = "files" })
      assert.is_true(r.status == 0 or r.status == 2, r.stderr)
      assert.is_nil(r.stderr:find("libcurl", 1, true), table.concat(args, " ") .. " loaded libcurl")
      assert.is_truthy(r.stderr:find("calling init", 1, true), "the loader reported what it loaded")
    end
  end)
end)

describe("client command line with nothing configured", function()
  it("starts the local bai serve on first use, says so, and uses it", function()
    local state = T.tmpdir()
    local env = { XDG_STATE_HOME = state, BAI_ENDPOINT = false }
    finally(function() T.run({ "serve", "stop" }, { env = env }) end)
    local r = T.run({ "workspace", "create", "-o", "tsv" }, { env = env, timeout = 60 })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^default\tlocal\tsucceeded\t", r.stdout)
    assert.matches("bai serve", r.stderr)
    r = T.run({ "workspace", "list", "-o", "tsv" }, { env = env, timeout = 60 })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("^default\tlocal\tsucceeded\t", r.stdout)
    assert.are.equal("", r.stderr, "the second command finds the running endpoint")
  end)
end)

describe("client command line help", function()
  it("answers --help and -h for every command and sub-command, naming each of its options", function()
    for _, group_name in ipairs { "job", "experiment", "workspace", "config" } do
      local group = require("batchai.cli." .. group_name).group
      for _, flag in ipairs { "--help", "-h" } do
        local r = T.run { group_name, flag }
        assert.are.equal(0, r.status, r.stderr)
        assert.are.equal("usage: bai " .. group_name .. " COMMAND [OPTIONS]\n", r.stdout:match("^[^\n]*\n"))
        for _, sub in ipairs(group.order) do
          assert.matches("\n  " .. sub .. " ", r.stdout, 1, true)
        end
      end
      for _, sub in ipairs(group.order) do
        local spec = group.subcommands[sub]
        local r = T.run { group_name, sub, "--help" }
        assert.are.equal(0, r.status, group_name .. " " .. sub .. ": " .. r.stderr)
        local usage = ("usage: bai %s %s%s [OPTIONS]\n\n%s\n"):format(group_name, sub,
          spec.args and (" " .. spec.args) or "", spec.summary)
        assert.are.equal(usage, r.stdout:sub(1, #usage))
        for _, o in ipairs(spec.options or {}) do
          assert.is_truthy(r.stdout:find("--" .. o[2], 1, true), group_name .. " " .. sub .. " --help: no --" .. o[2])
        end
        for _, o in ipairs(group.common) do
          assert.is_truthy(r.stdout:find("--" .. o[2], 1, true), group_name .. " " .. sub .. " --help: no --" .. o[2])
        end
        assert.are.equal(r.stdout, T.run({ group_name, sub, "-h" }).stdout)
      end
    end
  end)
end)

-- Starts spec/support/fakearm.py (fault-injecting proxy, scripted endpoint,
-- fake token endpoint) and talks to its control API.
--   local F = require "fakearm"
--   local fake = F.start { upstream = url | upstream_socket = path }
--   fake.url, fake:script{...}, fake:faults{...}, fake:log(), fake:stop()
local cjson = require "cjson"
local sys = require "batchai._sys"
local loop = require "batchai.client.loop"
local T = require "testkit"

local F = {}
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]+$") or "spec/support"

local Fake = {}
Fake.__index = Fake

function F.start(opts)
  opts = opts or {}
  local dir = T.tmpdir()
  local args = { "python3", here .. "/fakearm.py", "--parent", tostring(sys.getpid()) }
  if opts.upstream then args[#args + 1] = "--upstream"; args[#args + 1] = opts.upstream end
  if opts.upstream_socket then args[#args + 1] = "--upstream-socket"; args[#args + 1] = opts.upstream_socket end
  local words = {}
  for i, a in ipairs(args) do words[i] = T.quote(a) end
  os.execute(table.concat(words, " ") .. " >" .. T.quote(dir .. "/port") .. " 2>" .. T.quote(dir .. "/log") .. " &")
  local deadline = sys.monotime() + 10
  local line
  repeat
    line = T.read(dir .. "/port")
    if line and line:find("\n") then break end
    sys.sleep(0.02)
  until sys.monotime() > deadline
  local port, pid = (line or ""):match("^(%d+) (%d+)")
  assert(port, "fakearm did not start: " .. tostring(T.read(dir .. "/log")))
  return setmetatable({ url = "http://127.0.0.1:" .. port, port = tonumber(port), pid = tonumber(pid), dir = dir }, Fake)
end

function Fake:control(what, data)
  local status, body = loop.request {
    method = data == nil and "GET" or "POST", url = self.url .. "/__fake/" .. what,
    body = data ~= nil and cjson.encode(data) or nil, headers = { "Content-Type: application/json" },
  }
  assert(status == 200, "fakearm control " .. what .. ": " .. tostring(status) .. " " .. tostring(body))
  return cjson.decode(body)
end

function Fake:script(items) return self:control("script", items) end
function Fake:faults(spec) return self:control("faults", spec) end
function Fake:rewrite(list) return self:control("rewrite", list) end
function Fake:tokens(spec) return self:control("tokens", spec) end
function Fake:reset() return self:control("reset", {}) end
function Fake:log() return self:control("log") end
function Fake:stats() return self:control("stats") end

function Fake:stop()
  if self.pid then sys.kill(self.pid, 15) end
  self.pid = nil
end

return F

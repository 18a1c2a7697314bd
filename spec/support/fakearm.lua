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
  if opts.socket then args[#args + 1] = "--socket"; args[#args + 1] = opts.socket end
  if opts.tls then
    args[#args + 1] = "--tls"; args[#args + 1] = opts.tls.cert; args[#args + 1] = opts.tls.key
  end
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
  local url = "http://127.0.0.1:" .. port
  if opts.tls then url = "https://localhost:" .. port end
  if opts.socket then url = "http://localhost" end
  return setmetatable({ url = url, port = tonumber(port), pid = tonumber(pid), dir = dir, socket = opts.socket }, Fake)
end

function Fake:control(what, data)
  local status, body = loop.request {
    method = data == nil and "GET" or "POST", url = self.url .. "/__fake/" .. what,
    body = data ~= nil and cjson.encode(data) or nil, headers = { "Content-Type: application/json" },
    unix_socket = self.socket,
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

--- A self-signed certificate for localhost: { cert =, key = } (needs openssl).
function F.certificate()
  local dir = T.tmpdir()
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  local r = T.exec({ "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1" })
  assert(r.status == 0, r.stderr)
  return { cert = cert, key = key }
end

--- A free TCP port on 127.0.0.1 (for servers that cannot report the one they got).
function F.free_port()
  local p = io.popen([[python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']])
  local port = tonumber(p:read("l"))
  p:close()
  return port
end

function Fake:stop()
  if self.pid then sys.kill(self.pid, 15) end
  self.pid = nil
end

return F

-- batchai._http: the libcurl multi binding, against a real bai serve, and the
-- fake (spec/support/fakearm) where a spec must see what was sent or needs a
-- drop, a delay, TLS or a socket of its own.
local http = require "batchai._http"
local sys = require "batchai._sys"
local T = require "testkit"
local F = require "fakearm"

-- Runs every transfer of m to completion; returns results by ref.
local function drain(m, limit)
  local results = {}
  local deadline = sys.monotime() + (limit or 60)  -- a guard against hanging, not a timing
  while m:pending() > 0 do
    assert(sys.monotime() < deadline, "transfers did not finish")
    m:perform(0.2)
    while true do
      local ref, status, body, headers = m:next()
      if ref == nil then break end
      results[ref] = { status = status, body = body, headers = headers }
    end
  end
  return results
end

describe("batchai._http", function()
  local fake
  setup(function() fake = F.start() end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  it("runs many transfers at once and reuses connections (against bai serve)", function()
    local S = require "serve"
    local srv = S.start { slots = 0 }
    finally(function() srv:stop() end)
    for i = 1, 40 do srv:make_experiment("ws", "e" .. i) end
    local m <close> = http.multi { max_host_connections = 8 }
    local auth = http.headers { "Authorization: Bearer " .. srv.token }
    for i = 1, 40 do
      assert(m:add(i, { url = srv.url .. S.exp_path("ws", "e" .. i) .. "?" .. S.API, headers = auth }))
    end
    assert.are.equal(40, m:pending())
    local results = drain(m)
    for i = 1, 40 do
      assert.are.equal(200, results[i].status, results[i].body)
      assert.are.equal("e" .. i, require("cjson").decode(results[i].body).name)
      assert.matches("\r\n[Xx]%-[Mm][Ss]%-[Rr]equest%-[Ii][Dd]: %S+\r\n", results[i].headers)
      assert.matches("^HTTP/1%.1 200", results[i].headers)
    end
    local stats = m:stats()
    assert.are.equal(40, stats.completed)
    assert.is_true(stats.connects <= 8, "opened " .. stats.connects .. " connections for 40 requests")
    assert.is_true(stats.pooled <= 40)
  end)

  it("sends methods, bodies and headers as given", function()
    local m <close> = http.multi()
    fake:script { { method = "PUT", path = "/put", status = 201, body = "{}" },
      { method = "POST", path = "/post", status = 200 }, { method = "DELETE", path = "/del", status = 204 },
      { method = "PATCH", path = "/patch", status = 200 } }
    m:add("put", { method = "PUT", url = fake.url .. "/put", body = '{"a":1}', headers = { "Content-Type: application/json", "Authorization: Bearer abc" } })
    m:add("post", { method = "POST", url = fake.url .. "/post" })
    m:add("del", { method = "DELETE", url = fake.url .. "/del" })
    m:add("patch", { method = "PATCH", url = fake.url .. "/patch", body = ("x"):rep(5000) })
    local r = drain(m)
    assert.are.equal(201, r.put.status)
    assert.are.equal(200, r.post.status)
    assert.are.equal(204, r.del.status)
    assert.are.equal(200, r.patch.status)
    local seen = {}
    for _, entry in ipairs(fake:log()) do seen[entry.method] = entry end
    assert.are.equal('{"a":1}', seen.PUT.body)
    assert.are.equal("Bearer abc", seen.PUT.authorization)
    assert.are.equal("", seen.POST.body)
    assert.are.equal(5000, #seen.PATCH.body)
  end)

  it("reuses pooled handles without carrying options from one request to the next", function()
    local path = T.tmpdir() .. "/s.sock"
    local sock = F.start { socket = path }
    finally(function() sock:stop() end)
    sock:script { { method = "PUT", path = "/s", status = 200, body = "via socket" } }
    fake:script {
      { method = "GET", path = "/g", status = 200, body = "got", times = 3 },
      { method = "HEAD", path = "/g", status = 200 },
    }
    local m <close> = http.multi()
    local shared = http.headers { "X-Shared: yes" }
    local order = {
      { method = "PUT", url = "http://localhost/s", unix_socket = path, body = "payload", timeout = 5, headers = shared },
      { url = fake.url .. "/g" },
      { method = "HEAD", url = fake.url .. "/g" },
      { url = fake.url .. "/g", headers = { "X-Own: 1" } },
    }
    local got = {}
    for i, req in ipairs(order) do  -- one at a time: each reuses the same handle
      m:add(i, req)
      got[i] = drain(m)[i]
    end
    assert.are.equal(1, m:stats().pooled)
    assert.are.equal("via socket", got[1].body)
    assert.are.equal("got", got[2].body)
    assert.are.equal("", got[3].body)
    assert.are.equal("got", got[4].body)
    local log = fake:log()
    assert.are.same({ "GET", "HEAD", "GET" }, { log[1].method, log[2].method, log[3].method })
    assert.are.equal("", log[1].body)
    assert.are.equal("yes", sock:log()[1].x_shared)
    assert.matches("batchai.HttpHeaders %(1 lines%)", tostring(shared))
  end)

  it("reports transport failures with a code instead of raising", function()
    local m <close> = http.multi()
    fake:script { { method = "GET", path = "/drop", action = "drop" } }
    m:add("refused", { url = "http://127.0.0.1:1/" })
    m:add("dropped", { url = fake.url .. "/drop" })
    local got = {}
    while m:pending() > 0 do
      m:perform(0.2)
      while true do
        local ref, status, message, code = m:next()
        if ref == nil then break end
        got[ref] = { status = status, message = message, code = code }
      end
    end
    assert.is_nil(got.refused.status)
    assert.are.equal("COULDNT_CONNECT", got.refused.code)
    assert.matches("127%.0%.0%.1 port 1", got.refused.message)
    assert.is_nil(got.dropped.status)
    assert.are.equal("GOT_NOTHING", got.dropped.code)
  end)

  it("times out slow answers", function()
    local m <close> = http.multi()
    fake:script { { method = "GET", path = "/slow", action = "delay", delay_seconds = 5 } }
    m:add(1, { url = fake.url .. "/slow", timeout = 0.3 })
    local got
    while m:pending() > 0 do
      m:perform(0.1)
      local ref, status, message, code = m:next()
      if ref then got = { status, message, code } end
    end
    assert.is_nil(got[1], "the answer came after 5 s; the transfer gave up at 0.3 s")
    assert.are.equal("OPERATION_TIMEDOUT", got[3])
    assert.matches("^Operation timed out after %d+ milliseconds", got[2])
  end)

  it("writes a body to a file, and refuses an unwritable one without taking a handle (against bai serve)", function()
    local S = require "serve"
    local srv = S.start { slots = 0, tcp = false }
    finally(function() srv:stop() end)
    for i = 1, 30 do srv:make_experiment("ws", ("experiment-with-a-long-name-%02d"):format(i)) end
    local dir = T.tmpdir()
    local url = "http://localhost" .. S.ws_path("ws") .. "/experiments?" .. S.API
    local m <close> = http.multi()
    assert(m:add(1, { url = url, unix_socket = srv.socket, output = dir .. "/out.json" }))
    assert(m:add(2, { url = url, unix_socket = srv.socket }))
    local r = drain(m)
    assert.are.equal(200, r[1].status)
    assert.are.equal("", r[1].body)
    assert.is_true(#r[2].body > 5000)
    assert.are.equal(r[2].body, T.read(dir .. "/out.json"))
    local id, err = m:add(3, { url = url, unix_socket = srv.socket, output = dir .. "/missing/out.bin" })
    assert.is_nil(id)
    assert.matches("missing/out.bin: No such file or directory", err)
    assert.are.equal(0, m:pending())
  end)

  it("cancels a transfer in flight", function()
    fake:script { { method = "GET", path = "/slow", action = "delay", delay_seconds = 60 } }  -- still in flight, however slow the machine
    local m <close> = http.multi()
    local id = m:add("x", { url = fake.url .. "/slow" })
    m:perform(0.05)
    assert.is_true(m:cancel(id))
    assert.is_false(m:cancel(id))
    assert.are.equal(0, m:pending())
    assert.is_nil(m:next())
  end)

  it("talks HTTP over a unix socket (bai serve's)", function()
    local S = require "serve"
    local srv = S.start { slots = 0, tcp = false }
    finally(function() srv:stop() end)
    srv:make_experiment("ws", "via-socket")
    local m <close> = http.multi()
    m:add(1, { url = "http://localhost" .. S.exp_path("ws", "via-socket") .. "?" .. S.API, unix_socket = srv.socket })
    local r = drain(m)
    assert.are.equal(200, r[1].status)
    assert.are.equal("via-socket", require("cjson").decode(r[1].body).name)
  end)

  it("keeps only the last response's header block", function()
    fake:script { { method = "GET", path = "/h", status = 202, headers = { Location = "http://x/y", ["Retry-After"] = "3" } } }
    local m <close> = http.multi()
    m:add(1, { url = fake.url .. "/h" })
    local r = drain(m)
    assert.are.equal(202, r[1].status)
    assert.matches("Location: http://x/y\r\n", r[1].headers)
    assert.matches("Retry%-After: 3\r\n", r[1].headers)
  end)

  it("raises on misuse, naming the field", function()
    local m <close> = http.multi()
    assert.has_error(function() m:add(1, { url = "http://x/", methd = "GET" }) end,
      "invalid field 'methd' in HTTP request (did you mean 'method'?)")
    assert.has_error(function() m:add(1, { method = "get", url = "http://x/" }) end,
      "field 'method': upper-case HTTP method expected, got 'get'")
    assert.has_error(function() m:add(1, { method = "GET", url = "http://x/", body = "x" }) end,
      "field 'body': a GET request has no body")
    assert.has_error(function() m:add(1, { url = "http://x/", headers = { "No colon" } }) end,
      "field 'headers': item 1 is not one 'Name: value' line")
    assert.has_error(function() m:add(1, { url = "http://x/", headers = { "A: b\r\nInjected: yes" } }) end,
      "field 'headers': item 1 is not one 'Name: value' line")
    assert.has_error(function() m:add(1, {}) end, "field 'url': string expected")
    assert.has_error(function() http.multi { max_hosts = 1 } end,
      "invalid field 'max_hosts' in http.multi")
    assert.are.equal(0, m:pending())
    m:close()
    assert.has_error(function() m:add(1, { url = "http://x/" }) end)
    assert.matches("closed", tostring(m))
  end)

  it("refuses protocols other than http and https", function()
    local m <close> = http.multi()
    m:add(1, { url = "file:///etc/passwd" })
    m:perform(0.1)
    local ref, status, _, code = m:next()
    assert.are.equal(1, ref)
    assert.is_nil(status)
    assert.are.equal("UNSUPPORTED_PROTOCOL", code)
  end)

  it("frees transfers still in flight when the handle is collected", function()
    fake:script { { method = "GET", path = "/slow", action = "delay", delay_seconds = 1 } }
    do
      local m = http.multi()
      for i = 1, 5 do m:add(i, { url = fake.url .. "/slow" }) end
      m:perform(0.01)
    end
    collectgarbage()
    collectgarbage()
  end)
end)

describe("batchai._http in the process", function()
  -- Unloading libcurl when the Lua state closes would run the destructors of
  -- the libraries it pulled in before exit (gnutls then sets up its
  -- thread-local storage, which made AddressSanitizer's leak checker crash)
  -- and take the code from under a resolver thread libcurl detached.
  it("keeps libcurl loaded until the process exits", function()
    local r = T.exec({ T.bai, "-e", "require('batchai._http').multi():close()" }, { env = { LD_DEBUG = "files" } })
    assert.are.equal(0, r.status, r.stderr)
    assert.is_truthy(r.stderr:find("calling fini: %S*/libcurl%.so"), "the loader reports libcurl's destructors at exit")
    assert.is_nil(r.stderr:match("file=%S*/_http%.so %[0%];%s+destroying link map"), "_http.so unloaded")
    assert.is_nil(r.stderr:match("file=%S*/libcurl%.so%S* %[0%];%s+destroying link map"), "libcurl unloaded")
  end)
end)

describe("batchai._http over TLS", function()
  local cert, server
  setup(function()
    cert = F.certificate()
    server = F.start { tls = cert }
  end)
  teardown(function() server:stop() end)

  it("always verifies the peer: a self-signed certificate fails, its CA file succeeds", function()
    local m <close> = http.multi()
    m:add(1, { url = server.url .. "/__fake/stats" })
    m:perform(1)
    local got
    while m:pending() > 0 or not got do
      m:perform(0.1)
      local ref, status, message, code = m:next()
      if ref then got = { status, message, code } end
    end
    assert.is_nil(got[1])
    assert.are.equal("PEER_FAILED_VERIFICATION", got[3])
    local trusted <close> = http.multi { ca_file = cert.cert }
    trusted:add(1, { url = server.url .. "/__fake/stats" })
    local r = drain(trusted)
    assert.are.equal(200, r[1].status)
  end)

  it("uses HTTP/2 and multiplexes when the server offers it", function()
    if not T.has_command("nghttpd") then
      pending("nghttpd (Debian nghttp2-server) is not installed")
      return
    end
    local dir = T.tmpdir()
    T.write(dir .. "/index.json", '{"ok":true}')
    local port = F.free_port()
    local pidfile = dir .. "/pid"
    os.execute(("nghttpd -d %s %d %s %s >/dev/null 2>&1 & echo $! > %s")
      :format(T.quote(dir), port, T.quote(cert.key), T.quote(cert.cert), T.quote(pidfile)))
    local pid = tonumber(T.read(pidfile))
    finally(function() if pid then sys.kill(pid, 15) end end)
    local m <close> = http.multi { ca_file = cert.cert }
    local url = ("https://localhost:%d/index.json"):format(port)
    local r
    local deadline = sys.monotime() + 30
    repeat  -- until it listens
      m:add(0, { url = url })
      r = drain(m)
      if r[0].status then break end
      sys.sleep(0.05)
    until sys.monotime() > deadline
    assert.are.equal(200, r[0].status)
    local before = m:stats().connects
    for i = 1, 20 do m:add(i, { url = url }) end
    r = drain(m)
    for i = 1, 20 do assert.are.equal('{"ok":true}', r[i].body) end
    local stats = m:stats()
    assert.are.equal(21, stats.http2)
    assert.are.equal(before, stats.connects, "HTTP/2 streams share the one connection")
  end)
end)

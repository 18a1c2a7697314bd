-- wrk script: PUT job creates with unique names (durable creates per second).
-- Env: BAI_TOKEN, BAI_EXP_PATH (experiment path), BAI_BODY (file with the JSON body).
local counter = 0
thread_id = 0 -- set per thread by setup() (a global of the thread's Lua state)
local token = os.getenv("BAI_TOKEN")
local exp = os.getenv("BAI_EXP_PATH")
local f = assert(io.open(os.getenv("BAI_BODY")))
local body = f:read("a")
f:close()
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  threads[#threads + 1] = thread
end

function request()
  counter = counter + 1
  return wrk.format("PUT", exp .. "/jobs/t" .. thread_id .. "-" .. counter .. "?api-version=2018-05-01",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

local non200 = 0
function response(status)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  io.write(("creates_total=%d errors=%d\n"):format(summary.requests, summary.errors.status))
end

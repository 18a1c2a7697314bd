-- wrk script: GET of random jobs among those the benchmark's fill step made
-- (fill<k>-<i>, k < 16, i < BAI_PER_WORKER), so most miss the endpoint's body cache.
-- Env: BAI_TOKEN, BAI_EXP_PATH, BAI_PER_WORKER.
local token = os.getenv("BAI_TOKEN")
local exp = os.getenv("BAI_EXP_PATH")
local per = tonumber(os.getenv("BAI_PER_WORKER"))
math.randomseed(os.time())
function request()
  return wrk.format("GET", ("%s/jobs/fill%d-%d?api-version=2018-05-01"):format(exp, math.random(0, 15), math.random(0, per - 1)),
    { ["Authorization"] = "Bearer " .. token })
end

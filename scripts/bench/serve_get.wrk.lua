-- wrk script: GET of one job (or any path) with the bearer token.  Env: BAI_TOKEN, BAI_PATH.
local path = os.getenv("BAI_PATH")
local token = os.getenv("BAI_TOKEN")
function request()
  return wrk.format("GET", path, token and { ["Authorization"] = "Bearer " .. token } or {})
end

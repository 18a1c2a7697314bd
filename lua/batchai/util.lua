-- Small helpers shared across bai's Lua modules.
local M = {}

-- Edit distance counting a swap of neighbours as one edit (optimal string
-- alignment), so "hepl" is one edit from "help".
local function distance(a, b)
  local la, lb = #a, #b
  if la == 0 then return lb end
  if lb == 0 then return la end
  local d = {}
  for i = 0, la do d[i] = { [0] = i } end
  for j = 0, lb do d[0][j] = j end
  for i = 1, la do
    local ca = a:byte(i)
    for j = 1, lb do
      local cb = b:byte(j)
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ca == cb and 0 or 1))
      if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[la][lb]
end
M.distance = distance

--- The candidate nearest to `name` (case-insensitive first), or nil when none is close.
-- `candidates` is an array of strings or a table whose string keys are the candidates.
function M.suggest(name, candidates)
  local list = {}
  if #candidates > 0 then
    list = candidates
  else
    for k in pairs(candidates) do
      if type(k) == "string" then list[#list + 1] = k end
    end
  end
  local lower = name:lower()
  local best, best_d
  for _, c in ipairs(list) do
    if c:lower() == lower then return c end
    local d = distance(lower, c:lower())
    if not best_d or d < best_d or (d == best_d and c < best) then best, best_d = c, d end
  end
  if best and best_d <= math.max(2, #name // 3) then return best end
  return nil
end

--- " (did you mean 'x'?)" or "" when nothing is close.
function M.did_you_mean(name, candidates)
  local s = M.suggest(name, candidates)
  return s and (" (did you mean '" .. s .. "'?)") or ""
end

--- Sorted array of a table's keys.
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

--- The whole content of a file: text | nil, "PATH: reason" (a missing file,
-- a directory, a read error).
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text, read_err = f:read("a")
  f:close()
  if not text then return nil, path .. ": " .. tostring(read_err) end
  return text
end

--- Writes data to path in place (not atomic, no fsync: for small files of a
-- directory being set up, that nothing reads yet).  Returns true | nil, err.
function M.write_file(path, data)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, write_err = f:write(data)
  local closed, close_err = f:close()
  if not (ok and closed) then return nil, path .. ": " .. tostring(write_err or close_err) end
  return true
end

--- Epoch seconds of a UTC calendar time (os.time would read it as local
-- time); days counted with Howard Hinnant's days_from_civil.
function M.utc_time(year, month, day, hour, min, sec)
  local y = month <= 2 and year - 1 or year
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (month + (month > 2 and -3 or 9)) + 2) // 5 + day - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + hour * 3600 + min * 60 + sec
end

--- XDG base directory: kind is "config", "state", "data" or "cache".
function M.xdg_dir(kind)
  local env = { config = "XDG_CONFIG_HOME", state = "XDG_STATE_HOME", data = "XDG_DATA_HOME", cache = "XDG_CACHE_HOME" }
  local default = { config = "/.config", state = "/.local/state", data = "/.local/share", cache = "/.cache" }
  local value = os.getenv(env[kind])
  if value and value:sub(1, 1) == "/" then return value end
  return (os.getenv("HOME") or "/tmp") .. default[kind]
end

return M

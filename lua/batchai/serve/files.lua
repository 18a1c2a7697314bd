-- Output files of jobs: Jobs_ListOutputFiles (per output directory id, plus
-- "stdouterr"; `directory` within it; paging) and the download URLs it hands
-- out: /files/<job row id>/<job uuid>/<directory id>/<path>?se=<expiry>&sig=<HMAC>,
-- valid without a bearer token until `se` (like the storage SAS URLs the service
-- returned), with Range support for tailing logs.
local httpd = require "batchai._httpd"
local sys = require "batchai._sys"
local wire = require "batchai.serve.wire"
local launch = require "batchai.serve.launch"
local api -- batchai.serve.api, loaded lazily (it requires this module's callers)

local M = {}

local function fail(...)
  api = api or require "batchai.serve.api"
  api.fail(...)
end

local function escape_path(p)
  return (p:gsub("[^%w%-%._~/]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- Normalizes a relative directory or file path; raises 400 when it is
-- absolute or climbs out ("..").
local function clean_relative(rel, param)
  if rel == nil or rel == "" or rel == "." then return "" end
  if rel:sub(1, 1) == "/" then
    fail(400, "InvalidParameter", ("The %s '%s' must be relative to the output directory."):format(param, rel), param)
  end
  local parts = {}
  for seg in rel:gmatch("[^/]+") do
    if seg == ".." then
      fail(400, "InvalidParameter", ("The %s '%s' leaves the output directory."):format(param, rel), param)
    elseif seg ~= "." then
      parts[#parts + 1] = seg
    end
  end
  return table.concat(parts, "/")
end

-- The real path of root/rel, which must stay inside root's real path (no
-- escape through symbolic links); nil when it does not exist.
local function resolve_inside(root, rel)
  local real_root = sys.realpath(root)
  if not real_root then return nil end
  local real = sys.realpath(rel == "" and root or (root .. "/" .. rel))
  if not real then return nil end
  if real ~= real_root and real:sub(1, #real_root + 1) ~= real_root .. "/" then return false end
  return real
end

local function signature(ctx, job_id, uuid, dir_id, rel, expiry)
  return httpd.hmac_sha256(ctx.download_key, table.concat({ job_id, uuid, dir_id, rel, expiry }, "\n"))
end

function M.list(ctx, req, path, job)
  local dir_id = req:arg("outputdirectoryid")
  if not dir_id or dir_id == "" then
    fail(400, "InvalidParameter", "The query parameter 'outputdirectoryid' is required (an outputDirectories id, or "
      .. "'stdouterr').", "outputdirectoryid")
  end
  local expiry_min = tonumber(req:arg("linkexpiryinminutes") or "60")
  if not expiry_min or expiry_min ~= math.floor(expiry_min) or expiry_min < 5 or expiry_min > 600 then
    fail(400, "InvalidParameter", "The value of 'linkexpiryinminutes' must be an integer from 5 to 600.", "linkexpiryinminutes")
  end
  local limit = tonumber(req:arg("maxresults") or "1000")
  if not limit or limit ~= math.floor(limit) or limit < 1 or limit > 1000 then
    fail(400, "InvalidParameter", "The value of 'maxresults' must be an integer from 1 to 1000.", "maxresults")
  end
  local spec = wire.decode(job.spec)
  local root = launch.output_dir(ctx.clusters:settings(job.cluster), job, spec, dir_id)
  if not root then
    local ids = { "stdouterr" }
    for _, d in ipairs(spec.properties.outputDirectories or {}) do ids[#ids + 1] = d.id end
    fail(400, "InvalidParameter", ("The job has no output directory '%s' (it has: %s)."):format(dir_id, table.concat(ids, ", ")),
      "outputdirectoryid")
  end
  local rel = clean_relative(req:arg("directory"), "directory")
  local real = resolve_inside(root, rel)
  if real == false then
    fail(400, "InvalidParameter", ("The directory '%s' leaves the output directory."):format(rel), "directory")
  end
  local names = real and sys.list_dir(real) or {}
  local after = req:arg("$skiptoken")
  local expiry = math.floor(sys.now()) + math.floor(expiry_min) * 60
  local uuid = job.segment:match("([^/]+)$")
  local base = ctx.scheme .. "://" .. (req:header("Host") or "localhost")
  local value, last = {}, nil
  local more = false
  for _, name in ipairs(names) do
    if not after or name > after then
      if #value == limit then
        more = true
        break
      end
      local relname = rel == "" and name or (rel .. "/" .. name)
      local st = sys.stat(real .. "/" .. name)
      if st and st.type == "directory" then
        value[#value + 1] = { name = relname, fileType = "directory" }
      elseif st and st.type == "file" then
        local sig = signature(ctx, job.id, uuid, dir_id, relname, expiry)
        value[#value + 1] = {
          name = relname, fileType = "file",
          downloadUrl = ("%s/files/%d/%s/%s/%s?se=%d&sig=%s"):format(base, job.id, uuid, escape_path(dir_id),
            escape_path(relname), expiry, sig),
          properties = { lastModified = wire.iso_time(st.mtime):gsub("%.%d%d%dZ$", "Z"), contentLength = st.size },
        }
      end
      last = name
    end
  end
  local out = { value = value }
  if more then
    out.nextLink = base .. path .. "?api-version=2018-05-01&outputdirectoryid=" .. wire.url_escape(dir_id)
      .. "&directory=" .. wire.url_escape(rel == "" and "." or rel) .. "&linkexpiryinminutes=" .. math.floor(expiry_min)
      .. "&maxresults=" .. math.floor(limit) .. "&$skiptoken=" .. wire.url_escape(last)
  end
  ctx.reply(req, 200, wire.encode(out))
end

local function error_reply(ctx, req, status, code, message)
  ctx.reply(req, status, wire.error_body(code, message))
end

--- GET/HEAD /files/...: a signed download, with a single-range Range header.
function M.download(ctx, req, method, path)
  if method ~= "GET" and method ~= "HEAD" then
    return error_reply(ctx, req, 405, "MethodNotAllowed", "Downloads answer GET and HEAD only.")
  end
  local job_id, uuid, dir_id, rel = path:match("^/files/(%d+)/([%w%-]+)/([^/]+)/(.+)$")
  local expiry, sig = req:arg("se"), req:arg("sig")
  if not job_id or not expiry or not sig then
    return error_reply(ctx, req, 404, "NotFound", "No such download.")
  end
  local ok_rel, clean = pcall(clean_relative, rel, "path")
  if not ok_rel or clean ~= rel then return error_reply(ctx, req, 404, "NotFound", "No such download.") end
  local want = signature(ctx, math.tointeger(tonumber(job_id)), uuid, dir_id, rel, expiry)
  if want ~= sig then
    return error_reply(ctx, req, 403, "AuthorizationFailed", "The download URL's signature is not valid.")
  end
  if tonumber(expiry) < sys.now() then
    return error_reply(ctx, req, 403, "AuthorizationFailed", "The download URL has expired; list the output files again.")
  end
  local job = ctx.store:job_by_id(math.tointeger(tonumber(job_id)))
  if not job or job.segment:match("([^/]+)$") ~= uuid then
    return error_reply(ctx, req, 404, "NotFound", "The job of this download no longer exists.")
  end
  local root = launch.output_dir(ctx.clusters:settings(job.cluster), job, wire.decode(job.spec), dir_id)
  local real = root and resolve_inside(root, rel)
  local st = real and sys.stat(real)
  if not st or st.type ~= "file" then return error_reply(ctx, req, 404, "NotFound", "The file no longer exists.") end
  local size = st.size
  local headers = { ["Accept-Ranges"] = "bytes", ["Content-Type"] = rel:find("%.txt$") and "text/plain; charset=utf-8"
    or "application/octet-stream", ["Last-Modified"] = os.date("!%a, %d %b %Y %H:%M:%S GMT", math.floor(st.mtime)) }
  local range = req:header("Range")
  local first, last = 0, size - 1
  local status = 200
  if range then
    local a, b = range:match("^%s*bytes=(%d*)-(%d*)%s*$")
    if a and (a ~= "" or b ~= "") then
      if a == "" then
        first = math.max(0, size - tonumber(b))
      else
        first = tonumber(a)
        if b ~= "" then last = math.min(tonumber(b), size - 1) end
      end
      if first >= size or first > last then
        headers["Content-Range"] = "bytes */" .. size
        return ctx.reply(req, 416, wire.error_body("InvalidRange", ("The range '%s' is outside the file (%d bytes)."):format(range, size)), headers)
      end
      status = 206
      headers["Content-Range"] = ("bytes %d-%d/%d"):format(first, last, size)
    end
  end
  local length = size == 0 and 0 or (last - first + 1)
  local ok, err = req:respond_file(status, real, first, length, headers)
  if not ok then return error_reply(ctx, req, 404, "NotFound", "The file cannot be read: " .. tostring(err)) end
  ctx.log:request(req, status)
end

return M

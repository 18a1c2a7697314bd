-- `bai version`: versions of bai and of the libraries it runs on.
local cli = require "batchai.cli"
local host = require "batchai._host"

local function optional(module_name, field)
  local ok, m = pcall(require, module_name)
  if ok and type(m) == "table" then return m[field] end
  return nil
end

return {
  summary = "Print the versions of bai and its libraries",
  usage = "bai version",
  run = function(args)
    cli.parse(args, { command = "version", max = 0 })
    local out = io.stdout
    out:write(("bai %s\n"):format(host.version))
    out:write(("  %s\n"):format(host.lua_release))
    out:write(("  lua-cjson %s\n"):format(require("cjson")._VERSION or "?"))
    out:write(("  readline %s\n"):format(require("batchai._readline").version))
    for _, lib in ipairs({ { "batchai._http", "libcurl" }, { "batchai._httpd", "libmicrohttpd" }, { "batchai._sqlite", "SQLite" } }) do
      local v = optional(lib[1], "library_version")
      if v then out:write(("  %s %s\n"):format(lib[2], v)) end
    end
    return 0
  end,
}

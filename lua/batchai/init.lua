-- The `batchai` module scripts require: one table whose fields are loaded on first use.
local host = require "batchai._host"

local M = { version = host.version }

-- Field name -> module that provides it.  Loading is deferred so that
-- `require "batchai"` costs next to nothing in a script that uses one part.
local field_modules = {
  plugins = "batchai.plugins",
  pretty = "batchai.pretty",
  util = "batchai.util",
}

-- Modules whose own fields become fields of `batchai` (for example the type
-- constructors of the schema), consulted in order for names not provided above.
local export_modules = {}

local function lookup(name)
  local module = field_modules[name]
  if module then return require(module) end
  for _, module_name in ipairs(export_modules) do
    local value = require(module_name)[name]
    if value ~= nil then return value end
  end
  return nil
end

-- Every name `batchai` answers to, for the REPL's completion.
local function all_names()
  local names = {}
  for name in pairs(field_modules) do names[#names + 1] = name end
  for name in pairs(M) do names[#names + 1] = name end
  for _, module_name in ipairs(export_modules) do
    local ok, exports = pcall(require, module_name)
    if ok and type(exports) == "table" then
      for name in pairs(exports) do
        if type(name) == "string" and not name:find("^_") then names[#names + 1] = name end
      end
    end
  end
  return names
end

setmetatable(M, {
  __index = function(t, name)
    local value = lookup(name)
    if value ~= nil then rawset(t, name, value) end
    return value
  end,
  __complete = all_names,
})

-- Each feature area declares its fields in lua/batchai/exports/AREA.lua:
-- `return { provide = { name = "module" }, export = { "module" } }`.
for _, spec_name in ipairs(host.modules("batchai.exports.")) do
  local spec = require(spec_name)
  for name, module_name in pairs(spec.provide or {}) do field_modules[name] = module_name end
  for _, module_name in ipairs(spec.export or {}) do export_modules[#export_modules + 1] = module_name end
end

require("batchai.plugins").load()

return M

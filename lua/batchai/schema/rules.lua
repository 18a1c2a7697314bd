-- Cross-field rules of the job model, the ones the spec states only in its
-- descriptions.  Applied in create mode (constructors, with, validate, check).
--
-- A rule is { needs = { field names }, check = function(d, path, st, report) }:
-- `d` holds the object's checked fields, `path` its path ("JobProperties"),
-- report(st, path, message, code) records an error.  The engine skips a rule
-- when a field it needs failed its own check, and in :with{} when none of the
-- fields it needs changed.
local kinds = require "batchai.schema.kinds"

local M = {}

local describe = kinds.describe

--- The toolkit settings fields of JobProperties, in spec order, with the
-- wire toolType each one gives (the fields marked `toolkit` in batchai.schema.types).
M.toolkits = {}
for _, field in ipairs(require("batchai.schema.types").JobProperties.fields) do
  if field.toolkit then M.toolkits[#M.toolkits + 1] = { field[1], field.toolkit } end
end
local toolkit_fields = {}
for i, t in ipairs(M.toolkits) do toolkit_fields[i] = t[1] end

-- "a", "a and b", "a, b and c"
local function and_list(names)
  if #names == 1 then return names[1] end
  return table.concat(names, ", ", 1, #names - 1) .. " and " .. names[#names]
end

M.one_toolkit = {
  doc = "Exactly one toolkit settings table (cntkSettings, pyTorchSettings, ...); it gives the wire toolType.",
  needs = toolkit_fields,
  check = function(d, path, st, report)
    local count = 0
    for i = 1, #toolkit_fields do
      if d[toolkit_fields[i]] ~= nil then count = count + 1 end
    end
    if count == 1 then return end
    local present = {}
    for i = 1, #toolkit_fields do
      if d[toolkit_fields[i]] ~= nil then present[#present + 1] = toolkit_fields[i] end
    end
    if #present == 0 then
      report(st, path, "one toolkit settings table expected (" .. table.concat(toolkit_fields, ", ", 1, #toolkit_fields - 1)
        .. " or " .. toolkit_fields[#toolkit_fields] .. "), got none", "Required")
    elseif #present > 1 then
      report(st, path .. "." .. present[2], "only one toolkit settings table allowed, got "
        .. and_list(present), "Conflict")
    end
  end,
}

--- Is a TensorFlow settings table (fields table) a distributed run?
function M.tensorflow_distributed(s)
  return s.workerCommandLineArgs ~= nil or s.parameterServerCommandLineArgs ~= nil
end

M.tensorflow_counts = {
  doc = "TensorFlow: workerCount and parameterServerCount only for distributed runs (workerCommandLineArgs or parameterServerCommandLineArgs given); parameterServerCount <= nodeCount.",
  needs = { "tensorFlowSettings", "nodeCount" },
  check = function(d, path, st, report, data_of)
    local tf = d.tensorFlowSettings
    if tf == nil then return end
    local s = data_of(tf)
    local p = path .. ".tensorFlowSettings."
    if not M.tensorflow_distributed(s) then
      for _, name in ipairs({ "workerCount", "parameterServerCount" }) do
        if s[name] ~= nil then
          report(st, p .. name, "allowed only for distributed training (with workerCommandLineArgs or "
            .. "parameterServerCommandLineArgs)", "Conflict")
        end
      end
      return
    end
    local ps, nodes = s.parameterServerCount, d.nodeCount
    if ps and nodes and ps > nodes then
      report(st, p .. "parameterServerCount", ("integer <= nodeCount (%d) expected, got %d"):format(nodes, ps),
        "InvalidValue")
    end
  end,
}

-- Reports the items of the arrays `lists` whose field `key` repeats an earlier
-- one: across all the lists when `across`, else within each list.  `what`
-- names the value in the message ("duplicate <what> "X" (also <where>)").
local function check_unique(d, path, st, report, data_of, lists, key, across, what)
  local seen = {}
  for _, list in ipairs(lists) do
    local items = d[list]
    if items then
      if not across then seen = {} end
      for i, item in ipairs(data_of(items)) do
        local value = data_of(item)[key]
        local here = ("%s[%d].%s"):format(list, i, key)
        if value then
          if seen[value] then
            report(st, path .. "." .. here, ("duplicate %s %s (also %s)"):format(what, describe(value), seen[value]),
              "Conflict")
          else
            seen[value] = here
          end
        end
      end
    end
  end
end

M.unique_env_names = {
  doc = "Environment variable names are unique across environmentVariables and secrets.",
  needs = { "environmentVariables", "secrets" },
  check = function(d, path, st, report, data_of)
    check_unique(d, path, st, report, data_of, M.unique_env_names.needs, "name", true, "environment variable name")
  end,
}

-- Directory ids are unique per list (they name $AZ_BATCHAI_INPUT_<id> / OUTPUT_<id>).
M.unique_directory_ids = {
  doc = "Input directory ids are unique, and so are output directory ids.",
  needs = { "inputDirectories", "outputDirectories" },
  check = function(d, path, st, report, data_of)
    check_unique(d, path, st, report, data_of, M.unique_directory_ids.needs, "id", false, "id")
  end,
}

-- Exactly one of two fields.
local function one_of(a, b)
  return {
    doc = "Exactly one of " .. a .. " and " .. b .. ".",
    needs = { a, b },
    check = function(d, path, st, report)
      if d[a] == nil and d[b] == nil then
        report(st, path, a .. " or " .. b .. " expected, got neither", "Required")
      elseif d[a] ~= nil and d[b] ~= nil then
        report(st, path .. "." .. b, "not allowed together with " .. a, "Conflict")
      end
    end,
  }
end

M.one_of_password = one_of("password", "passwordSecretReference")
M.one_of_account_key = one_of("accountKey", "accountKeySecretReference")
M.one_of_value = one_of("value", "valueSecretReference")

M.cntk_language = {
  doc = "languageType \"BrainScript\" needs configFilePath and allows no python fields; \"Python\" (the default) needs pythonScriptFilePath and allows no configFilePath.",
  needs = { "languageType", "configFilePath", "pythonScriptFilePath", "pythonInterpreterPath" },
  check = function(d, path, st, report)
    local language = d.languageType or "Python"
    local why = d.languageType and ('languageType is "' .. language .. '"')
      or 'languageType defaults to "Python"'
    if language == "BrainScript" then
      if d.configFilePath == nil then
        report(st, path .. ".configFilePath", 'required when languageType is "BrainScript"', "Required")
      end
      for _, name in ipairs({ "pythonScriptFilePath", "pythonInterpreterPath" }) do
        if d[name] ~= nil then
          report(st, path .. "." .. name, 'allowed only when languageType is "Python" (' .. why .. ")", "Conflict")
        end
      end
    else
      if d.pythonScriptFilePath == nil then
        report(st, path .. ".pythonScriptFilePath", 'required when languageType is "Python"'
          .. (d.languageType and "" or " (the default)"), "Required")
      end
      if d.configFilePath ~= nil then
        report(st, path .. ".configFilePath", 'allowed only when languageType is "BrainScript" (' .. why .. ")",
          "Conflict")
      end
    end
  end,
}

M.caffe_entry = {
  doc = "Exactly one of configFilePath and pythonScriptFilePath; pythonInterpreterPath only with pythonScriptFilePath.",
  needs = { "configFilePath", "pythonScriptFilePath", "pythonInterpreterPath" },
  check = function(d, path, st, report)
    local config, script = d.configFilePath, d.pythonScriptFilePath
    if config == nil and script == nil then
      report(st, path, "configFilePath or pythonScriptFilePath expected, got neither", "Required")
    elseif config ~= nil and script ~= nil then
      report(st, path .. ".pythonScriptFilePath", "not allowed together with configFilePath", "Conflict")
    end
    if d.pythonInterpreterPath ~= nil and script == nil then
      report(st, path .. ".pythonInterpreterPath", "allowed only with pythonScriptFilePath", "Conflict")
    end
  end,
}

return M

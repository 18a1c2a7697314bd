-- The fields of batchai.client that become fields of `bai` (see exports/client.lua).
local client = require "batchai.client"

return {
  workspace = client.workspace,
  experiment = client.experiment,
  workspaces = client.workspaces,
  collect = client.collect,
}

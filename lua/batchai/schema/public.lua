-- What the schema adds to `bai`: a constructor per job-model type
-- (bai.JobProperties{...}, bai.PyTorchSettings{...}, ...), bai.validate and bai.load_job.
local schema = require "batchai.schema"

local M = {}

for _, name in ipairs(schema.type_names()) do
  if schema.type_info(name).def.constructor then M[name] = schema[name] end
end

M.validate = schema.validate

--- bai.load_job(path[, overrides]) -> JobProperties | nil, errors (see batchai.schema).
M.load_job = schema.load_job

return M

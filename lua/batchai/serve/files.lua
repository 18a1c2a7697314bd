-- Output files of jobs: listOutputFiles and the signed download URLs it hands out.
local M = {}

function M.list(ctx, req, path, job)
  ctx.reply(req, 200, '{"value":[]}')
end

function M.download(ctx, req, method, path)
  ctx.reply(req, 404, require("batchai.serve.wire").error_body("NotFound", "No such file."))
end

return M

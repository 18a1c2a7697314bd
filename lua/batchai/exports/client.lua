-- The client's public names: bai.workspace, bai.experiment, bai.workspaces,
-- bai.collect, and bai.loop (concurrency) and bai.config (configuration).
return {
  provide = { loop = "batchai.client.loop", config = "batchai.config" },
  export = { "batchai.client.api" },
}

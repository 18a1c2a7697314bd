-- The schema's fields of `bai`: bai.schema (the module) and the constructors,
-- bai.validate and bai.load_job (batchai.schema.public).
return {
  provide = { schema = "batchai.schema" },
  export = { "batchai.schema.public" },
}

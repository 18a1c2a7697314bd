-- The sweep area's fields of `batchai`: bai.sweep and bai.shell.
return {
  provide = { sweep = "batchai.sweep", shell = "batchai.shell" },
}

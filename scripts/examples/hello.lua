-- A first bai script: the host, its modules, and a pretty-printed table.
local bai = require "batchai"
print(("bai %s is running %s"):format(bai.version, _VERSION))
print(bai.pretty.format({ job = "hello", nodeCount = 1, tags = { "demo", "local" } }))

-- The suite's entry point, run inside the binary under test:
--   build/bin/bai spec/run.lua [busted options] [spec files or folders]
-- Ends with "N passed, N failed, N skipped"; exits non-zero on any failure.
local here = arg[0]:match("^(.*)/[^/]+$") or "."
package.path = here .. "/support/?.lua;" .. package.path

local sys = require "batchai._sys"
if not os.getenv("BAI") then
  -- The binary running this file is the one under test.
  sys.setenv("BAI", sys.realpath("/proc/self/exe"))
end

-- The run's temporary root (BAI_SPEC_TMP), removed when this process ends.
require "testkit"

local args = { [0] = arg[0], "--output=" .. here .. "/support/summary.lua" }
local paths = false
for i = 1, #arg do
  args[#args + 1] = arg[i]
  if arg[i]:sub(1, 1) ~= "-" then paths = true end
end
if not paths then args[#args + 1] = here end
arg = args

require "busted.runner" ({ standalone = false })

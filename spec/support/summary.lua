-- busted output handler: the usual terminal output, then one plain last line
-- "N passed, N failed, N skipped" (errors count as failed).
return function(options)
  local busted = require "busted"
  local term = require "term"
  local fancy = io.type(io.stdout) == "file" and term.isatty(io.stdout) and os.getenv("CI") == nil
  local handler = require("busted.outputHandlers." .. (fancy and "utfTerminal" or "plainTerminal"))(options)
  local subscribe = handler.subscribe
  handler.subscribe = function(self, opts)
    subscribe(self, opts)
    busted.subscribe({ "suite", "end" }, function(_, count, total)
      if count == total then
        local failed = handler.failuresCount + handler.errorsCount
        io.stdout:write(("\n%d passed, %d failed, %d skipped\n"):format(
          handler.successesCount, failed, handler.pendingsCount))
        io.stdout:flush()
      end
      return nil, true
    end)
  end
  return handler
end

-- `bai repl`: the interactive prompt.
local cli = require "batchai.cli"

return {
  summary = "Start the interactive Lua prompt (with `bai` already loaded)",
  usage = "bai repl",
  help = [[
On a terminal: line editing and history (kept in $XDG_STATE_HOME/bai/history),
Tab completes globals, fields and methods, Ctrl-C cancels the line or interrupts
a running statement, Ctrl-D leaves.  An expression prints its value; an
incomplete statement continues on a ">>" prompt.
Without a terminal, statements are read from standard input; the exit status
is 1 if any of them failed.]],
  run = function(args)
    cli.parse(args, { command = "repl", max = 0 })
    return require("batchai.repl").run()
  end,
}

/* The host: owns the lua_State, module search, and the one protected entry into Lua. */
#ifndef BAI_HOST_H
#define BAI_HOST_H

#include <lua.h>

#define BAI_PROGNAME "bai"

/* New state with the standard libraries, cjson, the embedded modules and the
   dynamic C modules searchable; ignore_env as lua's -E.  NULL when out of memory. */
lua_State *host_open(int ignore_env);

/* Calls the function below the narg arguments with a traceback handler; Ctrl-C
   during the call raises "interrupted!" inside Lua.  Returns a lua_pcall status. */
int host_docall(lua_State *L, int narg, int nres);

/* Has Ctrl-C asked the running call to stop?  A C function waiting in a
   system call that returns EINTR checks this and returns early, so that the
   interruption lands now rather than when the wait would have ended. */
int host_interrupt_pending(lua_State *L);

/* On error, prints the message on top of the stack as "bai: message" and pops it. */
int host_report(lua_State *L, int status);

/* Is the error on top of the stack a usage error ({bai_usage = true, message = ...})? */
int host_is_usage_error(lua_State *L);

/* Does an embedded (or, in development, on-disk) Lua module of this name exist? */
int host_has_module(const char *name);

int luaopen_batchai__host(lua_State *L);
int luaopen_batchai__sys(lua_State *L);
int luaopen_batchai__readline(lua_State *L);

#endif

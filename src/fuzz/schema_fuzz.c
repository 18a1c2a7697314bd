/* libFuzzer target for the typed schema: each input runs through the Lua driver
   src/fuzz/schema_fuzz.lua (as JSON text and as a recipe for arbitrary Lua
   tables) inside a host lua_State; a Lua error the driver does not expect aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

#ifndef FUZZ_DRIVER
#error "FUZZ_DRIVER must name the driver script (the Makefile sets it)"
#endif

int luaopen_batchai__schema(lua_State *L);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The one Lua state of the fuzzing run.  A C global because libFuzzer's entry
   points take no context argument. */
static lua_State *fuzz_state;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_state = host_open(1);
  if (fuzz_state == NULL) abort();
  lua_State *L = fuzz_state;
  /* The schema's C module is compiled into this binary, instrumented. */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_batchai__schema);
  lua_setfield(L, -2, "batchai._schema");
  lua_pop(L, 1);
  if (luaL_loadfile(L, FUZZ_DRIVER) != LUA_OK || host_docall(L, 0, 1) != LUA_OK) {
    fprintf(stderr, "schema_fuzz: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_setglobal(L, "fuzz_one");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state;
  lua_getglobal(L, "fuzz_one");
  lua_pushlstring(L, (const char *)data, size);
  if (host_docall(L, 1, 0) != LUA_OK) {
    fprintf(stderr, "schema_fuzz: unexpected Lua error: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  return 0;
}

/* The host: creates the lua_State, finds modules (embedded Lua, dynamic C), and
   runs Lua under one protected call with a traceback handler (after lua.c). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "embedded.h"
#include "host.h"

int luaopen_cjson(lua_State *L);

/* The state a SIGINT interrupts.  A C global because a signal handler has no
   other way to reach it; set only around host_docall. */
static lua_State *volatile interrupt_target = NULL;

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

int host_interrupt_pending(lua_State *L) {
  return lua_gethook(L) == stop_hook;
}

/* Like lua.c's laction: the next Lua instruction raises; a second Ctrl-C kills. */
static void on_sigint(int sig) {
  int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  signal(sig, SIG_DFL);
  if (interrupt_target) lua_sethook(interrupt_target, stop_hook, mask, 1);
}

/* Error handler: adds a traceback to string messages; usage errors and objects
   with __tostring pass through unchanged (they are meant for the user). */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (lua_type(L, 1) == LUA_TTABLE && lua_getfield(L, 1, "bai_usage") != LUA_TNIL) {
      lua_settop(L, 1);
      return 1;
    }
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int host_docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  lua_State *outer = interrupt_target;
  struct sigaction old, act;
  memset(&act, 0, sizeof act);
  act.sa_handler = on_sigint;
  sigemptyset(&act.sa_mask);
  sigaction(SIGINT, &act, &old);
  interrupt_target = L;
  int status = lua_pcall(L, narg, nres, base);
  interrupt_target = outer;
  sigaction(SIGINT, &old, NULL);
  lua_remove(L, base);
  return status;
}

int host_is_usage_error(lua_State *L) {
  if (lua_type(L, -1) != LUA_TTABLE) return 0;
  int usage = lua_getfield(L, -1, "bai_usage") != LUA_TNIL;
  lua_pop(L, 1);
  return usage;
}

int host_report(lua_State *L, int status) {
  if (status == LUA_OK) return status;
  const char *msg;
  if (host_is_usage_error(L)) {
    lua_getfield(L, -1, "message");
    msg = lua_tostring(L, -1);
    lua_getfield(L, -2, "hint");
    fprintf(stderr, "%s: %s\n", BAI_PROGNAME, msg ? msg : "usage error");
    if (lua_isstring(L, -1)) fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_pop(L, 2);
  } else {
    msg = lua_tostring(L, -1);
    if (msg == NULL) msg = luaL_tolstring(L, -1, NULL);
    fprintf(stderr, "%s: %s\n", BAI_PROGNAME, msg);
  }
  fflush(stderr);
  lua_settop(L, lua_gettop(L) - 1);
  return status;
}

/* ---- module search ---------------------------------------------------- */

static int compare_module(const void *key, const void *elem) {
  return strcmp(key, ((const struct bai_embedded *)elem)->module);
}

static const struct bai_embedded *find_embedded(const char *name) {
  return bsearch(name, bai_embedded_modules, bai_embedded_count, sizeof bai_embedded_modules[0],
                 compare_module);
}

/* In development, BAI_LUA_DIR=path/to/lua makes lua/ on disk win over the
   embedded copy.  Writes the file path into buf; returns 0 when none exists. */
static int dev_module_path(const char *name, char *buf, size_t size) {
  const char *dir = getenv("BAI_LUA_DIR");
  if (dir == NULL || *dir == '\0') return 0;
  char rel[PATH_MAX];
  if (snprintf(rel, sizeof rel, "%s", name) >= (int)sizeof rel) return 0;
  for (char *c = rel; *c; c++)
    if (*c == '.') *c = '/';
  if (snprintf(buf, size, "%s/%s.lua", dir, rel) < (int)size && access(buf, R_OK) == 0) return 1;
  if (snprintf(buf, size, "%s/%s/init.lua", dir, rel) < (int)size && access(buf, R_OK) == 0) return 1;
  return 0;
}

int host_has_module(const char *name) {
  char path[PATH_MAX];
  return find_embedded(name) != NULL || dev_module_path(name, path, sizeof path);
}

/* package.searchers entry for lua/ modules: returns a loader and its origin, or
   a string saying why not. */
static int search_embedded(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  char path[PATH_MAX];
  if (dev_module_path(name, path, sizeof path)) {
    if (luaL_loadfilex(L, path, "t") != LUA_OK)
      return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, path,
                        lua_tostring(L, -1));
    lua_pushstring(L, path);
    return 2;
  }
  const struct bai_embedded *m = find_embedded(name);
  if (m == NULL) {
    lua_pushfstring(L, "no embedded module '%s'", name);
    return 1;
  }
  /* Bytecode we compiled at build time with this very Lua library; everything
     loaded from outside the binary stays text only. */
  if (luaL_loadbufferx(L, m->code, m->size, m->chunkname, "b") != LUA_OK)
    return luaL_error(L, "error loading embedded module '%s':\n\t%s", name, lua_tostring(L, -1));
  lua_pushstring(L, m->chunkname + 1);
  return 2;
}

/* Directory of the dynamic C modules: BAI_LIB_DIR, else ../lib/bai beside the
   executable (the same layout in build/ and after make install). */
static int push_lib_dir(lua_State *L) {
  const char *env = getenv("BAI_LIB_DIR");
  if (env && *env) {
    lua_pushstring(L, env);
    return 1;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  lua_pushfstring(L, "%s/../lib/bai", exe);
  return 1;
}

/* package.searchers entry for "batchai._NAME" C modules built as NAME.so. */
static int search_dynamic(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strncmp(name, "batchai._", 9) != 0 || strchr(name + 9, '.') != NULL) {
    lua_pushliteral(L, "not a dynamic bai module");
    return 1;
  }
  if (!push_lib_dir(L)) {
    lua_pushliteral(L, "cannot locate the bai executable");
    return 1;
  }
  const char *file = lua_pushfstring(L, "%s/%s.so", lua_tostring(L, -1), name + 8);
  if (access(file, R_OK) != 0) {
    lua_pushfstring(L, "no file '%s'", file);
    return 1;
  }
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loadlib");
  lua_pushvalue(L, -3);
  lua_pushfstring(L, "luaopen_batchai_%s", name + 8);
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2))
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
                      lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_pushstring(L, file);
  return 2;
}

/* Puts the two searchers right after package.preload's. */
static void install_searchers(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  lua_CFunction mine[] = {search_embedded, search_dynamic};
  int n = (int)luaL_len(L, -1);
  for (int i = n; i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 2);
  }
  for (int i = 0; i < 2; i++) {
    lua_pushcfunction(L, mine[i]);
    lua_rawseti(L, -2, i + 2);
  }
  lua_pop(L, 2);
}

static void preload(lua_State *L) {
  static const luaL_Reg modules[] = {
      {"cjson", luaopen_cjson},
      {"batchai._host", luaopen_batchai__host},
      {"batchai._sys", luaopen_batchai__sys},
      {"batchai._readline", luaopen_batchai__readline},
      {NULL, NULL},
  };
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = modules; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
}

lua_State *host_open(int ignore_env) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  if (ignore_env) {  /* as lua -E: package.path and cpath ignore LUA_PATH/LUA_CPATH */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  preload(L);
  install_searchers(L);
  return L;
}

/* ---- batchai._host ----------------------------------------------------- */

/* _host.docall(f, ...) -> true, results... | false, message-with-traceback.
   Like pcall, but with the host's traceback handler and Ctrl-C interruption. */
static int l_docall(lua_State *L) {
  luaL_checkany(L, 1);
  int base = lua_gettop(L);
  int status = host_docall(L, base - 1, LUA_MULTRET);
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, 1);
  return lua_gettop(L);
}

static int l_has_module(lua_State *L) {
  lua_pushboolean(L, host_has_module(luaL_checkstring(L, 1)));
  return 1;
}

/* _host.modules(prefix) -> sorted list of embedded module names starting with prefix. */
static int l_modules(lua_State *L) {
  size_t len;
  const char *prefix = luaL_optlstring(L, 1, "", &len);
  lua_newtable(L);
  int n = 0;
  for (size_t i = 0; i < bai_embedded_count; i++)
    if (strncmp(bai_embedded_modules[i].module, prefix, len) == 0) {
      lua_pushstring(L, bai_embedded_modules[i].module);
      lua_rawseti(L, -2, ++n);
    }
  return 1;
}

static int l_lib_dir(lua_State *L) {
  if (!push_lib_dir(L)) lua_pushnil(L);
  return 1;
}

int luaopen_batchai__host(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"docall", l_docall},
      {"has_module", l_has_module},
      {"modules", l_modules},
      {"lib_dir", l_lib_dir},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  lua_pushliteral(L, BAI_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushliteral(L, LUA_RELEASE);
  lua_setfield(L, -2, "lua_release");
  lua_newtable(L);
  lua_setfield(L, -2, "plugin_files");
  return 1;
}

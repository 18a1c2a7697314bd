/* Command line: lua-compatible scripts and options (after lua.c), plus bai's
   commands, which are Lua modules under lua/batchai/cli/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "host.h"

enum {
  HAS_ERROR = 1,
  HAS_INTERACTIVE = 2,
  HAS_VERSION = 4,
  HAS_EXEC = 8,
  HAS_NOENV = 16,
};

struct cmdline {
  int argc;
  char **argv;
  int flags;
  int first;        /* index of the script or command word; 0 when none */
  const char *bad;  /* the offending argument when HAS_ERROR */
  const char *why;  /* what is wrong with it */
  int help;         /* -h / --help */
};

/* Prints a usage error with a hint; its exit status is 2. */
static int report_usage(const char *what, const char *arg) {
  fprintf(stderr, "%s: %s '%s'\nTry 'bai help' for usage.\n", BAI_PROGNAME, what, arg);
  return 2;
}

static int is_option_with_arg(const char *a) {
  return strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0 || strcmp(a, "--plugin") == 0;
}

/* Scans options up to the script or command word (lua.c's collectargs, plus
   --plugin FILE, -h/--help and --version). */
static void collect_args(struct cmdline *cl) {
  char **argv = cl->argv;
  for (int i = 1; argv[i] != NULL; i++) {
    const char *a = argv[i];
    cl->first = i;
    if (a[0] != '-' || strcmp(a, "-") == 0) return;
    if (strcmp(a, "--") == 0) {
      cl->first = argv[i + 1] ? i + 1 : 0;
      return;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      cl->help = 1;
      continue;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
      cl->flags |= HAS_VERSION;
      continue;
    }
    if (strncmp(a, "--plugin=", 9) == 0) continue;
    if (is_option_with_arg(a)) {
      if (argv[i + 1] == NULL) {
        cl->flags |= HAS_ERROR, cl->bad = a, cl->why = "missing argument to option";
        return;
      }
      if (a[1] == 'e') cl->flags |= HAS_EXEC;
      i++;
      continue;
    }
    if ((a[1] == 'e' || a[1] == 'l') && a[2] != '\0') {  /* -eSTAT, -lMOD */
      if (a[1] == 'e') cl->flags |= HAS_EXEC;
      continue;
    }
    if (strcmp(a, "-i") == 0) cl->flags |= HAS_INTERACTIVE | HAS_VERSION;
    else if (strcmp(a, "-E") == 0) cl->flags |= HAS_NOENV;
    else if (strcmp(a, "-W") == 0) continue;
    else {
      cl->flags |= HAS_ERROR, cl->bad = a, cl->why = "unrecognized option";
      return;
    }
  }
  cl->first = 0;
}

static void print_version(void) {
  printf("bai %s (%s)\n", BAI_VERSION, LUA_RELEASE);
  fflush(stdout);
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = host_docall(L, 0, 0);
  return host_report(L, status);
}

/* -l MOD or -l g=MOD: require MOD into global g (lua.c's dolibrary). */
static int dolibrary(lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *modname = eq ? eq + 1 : spec;
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = host_docall(L, 1, 1);
  if (status == LUA_OK) {
    if (eq) lua_pushlstring(L, spec, (size_t)(eq - spec));
    else {
      const char *dash = strchr(modname, '-');
      lua_pushlstring(L, modname, dash ? (size_t)(dash - modname) : strlen(modname));
    }
    lua_insert(L, -2);
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  return host_report(L, status);
}

/* Runs -e and -l in order and records --plugin files; returns 0 on an error. */
static int run_options(lua_State *L, struct cmdline *cl) {
  int limit = cl->first > 0 ? cl->first : cl->argc;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "batchai._host");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "plugin_files");
  for (int i = 1; i < limit; i++) {
    const char *a = cl->argv[i];
    const char *value = NULL;
    if (strcmp(a, "--plugin") == 0) value = cl->argv[++i];
    else if (strncmp(a, "--plugin=", 9) == 0) value = a + 9;
    if (value) {
      lua_pushstring(L, value);
      lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
      continue;
    }
    if ((a[1] == 'e' || a[1] == 'l') && a[0] == '-') {
      const char *extra = a[2] ? a + 2 : cl->argv[++i];
      int status = a[1] == 'e' ? dochunk(L, luaL_loadbuffer(L, extra, strlen(extra), "=(command line)"))
                               : dolibrary(L, extra);
      if (status != LUA_OK) return 0;
    } else if (strcmp(a, "-W") == 0) {
      lua_warning(L, "@on", 0);
    }
  }
  lua_pop(L, 2);
  return 1;
}

static void create_arg_table(lua_State *L, struct cmdline *cl, int script) {
  lua_createtable(L, cl->argc - script, script + 1);
  for (int i = 0; i < cl->argc; i++) {
    lua_pushstring(L, cl->argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* LUA_INIT_5_4 or LUA_INIT, as lua.c runs it, unless -E. */
static int handle_luainit(lua_State *L) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return dochunk(L, luaL_loadfilex(L, init + 1, "t"));
  return dochunk(L, luaL_loadbuffer(L, init, strlen(init), name));
}

static int run_script(lua_State *L, struct cmdline *cl, int script) {
  const char *fname = cl->argv[script];
  if (strcmp(fname, "-") == 0 && strcmp(cl->argv[script - 1], "--") != 0) fname = NULL;
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = cl->argc - script - 1;
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = script + 1; i < cl->argc; i++) lua_pushstring(L, cl->argv[i]);
    status = host_docall(L, n, 0);
  }
  return host_report(L, status);
}

/* require(module)[field](args...) through the protected entry; leaves one result. */
static int call_lua(lua_State *L, const char *module, const char *field, int nargs) {
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, field);
  lua_remove(L, -2);
  lua_insert(L, -1 - nargs);
  return host_docall(L, nargs, 1);
}

/* Maps a command's result to an exit status: nil/true -> 0, false -> 1, n -> n. */
static int exit_status_of(lua_State *L) {
  int status = 0;
  if (lua_isinteger(L, -1)) status = (int)lua_tointeger(L, -1);
  else if (lua_isboolean(L, -1)) status = lua_toboolean(L, -1) ? 0 : 1;
  lua_pop(L, 1);
  return status;
}

static int report_exit(lua_State *L, int status) {
  int usage = status != LUA_OK && host_is_usage_error(L);
  host_report(L, status);
  return usage ? 2 : 1;
}

/* `bai WORD args...`: WORD names a command module, or is not a file and looks
   like a command word (a plugin command, or an unknown command to report). */
static int is_command(const char *word) {
  char module[256];
  if (snprintf(module, sizeof module, "batchai.cli.%s", word) >= (int)sizeof module) return 0;
  if (strchr(word, '.') == NULL && host_has_module(module)) return 1;
  if (access(word, F_OK) == 0) return 0;
  if (!((word[0] >= 'a' && word[0] <= 'z'))) return 0;
  for (const char *c = word; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
      return 0;
  return 1;
}

static int run_command(lua_State *L, struct cmdline *cl) {
  lua_pushstring(L, cl->argv[cl->first]);
  lua_createtable(L, cl->argc - cl->first - 1, 0);
  for (int i = cl->first + 1; i < cl->argc; i++) {
    lua_pushstring(L, cl->argv[i]);
    lua_rawseti(L, -2, i - cl->first);
  }
  int status = call_lua(L, "batchai.cli", "main", 2);
  if (status != LUA_OK) return report_exit(L, status);
  return exit_status_of(L);
}

/* Runs under lua_pcall so that even memory errors are reported; pushes the exit status. */
static int pmain(lua_State *L) {
  struct cmdline *cl = lua_touserdata(L, 1);
  if (cl->flags & HAS_ERROR) {
    lua_pushinteger(L, report_usage(cl->why, cl->bad));
    return 1;
  }
  if (cl->help) {
    lua_pushliteral(L, "help");
    lua_newtable(L);
    int status = call_lua(L, "batchai.cli", "main", 2);
    lua_pushinteger(L, status == LUA_OK ? exit_status_of(L) : report_exit(L, status));
    return 1;
  }
  if (cl->flags & HAS_VERSION) print_version();

  int script = cl->first;
  int command = 0;
  if (script > 0 && strcmp(cl->argv[script - 1], "--") != 0 && strcmp(cl->argv[script], "-") != 0) {
    if (strcmp(cl->argv[script], "run") == 0) {
      if (cl->argv[script + 1] == NULL) {
        lua_pushinteger(L, report_usage("missing SCRIPT after", "run"));
        return 1;
      }
      script++;
    } else {
      command = is_command(cl->argv[script]);
    }
  }

  create_arg_table(L, cl, command ? cl->first : script);
  if (!command && !(cl->flags & HAS_NOENV) && handle_luainit(L) != LUA_OK) goto failed;
  if (!run_options(L, cl)) goto failed;
  if (command) {
    lua_pushinteger(L, run_command(L, cl));
    return 1;
  }
  if (script > 0 && run_script(L, cl, script) != LUA_OK) goto failed;
  if (cl->flags & HAS_INTERACTIVE || (script == 0 && !(cl->flags & (HAS_EXEC | HAS_VERSION)))) {
    if ((cl->flags & HAS_INTERACTIVE) || isatty(STDIN_FILENO)) {
      if (!(cl->flags & HAS_VERSION)) print_version();
      lua_newtable(L);
      int status = call_lua(L, "batchai.repl", "run", 1);
      if (status != LUA_OK) {
        lua_pushinteger(L, report_exit(L, status));
        return 1;
      }
      lua_pushinteger(L, exit_status_of(L));
      return 1;
    }
    if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) goto failed;
  }
  lua_pushinteger(L, 0);
  return 1;
failed:
  lua_pushinteger(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  struct cmdline cl = {.argc = argc, .argv = argv};
  collect_args(&cl);
  lua_State *L = host_open(cl.flags & HAS_NOENV);
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", BAI_PROGNAME);
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &cl);
  int status = lua_pcall(L, 1, 1, 0);
  int result;
  if (status != LUA_OK) result = report_exit(L, status);
  else result = (int)lua_tointeger(L, -1);
  lua_close(L);
  return result;
}

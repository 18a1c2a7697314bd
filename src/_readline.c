/* batchai._readline: GNU readline for the REPL (line editing, history,
   completion through a Lua function, Ctrl-C that cancels the line). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include <readline/history.h>
#include <readline/readline.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

#define COMPLETER_KEY "batchai._readline.completer"
#define MAX_MATCHES 512

/* Readline is process-global state with callbacks that carry no context, so
   the state it completes in is kept here while readline() runs. */
static lua_State *completing_state = NULL;
static char *matches[MAX_MATCHES + 1];
static size_t match_count, match_next;

static volatile sig_atomic_t got_sigint, got_sigwinch;
static char *line_read;
static int line_done;

static void on_signal(int sig) {
  if (sig == SIGINT) got_sigint = 1;
  else got_sigwinch = 1;
}

static void on_line(char *line) {
  line_read = line;
  line_done = 1;
  rl_callback_handler_remove();
}

static char *next_match(const char *text, int state) {
  (void)text;
  if (state == 0) match_next = 0;
  if (match_next >= match_count) return NULL;
  char *m = matches[match_next];
  matches[match_next++] = NULL;  /* readline frees what it is given */
  return m;
}

static void clear_matches(void) {
  for (size_t i = 0; i < match_count; i++) {
    free(matches[i]);
    matches[i] = NULL;
  }
  match_count = match_next = 0;
}

/* Protected part of complete(): calls completer(line, start, stop) (start and
   stop are the two integers on the stack) and copies the strings of the array
   it returns into matches.  May raise (out of memory, or the completer). */
static int collect_matches(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, COMPLETER_KEY) != LUA_TFUNCTION) return 0;
  lua_pushstring(L, rl_line_buffer);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 3, 1);
  if (lua_type(L, -1) != LUA_TTABLE) return 0;
  for (lua_Integer i = 1; match_count < MAX_MATCHES; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING) break;
    char *copy = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (copy) matches[match_count++] = copy;
  }
  return 0;
}

/* readline's completion callback: the Lua completer's array of full
   replacement words becomes readline's matches.  Lua runs only under
   lua_pcall here, so that no error unwinds through readline; errors mean no
   matches. */
static char **complete(const char *text, int start, int end) {
  lua_State *L = completing_state;
  rl_attempted_completion_over = 1;
  rl_completion_append_character = '\0';  /* reset by readline before each attempt */
  if (L == NULL || !lua_checkstack(L, 8)) return NULL;
  int top = lua_gettop(L);
  clear_matches();
  lua_pushcfunction(L, collect_matches);
  lua_pushinteger(L, start + 1);
  lua_pushinteger(L, end);
  int status = lua_pcall(L, 2, 0, 0);
  lua_settop(L, top);
  if (status != LUA_OK) clear_matches();
  if (match_count == 0) return NULL;
  char **result = rl_completion_matches(text, next_match);
  clear_matches();
  return result;
}

/* Pushes a copy of the C string in the light userdata at index 1. */
static int push_line(lua_State *L) {
  lua_pushstring(L, lua_touserdata(L, 1));
  return 1;
}

/* readline(prompt) -> line | nil at end of input | false when Ctrl-C cancelled the line. */
static int l_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  struct sigaction act, old_int, old_winch;
  memset(&act, 0, sizeof act);
  act.sa_handler = on_signal;  /* no SA_RESTART: select() must see EINTR */
  sigemptyset(&act.sa_mask);
  sigaction(SIGINT, &act, &old_int);
  sigaction(SIGWINCH, &act, &old_winch);
  got_sigint = got_sigwinch = 0;
  line_read = NULL;
  line_done = 0;
  completing_state = L;
  rl_catch_signals = 0;
  rl_callback_handler_install(prompt, on_line);
  int cancelled = 0;
  while (!line_done) {
    int fd = fileno(rl_instream ? rl_instream : stdin);
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    int ready = select(fd + 1, &fds, NULL, NULL, NULL);
    if (got_sigwinch) {
      got_sigwinch = 0;
      rl_resize_terminal();
    }
    if (got_sigint) {  /* show ^C after the abandoned line, then start afresh */
      FILE *out = rl_outstream ? rl_outstream : stdout;
      rl_point = rl_end;
      rl_redisplay();
      fputs("^C\n", out);
      fflush(out);
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_cleanup_after_signal();
      rl_callback_handler_remove();
      cancelled = 1;
      break;
    }
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    rl_callback_read_char();
  }
  completing_state = NULL;
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGWINCH, &old_winch, NULL);
  if (cancelled) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (line_read == NULL) {
    if (!line_done) rl_callback_handler_remove();
    lua_pushnil(L);
    return 1;
  }
  /* Copied under lua_pcall: a copy that fails (out of memory) must not leak
     the line readline allocated (lua.c leaks it). */
  lua_pushcfunction(L, push_line);
  lua_pushlightuserdata(L, line_read);
  int status = lua_pcall(L, 1, 1, 0);
  free(line_read);
  line_read = NULL;
  if (status != LUA_OK) return lua_error(L);
  return 1;
}

static int l_add_history(lua_State *L) {
  add_history(luaL_checkstring(L, 1));
  return 0;
}

/* Pushes the result of a history file operation: true | nil, "path: reason". */
static int history_result(lua_State *L, const char *path, int err) {
  if (err != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(err));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* load_history(path, max_entries) -> true | nil, err (a missing file is fine). */
static int l_load_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  stifle_history((int)luaL_optinteger(L, 2, 1000));
  int err = read_history(path);
  return history_result(L, path, err == ENOENT ? 0 : err);
}

/* append_history(path, max_entries): appends the newest entry, trims the file. */
static int l_append_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int max = (int)luaL_optinteger(L, 2, 1000);
  FILE *f = fopen(path, "a");
  if (f) fclose(f);
  int err = append_history(1, path);
  if (err == 0) history_truncate_file(path, max);
  return history_result(L, path, err);
}

/* set_completer(function(line, start, stop) -> {words}) */
static int l_set_completer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, COMPLETER_KEY);
  return 0;
}

int luaopen_batchai__readline(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"readline", l_readline},
      {"add_history", l_add_history},
      {"load_history", l_load_history},
      {"append_history", l_append_history},
      {"set_completer", l_set_completer},
      {NULL, NULL},
  };
  rl_readline_name = "bai";
  rl_attempted_completion_function = complete;
  rl_completer_word_break_characters = " \t\n\"'`@$><=;|&{(+-*/%^~#,[]";
  rl_completer_quote_characters = "";
  rl_completion_append_character = '\0';
  luaL_newlib(L, funcs);
  lua_pushstring(L, rl_library_version);
  lua_setfield(L, -2, "version");
  return 1;
}

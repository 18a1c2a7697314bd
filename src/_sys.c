/* batchai._sys: the few operating-system calls Lua lacks (files, time, terminal,
   processes).  Runtime failures return nil, message; misuse raises. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

static int fail(lua_State *L, const char *what) {
  int err = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(err));
  lua_pushinteger(L, err);
  return 3;
}

/* isatty(fd or file) -> boolean */
static int l_isatty(lua_State *L) {
  int fd;
  if (lua_isinteger(L, 1)) fd = (int)lua_tointeger(L, 1);
  else {
    luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    fd = s->f ? fileno(s->f) : -1;
  }
  lua_pushboolean(L, fd >= 0 && isatty(fd));
  return 1;
}

/* stat(path) -> { type=, size=, mtime=, mode= } | nil, err */
static int l_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) return fail(L, path);
  lua_createtable(L, 0, 4);
  const char *type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other";
  lua_pushstring(L, type);
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, st.st_mode & 07777);
  lua_setfield(L, -2, "mode");
  return 1;
}

/* The open directory of a list_dir in progress, closed by __gc if a push raises. */
static int dir_gc(lua_State *L) {
  DIR **box = luaL_checkudata(L, 1, "batchai.Dir");
  if (*box) closedir(*box);
  *box = NULL;
  return 0;
}

static int dir_tostring(lua_State *L) {
  DIR **box = luaL_checkudata(L, 1, "batchai.Dir");
  lua_pushstring(L, *box ? "batchai.Dir (open)" : "batchai.Dir (closed)");
  return 1;
}

/* list_dir(path) -> sorted array of names (no . and ..) | nil, err */
static int l_list_dir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR **box = lua_newuserdatauv(L, sizeof(DIR *), 0);
  *box = NULL;
  if (luaL_newmetatable(L, "batchai.Dir")) {
    lua_pushcfunction(L, dir_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, dir_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  if ((*box = opendir(path)) == NULL) return fail(L, path);
  lua_newtable(L);
  lua_Integer n = 0;
  struct dirent *e;
  while ((e = readdir(*box)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(*box);
  *box = NULL;
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  return 1;
}

static int l_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  if (realpath(path, buf) == NULL) return fail(L, path);
  lua_pushstring(L, buf);
  return 1;
}

static int l_getcwd(lua_State *L) {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) == NULL) return fail(L, "getcwd");
  lua_pushstring(L, buf);
  return 1;
}

/* Makes directory buf (a writable copy of the path) and its missing parents,
   leaf first: only the missing levels cost system calls.  Returns 0, or -1
   when something other than a missing parent is in the way (the caller then
   walks from the root, which names the component at fault). */
static int mkdir_leaf_first(char *buf, size_t len, mode_t mode) {
  struct stat st;
  if (mkdir(buf, mode) == 0) return 0;
  if (errno == EEXIST) return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
  if (errno != ENOENT) return -1;
  char *slash = len > 1 ? memrchr(buf, '/', len - 1) : NULL;
  if (slash == NULL || slash == buf) return -1;
  *slash = '\0';
  int rc = mkdir_leaf_first(buf, (size_t)(slash - buf), mode);
  *slash = '/';
  if (rc != 0) return -1;
  if (mkdir(buf, mode) == 0) return 0;
  return errno == EEXIST && stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* mkdir(path [, mode=0755 [, parents=false]]) -> true | nil, err.  An existing
   directory is success. */
static int l_mkdir(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  mode_t mode = (mode_t)luaL_optinteger(L, 2, 0755);
  int parents = lua_toboolean(L, 3);
  char buf[PATH_MAX];
  if (len == 0 || len >= sizeof buf) return luaL_argerror(L, 1, "bad path length");
  memcpy(buf, path, len + 1);
  if (parents && mkdir_leaf_first(buf, len, mode) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  for (char *p = parents ? buf + 1 : buf + len; ; p++) {
    if (*p == '/' || *p == '\0') {
      char saved = *p;
      *p = '\0';
      struct stat st;
      if (mkdir(buf, mode) != 0 && !(errno == EEXIST && stat(buf, &st) == 0 && S_ISDIR(st.st_mode)))
        return fail(L, buf);
      *p = saved;
      if (saved == '\0') break;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* write_file(path, data [, mode=0644]) -> true | nil, err.  Atomic and durable:
   writes a temporary file beside path, fsyncs it, renames it over path. */
static int l_write_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t size;
  const char *data = luaL_checklstring(L, 2, &size);
  mode_t mode = (mode_t)luaL_optinteger(L, 3, 0644);
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
    return luaL_argerror(L, 1, "path too long");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail(L, tmp);
  size_t done = 0;
  while (done < size) {
    ssize_t w = write(fd, data + done, size - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      close(fd);
      unlink(tmp);
      errno = err;
      return fail(L, tmp);
    }
    done += (size_t)w;
  }
  if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0) {
    int err = errno;
    unlink(tmp);
    errno = err;
    return fail(L, tmp);
  }
  if (rename(tmp, path) != 0) {
    int err = errno;
    unlink(tmp);
    errno = err;
    return fail(L, path);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Seconds since an arbitrary point, for measuring intervals. */
static int l_monotime(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}

/* Seconds since the epoch, with sub-second precision. */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}

/* sleep(seconds): other signals resume the sleep; Ctrl-C ends it at once, so
   that its "interrupted!" lands now. */
static int l_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0, 1, "non-negative number expected");
  struct timespec ts = {(time_t)s, (long)((s - (lua_Number)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !host_interrupt_pending(L)) {
  }
  return 0;
}

static int l_getpid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

/* kill(pid, signal name or number) -> true | nil, err */
static int l_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int sig;
  if (lua_type(L, 2) == LUA_TSTRING) {
    static const char *const names[] = {"TERM", "KILL", "INT", "HUP", "USR1", "USR2", "STOP", "CONT", "0", NULL};
    static const int numbers[] = {SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGSTOP, SIGCONT, 0};
    sig = numbers[luaL_checkoption(L, 2, NULL, names)];
  } else {
    sig = (int)luaL_optinteger(L, 2, SIGTERM);
  }
  if (kill(pid, sig) != 0) return fail(L, "kill");
  lua_pushboolean(L, 1);
  return 1;
}

static int l_hostname(lua_State *L) {
  char buf[256];
  if (gethostname(buf, sizeof buf) != 0) return fail(L, "gethostname");
  buf[sizeof buf - 1] = '\0';
  lua_pushstring(L, buf);
  return 1;
}

static int l_cpu_count(lua_State *L) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n > 0 ? n : 1);
  return 1;
}

/* term_size([fd=1]) -> columns, rows | nil when fd is not a terminal */
static int l_term_size(lua_State *L) {
  int fd = (int)luaL_optinteger(L, 1, STDOUT_FILENO);
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, ws.ws_col);
  lua_pushinteger(L, ws.ws_row);
  return 2;
}

/* setenv(name, value or nil) -> true: changes the environment children inherit. */
static int l_setenv(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int rc = lua_isnoneornil(L, 2) ? unsetenv(name) : setenv(name, luaL_checkstring(L, 2), 1);
  if (rc != 0) return fail(L, name);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_umask(lua_State *L) {
  mode_t old = umask((mode_t)luaL_checkinteger(L, 1));
  lua_pushinteger(L, old);
  return 1;
}

int luaopen_batchai__sys(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"isatty", l_isatty},       {"stat", l_stat},         {"list_dir", l_list_dir},
      {"realpath", l_realpath},   {"getcwd", l_getcwd},     {"mkdir", l_mkdir},
      {"write_file", l_write_file}, {"monotime", l_monotime}, {"now", l_now},
      {"sleep", l_sleep},         {"getpid", l_getpid},     {"kill", l_kill},
      {"hostname", l_hostname},   {"cpu_count", l_cpu_count}, {"term_size", l_term_size},
      {"setenv", l_setenv},       {"umask", l_umask},       {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  return 1;
}

/* batchai._proc: process control for bai serve and its job runner: spawn with
   argv/env/cwd/session/files/rlimits, pidfds and reaping, signalling a whole
   session, signalfd, poll, file locks.  Runtime failures return nil, err;
   misuse raises. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

int luaopen_batchai__proc(lua_State *L);

#define LOCK_MT "batchai.FileLock"

static int fail(lua_State *L, const char *what, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(err));
  lua_pushinteger(L, err);
  return 3;
}

static const struct {
  const char *name;
  int number;
} signals[] = {
    {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"CHLD", SIGCHLD}, {"STOP", SIGSTOP}, {"CONT", SIGCONT},
    {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"SEGV", SIGSEGV}, {"ABRT", SIGABRT}, {"BUS", SIGBUS},
    {"FPE", SIGFPE},   {"ILL", SIGILL},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {NULL, 0},
};

/* A signal given by name ("TERM") or number; raises on an unknown name. */
static int check_signal(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) return (int)luaL_checkinteger(L, idx);
  const char *name = luaL_checkstring(L, idx);
  if (strncmp(name, "SIG", 3) == 0) name += 3;
  for (int i = 0; signals[i].name; i++)
    if (strcmp(signals[i].name, name) == 0) return signals[i].number;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
}

static const char *signal_name(int sig) {
  for (int i = 0; signals[i].name; i++)
    if (signals[i].number == sig) return signals[i].name;
  return NULL;
}

/* Pushes { pid=, code= } or { pid=, signal=, signal_name=, core= } for a wait status. */
static void push_status(lua_State *L, pid_t pid, int status) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, pid);
  lua_setfield(L, -2, "pid");
  if (WIFEXITED(status)) {
    lua_pushinteger(L, WEXITSTATUS(status));
    lua_setfield(L, -2, "code");
  } else if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    lua_pushinteger(L, sig);
    lua_setfield(L, -2, "signal");
    const char *name = signal_name(sig);
    if (name) {
      lua_pushstring(L, name);
      lua_setfield(L, -2, "signal_name");
    }
    lua_pushboolean(L, WCOREDUMP(status));
    lua_setfield(L, -2, "core");
  }
}

/* ---- spawn -------------------------------------------------------------- */

static const struct {
  const char *name;
  int resource;
} rlimits[] = {
    {"nofile", RLIMIT_NOFILE}, {"core", RLIMIT_CORE},   {"cpu", RLIMIT_CPU},
    {"as", RLIMIT_AS},         {"nproc", RLIMIT_NPROC}, {"fsize", RLIMIT_FSIZE},
    {"stack", RLIMIT_STACK},   {NULL, 0},
};

struct spawn_plan {
  char **argv, **envp;
  const char *cwd, *stdin_path, *stdout_path, *stderr_path;
  int append, setsid, setpgid, detach, umask_value, death_signal, stdin_fd, confirm;
  struct rlimit limits[8];
  int limit_set[8];
};

/* Fills an array of string pointers (a userdata, so nothing leaks when a later
   check raises) from the array table in field `key` of the table at idx. */
static char **string_array(lua_State *L, int idx, const char *key, int required) {
  if (lua_getfield(L, idx, key) == LUA_TNIL) {
    lua_pop(L, 1);
    if (required) luaL_error(L, "spawn: field '%s' is required", key);
    return NULL;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "spawn: field '%s' must be an array of strings", key);
  lua_Integer n = luaL_len(L, -1);
  if (required && n == 0) luaL_error(L, "spawn: field '%s' must not be empty", key);
  char **arr = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 1);
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, 1); /* keeps the strings alive */
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -2, i) != LUA_TSTRING) luaL_error(L, "spawn: %s[%d] must be a string", key, (int)i);
    arr[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  arr[n] = NULL;
  lua_remove(L, -2);
  return arr; /* the userdata stays on the stack */
}

static const char *opt_string_field(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  const char *v = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "spawn: field '%s' must be a string", key);
    v = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the string stays referenced by the options table */
  return v;
}

static int open_redirect(const char *path, int flags, int target) {
  int fd = open(path, flags | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  if (fd != target) {
    if (dup2(fd, target) < 0) return -1;
    close(fd);
  }
  return 0;
}

/* In the child: sets everything up and execs; on failure writes errno to err_fd
   (when it is >= 0) and exits 127. */
static void child_exec(struct spawn_plan *p, int err_fd) {
  sigset_t none;
  sigemptyset(&none);
  for (int sig = 1; sig < 32; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (p->setsid && setsid() < 0) goto failed;
  if (p->setpgid && setpgid(0, 0) != 0) goto failed;
  if (p->death_signal && prctl(PR_SET_PDEATHSIG, p->death_signal) != 0) goto failed;
  if (p->cwd && chdir(p->cwd) != 0) goto failed;
  if (p->stdin_fd >= 0) {
    if (dup2(p->stdin_fd, 0) < 0) goto failed;
  } else if (open_redirect(p->stdin_path ? p->stdin_path : "/dev/null", O_RDONLY, 0) != 0) {
    goto failed;
  }
  int out_flags = O_WRONLY | O_CREAT | (p->append ? O_APPEND : O_TRUNC);
  if (open_redirect(p->stdout_path ? p->stdout_path : "/dev/null", out_flags, 1) != 0) goto failed;
  if (p->stderr_path && strcmp(p->stderr_path, "stdout") == 0) {
    if (dup2(1, 2) < 0) goto failed;
  } else if (open_redirect(p->stderr_path ? p->stderr_path : "/dev/null", out_flags, 2) != 0) {
    goto failed;
  }
  for (int i = 0; rlimits[i].name; i++)
    if (p->limit_set[i] && setrlimit(rlimits[i].resource, &p->limits[i]) != 0) goto failed;
  if (p->umask_value >= 0) umask((mode_t)p->umask_value);
  if (p->envp) execvpe(p->argv[0], p->argv, p->envp);
  else execvp(p->argv[0], p->argv);
failed : {
  int e = errno;
  if (err_fd >= 0) {
    ssize_t w = write(err_fd, &e, sizeof e);
    (void)w;
  }
  _exit(127);
}
}

extern char **environ;

/* Spawns with posix_spawn (glibc: clone with CLONE_VM | CLONE_VFORK, so the
   parent's page tables are not copied; forking a server with a large heap takes
   milliseconds), for the plans it can carry out: no detach, rlimits or parent
   death signal.  The child's umask is set by setting ours around the call (the
   endpoint's other thread creates no files).  Exec failures come back as the
   error, as with confirm.  Returns pid >= 0, or -errno. */
static pid_t spawn_posix(const struct spawn_plan *p) {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t fa;
  if (posix_spawnattr_init(&attr) != 0) return -ENOMEM;
  if (posix_spawn_file_actions_init(&fa) != 0) {
    posix_spawnattr_destroy(&attr);
    return -ENOMEM;
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (p->setsid) flags |= POSIX_SPAWN_SETSID;
  if (p->setpgid) flags |= POSIX_SPAWN_SETPGROUP;
  int rc = posix_spawnattr_setflags(&attr, flags);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (rc == 0 && p->setpgid) rc = posix_spawnattr_setpgroup(&attr, 0);
  if (rc == 0 && p->cwd) rc = posix_spawn_file_actions_addchdir_np(&fa, p->cwd);
  if (rc == 0) {
    if (p->stdin_fd >= 0) rc = posix_spawn_file_actions_adddup2(&fa, p->stdin_fd, 0);
    else rc = posix_spawn_file_actions_addopen(&fa, 0, p->stdin_path ? p->stdin_path : "/dev/null", O_RDONLY, 0);
  }
  int out_flags = O_WRONLY | O_CREAT | (p->append ? O_APPEND : O_TRUNC);
  if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 1, p->stdout_path ? p->stdout_path : "/dev/null", out_flags, 0644);
  if (rc == 0) {
    if (p->stderr_path && strcmp(p->stderr_path, "stdout") == 0) rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
    else rc = posix_spawn_file_actions_addopen(&fa, 2, p->stderr_path ? p->stderr_path : "/dev/null", out_flags, 0644);
  }
  pid_t pid = -1;
  if (rc == 0) {
    mode_t old = 0;
    if (p->umask_value >= 0) old = umask((mode_t)p->umask_value);
    rc = posix_spawnp(&pid, p->argv[0], &fa, &attr, p->argv, p->envp ? p->envp : environ);
    if (p->umask_value >= 0) umask(old);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return rc == 0 ? pid : -rc;
}

static const char *const spawn_keys[] = {"argv", "env", "cwd", "stdin", "stdin_fd", "stdout", "stderr", "append",
                                         "setsid", "setpgid", "detach", "rlimits", "umask",
                                         "parent_death_signal", "confirm", NULL};

/* spawn{ argv = {...}, env = { "K=V", ... } (default: inherit), cwd =, stdin = path | stdin_fd = fd,
          stdout = path, stderr = path | "stdout", append = bool, setsid = bool, setpgid = bool (own group),
          detach = bool (double fork: not our child), rlimits = { nofile = n, ... },
          umask = n, parent_death_signal = "TERM" (sent when we die), confirm = bool } -> pid | nil, err.
   Files default to /dev/null.  An exec failure ("No such file or directory")
   is reported as nil, err, not as a child that exits 127 -- unless confirm =
   false with detach, rlimits or parent_death_signal (which need a fork): then
   spawn returns as soon as the child is forked, without waiting for its exec,
   and an exec failure shows as the child exiting with status 127.  Without
   those three, spawn uses posix_spawn (spawn_posix) and always confirms. */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int known = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; spawn_keys[i]; i++)
        if (strcmp(spawn_keys[i], lua_tostring(L, -2)) == 0) known = 1;
    if (!known) return luaL_error(L, "invalid field '%s' in spawn", luaL_tolstring(L, -2, NULL));
    lua_pop(L, 1);
  }
  struct spawn_plan p;
  memset(&p, 0, sizeof p);
  p.umask_value = -1;
  p.stdin_fd = -1;
  p.confirm = 1;
  p.argv = string_array(L, 1, "argv", 1);
  p.envp = string_array(L, 1, "env", 0);
  p.cwd = opt_string_field(L, 1, "cwd");
  p.stdin_path = opt_string_field(L, 1, "stdin");
  p.stdout_path = opt_string_field(L, 1, "stdout");
  p.stderr_path = opt_string_field(L, 1, "stderr");
  lua_getfield(L, 1, "append");
  p.append = lua_toboolean(L, -1);
  lua_getfield(L, 1, "setsid");
  p.setsid = lua_toboolean(L, -1);
  lua_getfield(L, 1, "detach");
  p.detach = lua_toboolean(L, -1);
  lua_getfield(L, 1, "umask");
  if (!lua_isnil(L, -1)) p.umask_value = (int)luaL_checkinteger(L, -1);
  lua_getfield(L, 1, "setpgid");
  p.setpgid = lua_toboolean(L, -1);
  lua_pop(L, 5);
  if (lua_getfield(L, 1, "confirm") != LUA_TNIL) p.confirm = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!p.confirm && p.detach) luaL_error(L, "spawn: detach needs confirm");
  if (lua_getfield(L, 1, "stdin_fd") != LUA_TNIL) {
    lua_Integer fd = luaL_checkinteger(L, -1);
    if (fd < 0 || fd > INT_MAX || p.stdin_path) luaL_error(L, "spawn: stdin_fd must be a descriptor, without stdin");
    p.stdin_fd = (int)fd;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "parent_death_signal") != LUA_TNIL) p.death_signal = check_signal(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "rlimits") != LUA_TNIL) {
    luaL_checktype(L, -1, LUA_TTABLE);
    for (int i = 0; rlimits[i].name; i++) {
      if (lua_getfield(L, -1, rlimits[i].name) != LUA_TNIL) {
        lua_Integer v = luaL_checkinteger(L, -1);
        p.limits[i].rlim_cur = p.limits[i].rlim_max = v < 0 ? RLIM_INFINITY : (rlim_t)v;
        p.limit_set[i] = 1;
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);

  int any_limit = 0;
  for (int i = 0; rlimits[i].name; i++) any_limit |= p.limit_set[i];
  if (!p.detach && !p.death_signal && !any_limit) {
    pid_t pid = spawn_posix(&p);
    if (pid < 0) {
      const char *what = p.argv[0];
      if (pid == -ENOENT && p.cwd && access(p.cwd, F_OK) != 0) what = p.cwd;
      return fail(L, what, (int)-pid);
    }
    lua_pushinteger(L, pid);
    return 1;
  }
  int errpipe[2], pidpipe[2] = {-1, -1};
  if (pipe2(errpipe, O_CLOEXEC) != 0) return fail(L, "pipe", errno);
  if (p.detach && pipe2(pidpipe, O_CLOEXEC) != 0) {
    int e = errno;
    close(errpipe[0]);
    close(errpipe[1]);
    return fail(L, "pipe", e);
  }
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(errpipe[0]);
    close(errpipe[1]);
    if (pidpipe[0] >= 0) {
      close(pidpipe[0]);
      close(pidpipe[1]);
    }
    return fail(L, "fork", e);
  }
  if (pid == 0) {
    close(errpipe[0]);
    if (p.detach) {
      close(pidpipe[0]);
      pid_t grandchild = fork();
      if (grandchild < 0) {
        int e = errno;
        ssize_t w = write(errpipe[1], &e, sizeof e);
        (void)w;
        _exit(127);
      }
      if (grandchild > 0) {
        ssize_t w = write(pidpipe[1], &grandchild, sizeof grandchild);
        (void)w;
        _exit(0);
      }
      close(pidpipe[1]);
    }
    if (!p.confirm) close(errpipe[1]);
    child_exec(&p, p.confirm ? errpipe[1] : -1);
  }
  close(errpipe[1]);
  if (!p.confirm) {
    close(errpipe[0]);
    lua_pushinteger(L, pid);
    return 1;
  }
  pid_t result = pid;
  if (p.detach) {
    close(pidpipe[1]);
    pid_t grandchild = -1;
    ssize_t n;
    while ((n = read(pidpipe[0], &grandchild, sizeof grandchild)) < 0 && errno == EINTR) {
    }
    close(pidpipe[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    result = n == (ssize_t)sizeof grandchild ? grandchild : -1;
  }
  int child_errno = 0;
  ssize_t n;
  while ((n = read(errpipe[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
  }
  close(errpipe[0]);
  if (n == (ssize_t)sizeof child_errno) {
    if (!p.detach)
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
      }
    const char *what = p.argv[0];
    if (child_errno == ENOENT && p.cwd && access(p.cwd, F_OK) != 0) what = p.cwd;
    return fail(L, what, child_errno);
  }
  if (result < 0) return fail(L, "fork", ECHILD);
  lua_pushinteger(L, result);
  return 1;
}

/* ---- waiting and signalling ---------------------------------------------- */

/* pidfd(pid) -> fd that polls readable when the process ends | nil, err.
   Works for processes that are not our children (re-attach after restart). */
static int l_pidfd(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return fail(L, "pidfd_open", errno);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  lua_pushinteger(L, fd);
  return 1;
}

/* reap(pid) -> status table when our child pid has ended, false while it runs | nil, err */
static int l_reap(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int status;
  pid_t r;
  while ((r = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r < 0) return fail(L, "waitpid", errno);
  if (r == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  push_status(L, r, status);
  return 1;
}

/* reap_any() -> array of status tables of every ended child (never blocks) */
static int l_reap_any(lua_State *L) {
  lua_newtable(L);
  int n = 0, status;
  pid_t r;
  while ((r = waitpid(-1, &status, WNOHANG)) > 0 || (r < 0 && errno == EINTR)) {
    if (r < 0) continue;
    push_status(L, r, status);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* kill(pid, sig) -> true | nil, err.  A negative pid signals a process group. */
static int l_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int sig = lua_isnoneornil(L, 2) ? SIGTERM : check_signal(L, 2);
  if (kill(pid, sig) != 0) return fail(L, "kill", errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* Reads /proc/PID/stat; on success fills the fields after the command name. */
static int read_stat(pid_t pid, char *state, long *ppid, long *session, unsigned long long *start) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (p == NULL) return -1;
  long pgrp;
  unsigned long long field;
  if (sscanf(p + 2, "%c %ld %ld %ld", state, ppid, &pgrp, session) != 4) return -1;
  /* skip to field 22 (starttime): fields 3..21 are 19 values */
  char *q = p + 2;
  for (int i = 3; i < 22 && q; i++) {
    q = strchr(q, ' ');
    if (q) q++;
  }
  if (q == NULL || sscanf(q, "%llu", &field) != 1) return -1;
  *start = field;
  return 0;
}

/* start_time(pid) -> the process's start time in clock ticks since boot (a
   string, to tell a re-used pid apart) | nil when no such live process */
static int l_start_time(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  char state;
  long ppid, session;
  unsigned long long start;
  if (read_stat(pid, &state, &ppid, &session, &start) != 0 || state == 'Z') {
    lua_pushnil(L);
    return 1;
  }
  char buf[32];
  snprintf(buf, sizeof buf, "%llu", start);
  lua_pushstring(L, buf);
  return 1;
}

/* session_pids(sid) -> array of live (non-zombie) pids whose session is sid */
static int l_session_pids(lua_State *L) {
  long sid = (long)luaL_checkinteger(L, 1);
  lua_newtable(L);
  DIR *d = opendir("/proc");
  if (d == NULL) return 1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    pid_t pid = (pid_t)atol(e->d_name);
    char state;
    long ppid, session;
    unsigned long long start;
    if (read_stat(pid, &state, &ppid, &session, &start) == 0 && session == sid && state != 'Z') {
      lua_pushinteger(L, pid);
      lua_rawseti(L, -2, ++n);
    }
  }
  closedir(d);
  return 1;
}

/* kill_session(sid, sig) -> number of processes signalled: every live process
   of the session (so also children that left the job's process group).  Members
   are found with getsid(2), one system call per process (reading each
   /proc/PID/stat costs ten times more); zombies are not counted. */
static int l_kill_session(lua_State *L) {
  long sid = (long)luaL_checkinteger(L, 1);
  int sig = check_signal(L, 2);
  luaL_argcheck(L, sid > 1, 1, "session id > 1 expected");
  kill(-(pid_t)sid, sig);
  lua_Integer count = 0;
  DIR *d = opendir("/proc");
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (!isdigit((unsigned char)e->d_name[0])) continue;
      pid_t pid = (pid_t)atol(e->d_name);
      if (getsid(pid) != (pid_t)sid) continue;
      char state;
      long ppid, session;
      unsigned long long start;
      if (read_stat(pid, &state, &ppid, &session, &start) == 0 && session == sid && state != 'Z' && kill(pid, sig) == 0)
        count++;
    }
    closedir(d);
  }
  lua_pushinteger(L, count);
  return 1;
}

/* ---- event loop primitives ------------------------------------------------ */

/* poll(fds, timeout_ms) -> array of the fds that are readable (or hung up).
   timeout_ms < 0 waits forever; EINTR returns an empty array. */
static int l_poll(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int timeout = (int)luaL_optinteger(L, 2, -1);
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 4096, 1, "at most 4096 descriptors");
  struct pollfd *fds = lua_newuserdatauv(L, sizeof(struct pollfd) * (size_t)(n ? n : 1), 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    fds[i].fd = (int)luaL_checkinteger(L, -1);
    fds[i].events = POLLIN;
    fds[i].revents = 0;
    lua_pop(L, 1);
  }
  int rc = poll(fds, (nfds_t)n, timeout);
  lua_newtable(L);
  if (rc <= 0) return 1;
  int k = 0;
  for (lua_Integer i = 0; i < n; i++)
    if (fds[i].revents) {
      lua_pushinteger(L, fds[i].fd);
      lua_rawseti(L, -2, ++k);
    }
  return 1;
}

/* signalfd({ "TERM", "INT", ... }) -> fd: blocks those signals and delivers them
   through fd instead (read them with read_signals). */
static int l_signalfd(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  sigset_t set;
  sigemptyset(&set);
  lua_Integer n = luaL_len(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    sigaddset(&set, check_signal(L, -1));
    lua_pop(L, 1);
  }
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return fail(L, "sigprocmask", errno);
  int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return fail(L, "signalfd", errno);
  lua_pushinteger(L, fd);
  return 1;
}

/* read_signals(fd) -> array of signal names received since the last call */
static int l_read_signals(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  lua_newtable(L);
  int k = 0;
  struct signalfd_siginfo info;
  while (read(fd, &info, sizeof info) == (ssize_t)sizeof info) {
    const char *name = signal_name((int)info.ssi_signo);
    if (name) lua_pushstring(L, name);
    else lua_pushinteger(L, info.ssi_signo);
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

static int l_close(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd > 2, 1, "will not close standard streams");
  close(fd);
  return 0;
}

/* connect_unix(path) -> true when something accepts connections at path */
static int l_connect_unix(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) return luaL_argerror(L, 1, "socket path too long");
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
  if (fd >= 0) close(fd);
  lua_pushboolean(L, ok);
  return 1;
}

/* socketpair() -> fd, fd | nil, err: a connected pair of unix stream sockets
   (close-on-exec), e.g. a child's stdin (spawn's stdin_fd) and our end of it. */
static int l_socketpair(lua_State *L) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return fail(L, "socketpair", errno);
  lua_pushinteger(L, sv[0]);
  lua_pushinteger(L, sv[1]);
  return 2;
}

/* send(fd, data) -> true | nil, err: writes all of data to a socket (no
   SIGPIPE when the peer is gone: EPIPE is returned instead). */
static int l_send(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(L, "send", errno);
    }
    data += n;
    len -= (size_t)n;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static const char *const redirect_keys[] = {"stdin", "stdout", "stderr", "cwd", NULL};

/* redirect{ stdin = path, stdout = path, stderr = path | "stdout", cwd = dir }
   -> true | nil, err: this process's standard files (opened as spawn opens a
   child's: stdout truncated) and working directory.  Absent fields stay. */
static int l_redirect(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int known = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; redirect_keys[i]; i++)
        if (strcmp(redirect_keys[i], lua_tostring(L, -2)) == 0) known = 1;
    if (!known) return luaL_error(L, "invalid field '%s' in redirect", luaL_tolstring(L, -2, NULL));
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "redirect: field '%s' must be a string", lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  const char *in = opt_string_field(L, 1, "stdin");
  const char *out = opt_string_field(L, 1, "stdout");
  const char *err = opt_string_field(L, 1, "stderr");
  const char *cwd = opt_string_field(L, 1, "cwd");
  fflush(stdout);
  fflush(stderr);
  if (in && open_redirect(in, O_RDONLY, 0) != 0) return fail(L, in, errno);
  if (out && open_redirect(out, O_WRONLY | O_CREAT | O_TRUNC, 1) != 0) return fail(L, out, errno);
  if (err && strcmp(err, "stdout") == 0) {
    if (dup2(1, 2) < 0) return fail(L, "dup2", errno);
  } else if (err && open_redirect(err, O_WRONLY | O_CREAT | O_TRUNC, 2) != 0) {
    return fail(L, err, errno);
  }
  if (cwd && chdir(cwd) != 0) return fail(L, cwd, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- file locks ---------------------------------------------------------- */

typedef struct {
  int fd;
} Lock;

/* lock(path [, { wait = seconds }]) -> lock | nil, err.  An exclusive flock on
   path (created 0600), held until lock:release(), __close, __gc or exit.
   wait = 0 (default) fails at once with "locked" when another process holds it. */
static int l_lock(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  double wait = 0;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "wait");
    wait = luaL_optnumber(L, -1, 0);
    lua_pop(L, 1);
  }
  Lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->fd = -1;
  luaL_setmetatable(L, LOCK_MT);
  lk->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lk->fd < 0) return fail(L, path, errno);
  for (int tries = 0;; tries++) {
    if (flock(lk->fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno != EWOULDBLOCK || tries * 0.01 >= wait) {
      int e = errno;
      close(lk->fd);
      lk->fd = -1;
      if (e == EWOULDBLOCK) {
        lua_pushnil(L);
        lua_pushliteral(L, "locked");
        return 2;
      }
      return fail(L, path, e);
    }
    usleep(10000);
  }
  return 1;
}

static int lock_release(lua_State *L) {
  Lock *lk = luaL_checkudata(L, 1, LOCK_MT);
  if (lk->fd >= 0) close(lk->fd);
  lk->fd = -1;
  return 0;
}

static int lock_tostring(lua_State *L) {
  Lock *lk = luaL_checkudata(L, 1, LOCK_MT);
  lua_pushstring(L, lk->fd >= 0 ? "batchai.FileLock (held)" : "batchai.FileLock (released)");
  return 1;
}

static int l_getuid(lua_State *L) {
  lua_pushinteger(L, getuid());
  return 1;
}

int luaopen_batchai__proc(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"spawn", l_spawn},
      {"pidfd", l_pidfd},
      {"reap", l_reap},
      {"reap_any", l_reap_any},
      {"kill", l_kill},
      {"start_time", l_start_time},
      {"session_pids", l_session_pids},
      {"kill_session", l_kill_session},
      {"poll", l_poll},
      {"signalfd", l_signalfd},
      {"read_signals", l_read_signals},
      {"close", l_close},
      {"connect_unix", l_connect_unix},
      {"socketpair", l_socketpair},
      {"send", l_send},
      {"redirect", l_redirect},
      {"lock", l_lock},
      {"getuid", l_getuid},
      {NULL, NULL},
  };
  luaL_newmetatable(L, LOCK_MT);
  lua_newtable(L);
  lua_pushcfunction(L, lock_release);
  lua_setfield(L, -2, "release");
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, lock_release);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, lock_release);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, lock_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}

/* batchai._sqlite: a thin SQLite binding (databases, prepared statements) for
   bai serve's store, and a syncer (a thread that makes a file durable on request,
   so that the event loop never waits in fdatasync).  Runtime failures return
   nil, err (err = { code=, message= } with __tostring); misuse (closed handles,
   bad argument types) raises. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

int luaopen_batchai__sqlite(lua_State *L);
#include <sqlite3.h>

#define DB_MT "batchai.SqliteDb"
#define STMT_MT "batchai.SqliteStmt"
#define ERROR_MT "batchai.SqliteError"
#define SYNCER_MT "batchai.SqliteSyncer"

typedef struct {
  sqlite3 *db;
} Db;

typedef struct {
  sqlite3_stmt *stmt;
  int db_ref; /* keeps the database alive while the statement lives */
} Stmt;

/* Pushes nil and an error table { code = "SQLITE_BUSY", message = "..." }; returns 2. */
static int push_error(lua_State *L, sqlite3 *db, int rc) {
  lua_pushnil(L);
  lua_createtable(L, 0, 3);
  const char *name = sqlite3_errstr(rc);
  lua_pushstring(L, db ? sqlite3_errmsg(db) : name);
  lua_setfield(L, -2, "message");
  lua_pushinteger(L, rc);
  lua_setfield(L, -2, "rc");
  switch (rc & 0xff) {
  case SQLITE_BUSY: lua_pushliteral(L, "SQLITE_BUSY"); break;
  case SQLITE_CONSTRAINT: lua_pushliteral(L, "SQLITE_CONSTRAINT"); break;
  case SQLITE_FULL: lua_pushliteral(L, "SQLITE_FULL"); break;
  case SQLITE_IOERR: lua_pushliteral(L, "SQLITE_IOERR"); break;
  case SQLITE_CORRUPT: lua_pushliteral(L, "SQLITE_CORRUPT"); break;
  case SQLITE_READONLY: lua_pushliteral(L, "SQLITE_READONLY"); break;
  case SQLITE_CANTOPEN: lua_pushliteral(L, "SQLITE_CANTOPEN"); break;
  default: lua_pushliteral(L, "SQLITE_ERROR"); break;
  }
  lua_setfield(L, -2, "code");
  luaL_setmetatable(L, ERROR_MT);
  return 2;
}

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "message");
  lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
  return 1;
}

static Db *check_db(lua_State *L, int idx) {
  Db *d = luaL_checkudata(L, idx, DB_MT);
  if (d->db == NULL) luaL_argerror(L, idx, "database is closed");
  return d;
}

static Stmt *check_stmt(lua_State *L, int idx) {
  Stmt *s = luaL_checkudata(L, idx, STMT_MT);
  if (s->stmt == NULL) luaL_argerror(L, idx, "statement is finalized");
  return s;
}

/* open(path [, { readonly = bool }]) -> db | nil, err */
static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (lua_istable(L, 2)) {
    if (lua_getfield(L, 2, "readonly") != LUA_TNIL && lua_toboolean(L, -1)) flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    lua_pop(L, 1);
  }
  Db *d = lua_newuserdatauv(L, sizeof *d, 0);
  d->db = NULL;
  luaL_setmetatable(L, DB_MT);
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, flags, NULL);
  if (rc != SQLITE_OK) {
    int n = push_error(L, db, rc);
    sqlite3_close(db);
    return n;
  }
  sqlite3_extended_result_codes(db, 1);
  d->db = db;
  return 1;
}

/* db:exec(sql) -> true | nil, err: runs one or more statements without results. */
static int db_exec(lua_State *L) {
  Db *d = check_db(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) return push_error(L, d->db, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* db:prepare(sql) -> stmt | nil, err */
static int db_prepare(lua_State *L) {
  Db *d = check_db(L, 1);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  Stmt *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->stmt = NULL;
  s->db_ref = LUA_NOREF;
  luaL_setmetatable(L, STMT_MT);
  int rc = sqlite3_prepare_v3(d->db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &s->stmt, NULL);
  if (rc != SQLITE_OK) return push_error(L, d->db, rc);
  if (s->stmt == NULL) return luaL_argerror(L, 2, "no SQL statement");
  lua_pushvalue(L, 1);
  s->db_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static int db_changes(lua_State *L) {
  lua_pushinteger(L, sqlite3_changes(check_db(L, 1)->db));
  return 1;
}

static int db_last_insert_rowid(lua_State *L) {
  lua_pushinteger(L, sqlite3_last_insert_rowid(check_db(L, 1)->db));
  return 1;
}

static int db_in_transaction(lua_State *L) {
  lua_pushboolean(L, !sqlite3_get_autocommit(check_db(L, 1)->db));
  return 1;
}

/* db:close(): closes the database (statements must have been finalized). */
static int db_close(lua_State *L) {
  Db *d = luaL_checkudata(L, 1, DB_MT);
  if (d->db) {
    sqlite3_close_v2(d->db);
    d->db = NULL;
  }
  return 0;
}

static int db_tostring(lua_State *L) {
  Db *d = luaL_checkudata(L, 1, DB_MT);
  lua_pushfstring(L, "batchai.SqliteDb (%s)", d->db ? sqlite3_db_filename(d->db, "main") : "closed");
  return 1;
}

/* Binds arguments from stack index `first` on to the statement's parameters
   1..n; raises on a value SQLite cannot store (before anything is allocated). */
static void bind_args(lua_State *L, Stmt *s, int first) {
  int top = lua_gettop(L);
  int nparams = sqlite3_bind_parameter_count(s->stmt);
  if (top - first + 1 > nparams)
    luaL_error(L, "too many arguments: statement has %d parameters, got %d", nparams, top - first + 1);
  sqlite3_reset(s->stmt);
  sqlite3_clear_bindings(s->stmt);
  for (int i = first; i <= top; i++) {
    int p = i - first + 1;
    switch (lua_type(L, i)) {
    case LUA_TNIL: sqlite3_bind_null(s->stmt, p); break;
    case LUA_TBOOLEAN: sqlite3_bind_int(s->stmt, p, lua_toboolean(L, i)); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, i)) sqlite3_bind_int64(s->stmt, p, lua_tointeger(L, i));
      else sqlite3_bind_double(s->stmt, p, lua_tonumber(L, i));
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *v = lua_tolstring(L, i, &len);
      sqlite3_bind_text(s->stmt, p, v, (int)len, SQLITE_TRANSIENT);
      break;
    }
    default:
      sqlite3_reset(s->stmt);
      luaL_argerror(L, i, lua_pushfstring(L, "cannot bind a %s", luaL_typename(L, i)));
    }
  }
}

static void push_column(lua_State *L, sqlite3_stmt *st, int c) {
  switch (sqlite3_column_type(st, c)) {
  case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_column_int64(st, c)); break;
  case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, c)); break;
  case SQLITE_NULL: lua_pushnil(L); break;
  default: {
    const void *p = sqlite3_column_blob(st, c);
    lua_pushlstring(L, p ? p : "", (size_t)sqlite3_column_bytes(st, c));
  }
  }
}

/* stmt:first(...) -> values of the first row (nothing when no row) | nil, err.
   Binds the arguments, steps once, resets. */
static int stmt_first(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  bind_args(L, s, 2);
  int rc = sqlite3_step(s->stmt);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(s->stmt);
    return 0;
  }
  if (rc != SQLITE_ROW) {
    sqlite3_reset(s->stmt);
    return push_error(L, sqlite3_db_handle(s->stmt), rc);
  }
  int n = sqlite3_column_count(s->stmt);
  luaL_checkstack(L, n, "too many columns");
  for (int c = 0; c < n; c++) push_column(L, s->stmt, c);
  sqlite3_reset(s->stmt);
  return n;
}

/* stmt:run(...) -> number of rows changed | nil, err.  Binds, steps to the end, resets. */
static int stmt_run(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  bind_args(L, s, 2);
  int rc;
  while ((rc = sqlite3_step(s->stmt)) == SQLITE_ROW) {
  }
  sqlite3_reset(s->stmt);
  if (rc != SQLITE_DONE) return push_error(L, sqlite3_db_handle(s->stmt), rc);
  lua_pushinteger(L, sqlite3_changes(sqlite3_db_handle(s->stmt)));
  return 1;
}

/* stmt:rows(...) -> array of rows, each an array of column values | nil, err. */
static int stmt_rows(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  bind_args(L, s, 2);
  int ncol = sqlite3_column_count(s->stmt);
  lua_newtable(L);
  lua_Integer n = 0;
  int rc;
  while ((rc = sqlite3_step(s->stmt)) == SQLITE_ROW) {
    lua_createtable(L, ncol, 0);
    for (int c = 0; c < ncol; c++) {
      push_column(L, s->stmt, c);
      lua_rawseti(L, -2, c + 1);
    }
    lua_rawseti(L, -2, ++n);
  }
  sqlite3_reset(s->stmt);
  if (rc != SQLITE_DONE) return push_error(L, sqlite3_db_handle(s->stmt), rc);
  return 1;
}

/* stmt:column_names() -> array of the result column names */
static int stmt_column_names(lua_State *L) {
  Stmt *s = check_stmt(L, 1);
  int n = sqlite3_column_count(s->stmt);
  lua_createtable(L, n, 0);
  for (int c = 0; c < n; c++) {
    lua_pushstring(L, sqlite3_column_name(s->stmt, c));
    lua_rawseti(L, -2, c + 1);
  }
  return 1;
}

static int stmt_finalize(lua_State *L) {
  Stmt *s = luaL_checkudata(L, 1, STMT_MT);
  if (s->stmt) {
    sqlite3_finalize(s->stmt);
    s->stmt = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, s->db_ref);
  s->db_ref = LUA_NOREF;
  return 0;
}

static int stmt_tostring(lua_State *L) {
  Stmt *s = luaL_checkudata(L, 1, STMT_MT);
  lua_pushfstring(L, "batchai.SqliteStmt (%s)", s->stmt ? sqlite3_sql(s->stmt) : "finalized");
  return 1;
}

/* ---- syncer ---------------------------------------------------------------- */

/* Sync requests are numbered ("tickets"); the worker thread fdatasyncs the file
   for every batch of requests and then `completed` is the highest ticket whose
   data (written before its request) is durable.  The thread touches only this
   struct (under `mu`) and its two descriptors. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t wake;   /* requested > completed, or stop */
  pthread_cond_t done;   /* completed advanced */
  pthread_t thread;
  int running;           /* the thread exists (join it) */
  int stop;
  int file_fd, event_fd; /* -1 once closed */
  long long requested, completed;
  int error;             /* errno of a failed sync not yet reported by poll, 0 if none */
} Syncer;

static void *syncer_main(void *arg) {
  Syncer *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->stop && s->requested == s->completed) pthread_cond_wait(&s->wake, &s->mu);
    if (s->stop) break;
    long long target = s->requested;
    pthread_mutex_unlock(&s->mu);
    int err = fdatasync(s->file_fd) == 0 ? 0 : errno;
    pthread_mutex_lock(&s->mu);
    s->completed = target;
    if (err && !s->error) s->error = err;
    pthread_cond_broadcast(&s->done);
    uint64_t one = 1;
    ssize_t w = write(s->event_fd, &one, sizeof one);
    (void)w;
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static Syncer *check_syncer(lua_State *L, int idx) {
  Syncer *s = luaL_checkudata(L, idx, SYNCER_MT);
  if (s->event_fd < 0) luaL_argerror(L, idx, "syncer is closed");
  return s;
}

/* Stops and joins the thread (after it finishes a sync in progress), closes the descriptors. */
static int syncer_close(lua_State *L) {
  Syncer *s = luaL_checkudata(L, 1, SYNCER_MT);
  if (s->running) {
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->running = 0;
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->mu);
  }
  if (s->file_fd >= 0) close(s->file_fd);
  if (s->event_fd >= 0) close(s->event_fd);
  s->file_fd = s->event_fd = -1;
  return 0;
}

/* syncer:request() -> ticket: the file's data written so far becomes durable
   when poll() reports a completed ticket >= this one. */
static int syncer_request(lua_State *L) {
  Syncer *s = check_syncer(L, 1);
  pthread_mutex_lock(&s->mu);
  long long ticket = ++s->requested;
  pthread_cond_signal(&s->wake);
  pthread_mutex_unlock(&s->mu);
  lua_pushinteger(L, ticket);
  return 1;
}

/* Pushes the completed ticket and the pending error (nil when none), clearing it. */
static int push_progress(lua_State *L, Syncer *s) {
  long long completed = s->completed;
  int err = s->error;
  s->error = 0;
  pthread_mutex_unlock(&s->mu);
  lua_pushinteger(L, completed);
  if (err) lua_pushfstring(L, "fdatasync: %s", strerror(err));
  else lua_pushnil(L);
  return 2;
}

/* syncer:poll() -> completed ticket, error message | nil (a failed sync since
   the last poll).  Never blocks; clears the readiness of fd(). */
static int syncer_poll(lua_State *L) {
  Syncer *s = check_syncer(L, 1);
  uint64_t n;
  ssize_t r = read(s->event_fd, &n, sizeof n);
  (void)r;
  pthread_mutex_lock(&s->mu);
  return push_progress(L, s);
}

/* syncer:wait(ticket) -> completed ticket, error message | nil: blocks until
   the ticket is durable (for shutdown). */
static int syncer_wait(lua_State *L) {
  Syncer *s = check_syncer(L, 1);
  lua_Integer ticket = luaL_checkinteger(L, 2);
  pthread_mutex_lock(&s->mu);
  if (ticket > s->requested) {
    pthread_mutex_unlock(&s->mu);
    return luaL_argerror(L, 2, "ticket never requested");
  }
  while (s->completed < ticket) pthread_cond_wait(&s->done, &s->mu);
  return push_progress(L, s);
}

/* syncer:fd() -> a descriptor that polls readable after a sync completes */
static int syncer_fd(lua_State *L) {
  lua_pushinteger(L, check_syncer(L, 1)->event_fd);
  return 1;
}

static int syncer_tostring(lua_State *L) {
  Syncer *s = luaL_checkudata(L, 1, SYNCER_MT);
  if (s->event_fd < 0) lua_pushliteral(L, "batchai.SqliteSyncer (closed)");
  else lua_pushfstring(L, "batchai.SqliteSyncer (%I of %I durable)", (lua_Integer)s->completed, (lua_Integer)s->requested);
  return 1;
}

/* syncer{ path = file } -> syncer | nil, err: a thread that fdatasyncs the file
   (the store's WAL) on request.  The file must exist. */
static int l_syncer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "path") != 0)
      return luaL_error(L, "invalid field '%s' in syncer (the only one is 'path')", luaL_tolstring(L, -2, NULL));
    lua_pop(L, 1);
  }
  lua_getfield(L, 1, "path");
  const char *path = luaL_checkstring(L, -1);
  Syncer *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->file_fd = s->event_fd = -1;
  luaL_setmetatable(L, SYNCER_MT);
  s->file_fd = open(path, O_RDONLY | O_CLOEXEC);
  if (s->file_fd < 0) {
    int err = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(err));
    return 2;
  }
  s->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->event_fd < 0) {
    int err = errno;
    close(s->file_fd);
    s->file_fd = -1;
    lua_pushnil(L);
    lua_pushfstring(L, "eventfd: %s", strerror(err));
    return 2;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->wake, NULL);
  pthread_cond_init(&s->done, NULL);
  int rc = pthread_create(&s->thread, NULL, syncer_main, s);
  if (rc != 0) {
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->mu);
    close(s->file_fd);
    close(s->event_fd);
    s->file_fd = s->event_fd = -1;
    lua_pushnil(L);
    lua_pushfstring(L, "pthread_create: %s", strerror(rc));
    return 2;
  }
  s->running = 1;
  return 1;
}

int luaopen_batchai__sqlite(lua_State *L) {
  static const luaL_Reg db_methods[] = {
      {"exec", db_exec},
      {"prepare", db_prepare},
      {"changes", db_changes},
      {"last_insert_rowid", db_last_insert_rowid},
      {"in_transaction", db_in_transaction},
      {"close", db_close},
      {NULL, NULL},
  };
  static const luaL_Reg stmt_methods[] = {
      {"first", stmt_first},
      {"run", stmt_run},
      {"rows", stmt_rows},
      {"column_names", stmt_column_names},
      {"finalize", stmt_finalize},
      {NULL, NULL},
  };
  luaL_newmetatable(L, DB_MT);
  luaL_newlib(L, db_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, db_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, db_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, db_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  luaL_newmetatable(L, STMT_MT);
  luaL_newlib(L, stmt_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, stmt_finalize);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, stmt_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  static const luaL_Reg syncer_methods[] = {
      {"request", syncer_request},
      {"poll", syncer_poll},
      {"wait", syncer_wait},
      {"fd", syncer_fd},
      {"close", syncer_close},
      {NULL, NULL},
  };
  luaL_newmetatable(L, SYNCER_MT);
  luaL_newlib(L, syncer_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, syncer_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, syncer_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, syncer_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  luaL_newmetatable(L, ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  lua_pushcfunction(L, l_syncer);
  lua_setfield(L, -2, "syncer");
  lua_pushstring(L, sqlite3_libversion());
  lua_setfield(L, -2, "library_version");
  return 1;
}

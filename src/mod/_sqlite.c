/* batchai._sqlite: a thin SQLite binding (databases, prepared statements) for
   bai serve's store.  Runtime failures return nil, err (err = { code=, message= }
   with __tostring); misuse (closed handles, bad argument types) raises. */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

int luaopen_batchai__sqlite(lua_State *L);
#include <sqlite3.h>

#define DB_MT "batchai.SqliteDb"
#define STMT_MT "batchai.SqliteStmt"
#define ERROR_MT "batchai.SqliteError"

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

  luaL_newmetatable(L, ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  lua_pushstring(L, sqlite3_libversion());
  lua_setfield(L, -2, "library_version");
  return 1;
}

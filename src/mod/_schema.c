/* batchai._schema: the typed schema's hot paths in C (JSON text of typed values,
   JSON string quoting, presized table copies); batchai.schema holds the policy. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

/* Upvalue 1 of the functions: { [1] = DATA key, [2] = JSON key, [3] = encode_any,
   [4] = scratch buffer of encode() }, keys and encode_any filled by setup(). */
#define CONFIG lua_upvalueindex(1)

/* Field codes of a type's __enc array (name, "\"name\":", code triples). */
enum { CODE_STRING = 1, CODE_INTEGER = 2, CODE_ANY = 3, CODE_OBJECT = 4, CODE_LIST = 5, CODE_READ_ONLY = 8 };

#define MAX_DEPTH 64

/* A growable byte buffer whose storage is a userdata at stack index `slot`, so
   the garbage collector frees it whatever happens (errors included). */
struct buffer {
  lua_State *L;
  char *p;
  size_t n, cap;
  int slot;
};

static void buffer_init(lua_State *L, struct buffer *b, size_t cap) {
  b->L = L;
  b->n = 0;
  b->cap = cap;
  b->p = lua_newuserdatauv(L, cap, 0);
  b->slot = lua_gettop(L);
}

/* Like buffer_init, reusing the scratch buffer kept in CONFIG[4] when it is
   there.  It is taken out while in use: a nested or failed call never shares it. */
static void buffer_init_scratch(lua_State *L, struct buffer *b) {
  if (lua_rawgeti(L, CONFIG, 4) == LUA_TUSERDATA) {
    lua_pushnil(L);
    lua_rawseti(L, CONFIG, 4);
    b->L = L;
    b->n = 0;
    b->cap = lua_rawlen(L, -1);
    b->p = lua_touserdata(L, -1);
    b->slot = lua_gettop(L);
    return;
  }
  lua_pop(L, 1);
  buffer_init(L, b, 4096);
}

/* Gives the scratch buffer back for the next call (unless it grew very large). */
static void buffer_keep_scratch(struct buffer *b) {
  if (b->cap > (1u << 20)) return;
  lua_pushvalue(b->L, b->slot);
  lua_rawseti(b->L, CONFIG, 4);
}

/* Makes room for `more` bytes; may raise (out of memory) with nothing to free. */
static void buffer_reserve(struct buffer *b, size_t more) {
  if (b->cap - b->n >= more) return;
  size_t cap = b->cap * 2;
  while (cap - b->n < more) cap *= 2;
  char *p = lua_newuserdatauv(b->L, cap, 0);
  memcpy(p, b->p, b->n);
  lua_replace(b->L, b->slot);
  b->p = p;
  b->cap = cap;
}

static void buffer_add(struct buffer *b, const char *s, size_t len) {
  buffer_reserve(b, len);
  memcpy(b->p + b->n, s, len);
  b->n += len;
}

static void buffer_char(struct buffer *b, char c) {
  buffer_reserve(b, 1);
  b->p[b->n++] = c;
}

/* 1 for the bytes a JSON string must escape: control characters, '"', '\\', DEL. */
static const unsigned char needs_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
};

/* Appends s as a JSON string literal ('/' and non-ASCII bytes are kept as they are). */
static void add_quoted(struct buffer *b, const char *s, size_t len) {
  buffer_reserve(b, len + 2);
  b->p[b->n++] = '"';
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!needs_escape[c]) continue;
    buffer_add(b, s + start, i - start);
    char esc[8];
    switch (c) {
      case '"': buffer_add(b, "\\\"", 2); break;
      case '\\': buffer_add(b, "\\\\", 2); break;
      case '\b': buffer_add(b, "\\b", 2); break;
      case '\f': buffer_add(b, "\\f", 2); break;
      case '\n': buffer_add(b, "\\n", 2); break;
      case '\r': buffer_add(b, "\\r", 2); break;
      case '\t': buffer_add(b, "\\t", 2); break;
      default:
        snprintf(esc, sizeof esc, "\\u%04x", c);
        buffer_add(b, esc, 6);
    }
    start = i + 1;
  }
  buffer_add(b, s + start, len - start);
  buffer_char(b, '"');
}

/* Stack slots of one encode() call. */
struct encoder {
  struct buffer buf;
  int key_data, key_json, encode_any;
};

/* Appends the plain value at the top of the stack through encode_any (Lua). */
static void add_any(lua_State *L, struct encoder *e) {
  lua_pushvalue(L, e->encode_any);
  lua_pushvalue(L, -2);
  lua_call(L, 1, 1);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (s == NULL) luaL_error(L, "encode_any returned a %s", luaL_typename(L, -1));
  buffer_add(&e->buf, s, len);
  lua_pop(L, 1);
}

static void add_value(lua_State *L, struct encoder *e, int v, int create_body, int depth);

/* Appends field value x (at the top of the stack) of the given code. */
static void add_field(lua_State *L, struct encoder *e, int code, int depth) {
  int x = lua_gettop(L);
  switch (code) {
    case CODE_STRING:
      if (lua_type(L, x) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, x, &len);
        add_quoted(&e->buf, s, len);
        return;
      }
      break;
    case CODE_INTEGER:
      if (lua_isinteger(L, x)) {
        char num[32];
        int len = snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, x));
        buffer_add(&e->buf, num, (size_t)len);
        return;
      }
      break;
    case CODE_OBJECT:
    case CODE_LIST:
      if (lua_type(L, x) == LUA_TTABLE) {
        add_value(L, e, x, 0, depth + 1);
        return;
      }
      break;
    default:
      break;
  }
  add_any(L, e);
}

/* Appends the JSON of the typed value (object or list) at stack index v, and
   caches it in the value when its type allows.  create_body leaves out
   read-only fields.  Leaves the stack as it found it; raises on a non-value. */
static void add_value(lua_State *L, struct encoder *e, int v, int create_body, int depth) {
  if (depth > MAX_DEPTH) luaL_error(L, "typed values nested too deeply");
  luaL_checkstack(L, 8, "typed values nested too deeply");
  int top = lua_gettop(L);
  lua_pushvalue(L, e->key_json);
  if (lua_rawget(L, v) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    buffer_add(&e->buf, s, len);
    lua_settop(L, top);
    return;
  }
  lua_pop(L, 1);
  if (!lua_getmetatable(L, v)) luaL_error(L, "typed value expected, got a plain %s", luaL_typename(L, v));
  int mt = lua_gettop(L);
  lua_pushvalue(L, e->key_data);
  if (lua_rawget(L, v) != LUA_TTABLE) luaL_error(L, "typed value expected");
  int data = lua_gettop(L);
  size_t start = e->buf.n;
  if (lua_getfield(L, mt, "__list") == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    buffer_char(&e->buf, '[');
    lua_Integer n = (lua_Integer)lua_rawlen(L, data);
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1) buffer_char(&e->buf, ',');
      lua_rawgeti(L, data, i);
      add_value(L, e, lua_gettop(L), 0, depth + 1);
      lua_pop(L, 1);
    }
    buffer_char(&e->buf, ']');
  } else {
    lua_pop(L, 1);
    if (lua_getfield(L, mt, "__enc") != LUA_TTABLE) luaL_error(L, "typed value expected");
    int enc = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, enc);
    int first = 1;
    buffer_char(&e->buf, '{');
    for (lua_Integer i = 1; i + 2 <= n; i += 3) {
      lua_rawgeti(L, enc, i);
      if (lua_rawget(L, data) == LUA_TNIL) {
        lua_pop(L, 1);
        continue;
      }
      lua_rawgeti(L, enc, i + 2);
      int code = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (create_body && (code & CODE_READ_ONLY)) {
        lua_pop(L, 1);
        continue;
      }
      if (!first) buffer_char(&e->buf, ',');
      first = 0;
      lua_rawgeti(L, enc, i + 1);
      size_t klen;
      const char *key = lua_tolstring(L, -1, &klen);
      if (key) buffer_add(&e->buf, key, klen);
      lua_pop(L, 1);
      add_field(L, e, code & ~CODE_READ_ONLY, depth);
      lua_pop(L, 1);
    }
    buffer_char(&e->buf, '}');
  }
  if (lua_getfield(L, mt, "__cache") == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
    lua_pushvalue(L, e->key_json);
    lua_pushlstring(L, e->buf.p + start, e->buf.n - start);
    lua_rawset(L, v);
  }
  lua_settop(L, top);
}

/* encode(value [, create_body [, prefix, suffix]]) -> JSON text of a typed value,
   between prefix and suffix.  Raises when value is not a typed value. */
static int l_encode(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int create_body = lua_toboolean(L, 2);
  size_t plen = 0, slen = 0;
  const char *prefix = luaL_optlstring(L, 3, "", &plen);
  const char *suffix = luaL_optlstring(L, 4, "", &slen);
  lua_settop(L, 4);
  struct encoder e;
  lua_rawgeti(L, CONFIG, 1);
  e.key_data = lua_gettop(L);
  lua_rawgeti(L, CONFIG, 2);
  e.key_json = lua_gettop(L);
  lua_rawgeti(L, CONFIG, 3);
  e.encode_any = lua_gettop(L);
  if (lua_isnil(L, e.key_data) || lua_isnil(L, e.key_json)) return luaL_error(L, "batchai._schema.setup was not called");
  buffer_init_scratch(L, &e.buf);
  buffer_add(&e.buf, prefix, plen);
  add_value(L, &e, 1, create_body, 0);
  buffer_add(&e.buf, suffix, slen);
  lua_pushlstring(L, e.buf.p, e.buf.n);
  buffer_keep_scratch(&e.buf);
  return 1;
}

/* quote(s) -> s as a JSON string literal. */
static int l_quote(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  size_t i = 0;
  while (i < len && !needs_escape[(unsigned char)s[i]]) i++;
  if (i == len) {  /* the common case: nothing to escape */
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, len + 2);
    p[0] = '"';
    memcpy(p + 1, s, len);
    p[len + 1] = '"';
    luaL_pushresultsize(&b, len + 2);
    return 1;
  }
  struct buffer buf;
  buffer_init(L, &buf, len + 16);
  add_quoted(&buf, s, len);
  lua_pushlstring(L, buf.p, buf.n);
  return 1;
}

/* clone(t) -> a shallow copy of t (no metatable), sized for its entries. */
static int l_clone(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);  /* the copy goes to index 2 */
  int count = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    count++;
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, count);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, 2);
  }
  return 1;
}

/* setup(data_key, json_key, encode_any): the private keys of typed values and
   the Lua encoder for plain values (maps, free-form objects). */
static int l_setup(lua_State *L) {
  luaL_checkany(L, 1);
  luaL_checkany(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  for (int i = 1; i <= 3; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, CONFIG, i);
  }
  return 0;
}

int luaopen_batchai__schema(lua_State *L);
int luaopen_batchai__schema(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"encode", l_encode},
      {"quote", l_quote},
      {"clone", l_clone},
      {"setup", l_setup},
      {NULL, NULL},
  };
  luaL_newlibtable(L, funcs);
  lua_newtable(L);
  luaL_setfuncs(L, funcs, 1);
  return 1;
}

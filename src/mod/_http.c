/* batchai._http: many HTTP transfers in flight at once over libcurl's multi
   interface (connection reuse, HTTP/2 where offered, unix sockets, timeouts,
   response headers).  Policy (retries, auth, paging) lives in Lua.

   local http = require "batchai._http"
   local m = http.multi{ max_host_connections = 32 }
   local id = m:add(ref, { method = "PUT", url = ..., body = ..., headers = { "A: b" } })
   m:perform(0.5)                       -- drive transfers, wait up to 0.5 s
   local ref, status, body, headers = m:next()     -- a finished transfer, or nil
   -- a transport failure gives: ref, nil, message, code ("COULDNT_CONNECT", ...)

   Every curl handle lives in the batchai.HttpMulti userdata, so an error raised
   in the middle of a call never leaks one: __gc/__close free them all. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>

#define MULTI_MT "batchai.HttpMulti"
#define HEADERS_MT "batchai.HttpHeaders"
#define BODY_INITIAL (16 * 1024)      /* response buffer kept by each pooled transfer */
#define BODY_KEEP (256 * 1024)        /* larger buffers are freed after use */
#define HEAD_INITIAL 1024

typedef struct {
  char *data;
  size_t len, cap;
} Buffer;

struct Multi;

/* One pooled transfer: a reusable easy handle and its buffers. */
typedef struct Transfer {
  CURL *easy;
  struct Multi *owner;
  struct curl_slist *headers;
  FILE *out;              /* body goes to this file instead of memory */
  Buffer body, head;
  int ref;                /* caller's value, in the uservalue table */
  int body_ref;           /* request body string kept alive while curl reads it */
  int headers_ref;        /* a batchai.HttpHeaders in use by this transfer */
  int id;                 /* index in owner->transfers */
  int in_use;             /* acquired and not yet released */
  int active;             /* added to the multi handle */
  int too_large;          /* response exceeded max_response */
  int write_failed;       /* fwrite to `out` failed */
  long status;
  CURLcode result;
  int next_free;
  /* Costly per-request options as last given to curl, set again only when
     they change (most requests of a client look alike). */
  int set_decompress, set_noproxy;      /* -1 until set */
  char set_method[16];                  /* CURLOPT_CUSTOMREQUEST; "" for none */
  char errbuf[CURL_ERROR_SIZE];
} Transfer;

typedef struct Multi {
  CURLM *multi;
  Transfer **transfers;
  int ntransfers, cap;
  int free_head;          /* first free transfer index, or -1 */
  int *done;              /* ring of finished transfer indices */
  int done_head, done_len, done_cap;
  int active;
  size_t max_response;
  char *ca_file;
  char *user_agent;
  lua_Integer connects, completed, http2;
  int closed;
} Multi;

/* ---- buffers ----------------------------------------------------------- */

static int buffer_reserve(Buffer *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

static void buffer_reset(Buffer *b, size_t keep) {
  b->len = 0;
  if (b->cap > keep) {
    free(b->data);
    b->data = NULL;
    b->cap = 0;
  }
}

/* ---- curl callbacks ---------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  Transfer *t = ud;
  size_t len = size * n;
  if (t->out) {
    if (fwrite(data, 1, len, t->out) != len) {
      t->write_failed = 1;
      return 0;
    }
    return len;
  }
  if (t->body.len + len > t->owner->max_response) {
    t->too_large = 1;
    return 0;
  }
  if (!buffer_reserve(&t->body, len)) return 0;
  memcpy(t->body.data + t->body.len, data, len);
  t->body.len += len;
  return len;
}

/* Keeps the header block of the last response only (a 100 Continue or a proxy's
   answer comes first and is dropped). */
static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  Transfer *t = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) t->head.len = 0;
  if (t->head.len + len > 256 * 1024) return 0;
  if (!buffer_reserve(&t->head, len)) return 0;
  memcpy(t->head.data + t->head.len, data, len);
  t->head.len += len;
  return len;
}

/* ---- the pool ---------------------------------------------------------- */

static Multi *check_multi(lua_State *L, int idx) {
  Multi *m = luaL_checkudata(L, idx, MULTI_MT);
  if (m->closed) luaL_argerror(L, idx, "HTTP multi handle is closed");
  return m;
}

/* Options that never change for a pooled handle (set once, at creation). */
static void setup_handle(Multi *m, Transfer *t) {
  CURL *e = t->easy;
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, m->user_agent);
  if (m->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, m->ca_file);
}

/* A free transfer from the pool (creating one if needed), or NULL when out of
   memory.  Pooled handles keep their options: add() sets every per-request one
   each time, so nothing of an earlier request carries over. */
static Transfer *acquire(Multi *m) {
  Transfer *t;
  if (m->free_head >= 0) {
    t = m->transfers[m->free_head];
    m->free_head = t->next_free;
  } else {
    if (m->ntransfers == m->cap) {
      int cap = m->cap ? m->cap * 2 : 32;
      Transfer **p = realloc(m->transfers, (size_t)cap * sizeof *p);
      if (!p) return NULL;
      m->transfers = p;
      m->cap = cap;
    }
    if (m->done_cap < m->cap) {  /* the ring holds every transfer: collect() never allocates */
      int *d = malloc((size_t)m->cap * sizeof *d);
      if (!d) return NULL;
      for (int i = 0; i < m->done_len; i++) d[i] = m->done[(m->done_head + i) % m->done_cap];
      free(m->done);
      m->done = d;
      m->done_cap = m->cap;
      m->done_head = 0;
    }
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->easy = curl_easy_init();
    if (!t->easy || !buffer_reserve(&t->body, BODY_INITIAL) || !buffer_reserve(&t->head, HEAD_INITIAL)) {
      if (t->easy) curl_easy_cleanup(t->easy);
      free(t->body.data);
      free(t->head.data);
      free(t);
      return NULL;
    }
    t->owner = m;
    t->set_decompress = t->set_noproxy = -1;
    t->id = m->ntransfers;
    m->transfers[m->ntransfers++] = t;
    setup_handle(m, t);
  }
  t->in_use = 1;
  t->ref = t->body_ref = t->headers_ref = LUA_NOREF;
  t->status = 0;
  t->result = CURLE_OK;
  t->too_large = t->write_failed = 0;
  t->errbuf[0] = '\0';
  t->body.len = t->head.len = 0;
  return t;
}

/* Returns a transfer to the pool.  Never raises: unref only overwrites a slot
   of the uservalue table, which is on top of the stack at `uv`. */
static void release(lua_State *L, int uv, Transfer *t) {
  Multi *m = t->owner;
  if (t->active) {
    curl_multi_remove_handle(m->multi, t->easy);
    t->active = 0;
    m->active--;
  }
  if (t->headers) curl_slist_free_all(t->headers);
  t->headers = NULL;
  if (t->out) fclose(t->out);
  t->out = NULL;
  if (L) {
    luaL_unref(L, uv, t->ref);
    luaL_unref(L, uv, t->body_ref);
    luaL_unref(L, uv, t->headers_ref);
  }
  t->ref = t->body_ref = t->headers_ref = LUA_NOREF;
  buffer_reset(&t->body, BODY_KEEP);
  buffer_reset(&t->head, BODY_KEEP);
  t->in_use = 0;
  t->next_free = m->free_head;
  m->free_head = t->id;
}

/* Frees every handle.  Safe to call twice. */
static void close_multi(Multi *m) {
  if (m->closed) return;
  m->closed = 1;
  for (int i = 0; i < m->ntransfers; i++) {
    Transfer *t = m->transfers[i];
    if (t->active) curl_multi_remove_handle(m->multi, t->easy);
    curl_easy_cleanup(t->easy);
    if (t->headers) curl_slist_free_all(t->headers);
    if (t->out) fclose(t->out);
    free(t->body.data);
    free(t->head.data);
    free(t);
  }
  free(m->transfers);
  free(m->done);
  free(m->ca_file);
  free(m->user_agent);
  m->transfers = NULL;
  m->done = NULL;
  m->ntransfers = m->cap = 0;
  if (m->multi) curl_multi_cleanup(m->multi);
  m->multi = NULL;
}

/* __gc, __close and m:close(): frees every handle (closing twice is fine). */
static int l_gc(lua_State *L) {
  close_multi(luaL_checkudata(L, 1, MULTI_MT));
  return 0;
}

static int l_tostring(lua_State *L) {
  Multi *m = luaL_checkudata(L, 1, MULTI_MT);
  if (m->closed) lua_pushstring(L, "batchai.HttpMulti (closed)");
  else lua_pushfstring(L, "batchai.HttpMulti (%d in flight, %I done)", m->active, m->completed);
  return 1;
}

/* ---- construction ------------------------------------------------------ */

static const char *const multi_keys[] = {
  "max_host_connections", "max_total_connections", "max_response", "ca_file", "user_agent", NULL,
};

/* Raises "invalid field 'x' in WHAT; did you mean 'y'?" for keys of the table at
   idx that are not in `keys`, using batchai.util.did_you_mean when loadable. */
static void check_keys(lua_State *L, int idx, const char *const *keys, const char *what) {
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    int known = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (int i = 0; keys[i]; i++)
        if (strcmp(k, keys[i]) == 0) known = 1;
    }
    if (!known) {
      const char *k = luaL_tolstring(L, -1, NULL);
      const char *hint = "";
      lua_getglobal(L, "require");
      lua_pushstring(L, "batchai.util");
      if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        lua_getfield(L, -1, "did_you_mean");
        lua_pushstring(L, k);
        lua_createtable(L, 8, 0);
        for (int i = 0; keys[i]; i++) {
          lua_pushstring(L, keys[i]);
          lua_rawseti(L, -2, i + 1);
        }
        if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_isstring(L, -1)) hint = lua_tostring(L, -1);
      }
      luaL_error(L, "invalid field '%s' in %s%s", k, what, hint);
    }
  }
}

/* check_keys for a hot path: the allowed names are also the keys of the set
   table at set_idx (name = true), so a table of known keys is checked
   without comparing strings; an unknown key raises through check_keys. */
static void check_keys_in(lua_State *L, int idx, int set_idx, const char *const *keys, const char *what) {
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    int known = lua_rawget(L, set_idx) != LUA_TNIL;
    lua_pop(L, 1);
    if (!known) {
      lua_pop(L, 1);
      check_keys(L, idx, keys, what);
      return;
    }
  }
}

static lua_Integer opt_int_field(lua_State *L, int idx, const char *name, lua_Integer def, lua_Integer min) {
  lua_Integer v = def;
  if (lua_getfield(L, idx, name) != LUA_TNIL) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < min) luaL_error(L, "field '%s': integer >= %d expected", name, (int)min);
  }
  lua_pop(L, 1);
  return v;
}

static const char *opt_str_field(lua_State *L, int idx, const char *name) {
  int type = lua_getfield(L, idx, name);
  const char *s = NULL;
  if (type == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (type != LUA_TNIL) luaL_error(L, "field '%s': string expected, got %s", name, luaL_typename(L, -1));
  lua_pop(L, 1);  /* the string stays reachable through the table */
  return s;
}

/* http.multi{ max_host_connections=, max_total_connections=, max_response=,
   ca_file=, user_agent= } -> batchai.HttpMulti.  TLS verification is always on;
   ca_file only chooses the trusted certificates. */
static int l_multi(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  check_keys(L, 1, multi_keys, "http.multi");
  lua_Integer max_host = opt_int_field(L, 1, "max_host_connections", 0, 0);
  lua_Integer max_total = opt_int_field(L, 1, "max_total_connections", 0, 0);
  lua_Integer max_response = opt_int_field(L, 1, "max_response", 256 * 1024 * 1024, 1);
  const char *ca_file = opt_str_field(L, 1, "ca_file");
  const char *agent = opt_str_field(L, 1, "user_agent");

  Multi *m = lua_newuserdatauv(L, sizeof *m, 1);
  memset(m, 0, sizeof *m);
  m->free_head = -1;
  m->closed = 1;  /* until everything below succeeded */
  luaL_setmetatable(L, MULTI_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  m->multi = curl_multi_init();
  m->ca_file = ca_file ? strdup(ca_file) : NULL;
  m->user_agent = strdup(agent ? agent : "bai libcurl");
  m->closed = 0;
  if (!m->multi || (ca_file && !m->ca_file) || !m->user_agent) {
    close_multi(m);
    return luaL_error(L, "http.multi: out of memory");
  }
  m->max_response = (size_t)max_response;
  curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (max_host) curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_host);
  if (max_total) curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_total);
  if (max_total || max_host)
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, (long)(max_total > max_host ? max_total : max_host));
  return 1;
}

/* ---- requests ---------------------------------------------------------- */

static const char *const request_keys[] = {
  "method", "url", "body", "headers", "unix_socket", "timeout", "connect_timeout",
  "output", "noproxy", "decompress", NULL,
};

/* One "Name: value" header line without line breaks. */
static int header_line_ok(const char *h) {
  return !strchr(h, '\r') && !strchr(h, '\n') && strchr(h, ':') && h[0] != ':';
}

static int headers_gc(lua_State *L) {
  struct curl_slist **box = luaL_checkudata(L, 1, HEADERS_MT);
  if (*box) curl_slist_free_all(*box);
  *box = NULL;
  return 0;
}

static int headers_tostring(lua_State *L) {
  struct curl_slist **box = luaL_checkudata(L, 1, HEADERS_MT);
  int n = 0;
  for (struct curl_slist *p = *box; p; p = p->next) n++;
  lua_pushfstring(L, "batchai.HttpHeaders (%d lines)", n > 0 ? n - 1 : 0);
  return 1;
}

/* The curl list for the n header lines (checked strings) of the table at idx,
   after "Expect:" (which stops curl from waiting for 100 Continue).  NULL when
   out of memory, with nothing left allocated.  Never raises. */
static struct curl_slist *header_list(lua_State *L, int idx, lua_Integer n) {
  struct curl_slist *list = curl_slist_append(NULL, "Expect:");
  for (lua_Integer i = 1; list && i <= n; i++) {
    lua_rawgeti(L, idx, i);
    struct curl_slist *next = curl_slist_append(list, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!next) curl_slist_free_all(list);
    list = next;
  }
  return list;
}

/* http.headers{ "Name: value", ... } -> batchai.HttpHeaders: a header list
   built once and shared by many requests (as a request's `headers`). */
static int l_headers(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING || !header_line_ok(lua_tostring(L, -1)))
      return luaL_error(L, "bad argument #1 to 'headers' (item %d is not one 'Name: value' line)", (int)i);
    lua_pop(L, 1);
  }
  struct curl_slist **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, HEADERS_MT);
  if ((*box = header_list(L, 1, n)) == NULL) return luaL_error(L, "http.headers: out of memory");
  return 1;
}

static double opt_seconds(lua_State *L, int idx, const char *name) {
  double v = 0;
  if (lua_getfield(L, idx, name) != LUA_TNIL) {
    int ok;
    v = lua_tonumberx(L, -1, &ok);
    if (!ok || v < 0) luaL_error(L, "field '%s': number of seconds >= 0 expected", name);
  }
  lua_pop(L, 1);
  return v;
}

static int push_failure(lua_State *L, const char *message) {
  lua_pushnil(L);
  lua_pushstring(L, message);
  return 2;
}

/* m:add(ref, request) -> id | nil, message.  `ref` is handed back by next();
   request = { method = "GET", url =, body =, headers = { "Name: value", ... },
   unix_socket =, timeout =, connect_timeout = (seconds), output = path (body to
   a new file), noproxy = bool, decompress = bool (default true) }.
   Misuse raises before any handle is taken. */
static int l_add(lua_State *L) {
  Multi *m = check_multi(L, 1);
  luaL_checkany(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  lua_rawgetp(L, LUA_REGISTRYINDEX, request_keys);  /* the set made by luaopen */
  check_keys_in(L, 3, 4, request_keys, "HTTP request");
  lua_settop(L, 3);
  const char *method = opt_str_field(L, 3, "method");
  const char *url = opt_str_field(L, 3, "url");
  if (!url) return luaL_error(L, "field 'url': string expected");
  if (!method) method = "GET";
  for (const char *p = method; *p; p++)
    if (*p < 'A' || *p > 'Z') return luaL_error(L, "field 'method': upper-case HTTP method expected, got '%s'", method);
  size_t body_len = 0;
  int body_type = lua_getfield(L, 3, "body");  /* stays at index 4 */
  if (body_type != LUA_TNIL && body_type != LUA_TSTRING)
    return luaL_error(L, "field 'body': string expected, got %s", luaL_typename(L, 4));
  const char *body = body_type == LUA_TSTRING ? lua_tolstring(L, 4, &body_len) : NULL;
  int headers_type = lua_getfield(L, 3, "headers");  /* index 5 */
  lua_Integer nheaders = 0;
  struct curl_slist *shared_headers = NULL;
  if (headers_type == LUA_TTABLE) {
    nheaders = (lua_Integer)lua_rawlen(L, 5);
    for (lua_Integer i = 1; i <= nheaders; i++) {
      if (lua_rawgeti(L, 5, i) != LUA_TSTRING) return luaL_error(L, "field 'headers': item %d is not a string", (int)i);
      if (!header_line_ok(lua_tostring(L, -1)))
        return luaL_error(L, "field 'headers': item %d is not one 'Name: value' line", (int)i);
      lua_pop(L, 1);
    }
  } else if (headers_type == LUA_TUSERDATA) {
    struct curl_slist **box = luaL_testudata(L, 5, HEADERS_MT);
    if (!box) return luaL_error(L, "field 'headers': table of strings or http.headers value expected");
    shared_headers = *box;
  } else if (headers_type != LUA_TNIL) {
    return luaL_error(L, "field 'headers': table of strings or http.headers value expected");
  }
  const char *unix_socket = opt_str_field(L, 3, "unix_socket");
  const char *output = opt_str_field(L, 3, "output");
  double timeout = opt_seconds(L, 3, "timeout");
  double connect_timeout = opt_seconds(L, 3, "connect_timeout");
  lua_getfield(L, 3, "noproxy");
  int noproxy = lua_toboolean(L, -1);
  lua_getfield(L, 3, "decompress");
  int decompress = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 2);
  if (body && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
    return luaL_error(L, "field 'body': a %s request has no body", method);
  lua_getiuservalue(L, 1, 1);  /* index 6: refs */

  /* Nothing below raises except luaL_ref on memory exhaustion, and the
     transfer is owned by the pool by then. */
  Transfer *t = acquire(m);
  if (!t) return push_failure(L, "out of memory");
  lua_pushvalue(L, 2);
  t->ref = luaL_ref(L, 6);
  if (body) {
    lua_pushvalue(L, 4);
    t->body_ref = luaL_ref(L, 6);
  }
  if (shared_headers) {
    lua_pushvalue(L, 5);
    t->headers_ref = luaL_ref(L, 6);
  } else if ((t->headers = header_list(L, 5, nheaders)) == NULL) {
    release(L, 6, t);
    return push_failure(L, "out of memory");
  }
  if (output) {
    t->out = fopen(output, "wbe");
    if (!t->out) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s: %s", output, strerror(errno));
      release(L, 6, t);
      return push_failure(L, msg);
    }
  }
  CURL *e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, shared_headers ? shared_headers : t->headers);
  if (t->set_decompress != decompress)
    t->set_decompress = curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, decompress ? "" : NULL) == CURLE_OK ? decompress : -1;
  curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, unix_socket);
  if (t->set_noproxy != noproxy)
    t->set_noproxy = curl_easy_setopt(e, CURLOPT_NOPROXY, noproxy ? "*" : NULL) == CURLE_OK ? noproxy : -1;
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout > 0 ? (long)(timeout * 1000 + 0.5) : 0L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout > 0 ? (long)(connect_timeout * 1000 + 0.5) : 0L);
  const char *custom = NULL;
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    if (strcmp(method, "POST") != 0) custom = method;
  }
  if (strcmp(t->set_method, custom ? custom : "") != 0) {
    /* "?" (never a method) when unknown: too long to remember, or not set */
    if (curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, custom) != CURLE_OK || (custom && strlen(custom) >= sizeof t->set_method))
      strcpy(t->set_method, "?");
    else
      strcpy(t->set_method, custom ? custom : "");
  }
  CURLMcode mc = curl_multi_add_handle(m->multi, e);
  if (mc != CURLM_OK) {
    release(L, 6, t);
    return push_failure(L, curl_multi_strerror(mc));
  }
  t->active = 1;
  m->active++;
  lua_pushinteger(L, t->id + 1);
  return 1;
}

/* Moves finished transfers from curl's message queue to our ring (sized by
   acquire() to hold every transfer, so this never allocates). */
static void collect(Multi *m) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer *t = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    t->result = msg->data.result;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
    long connects = 0, version = 0;
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version);
    m->connects += connects;
    m->completed++;
    if (version == CURL_HTTP_VERSION_2_0) m->http2++;
    curl_multi_remove_handle(m->multi, t->easy);
    t->active = 0;
    m->active--;
    if (t->out) {
      if (fclose(t->out) != 0 && t->result == CURLE_OK) t->write_failed = 1, t->result = CURLE_WRITE_ERROR;
      t->out = NULL;
    }
    m->done[(m->done_head + m->done_len) % m->done_cap] = t->id;
    m->done_len++;
  }
}

/* m:perform([timeout]) -> number of finished transfers waiting for next().
   Drives every transfer; when none has finished, waits up to `timeout` seconds
   for activity (also when nothing is in flight, so it doubles as a sleep). */
static int l_perform(lua_State *L) {
  Multi *m = check_multi(L, 1);
  double timeout = luaL_optnumber(L, 2, 0);
  int running = 0;
  CURLMcode mc = curl_multi_perform(m->multi, &running);
  if (mc == CURLM_OK) collect(m);
  if (mc == CURLM_OK && m->done_len == 0 && timeout > 0) {
    mc = curl_multi_poll(m->multi, NULL, 0, (int)(timeout * 1000 + 0.5), NULL);
    if (mc == CURLM_OK) mc = curl_multi_perform(m->multi, &running);
    if (mc == CURLM_OK) collect(m);
  }
  if (mc != CURLM_OK) return luaL_error(L, "curl multi: %s", curl_multi_strerror(mc));
  lua_pushinteger(L, m->done_len);
  return 1;
}

static const char *code_name(CURLcode c) {
  switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL: return "UNSUPPORTED_PROTOCOL";
    case CURLE_URL_MALFORMAT: return "URL_MALFORMAT";
    case CURLE_COULDNT_RESOLVE_PROXY: return "COULDNT_RESOLVE_PROXY";
    case CURLE_COULDNT_RESOLVE_HOST: return "COULDNT_RESOLVE_HOST";
    case CURLE_COULDNT_CONNECT: return "COULDNT_CONNECT";
    case CURLE_WEIRD_SERVER_REPLY: return "WEIRD_SERVER_REPLY";
    case CURLE_HTTP2: return "HTTP2";
    case CURLE_PARTIAL_FILE: return "PARTIAL_FILE";
    case CURLE_WRITE_ERROR: return "WRITE_ERROR";
    case CURLE_READ_ERROR: return "READ_ERROR";
    case CURLE_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case CURLE_OPERATION_TIMEDOUT: return "OPERATION_TIMEDOUT";
    case CURLE_RANGE_ERROR: return "RANGE_ERROR";
    case CURLE_SSL_CONNECT_ERROR: return "SSL_CONNECT_ERROR";
    case CURLE_GOT_NOTHING: return "GOT_NOTHING";
    case CURLE_SEND_ERROR: return "SEND_ERROR";
    case CURLE_RECV_ERROR: return "RECV_ERROR";
    case CURLE_SSL_CERTPROBLEM: return "SSL_CERTPROBLEM";
    case CURLE_PEER_FAILED_VERIFICATION: return "PEER_FAILED_VERIFICATION";
    case CURLE_SSL_CACERT_BADFILE: return "SSL_CACERT_BADFILE";
    case CURLE_HTTP2_STREAM: return "HTTP2_STREAM";
    case CURLE_BAD_CONTENT_ENCODING: return "BAD_CONTENT_ENCODING";
    case CURLE_SEND_FAIL_REWIND: return "SEND_FAIL_REWIND";
    case CURLE_SSL_ISSUER_ERROR: return "SSL_ISSUER_ERROR";
    default: return "CURL_ERROR";
  }
}

/* m:next() -> ref, status, body, headers | ref, nil, message, code | nil.
   Pops one finished transfer and returns its handle to the pool.  `headers` is
   the raw header block of the final response; `body` is "" when an output
   file received it. */
static int l_next(lua_State *L) {
  Multi *m = check_multi(L, 1);
  if (m->done_len == 0) return 0;
  Transfer *t = m->transfers[m->done[m->done_head]];
  m->done_head = (m->done_head + 1) % m->done_cap;
  m->done_len--;
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);  /* index 2 */
  lua_rawgeti(L, 2, t->ref);
  int n;
  if (t->result == CURLE_OK) {
    lua_pushinteger(L, t->status);
    lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
    lua_pushlstring(L, t->head.data ? t->head.data : "", t->head.len);
    n = 4;
  } else {
    lua_pushnil(L);
    if (t->too_large)
      lua_pushfstring(L, "response larger than %I bytes", (lua_Integer)m->max_response);
    else if (t->write_failed)
      lua_pushstring(L, "cannot write the response to its file");
    else if (t->errbuf[0])
      lua_pushstring(L, t->errbuf);
    else
      lua_pushstring(L, curl_easy_strerror(t->result));
    lua_pushstring(L, t->too_large ? "RESPONSE_TOO_LARGE" : code_name(t->result));
    n = 4;
  }
  release(L, 2, t);
  return n;
}

/* m:cancel(id) -> true if that transfer was in flight (it is dropped, never reported). */
static int l_cancel(lua_State *L) {
  Multi *m = check_multi(L, 1);
  lua_Integer id = luaL_checkinteger(L, 2);
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);
  int found = 0;
  if (id >= 1 && id <= m->ntransfers) {
    Transfer *t = m->transfers[id - 1];
    if (t->in_use && t->active) {
      release(L, 3, t);
      found = 1;
    }
  }
  lua_pushboolean(L, found);
  return 1;
}

/* m:pending() -> number of transfers in flight plus finished ones not yet taken. */
static int l_pending(lua_State *L) {
  Multi *m = check_multi(L, 1);
  lua_pushinteger(L, m->active + m->done_len);
  return 1;
}

/* m:stats() -> { connects = new connections opened, completed = transfers done,
   http2 = transfers done over HTTP/2, pooled = easy handles kept } */
static int l_stats(lua_State *L) {
  Multi *m = check_multi(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, m->connects);
  lua_setfield(L, -2, "connects");
  lua_pushinteger(L, m->completed);
  lua_setfield(L, -2, "completed");
  lua_pushinteger(L, m->http2);
  lua_setfield(L, -2, "http2");
  lua_pushinteger(L, m->ntransfers);
  lua_setfield(L, -2, "pooled");
  return 1;
}

/* http.version() -> "libcurl/7.88.1 OpenSSL/3.0.19", { http2 =, unix_sockets =, ssl = }.
   (Not curl_version(): it makes libldap set up global state that is never freed.) */
static int l_version(lua_State *L) {
  curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  lua_pushfstring(L, "libcurl/%s%s%s", v->version, v->ssl_version ? " " : "", v->ssl_version ? v->ssl_version : "");
  lua_createtable(L, 0, 3);
  lua_pushboolean(L, (v->features & CURL_VERSION_HTTP2) != 0);
  lua_setfield(L, -2, "http2");
  lua_pushboolean(L, (v->features & CURL_VERSION_UNIX_SOCKETS) != 0);
  lua_setfield(L, -2, "unix_sockets");
  lua_pushstring(L, v->ssl_version ? v->ssl_version : "");
  lua_setfield(L, -2, "ssl");
  return 2;
}

static int global_gc(lua_State *L) {
  (void)L;
  curl_global_cleanup();
  return 0;
}

/* Keeps this module, and with it libcurl and every library libcurl pulls in,
   loaded until the process exits.  Lua would dlclose it when the state closes,
   which runs those libraries' destructors while the process still runs: gnutls
   (there through librtmp) then allocates its thread-local block for the first
   time, and AddressSanitizer's leak checker, guessing that block's extent from
   the bytes before it, crashes ("Tracer caught signal 11") whenever it lands 16
   bytes into a page; and a resolver thread that libcurl detached would lose its
   code.  Pinned, they are finalized by exit() itself, after everything else. */
static void pin_module(void) {
  static const char anchor = 0;
  Dl_info info;
  if (dladdr(&anchor, &info) && info.dli_fname) dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

int luaopen_batchai__http(lua_State *L);
int luaopen_batchai__http(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"add", l_add}, {"perform", l_perform}, {"next", l_next}, {"cancel", l_cancel},
    {"pending", l_pending}, {"stats", l_stats}, {"close", l_gc}, {NULL, NULL},
  };
  static const luaL_Reg funcs[] = {{"multi", l_multi}, {"headers", l_headers}, {"version", l_version}, {NULL, NULL}};
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "libcurl initialisation failed");
  pin_module();
  /* A registry sentinel undoes curl_global_init when the state closes: it is
     finalized after every multi handle (made later) and before Lua unloads
     this library (whose handle was registered earlier). */
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, global_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "batchai._http.global");
  lua_createtable(L, 0, (int)(sizeof request_keys / sizeof *request_keys));
  for (int i = 0; request_keys[i]; i++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, request_keys[i]);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, request_keys);
  luaL_newmetatable(L, MULTI_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, HEADERS_MT);
  lua_pushcfunction(L, headers_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, headers_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}

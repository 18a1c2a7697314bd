/* batchai._httpd: an HTTP server on libmicrohttpd, driven from the caller's
   event loop (MHD's epoll fd + srv:run(), no threads), handing each complete
   request to one Lua handler; responses may be deferred (the connection is
   suspended until req:respond).  Also HMAC-SHA256 (GnuTLS) and random bytes
   (getrandom(2): no generator state in GnuTLS's thread-local storage). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <lauxlib.h>
#include <lua.h>

int luaopen_batchai__httpd(lua_State *L);
#include <microhttpd.h>

#define SERVER_MT "batchai.HttpServer"
#define REQUEST_MT "batchai.HttpRequest"

struct request;

typedef struct {
  struct MHD_Daemon *daemon;
  lua_State *L;            /* the running state: set only inside run/close/__gc */
  int handler_ref;         /* the Lua handler(req, method, path, body) */
  size_t max_body;
  int port;
  int listen_fd;           /* unix socket we created, or -1 */
  char *unix_path;
  char id_prefix[24];
  unsigned long long counter;
  struct request *suspended; /* requests waiting for req:respond, for close */
} Server;

/* The Lua-side handle of a request; req is NULL once the request is finished.
   Its user values 1 and 2 are the method and path strings given to the handler
   (req:info returns them again without making new strings). */
typedef struct {
  struct request *req;
} Box;

struct request {
  Server *srv;
  struct MHD_Connection *conn;
  char *body;
  size_t len, cap;
  int too_large, dispatched, in_handler, is_suspended, responded;
  Box *box;
  int box_ref;
  struct MHD_Response *pending;
  unsigned int pending_status;
  struct request *next, *prev;
  const char *method, *url; /* MHD's, valid for the request's lifetime */
  struct timespec started;
  char id[48];
};

static const char TOO_LARGE_BODY[] =
    "{\"error\":{\"code\":\"RequestEntityTooLarge\",\"message\":\"The request body is larger than the "
    "endpoint accepts.\"}}";
static const char INTERNAL_BODY[] =
    "{\"error\":{\"code\":\"InternalServerError\",\"message\":\"The endpoint failed to handle the request; "
    "see its log.\"}}";
static const char UNAVAILABLE_BODY[] =
    "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"The endpoint is shutting down.\"}}";

static struct MHD_Response *json_response(const char *body) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  if (resp) MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
  return resp;
}

static void unlink_suspended(struct request *r) {
  Server *s = r->srv;
  if (r->prev) r->prev->next = r->next;
  else s->suspended = r->next;
  if (r->next) r->next->prev = r->prev;
  r->next = r->prev = NULL;
}

/* Stores the response to send; wakes the connection if it was suspended. */
static void set_pending(struct request *r, unsigned int status, struct MHD_Response *resp) {
  r->pending = resp;
  r->pending_status = status;
  r->responded = 1;
  if (r->is_suspended) {
    r->is_suspended = 0;
    unlink_suspended(r);
    MHD_resume_connection(r->conn);
  }
}

static enum MHD_Result queue_pending(struct request *r) {
  struct MHD_Response *resp = r->pending;
  r->pending = NULL;
  if (resp == NULL) return MHD_NO;
  enum MHD_Result ret = MHD_queue_response(r->conn, r->pending_status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = luaL_tolstring(L, 1, NULL);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the Lua handler with (req, method, path, body) under a protected call.
   An error answers 500 and is written to stderr. */
static void dispatch(Server *s, struct request *r, const char *method, const char *url) {
  lua_State *L = s->L;
  int base = lua_gettop(L);
  lua_pushcfunction(L, traceback);
  Box *b = lua_newuserdatauv(L, sizeof *b, 2);
  b->req = r;
  r->box = b;
  luaL_setmetatable(L, REQUEST_MT);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->handler_ref);
  lua_pushvalue(L, base + 2);
  lua_pushstring(L, method);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, base + 2, 1);
  lua_pushstring(L, url);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, base + 2, 2);
  lua_pushlstring(L, r->body ? r->body : "", r->len);
  r->in_handler = 1;
  int rc = lua_pcall(L, 4, 0, base + 1);
  r->in_handler = 0;
  if (rc != LUA_OK) {
    fprintf(stderr, "bai serve: request handler failed: %s\n", lua_tostring(L, -1));
    fflush(stderr);
    if (!r->responded) set_pending(r, 500, json_response(INTERNAL_BODY));
  }
  if (!r->responded) {
    lua_pushvalue(L, base + 2);
    r->box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_settop(L, base);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  Server *s = cls;
  struct request *r = *con_cls;
  if (r == NULL) {
    r = calloc(1, sizeof *r);
    if (r == NULL) return MHD_NO;
    r->srv = s;
    r->conn = conn;
    r->box_ref = LUA_NOREF;
    r->method = method;
    r->url = url;
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    ++s->counter;
    snprintf(r->id, sizeof r->id, "%s-%04llx-%012llx", s->id_prefix, (s->counter >> 48) & 0xffff, s->counter & 0xffffffffffffULL);
    *con_cls = r;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->max_body) {
      r->too_large = r->dispatched = r->responded = 1;
      r->pending = json_response(TOO_LARGE_BODY);
      r->pending_status = 413;
      return queue_pending(r);
    }
    return MHD_YES;
  }
  if (r->pending) return queue_pending(r);
  if (*upload_size) {
    if (!r->too_large) {
      if (r->len + *upload_size > s->max_body) {
        r->too_large = 1;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
      } else {
        if (r->len + *upload_size > r->cap) {
          size_t cap = r->cap ? r->cap : 1024;
          while (cap < r->len + *upload_size) cap *= 2;
          char *nb = realloc(r->body, cap);
          if (nb == NULL) return MHD_NO;
          r->body = nb;
          r->cap = cap;
        }
        memcpy(r->body + r->len, upload, *upload_size);
        r->len += *upload_size;
      }
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->dispatched) return MHD_YES;
  r->dispatched = 1;
  if (r->too_large) {
    set_pending(r, 413, json_response(TOO_LARGE_BODY));
    return queue_pending(r);
  }
  dispatch(s, r, method, url);
  if (r->pending) return queue_pending(r);
  r->is_suspended = 1;
  r->next = s->suspended;
  if (s->suspended) s->suspended->prev = r;
  s->suspended = r;
  MHD_suspend_connection(conn);
  return MHD_YES;
}

/* Called by MHD when a request ends (sent, failed or aborted): frees it. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  Server *s = cls;
  struct request *r = *con_cls;
  if (r == NULL) return;
  if (r->is_suspended) unlink_suspended(r);
  if (r->box) r->box->req = NULL;
  if (r->box_ref != LUA_NOREF && s->L) luaL_unref(s->L, LUA_REGISTRYINDEX, r->box_ref);
  if (r->pending) MHD_destroy_response(r->pending);
  free(r->body);
  free(r);
  *con_cls = NULL;
}

static void quiet_logger(void *cls, const char *fmt, va_list ap) {
}

/* ---- requests ----------------------------------------------------------- */

static struct request *check_request(lua_State *L, int idx) {
  Box *b = luaL_checkudata(L, idx, REQUEST_MT);
  if (b->req == NULL) luaL_argerror(L, idx, "request already finished");
  return b->req;
}

/* req:header(name) -> value | nil (case-insensitive) */
static int req_header(lua_State *L) {
  struct request *r = check_request(L, 1);
  const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, luaL_checkstring(L, 2));
  if (v) lua_pushstring(L, v);
  else lua_pushnil(L);
  return 1;
}

/* Whether a and b are equal, in time that depends only on their lengths. */
static int equal_secret(const unsigned char *a, size_t la, const unsigned char *b, size_t lb) {
  unsigned char diff = la != lb;
  size_t n = la < lb ? la : lb;
  for (size_t i = 0; i < n; i++) diff |= a[i] ^ b[i];
  return diff == 0;
}

/* req:header_is(name, value) -> whether the header is present and equal to
   value, compared in constant time (for credentials; no string is made) */
static int req_header_is(lua_State *L) {
  struct request *r = check_request(L, 1);
  const char *name = luaL_checkstring(L, 2);
  size_t len;
  const char *want = luaL_checklstring(L, 3, &len);
  const char *v = NULL;
  size_t vlen = 0;
  if (MHD_lookup_connection_value_n(r->conn, MHD_HEADER_KIND, name, strlen(name), &v, &vlen) != MHD_YES || v == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, equal_secret((const unsigned char *)v, vlen, (const unsigned char *)want, len));
  return 1;
}

/* req:arg(name) -> decoded query argument | nil.  A key given without a value
   ("?a") yields "". */
static int req_arg(lua_State *L) {
  struct request *r = check_request(L, 1);
  const char *name = luaL_checkstring(L, 2);
  const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
  if (v) lua_pushstring(L, v);
  else if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), NULL, NULL) == MHD_YES)
    lua_pushliteral(L, "");
  else lua_pushnil(L);
  return 1;
}

static enum MHD_Result collect_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  lua_State *L = cls;
  lua_pushstring(L, value ? value : "");
  lua_setfield(L, -2, key);
  return MHD_YES;
}

/* req:args() -> { name = value } of the query arguments */
static int req_args(lua_State *L) {
  struct request *r = check_request(L, 1);
  lua_newtable(L);
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_value, L);
  return 1;
}

/* req:headers() -> { lower-case name = value } */
static int req_headers(lua_State *L) {
  struct request *r = check_request(L, 1);
  lua_newtable(L);
  MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_value, L);
  return 1;
}

static int req_id(lua_State *L) {
  lua_pushstring(L, check_request(L, 1)->id);
  return 1;
}

/* req:info() -> method, path, milliseconds since the request arrived, id */
static int req_info(lua_State *L) {
  struct request *r = check_request(L, 1);
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (lua_getiuservalue(L, 1, 1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushstring(L, r->method);
  }
  if (lua_getiuservalue(L, 1, 2) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushstring(L, r->url);
  }
  lua_pushnumber(L, (lua_Number)(now.tv_sec - r->started.tv_sec) * 1e3 + (now.tv_nsec - r->started.tv_nsec) / 1e6);
  lua_pushstring(L, r->id);
  return 4;
}

/* Checks the optional headers table at idx: every key and value a string
   (raises before anything is allocated). */
static void check_headers(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      luaL_argerror(L, idx, "header names and values must be strings");
    lua_pop(L, 1);
  }
}

/* Adds the headers table at idx to resp; returns whether it named Content-Type. */
static int add_headers(lua_State *L, int idx, struct MHD_Response *resp) {
  int has_type = 0;
  if (lua_isnoneornil(L, idx)) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_tostring(L, -2);
    if (strcasecmp(k, "Content-Type") == 0) has_type = 1;
    MHD_add_response_header(resp, k, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return has_type;
}

static struct request *check_unanswered(lua_State *L) {
  struct request *r = check_request(L, 1);
  if (r->responded) luaL_error(L, "request already answered");
  return r;
}

static void finish_response(lua_State *L, struct request *r, unsigned int status, struct MHD_Response *resp,
                            const char *default_type, int headers_idx) {
  if (!add_headers(L, headers_idx, resp)) MHD_add_response_header(resp, "Content-Type", default_type);
  MHD_add_response_header(resp, "x-ms-request-id", r->id);
  if (r->box_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, r->box_ref);
    r->box_ref = LUA_NOREF;
  }
  set_pending(r, status, resp);
}

/* req:respond(status, body [, headers]): answers the request (now, or after a
   deferred handler).  Content-Type defaults to JSON; x-ms-request-id is added. */
static int req_respond(lua_State *L) {
  struct request *r = check_unanswered(L);
  lua_Integer status = luaL_checkinteger(L, 2);
  luaL_argcheck(L, status >= 100 && status <= 599, 2, "HTTP status expected");
  size_t len;
  const char *body = luaL_optlstring(L, 3, "", &len);
  check_headers(L, 4);
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (resp == NULL) return luaL_error(L, "out of memory");
  finish_response(L, r, (unsigned int)status, resp, "application/json; charset=utf-8", 4);
  return 0;
}

/* req:respond_file(status, path, offset, length [, headers]) -> true | nil, err:
   answers with `length` bytes of the file from `offset`. */
static int req_respond_file(lua_State *L) {
  struct request *r = check_unanswered(L);
  lua_Integer status = luaL_checkinteger(L, 2);
  const char *path = luaL_checkstring(L, 3);
  lua_Integer offset = luaL_checkinteger(L, 4);
  lua_Integer length = luaL_checkinteger(L, 5);
  luaL_argcheck(L, offset >= 0 && length >= 0, 4, "non-negative offset and length expected");
  check_headers(L, 6);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(err));
    return 2;
  }
  struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64((uint64_t)length, fd, (uint64_t)offset);
  if (resp == NULL) {
    close(fd);
    return luaL_error(L, "out of memory");
  }
  finish_response(L, r, (unsigned int)status, resp, "application/octet-stream", 6);
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc of a request handle: the C request may outlive it (still sending). */
static int req_gc(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, REQUEST_MT);
  if (b->req) b->req->box = NULL;
  b->req = NULL;
  return 0;
}

static int req_tostring(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, REQUEST_MT);
  if (b->req) lua_pushfstring(L, "batchai.HttpRequest (%s)", b->req->id);
  else lua_pushliteral(L, "batchai.HttpRequest (finished)");
  return 1;
}

/* ---- servers ------------------------------------------------------------ */

static Server *check_server(lua_State *L, int idx) {
  Server *s = luaL_checkudata(L, idx, SERVER_MT);
  if (s->daemon == NULL) luaL_argerror(L, idx, "server is closed");
  return s;
}

/* Stops the daemon: answers every suspended request 503 first (MHD requires
   suspended connections to be resumed before stopping). */
static void stop_server(lua_State *L, Server *s) {
  if (s->daemon) {
    s->L = L;
    while (s->suspended) {
      struct request *r = s->suspended;
      if (r->box_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, r->box_ref);
        r->box_ref = LUA_NOREF;
      }
      set_pending(r, 503, json_response(UNAVAILABLE_BODY));
    }
    MHD_run(s->daemon);
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    s->L = NULL;
  }
  if (s->listen_fd >= 0) {
    close(s->listen_fd);
    s->listen_fd = -1;
  }
  if (s->unix_path) {
    unlink(s->unix_path);
    free(s->unix_path);
    s->unix_path = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, s->handler_ref);
  s->handler_ref = LUA_NOREF;
}

static int srv_close(lua_State *L) {
  stop_server(L, luaL_checkudata(L, 1, SERVER_MT));
  return 0;
}

/* srv:run(): lets MHD accept, read and write whatever is ready, calling the
   handler for each complete request.  Never blocks. */
static int srv_run(lua_State *L) {
  Server *s = check_server(L, 1);
  s->L = L;
  MHD_run(s->daemon);
  s->L = NULL;
  return 0;
}

/* srv:fd() -> the epoll descriptor that becomes readable when srv:run has work */
static int srv_fd(lua_State *L) {
  Server *s = check_server(L, 1);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  lua_pushinteger(L, info ? info->epoll_fd : -1);
  return 1;
}

/* srv:timeout() -> milliseconds until srv:run must be called anyway | nil */
static int srv_timeout(lua_State *L) {
  Server *s = check_server(L, 1);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(s->daemon, &ms) == MHD_YES) lua_pushinteger(L, (lua_Integer)ms);
  else lua_pushnil(L);
  return 1;
}

static int srv_port(lua_State *L) {
  Server *s = check_server(L, 1);
  if (s->port > 0) lua_pushinteger(L, s->port);
  else lua_pushnil(L);
  return 1;
}

/* srv:connections() -> number of open connections */
static int srv_connections(lua_State *L) {
  Server *s = check_server(L, 1);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
  lua_pushinteger(L, info ? (lua_Integer)info->num_connections : 0);
  return 1;
}

static int srv_tostring(lua_State *L) {
  Server *s = luaL_checkudata(L, 1, SERVER_MT);
  if (s->daemon == NULL) lua_pushliteral(L, "batchai.HttpServer (closed)");
  else if (s->unix_path) lua_pushfstring(L, "batchai.HttpServer (unix:%s)", s->unix_path);
  else lua_pushfstring(L, "batchai.HttpServer (port %d)", s->port);
  return 1;
}

/* Fills buf with n bytes from getrandom(2), retrying after signals and short
   reads.  Returns 0, or -1 with errno set. */
static int fill_random(unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static int fail(lua_State *L, const char *fmt, const char *arg, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, fmt, arg, strerror(err));
  return 2;
}

/* Creates a listening unix socket at path with mode 0600, replacing a stale
   socket file nobody listens on.  Returns the fd, or -1 with errno set
   (EADDRINUSE when a live server owns the path). */
static int listen_unix(const char *path) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      close(fd);
      errno = EEXIST;
      return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int live = probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (probe >= 0) close(probe);
    if (live) {
      close(fd);
      errno = EADDRINUSE;
      return -1;
    }
    unlink(path);
  }
  mode_t old = umask(0177); /* the socket file is created 0600: no window with wider access */
  int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
  umask(old);
  if (rc != 0 || chmod(path, 0600) != 0 || listen(fd, 1024) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

static const char *const server_keys[] = {"handler", "address", "port", "socket", "max_body", "timeout",
                                          "connection_limit", NULL};

/* new{ handler = f, address = "127.0.0.1", port = 0 | socket = "/path",
        max_body = bytes, timeout = seconds, connection_limit = n } -> srv | nil, err */
static int l_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int known = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; server_keys[i]; i++)
        if (strcmp(server_keys[i], lua_tostring(L, -2)) == 0) known = 1;
    if (!known) return luaL_error(L, "invalid field '%s' in httpd.new", luaL_tolstring(L, -2, NULL));
    lua_pop(L, 1);
  }
  lua_getfield(L, 1, "handler");
  luaL_argcheck(L, lua_isfunction(L, -1), 1, "field 'handler' must be a function");
  lua_getfield(L, 1, "socket");
  const char *sock_path = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "address");
  const char *address = luaL_optstring(L, -1, "127.0.0.1");
  lua_getfield(L, 1, "port");
  lua_Integer port = luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "max_body");
  lua_Integer max_body = luaL_optinteger(L, -1, 4 << 20);
  lua_getfield(L, 1, "timeout");
  lua_Integer timeout = luaL_optinteger(L, -1, 120);
  lua_getfield(L, 1, "connection_limit");
  lua_Integer conn_limit = luaL_optinteger(L, -1, 1000);
  luaL_argcheck(L, port >= 0 && port <= 65535, 1, "field 'port' must be 0..65535");
  luaL_argcheck(L, max_body > 0, 1, "field 'max_body' must be positive");

  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  int ipv6 = 0;
  if (sock_path == NULL) {
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, address, &a4->sin_addr) == 1) {
      a4->sin_family = AF_INET;
      a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, address, &a6->sin6_addr) == 1) {
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons((uint16_t)port);
      ipv6 = 1;
    } else {
      return luaL_argerror(L, 1, lua_pushfstring(L, "field 'address': '%s' is not an IP address", address));
    }
  }

  unsigned char rnd[8];
  if (fill_random(rnd, sizeof rnd) != 0) return fail(L, "cannot read random bytes%s: %s", "", errno);
  Server *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->listen_fd = -1;
  s->handler_ref = LUA_NOREF;
  luaL_setmetatable(L, SERVER_MT);
  snprintf(s->id_prefix, sizeof s->id_prefix, "%02x%02x%02x%02x-%02x%02x-%02x%02x", rnd[0], rnd[1], rnd[2],
           rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
  s->max_body = (size_t)max_body;

  unsigned int flags = MHD_USE_EPOLL | MHD_USE_SUSPEND_RESUME | MHD_USE_TURBO;
  if (ipv6) flags |= MHD_USE_IPv6;
  if (sock_path) {
    s->listen_fd = listen_unix(sock_path);
    if (s->listen_fd < 0) return fail(L, "cannot listen on %s: %s", sock_path, errno);
    s->unix_path = strdup(sock_path);
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned int)timeout, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)conn_limit,
                                 MHD_OPTION_EXTERNAL_LOGGER, quiet_logger, NULL, MHD_OPTION_END);
  } else {
    s->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned int)timeout, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)conn_limit,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_EXTERNAL_LOGGER, quiet_logger,
                                 NULL, MHD_OPTION_END);
  }
  if (s->daemon == NULL) {
    int err = errno ? errno : EADDRINUSE;
    char where[128];
    if (sock_path) snprintf(where, sizeof where, "%s", sock_path);
    else snprintf(where, sizeof where, "%s:%d", address, (int)port);
    stop_server(L, s);
    return fail(L, "cannot listen on %s: %s", where, err);
  }
  if (!sock_path) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (int)port;
  }
  lua_getfield(L, 1, "handler");
  s->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* hmac_sha256(key, data) -> lower-case hex digest */
static int l_hmac_sha256(lua_State *L) {
  size_t klen, dlen;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *data = luaL_checklstring(L, 2, &dlen);
  unsigned char digest[32];
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, klen, data, dlen, digest) != 0)
    return luaL_error(L, "HMAC-SHA256 failed");
  char hex[65];
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  lua_pushlstring(L, hex, 64);
  return 1;
}

/* secure_equal(a, b) -> whether the strings are equal, in time that depends
   only on their lengths (for comparing secrets) */
static int l_secure_equal(lua_State *L) {
  size_t la, lb;
  const unsigned char *a = (const unsigned char *)luaL_checklstring(L, 1, &la);
  const unsigned char *b = (const unsigned char *)luaL_checklstring(L, 2, &lb);
  lua_pushboolean(L, equal_secret(a, la, b, lb));
  return 1;
}

/* random_bytes(n) -> n bytes from the kernel's cryptographic generator; raises
   only when the kernel cannot give them (no getrandom, which Linux has had since 3.17) */
static int l_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n > 0 && n <= 4096, 1, "1..4096 expected");
  unsigned char buf[4096];
  if (fill_random(buf, (size_t)n) != 0) return luaL_error(L, "random generator failed: %s", strerror(errno));
  lua_pushlstring(L, (const char *)buf, (size_t)n);
  return 1;
}

int luaopen_batchai__httpd(lua_State *L) {
  static const luaL_Reg srv_methods[] = {
      {"run", srv_run},   {"fd", srv_fd},     {"timeout", srv_timeout}, {"port", srv_port},
      {"connections", srv_connections}, {"close", srv_close}, {NULL, NULL},
  };
  static const luaL_Reg req_methods[] = {
      {"header", req_header}, {"header_is", req_header_is}, {"headers", req_headers}, {"arg", req_arg},
      {"args", req_args},     {"id", req_id},           {"info", req_info},           {"respond", req_respond},
      {"respond_file", req_respond_file}, {NULL, NULL},
  };
  luaL_newmetatable(L, SERVER_MT);
  luaL_newlib(L, srv_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, srv_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, srv_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, REQUEST_MT);
  luaL_newlib(L, req_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, req_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, req_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  lua_newtable(L);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "new");
  lua_pushcfunction(L, l_hmac_sha256);
  lua_setfield(L, -2, "hmac_sha256");
  lua_pushcfunction(L, l_random_bytes);
  lua_setfield(L, -2, "random_bytes");
  lua_pushcfunction(L, l_secure_equal);
  lua_setfield(L, -2, "secure_equal");
  lua_pushstring(L, MHD_get_version());
  lua_setfield(L, -2, "library_version");
  return 1;
}

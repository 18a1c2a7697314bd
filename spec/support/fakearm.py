#!/usr/bin/env python3
"""Fault-injecting HTTP proxy, scripted fake endpoint and fake token endpoint for
the client specs.  It exists only to produce what a real peer cannot on demand:
429 with Retry-After, 5xx, dropped connections, delays, odd LRO sequences, and
tokens with a chosen lifetime.

    fakearm.py [--upstream URL | --upstream-socket PATH] [--parent PID]
               [--socket PATH] [--tls CERT KEY]

Listens on 127.0.0.1 on an ephemeral port (or on a unix socket, printing
port 0; or with TLS) and prints "PORT PID" on stdout.
Exits when process PID (default: its parent) goes away.  Control API (JSON bodies):

  POST /__fake/faults   {"seed": 1, "rates": {"429": 0.1, "500": .., "503": ..,
                         "503_after": .., "drop_before": .., "drop_after": ..,
                         "delay": ..}, "retry_after": "1", "delay_seconds": 0.2,
                         "methods": ["PUT"]}      random faults on proxied requests
  POST /__fake/script   [{"method": "GET", "path": "/x", "status": 202,
                          "headers": {..}, "body": "..", "times": 1,
                          "action": "drop"|"delay", "delay_seconds": 1}, ..]
                        canned answers, consumed in order, before any proxying
  POST /__fake/rewrite  [{"from": "..", "to": ".."}]   edits proxied response bodies
  POST /__fake/tokens   {"expires_in": 3600}   lifetime of issued tokens
  GET  /__fake/log      every request seen: method, path, query, authorization, body
  GET  /__fake/stats    counts of injected faults
  POST /__fake/reset    forget log, script, faults, rewrites

Token endpoints: POST /{tenant}/oauth2/v2.0/token (client credentials) and
GET /metadata/identity/oauth2/token (managed identity, needs "Metadata: true").
"""
import http.client
import json
import os
import random
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {
    "log": [], "script": [], "faults": None, "rng": random.Random(0), "rewrite": [],
    "expires_in": 3600, "issued": 0, "stats": {},
}
UPSTREAM = {"url": None, "socket": None}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


LOCAL = threading.local()


def upstream_connection():
    conn = getattr(LOCAL, "conn", None)
    if conn is None:
        if UPSTREAM["socket"]:
            conn = UnixConnection(UPSTREAM["socket"])
        else:
            u = urllib.parse.urlsplit(UPSTREAM["url"])
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
        LOCAL.conn = conn
    return conn


def count(kind):
    with LOCK:
        STATE["stats"][kind] = STATE["stats"].get(kind, 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        try:  # headers and body leave in separate writes: do not let Nagle hold the body
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def handle_one(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/__fake/"):
            return self.control(url.path[len("/__fake/"):], body)
        with LOCK:
            STATE["log"].append({
                "method": self.command, "path": url.path, "query": url.query,
                "authorization": self.headers.get("Authorization"),
                "x_shared": self.headers.get("X-Shared"),
                "accept_encoding": self.headers.get("Accept-Encoding"),
                "host": self.headers.get("Host"),
                "body": body.decode("utf-8", "replace"),
            })
        if "/oauth2/" in url.path and url.path.endswith("/token"):
            return self.token(url, body)
        canned = self.take_script(url.path)
        if canned is not None:
            return self.answer_canned(canned)
        if not (UPSTREAM["url"] or UPSTREAM["socket"]):
            return self.reply(404, {"error": {"code": "NotScripted", "message": "no canned answer for " + self.command + " " + url.path}})
        fault = self.pick_fault()
        if fault == "drop_before":
            return self.drop()
        if fault in ("429", "500", "503"):
            headers = {"Retry-After": STATE["faults"].get("retry_after", "1")} if fault != "500" else {}
            return self.reply(int(fault), {"error": {"code": "Injected" + fault, "message": "fault injected by fakearm"}}, headers)
        if fault == "delay":
            time.sleep(STATE["faults"].get("delay_seconds", 0.2))
        status, headers, data = self.forward(body)
        if fault == "drop_after":
            return self.drop()
        if fault == "503_after":
            return self.reply(503, {"error": {"code": "Injected503", "message": "fault injected after the upstream answered"}}, {"Retry-After": "0"})
        for rw in STATE["rewrite"]:
            data = data.replace(rw["from"].encode(), rw["to"].encode())
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP_HEADERS:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = handle_one

    def pick_fault(self):
        faults = STATE["faults"]
        if not faults:
            return None
        methods = faults.get("methods")
        if methods and self.command not in methods:
            return None
        with LOCK:
            x = STATE["rng"].random()
        acc = 0.0
        for kind in ("429", "500", "503", "503_after", "drop_before", "drop_after", "delay"):
            acc += faults.get("rates", {}).get(kind, 0)
            if x < acc:
                count(kind)
                return kind
        return None

    def forward(self, body):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            conn = upstream_connection()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, resp.getheaders(), data
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                LOCAL.conn = None
                if attempt == 2:
                    raise

    def take_script(self, path):
        with LOCK:
            for item in STATE["script"]:
                if item.get("path") == path and item.get("method", self.command) == self.command:
                    item["times"] = item.get("times", 1) - 1
                    if item["times"] <= 0:
                        STATE["script"].remove(item)
                    return item
        return None

    def answer_canned(self, item):
        action = item.get("action")
        if action == "drop":
            return self.drop()
        if action == "delay":
            time.sleep(item.get("delay_seconds", 1))
        body = item.get("body", "")
        if not isinstance(body, str):
            body = json.dumps(body)
        data = body.encode()
        self.send_response(item.get("status", 200))
        for k, v in item.get("headers", {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def token(self, url, body):
        if url.path.startswith("/metadata/"):
            if self.headers.get("Metadata") != "true":
                return self.reply(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
            kind = "imds"
        else:
            form = urllib.parse.parse_qs(body.decode())
            if form.get("grant_type") != ["client_credentials"] or form.get("client_secret") != ["s3cret-value"]:
                return self.reply(401, {"error": "invalid_client", "error_description": "bad client credentials"})
            if form.get("scope") != ["https://management.azure.com/.default"]:
                return self.reply(400, {"error": "invalid_scope", "error_description": "unexpected scope"})
            kind = "aad"
        with LOCK:
            STATE["issued"] += 1
            n = STATE["issued"]
            expires_in = STATE["expires_in"]
        token = "tok-%s-%d" % (kind, n)
        answer = {"token_type": "Bearer", "access_token": token, "expires_in": expires_in}
        if kind == "imds":  # IMDS answers with strings, as the real one does
            answer = {"token_type": "Bearer", "access_token": token, "expires_in": str(expires_in),
                      "expires_on": str(int(time.time()) + expires_in), "resource": "https://management.azure.com/"}
        self.reply(200, answer)

    def control(self, what, body):
        data = json.loads(body or b"null")
        with LOCK:
            if what == "faults":
                STATE["faults"] = data
                STATE["rng"] = random.Random(data.get("seed", 0) if data else 0)
            elif what == "script":
                STATE["script"].extend(data)
            elif what == "rewrite":
                STATE["rewrite"] = data
            elif what == "tokens":
                STATE["expires_in"] = data["expires_in"]
            elif what == "reset":
                STATE.update(log=[], script=[], faults=None, rewrite=[], stats={}, issued=0, expires_in=3600)
            elif what == "log":
                return self.reply(200, STATE["log"])
            elif what == "stats":
                return self.reply(200, STATE["stats"])
            else:
                return self.reply(404, {"error": "unknown control " + what})
        self.reply(200, {"ok": True})

    def reply(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def watch_parent(pid):
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            os._exit(0)
        time.sleep(0.3)


def main():
    args = sys.argv[1:]
    parent = os.getppid()
    unix_path, tls = None, None
    while args:
        opt = args.pop(0)
        if opt == "--upstream":
            UPSTREAM["url"] = args.pop(0)
        elif opt == "--upstream-socket":
            UPSTREAM["socket"] = args.pop(0)
        elif opt == "--parent":
            parent = int(args.pop(0))
        elif opt == "--socket":
            unix_path = args.pop(0)
        elif opt == "--tls":
            tls = (args.pop(0), args.pop(0))
        else:
            sys.exit("fakearm.py: unknown option " + opt)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    if unix_path:
        class UnixServer(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

        class UnixHandler(Handler):
            def address_string(self):
                return "unix"

            def setup(self):
                self.client_address = ("unix", 0)
                super().setup()

        server = UnixServer(unix_path, UnixHandler)
        port = 0
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = server.server_address[1]
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls[0], tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    sys.stdout.write("%d %d\n" % (port, os.getpid()))
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a test registry (tests/registry.rs).

usage: proxy.py LISTEN_PORT UPSTREAM_PORT MODE LOG
MODE is one of:
  pass               forward everything
  429-once           answer each path's first request with 429 (Retry-After: 0)
  corrupt-blob       flip a byte in every blob body (its digest no longer matches)
  cut-blob:N         send N bytes of the first blob body longer than N, then
                     close; later requests are dropped (the registry "died")
  manifest:CODE      answer manifest requests with that status
  huge-manifest      answer manifests with 5 MiB of JSON
  malformed-manifest answer manifests with a broken JSON document
  redirect-blobs     ask for Basic credentials (any), and answer blob requests
                     with 307 to /_storage/... on "localhost" (another host,
                     as blob storage is), which serves them without asking
Every request line (with its Range header) is appended to LOG.
"""
import http.client
import http.server
import os
import sys

listen, upstream, mode, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
seen = set()
state = {"cut": False}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        with open(log, "a") as f:
            f.write(f"{self.command} {self.path} range={self.headers.get('Range', '')} "
                    f"auth={'yes' if self.headers.get('Authorization') else 'no'}\n")
        if state["cut"]:
            self.close_connection = True
            self.connection.close()
            return
        is_blob = "/blobs/" in self.path
        is_manifest = "/manifests/" in self.path
        if mode == "429-once" and self.path not in seen:
            seen.add(self.path)
            return self.reply(429, b"slow down", {"Retry-After": "0"})
        if mode == "redirect-blobs":
            if self.path.startswith("/_storage/"):
                self.path = self.path[len("/_storage"):]
                is_blob = False
            elif not self.headers.get("Authorization"):
                return self.reply(401, b"", {"WWW-Authenticate": 'Basic realm="berth-test"'})
            elif is_blob:
                return self.reply(307, b"", {"Location": f"http://localhost:{listen}/_storage{self.path}"})
        if is_manifest and mode.startswith("manifest:"):
            return self.reply(int(mode.split(":")[1]), b'{"errors":[]}', {})
        if is_manifest and mode == "huge-manifest":
            return self.reply(200, b'{"pad":"' + b"x" * (5 << 20) + b'"}',
                              {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        if is_manifest and mode == "malformed-manifest":
            return self.reply(200, b'{"schemaVersion": 2, "layers": [',
                              {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        conn = http.client.HTTPConnection("127.0.0.1", upstream)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        out = {k: v for k, v in resp.getheaders()
               if k.lower() not in ("transfer-encoding", "connection", "content-length")}
        if is_blob and resp.status in (200, 206) and body:
            if mode == "corrupt-blob":
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            n = int(mode.split(":")[1]) if mode.startswith("cut-blob:") else 0
            if n and len(body) > n:
                self.send_response(resp.status)
                for k, v in out.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:n])
                self.wfile.flush()
                state["cut"] = True
                self.close_connection = True
                return
        self.reply(resp.status, body if self.command != "HEAD" else b"", out, length=len(body))

    def reply(self, status, body, headers, length=None):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True


if __name__ == "__main__":
    Server(("127.0.0.1", listen), Proxy).serve_forever()

#!/usr/bin/env python3
"""A minimal Bearer token service for a test registry (distribution's
token auth): checks Basic credentials against USER:PASSWORD and answers
{"token": JWT} signed RS256 with KEY, whose certificate the registry
trusts (x5c header). usage: token.py PORT KEY CERT USER:PASSWORD ISSUER SERVICE LOG
"""
import base64
import http.server
import json
import subprocess
import sys
import time
import urllib.parse

port, key, cert, creds, issuer, service, log = sys.argv[1:8]


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der(pem_path):
    out = subprocess.run(["openssl", "x509", "-in", pem_path, "-outform", "DER"],
                         check=True, stdout=subprocess.PIPE).stdout
    return base64.b64encode(out).decode()


X5C = der(cert)


class Token(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        auth = self.headers.get("Authorization", "")
        with open(log, "a") as f:
            f.write(f"token scope={q.get('scope', [''])[0]} service={q.get('service', [''])[0]} auth={'basic' if auth else 'none'}\n")
        if not auth.startswith("Basic ") or base64.b64decode(auth[6:]).decode() != creds:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        scope = q.get("scope", [""])[0].split(":")
        access = [{"type": scope[0], "name": scope[1], "actions": scope[2].split(",")}] if len(scope) == 3 else []
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [X5C]}
        claims = {"iss": issuer, "sub": creds.split(":")[0], "aud": service, "exp": now + 600,
                  "nbf": now - 10, "iat": now, "jti": str(now), "access": access}
        signing = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing,
                             check=True, stdout=subprocess.PIPE).stdout
        body = json.dumps({"token": signing.decode() + "." + b64(sig)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Token).serve_forever()

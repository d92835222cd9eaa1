"""An artifact repository on loopback for slipway's artifact-source tests.

Usage: python3 server.py [--bind=ADDRESS] CERT KEY ROOT LOG [TOKEN]

Serves HTTPS on a free port of 127.0.0.1 (or of ADDRESS: an address of this
machine the tests' own host namespaces reach) with the certificate CERT (PEM) and its
key KEY, and prints "port N" on its first line of output. Files come from the
directory ROOT. With TOKEN, every request must carry
"Authorization: Bearer TOKEN" (else 401). Every request is appended to the
file LOG as "METHOD PATH STATUS", and to LOG.agents as
"METHOD PATH STATUS USER-AGENT" (who downloaded: slipway, or curl on a host).

  GET /files/NAME      the file, with an ETag (its sha256) and Last-Modified;
                       a matching If-None-Match answers 304
  GET /redirect/NAME   302 to /files/NAME
  GET /truncated/NAME  200 announcing the whole length, then half of the
                       file, then the connection closes
  GET /slow/NAME       as /files/NAME; but while a file "slow" exists beside
                       ROOT, a client whose User-Agent starts with "curl/" (a
                       host pulling) gets the body at 64 KiB/s, and a client
                       that goes away before the end is logged with status 499
  GET (other)          404

Local only: it listens on loopback or on an address of the tests' own host
network, and never reaches the network.
"""

import email.utils
import hashlib
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = None
LOG = None
TOKEN = None
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request_line(self, status):
        with LOCK, open(LOG, "a", encoding="utf-8") as log:
            log.write("%s %s %d\n" % (self.command, self.path, status))
        with LOCK, open(LOG + ".agents", "a", encoding="utf-8") as log:
            agent = self.headers.get("User-Agent", "-").replace("\n", " ")
            log.write("%s %s %d %s\n" % (self.command, self.path, status, agent))

    def plain(self, status, text, headers=()):
        body = text.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.log_request_line(status)

    def do_GET(self):
        if TOKEN is not None and self.headers.get("Authorization") != "Bearer " + TOKEN:
            self.plain(401, "unauthorized")
            return
        kind, _, name = self.path.lstrip("/").partition("/")
        path = os.path.join(ROOT, os.path.basename(name))
        if kind not in ("files", "redirect", "truncated", "slow") or not os.path.isfile(path):
            self.plain(404, "not found")
            return
        if kind == "redirect":
            self.plain(302, "moved", [("Location", "/files/" + name)])
            return
        with open(path, "rb") as f:
            body = f.read()
        etag = '"%s"' % hashlib.sha256(body).hexdigest()
        if kind in ("files", "slow") and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Connection", "close")
            self.end_headers()
            self.log_request_line(304)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header(
            "Last-Modified", email.utils.formatdate(os.path.getmtime(path), usegmt=True)
        )
        self.send_header("Connection", "close")
        self.end_headers()
        if kind == "truncated":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.log_request_line(200)
            self.close_connection = True
            return
        agent = self.headers.get("User-Agent", "")
        slow_marker = os.path.join(os.path.dirname(ROOT), "slow")
        if kind == "slow" and agent.startswith("curl/") and os.path.exists(slow_marker):
            try:
                for start in range(0, len(body), 16384):
                    self.wfile.write(body[start : start + 16384])
                    self.wfile.flush()
                    time.sleep(0.25)
            except (OSError, ssl.SSLError):
                self.log_request_line(499)
                self.close_connection = True
                return
        else:
            self.wfile.write(body)
        self.log_request_line(200)

    def log_message(self, *args):
        pass


def main():
    global ROOT, LOG, TOKEN
    args = sys.argv[1:]
    bind = "127.0.0.1"
    if args and args[0].startswith("--bind="):
        bind = args.pop(0)[len("--bind="):]
    cert, key, ROOT, LOG = args[0:4]
    TOKEN = args[4] if len(args) > 4 else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer((bind, 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""An https server on loopback for slipway's TLS tests.

Usage: python3 server.py CERT KEY RECEIVED [UPSTREAM]

Serves HTTPS on a free 127.0.0.1 port with the certificate CERT (PEM, the
chain to send) and its key KEY, and prints "port N" on its first line of
output. It answers

  POST (any path)  200 "ok"; the body is appended to the file RECEIVED, one
                   JSON string per line (a webhook receiver)
  GET /health      200 {"status": "healthy"}
  GET (other)      with UPSTREAM (an http:// URL): the same path and query
                   fetched from UPSTREAM, status and body relayed (a TLS front
                   for a plain-HTTP server such as Prometheus); else 404

Loopback only; it never reaches the network.
"""

import json
import ssl
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECEIVED = None
UPSTREAM = None
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        with LOCK, open(RECEIVED, "a", encoding="utf-8") as received:
            received.write(json.dumps(body) + "\n")
        self.answer(200, b"ok", "text/plain")

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, b'{"status": "healthy"}')
            return
        if UPSTREAM is None:
            self.answer(404, b'{"error": "not found"}')
            return
        try:
            with urllib.request.urlopen(UPSTREAM + self.path, timeout=10) as upstream:
                status, body = upstream.status, upstream.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        self.answer(status, body)

    def log_message(self, *args):
        pass


def main():
    global RECEIVED, UPSTREAM
    cert, key, RECEIVED = sys.argv[1:4]
    UPSTREAM = sys.argv[4].rstrip("/") if len(sys.argv) > 4 else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

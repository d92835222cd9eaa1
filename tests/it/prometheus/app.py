"""A tiny service for slipway's metric gate tests: Prometheus counters per version.

Usage: python3 app.py VERSION=REQUESTS_PER_S:ERRORS_PER_S [...]

Serves GET /metrics on a free 127.0.0.1 port and prints "port N" on its first
line of output. For every VERSION it exposes

    app_requests_total{version="VERSION"}  REQUESTS_PER_S × seconds since start
    app_errors_total{version="VERSION"}    ERRORS_PER_S × seconds since start

so the counters really grow, at the rates given, and
rate(app_errors_total[..]) / rate(app_requests_total[..]) is ERRORS/REQUESTS.
Loopback only; it never reaches the network.
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()
RATES = {}


def metrics():
    elapsed = time.monotonic() - STARTED
    lines = [
        "# HELP app_requests_total Requests served.",
        "# TYPE app_requests_total counter",
    ]
    for version, (requests, _) in sorted(RATES.items()):
        lines.append('app_requests_total{version="%s"} %r' % (version, requests * elapsed))
    lines += [
        "# HELP app_errors_total Requests that failed.",
        "# TYPE app_errors_total counter",
    ]
    for version, (_, errors) in sorted(RATES.items()):
        lines.append('app_errors_total{version="%s"} %r' % (version, errors * elapsed))
    return ("\n".join(lines) + "\n").encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = metrics()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    for arg in sys.argv[1:]:
        version, rates = arg.split("=", 1)
        requests, errors = rates.split(":", 1)
        RATES[version] = (float(requests), float(errors))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

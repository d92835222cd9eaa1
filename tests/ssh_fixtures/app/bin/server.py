"""The fixture app: answers /health with "ok" and every other path with one line
of text. Usage: python3 server.py PORT TEXT (from the install directory).

It writes run/app.ready once it listens, so that start.sh can wait for it."""
import http.server
import os
import sys

port = int(sys.argv[1])
text = (sys.argv[2] + "\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/health" else text
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", port), Handler)
with open("run/app.ready.tmp", "w") as ready:
    ready.write("%d\n" % os.getpid())
os.rename("run/app.ready.tmp", "run/app.ready")
server.serve_forever()

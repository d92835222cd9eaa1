#!/bin/sh
# Health check: GET /health on this host's port must answer 200 "ok".
# Usage: sh current/bin/check.sh   (from the install directory)
set -eu
port=$(cat run/hello.port)
exec python3 - "$port" <<'PY'
import sys, urllib.request
url = "http://127.0.0.1:%s/health" % sys.argv[1]
try:
    with urllib.request.urlopen(url, timeout=2) as response:
        ok = response.status == 200 and response.read().strip() == b"ok"
except OSError as error:
    sys.exit("%s: %s" % (url, error))
sys.exit(0 if ok else "%s: unexpected answer" % url)
PY

#!/bin/sh
# Health check: GET /health on this host's port must answer "ok".
# Usage: sh current/bin/check.sh   (from the install directory)
#
# For tests: while the file /opt/.lab/hold-health exists on the host, the check
# creates health-held beside it and waits (at most two minutes), so that a test
# can act while a host is in the middle of its update.
set -eu
port=$(cat run/app.port)

lab=/opt/.lab
if [ -f "$lab/hold-health" ]; then
    : >"$lab/health-held"
    waited=0
    while [ -f "$lab/hold-health" ] && [ "$waited" -lt 1200 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
fi

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

#!/bin/sh
# Health check: this host's hello must answer GET /health with 200 "ok", and
# GET / with the version being deployed: "something answers on the port" would
# also pass while the old release still runs.
# Usage: sh current/bin/check.sh   (from the install directory; slipway sets
# SLIPWAY_VERSION)
set -eu
port=$(cat run/hello.port)
exec python3 - "$port" "${SLIPWAY_VERSION:?must be set by slipway}" <<'PY'
import sys, urllib.request
port, version = sys.argv[1], sys.argv[2]
def get(path):
    url = "http://127.0.0.1:%s%s" % (port, path)
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return url, response.status, response.read().decode("utf-8", "replace")
    except OSError as error:
        sys.exit("%s: %s" % (url, error))
url, status, body = get("/health")
if status != 200 or body.strip() != "ok":
    sys.exit("%s: unexpected answer" % url)
url, status, body = get("/")
if "(version %s," % version not in body:
    sys.exit("%s: answers %r, not version %s" % (url, body.strip(), version))
PY

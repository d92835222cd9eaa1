#!/bin/sh
# Start the app in the background and return once it listens.
# Usage: sh current/bin/start.sh CONFIG   (from the install directory)
#
# Every host of a test shares this machine's network, so each needs its own
# port: BASE_PORT from the config file plus the host's position in the host
# list, which slipway passes as SLIPWAY_HOST_INDEX.
set -eu

config=$1
. "./$config"   # BASE_PORT, GREETING, VERSION

port=$((BASE_PORT + ${SLIPWAY_HOST_INDEX:?must be set by slipway}))
release=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p run
rm -f run/app.ready
nohup python3 "$release/bin/server.py" "$port" \
    "$GREETING (version $VERSION, ${SLIPWAY_HOST:-unknown host})" \
    </dev/null >run/app.log 2>&1 &
echo $! >run/app.pid
echo "$port" >run/app.port

tries=0
while [ ! -f run/app.ready ]; do
    if ! kill -0 "$(cat run/app.pid)" 2>/dev/null; then
        echo "the app exited at start:" >&2
        cat run/app.log >&2
        exit 1
    fi
    tries=$((tries + 1))
    if [ "$tries" -gt 400 ]; then
        echo "the app does not listen on 127.0.0.1:$port after 20s" >&2
        exit 1
    fi
    sleep 0.05
done
echo "app $VERSION listening on 127.0.0.1:$port"

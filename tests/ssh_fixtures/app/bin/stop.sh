#!/bin/sh
# Stop the app if it runs, and wait until it is gone (the next start binds the
# same port). Usage: sh current/bin/stop.sh   (from the install directory)
set -eu
if [ -f run/app.pid ]; then
    pid=$(cat run/app.pid)
    if kill "$pid" 2>/dev/null; then
        tries=0
        while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 100 ]; do
            sleep 0.05
            tries=$((tries + 1))
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f run/app.pid run/app.ready
fi

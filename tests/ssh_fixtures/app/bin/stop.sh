#!/bin/sh
# Stop the app if it runs, and wait until it is gone (the next start binds the
# same port). Usage: sh current/bin/stop.sh   (from the install directory)
set -eu

# Whether process $1 still runs. One that exited but was not reaped yet (a
# zombie: its parent is an init that reaps slowly or never) counts as gone.
running() {
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -n 's/^.*) \([A-Za-z]\).*$/\1/p' "/proc/$1/stat" 2>/dev/null || true)
    [ "$state" != Z ]
}

if [ -f run/app.pid ]; then
    pid=$(cat run/app.pid)
    if kill "$pid" 2>/dev/null; then
        tries=0
        while running "$pid" && [ "$tries" -lt 100 ]; do
            sleep 0.02
            tries=$((tries + 1))
        done
        if running "$pid"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f run/app.pid run/app.ready
fi

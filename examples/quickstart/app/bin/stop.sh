#!/bin/sh
# Stop hello if it runs. Usage: sh current/bin/stop.sh   (from the install directory)
set -eu
if [ -f run/hello.pid ]; then
    kill "$(cat run/hello.pid)" 2>/dev/null || true
    rm -f run/hello.pid
fi

#!/bin/sh
# Start hello in the background and return.
# Usage: sh current/bin/start.sh CONFIG   (run from the install directory)
set -eu

config=$1
. "./$config"   # BASE_PORT, GREETING, VERSION

# slipway sets SLIPWAY_HOST_INDEX to this host's position in the host list.
port=$((BASE_PORT + ${SLIPWAY_HOST_INDEX:?must be set by slipway}))

release=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p run
rm -rf run/www
mkdir -p run/www
cp "$release/public/health" run/www/health
printf '%s (version %s, %s)\n' "$GREETING" "$VERSION" "${SLIPWAY_HOST:-unknown host}" >run/www/index.html

nohup python3 -m http.server "$port" --bind 127.0.0.1 --directory run/www \
    >run/hello.log 2>&1 &
echo $! >run/hello.pid
echo "$port" >run/hello.port
echo "hello $VERSION listening on 127.0.0.1:$port"

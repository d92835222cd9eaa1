#!/usr/bin/env bash
# `slipway rollback` on HOSTS real sshd hosts (BENCHMARKS.md, "VM rollback").
#
# Starts HOSTS sshd servers on loopback with the test harness (see
# tests/bench/lib/lab.sh), deploys the fixture app of tests/ssh_fixtures as
# 1.0.0 and then 2.0.0, and measures, in the same run, PARALLEL hosts at a time:
#
#   restart   the floor: over one ssh connection per host, from bash, stop the
#             app, start it and run its health check (what any rollback must
#             at least do), nothing else
#   rollback  `slipway rollback` from 2.0.0 back to 1.0.0 (the release kept on
#             each host: nothing is transferred)
#   redeploy  what a team without a rollback command does: `slipway apply` of
#             the previous version (here 3.0.0 is applied first, untimed, then
#             2.0.0 is applied again through the rollout, batches of PARALLEL)
#
# Usage:
#   tests/bench/rollback_vs_restart.sh              # 50 hosts, 10 at a time, 3 runs
#   HOSTS=10 RUNS=1 tests/bench/rollback_vs_restart.sh
#   PARALLEL=N ...  hosts at a time (10)   KEEP=1 ...  keep the temporary directory
#   SLIPWAY_BIN=PATH ...  measure this slipway binary instead of building one
set -euo pipefail
cd "$(dirname "$0")/../.."

HOSTS=${HOSTS:-50}
PARALLEL=${PARALLEL:-10}
RUNS=${RUNS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}

work=$(mktemp -d "${TMPDIR:-/tmp}/slipway-rollback.XXXXXX")
mkdir -p "$work/hosts" "$work/tmp" "$work/logs" "$work/restart"
results="$work/results.txt"
: >"$results"

# shellcheck source=tests/bench/lib/lab.sh
. tests/bench/lib/lab.sh

trap finish_lab EXIT

build_slipway

start_hosts
cfg="$work/slipway"
mkdir -p "$cfg"
write_slipway_config "$cfg" "$PARALLEL"
# shellcheck disable=SC1090
. "$work/hosts/ssh.env"

slipway_run() {
    env TMPDIR="$work/tmp" NO_COLOR=1 "$slipway" "$@" -var "base_port=$base_port" </dev/null
}
slipway_apply() {
    echo "$1" >"$cfg/app/VERSION"
    slipway_run apply "$cfg" -auto-approve -var "version=$1"
}
slipway_rollback() {
    slipway_run rollback app "$cfg" -auto-approve -parallelism "$PARALLEL" -var "version=$1"
}

# Restart one host: stop, start, health check, over its own ssh connection.
restart_host() {
    local index=$1 address=$2 ip=$3 root=$4
    local sock="$work/restart/$index" dir="$root/opt/app"
    local opts=(-p "$SSH_PORT" -i "$IDENTITY_FILE" -o IdentitiesOnly=yes -o BatchMode=yes
        -o "UserKnownHostsFile=$KNOWN_HOSTS" -o StrictHostKeyChecking=yes -l "$(id -un)" -S "$sock")
    ssh "${opts[@]}" -M -o ControlPersist=yes -fN "$ip"
    ssh "${opts[@]}" "$ip" "cd $dir && sh current/bin/stop.sh &&
        SLIPWAY_HOST=$address SLIPWAY_HOST_INDEX=$index sh current/bin/start.sh config/app.env &&
        sh current/bin/check.sh" >/dev/null
    ssh "${opts[@]}" -O exit "$ip" 2>/dev/null
}
export -f restart_host
restart_all() {
    export work SSH_PORT IDENTITY_FILE KNOWN_HOSTS
    # shellcheck disable=SC2016
    xargs -P "$PARALLEL" -L 1 bash -c 'restart_host "$0" "$1" "$2" "$4"' <"$hosts_tsv"
}

echo "== machine"
{
    echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "ssh: $(ssh -V 2>&1)"
    echo "slipway: $("$slipway" version 2>/dev/null | head -n 1) at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "hosts: $HOSTS, $PARALLEL at a time, runs: $RUNS, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$work/machine.txt"

for run in $(seq "$RUNS"); do
    echo "== run $run"
    reset_hosts
    slipway_apply 1.0.0 >"$work/logs/setup-1-$run.log" 2>&1
    slipway_apply 2.0.0 >"$work/logs/setup-2-$run.log" 2>&1
    check_serving 2.0.0
    timed "restart $run" restart_all
    check_serving 2.0.0
    timed "rollback $run" slipway_rollback 2.0.0
    check_serving 1.0.0
    slipway_apply 3.0.0 >"$work/logs/setup-3-$run.log" 2>&1
    check_serving 3.0.0
    timed "redeploy $run" slipway_apply 2.0.0
    check_serving 2.0.0
done
reset_hosts

echo "== summary (seconds: mean, min-max over $RUNS run(s))"
"$PYTHON" - "$results" <<'PY'
import collections, statistics, sys
wall = collections.defaultdict(list)
cpu = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, _run, seconds, cpu_seconds = line.split()
    wall[name].append(float(seconds))
    cpu[name].append(float(cpu_seconds))
for name in ("restart", "rollback", "redeploy"):
    t = wall[name]
    print("%-9s %7.2f (%.2f-%.2f)  cpu %6.2f" % (name, statistics.mean(t), min(t), max(t), statistics.mean(cpu[name])))
restart = statistics.mean(wall["restart"])
print("rollback / restart = %.2fx, redeploy / rollback = %.2fx" % (
    statistics.mean(wall["rollback"]) / restart,
    statistics.mean(wall["redeploy"]) / statistics.mean(wall["rollback"])))
PY

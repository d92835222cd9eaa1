# Shared by the VM benchmarks (ansible_vs_slipway.sh, rollback_vs_restart.sh):
# real sshd hosts on loopback started by the test harness (tests/it/sshd, through
# the ignored test `bench_hosts` in tests/it/apply_ssh.rs), the fixture app of
# tests/ssh_fixtures deployed on them, and timing. Source it after setting
# HOSTS, PYTHON and work (a directory with hosts/, tmp/ and logs/) and
# results (a file); it defines roots, harness_pid and, after start_hosts,
# hosts_tsv, SSH_PORT, IDENTITY_FILE, KNOWN_HOSTS and base_port.
# shellcheck shell=bash

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }

roots=()
harness_pid=

stop_apps() {
    local root pid pids=()
    for root in "${roots[@]}"; do
        if [ -f "$root/opt/app/run/app.pid" ]; then
            pid=$(cat "$root/opt/app/run/app.pid")
            kill "$pid" 2>/dev/null && pids+=("$pid")
        fi
    done
    # Wait until they are gone (a zombie, left for an init that reaps slowly,
    # counts as gone).
    local tries
    for pid in "${pids[@]}"; do
        tries=0
        while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 250 ] &&
            ! grep -q ') Z ' "/proc/$pid/stat" 2>/dev/null; do
            sleep 0.02
            tries=$((tries + 1))
        done
    done
    return 0
}

# At exit: stop the apps and the host harness, and remove the work directory
# (kept with KEEP=1).
finish_lab() {
    set +e
    stop_apps
    rm -f "$work/hosts/hold"
    if [ -n "$harness_pid" ]; then
        wait "$harness_pid"
    fi
    if [ "${KEEP:-0}" != 0 ]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
}

# Start HOSTS sshd hosts and wait until they are ready; pick HOSTS free
# consecutive ports for the apps (host i listens on base_port + i).
start_hosts() {
    echo "== starting $HOSTS sshd hosts"
    : >"$work/hosts/hold"
    SLIPWAY_BENCH_DIR="$work/hosts" SLIPWAY_BENCH_HOSTS=$HOSTS SLIPWAY_BENCH_OWNER=$$ \
        cargo test --locked --test it apply_ssh::bench_hosts -- --ignored --exact \
        >"$work/logs/harness.log" 2>&1 &
    harness_pid=$!
    for _ in $(seq 1200); do
        [ -f "$work/hosts/ready" ] && break
        if ! kill -0 "$harness_pid" 2>/dev/null; then
            cat "$work/logs/harness.log"
            echo "the host harness stopped" >&2
            exit 1
        fi
        sleep 0.1
    done
    [ -f "$work/hosts/ready" ] || { echo "the hosts did not start" >&2; exit 1; }
    hosts_tsv="$work/hosts/hosts.tsv"
    ssh_env="$work/hosts/ssh.env"
    # shellcheck disable=SC1090
    . "$ssh_env" # SSH_PORT, IDENTITY_FILE, KNOWN_HOSTS
    mapfile -t roots < <(cut -f 5 "$hosts_tsv")

    # HOSTS consecutive ports free on 127.0.0.1 for the app (host i uses base + i).
    base_port=$("$PYTHON" - "$HOSTS" <<'PY'
import socket, sys
count = int(sys.argv[1])
for base in range(24000, 32000 - count, count):
    sockets = []
    try:
        for port in range(base, base + count):
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            sockets.append(s)
    except OSError:
        continue
    finally:
        for s in sockets:
            s.close()
    print(base)
    break
PY
    )

}

# Every host back to nothing installed, and slipway's state gone.
reset_hosts() {
    stop_apps
    local root
    for root in "${roots[@]}"; do
        rm -rf "$root/opt" "$root/health-held"
    done
    rm -rf "$cfg/.slipway/state"
}

# Check that every host serves `version`.
check_serving() {
    local version=$1 i bad=0
    for ((i = 0; i < HOSTS; i++)); do
        if ! curl -fsS "http://127.0.0.1:$((base_port + i))/" 2>/dev/null |
            grep -q "(version $version,"; then
            bad=$((bad + 1))
        fi
    done
    if [ "$bad" -ne 0 ]; then
        echo "$bad of $HOSTS hosts do not serve $version" >&2
        exit 1
    fi
}

# CPU seconds (user + system) of the children this shell has waited for
# (/proc/PID/stat fields 16 and 17, in clock ticks).
children_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($14 + $15) / hz }' "/proc/$$/stat"
}

# Run a command, timed; its output goes to logs/NAME.log. Records the wall
# time and the CPU time of the processes it waited for (the tool and its
# workers; not ssh's ControlMaster processes, which run detached, nor the
# sshd side).
timed() {
    local name=$1 start elapsed cpu0 cpu
    shift
    cpu0=$(children_cpu)
    start=$(now)
    if ! "$@" >"$work/logs/$name.log" 2>&1; then
        tail -n 40 "$work/logs/$name.log"
        echo "$name failed" >&2
        exit 1
    fi
    elapsed=$(since "$start")
    cpu=$(awk -v a="$(children_cpu)" -v b="$cpu0" 'BEGIN { printf "%.2f", a - b }')
    echo "$name $elapsed $cpu" >>"$results"
    printf '  %-24s %8.2f s wall %8.2f s cpu\n' "$name" "$elapsed" "$cpu"
}

# Write the slipway configuration of the fixture app into directory $1 for
# the hosts, with rollout batches of $2.
write_slipway_config() {
    local cfg=$1 BATCH=$2 host_list
    cp tests/ssh_fixtures/main.hcl "$cfg/"
    cp -R tests/ssh_fixtures/app "$cfg/app"
    host_list=$(cut -f 2 "$hosts_tsv" | awk '{ printf "%s\"%s\"", (NR > 1 ? ", " : ""), $0 }')
    cat >"$cfg/lab.hcl" <<EOF
environment "lab" {
  variables = { GREETING = "Hello over SSH" }

  vm_hosts {
    transport        = "ssh"
    user             = "$(id -un)"
    hosts            = [$host_list]
    identity_file    = "$IDENTITY_FILE"
    known_hosts_file = "$KNOWN_HOSTS"
  }
}

rollout "rolling" {
  strategy   = "rolling"
  batches    = [$BATCH]
  on_failure = "rollback"
}
EOF

}

# Shared by the VM benchmarks (ansible_vs_slipway.sh, rollback_vs_restart.sh):
# real sshd hosts on loopback started by the test harness (tests/it/sshd, through
# the ignored test `bench_hosts` in tests/it/apply_ssh.rs), the fixture app of
# tests/ssh_fixtures deployed on them, and timing. Source it after setting
# HOSTS, PYTHON and work (a directory with hosts/, tmp/ and logs/) and
# results (a file); it defines roots, harness_pid and, after start_hosts,
# hosts_tsv, SSH_PORT, IDENTITY_FILE, KNOWN_HOSTS, base_port, sshd_logs and
# sshd_pids.
#
# Opt-in, for a test bed closer to real hosts (set before start_hosts):
#   HOST_RC_FILE=FILE   every ssh session's shell sources FILE (BASH_ENV; see
#                       write_realistic_rc)
#   LOG_SESSIONS=1      the sshd logs get a line per session, with times
#                       (sessions_mark / sessions_count)
# and, after start_hosts, delay_start / delay_stop (network delay to the hosts).
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
        SLIPWAY_BENCH_RC="${HOST_RC_FILE:-}" SLIPWAY_BENCH_LOG_SESSIONS="${LOG_SESSIONS:-0}" \
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
    mapfile -t sshd_logs < <(cut -f 2 "$work/hosts/servers.tsv")
    mapfile -t sshd_pids < <(cut -f 3 "$work/hosts/servers.tsv")

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
        # Emptied, not removed: it is the host's /opt (a
        # bind mount's source).
        if [ -d "$root/opt" ]; then
            find "$root/opt" -mindepth 1 -delete
        fi
        rm -f "$root/health-held"
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

# CPU seconds (user + system) of the children this shell (or the shell with
# process id $1) has waited for (/proc/PID/stat fields 16 and 17, in clock ticks).
children_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($14 + $15) / hz }' "/proc/${1:-$$}/stat"
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

# --- a login shell that costs what a real one does ----------------------------------

# Write into $1 a shell startup file like a real ~/.bashrc on a server: PATH
# edits, a version manager's init that starts an interpreter and evaluates the
# exports it prints (as pyenv, conda or nvm hooks do), a few `command -v`
# lookups. About 100 ms of CPU per shell on the benchmark machine. It prints
# nothing and leaves the tools the steps use where they were (PATH entries are
# appended), so the commands behave as without it.
write_realistic_rc() {
    cat >"$1" <<'RC'
# shellcheck shell=bash
# A server's ~/.bashrc, as far as its cost goes (sourced by every ssh session).
case ":$PATH:" in *":$HOME/.local/bin:"*) ;; *) PATH="$PATH:$HOME/.local/bin" ;; esac
export PATH="$PATH:/opt/tools/bin"
export EDITOR=vi PAGER=less LESS=-R HISTSIZE=5000
# The version manager's init: an interpreter prints the exports to evaluate.
eval "$(/usr/bin/python3 - <<'PY'
import argparse, asyncio, decimal, email.parser, http.client, json, logging, os
import platform, re, shlex, subprocess, sysconfig, urllib.request, uuid
root = os.path.expanduser("~/.vm")
env = {"VM_ROOT": root, "VM_SHELL": "bash", "VM_PLATFORM": platform.platform(),
       "VM_PYTHON_PREFIX": sysconfig.get_paths()["stdlib"]}
for name, value in sorted(env.items()):
    print("export %s=%s" % (name, shlex.quote(value)))
PY
)"
for tool in git direnv kubectl docker; do
    if command -v "$tool" >/dev/null 2>&1; then
        export "HAVE_$(printf '%s' "$tool" | tr '[:lower:]' '[:upper:]')=1"
    fi
done
true
RC
}

# Cost of the rc file $1 per shell, on this machine: prints "CPU_MS WALL_MS",
# the mean over 20 `bash -c true` with it as BASH_ENV minus 20 without.
rc_cost() {
    local rc=$1 start wall_rc wall_none cpu0 cpu_rc cpu_none me=$BASHPID
    cpu0=$(children_cpu "$me")
    start=$(now)
    for _ in $(seq 20); do BASH_ENV=$rc bash -c true; done
    wall_rc=$(since "$start")
    cpu_rc=$(awk -v a="$(children_cpu "$me")" -v b="$cpu0" 'BEGIN { print a - b }')
    cpu0=$(children_cpu "$me")
    start=$(now)
    for _ in $(seq 20); do bash -c true; done
    wall_none=$(since "$start")
    cpu_none=$(awk -v a="$(children_cpu "$me")" -v b="$cpu0" 'BEGIN { print a - b }')
    awk -v c="$cpu_rc" -v cn="$cpu_none" -v w="$wall_rc" -v wn="$wall_none" \
        'BEGIN { printf "%.0f %.0f\n", (c - cn) / 20 * 1000, (w - wn) / 20 * 1000 }'
}

# --- network delay to the hosts ----------------------------------------------------------

# Delay the hosts' SSH traffic by $1 (a tc time: 10ms) each way; 127.0.0.1 <->
# 127.0.0.1 (the apps and their health checks, everything else on the
# machine) is not touched. Needs root and tc. Prints how; removed by
# delay_stop.
#
# With netem in the kernel: on `lo`, a prio qdisc (handle 51:) whose bands 1-3
# take all loopback traffic as before, and u32 filters that send packets to
# (dst) or from (src) the hosts' addresses 127.0.0.11 ... 127.0.0.(10+HOSTS)
# on the hosts' SSH port to band 4, where netem delays them (other servers on
# those addresses, e.g. other tests' sshd, use other ports and are not
# delayed). Without netem (or prio) in the kernel: delay_proxy.py in front of
# each host, 127.0.1.N:PORT -> 127.0.0.N:PORT, and hosts_tsv, ssh_env and
# KNOWN_HOSTS switched to those addresses.
netem_active=0
proxy_pid=
delay_start() {
    local delay=$1 prefixes prefix
    netem_stop_leftover
    if [ "$(tc qdisc show dev lo | awk 'NR == 1 { print $2 }')" != noqueue ]; then
        echo "lo has a queueing discipline already ($(tc qdisc show dev lo | head -n 1)); not adding a delay" >&2
        return 1
    fi
    prefixes=$("$PYTHON" - "$HOSTS" <<'PY'
import ipaddress, sys
first = ipaddress.IPv4Address("127.0.0.11")
last = first + int(sys.argv[1]) - 1
nets = list(ipaddress.summarize_address_range(first, last))
assert all(net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")) for net in nets)
assert not any(ipaddress.IPv4Address("127.0.0.1") in net for net in nets)
print(" ".join(str(net) for net in nets))
PY
    ) || return 1
    if tc qdisc add dev lo root handle 51: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 2>/dev/null; then
        netem_active=1
        if tc qdisc add dev lo parent 51:4 handle 514: netem delay "$delay" limit 100000 2>/dev/null; then
            tc qdisc add dev lo parent 51:1 handle 511: pfifo limit 10000
            tc qdisc add dev lo parent 51:2 handle 512: pfifo limit 10000
            tc qdisc add dev lo parent 51:3 handle 513: pfifo limit 10000
            for prefix in $prefixes; do
                tc filter add dev lo parent 51: protocol ip prio 1 u32 \
                    match ip dst "$prefix" match ip dport "$SSH_PORT" 0xffff flowid 51:4
                tc filter add dev lo parent 51: protocol ip prio 1 u32 \
                    match ip src "$prefix" match ip sport "$SSH_PORT" 0xffff flowid 51:4
            done
            echo "netem $delay each way (lo, $prefixes port $SSH_PORT)"
            return 0
        fi
        netem_stop
    fi
    delay_proxy_start "$delay"
}

delay_proxy_start() {
    local ms pairs=() ip port
    ms=$(awk -v d="$1" 'BEGIN { if (d ~ /us$/) print d / 1000; else print d + 0 }')
    while IFS=$'\t' read -r _ _ ip port _; do
        pairs+=("127.0.1.${ip##*.}:$port=$ip:$port")
    done <"$hosts_tsv"
    rm -f "$work/hosts/proxy-ready"
    "$PYTHON" tests/bench/lib/delay_proxy.py "$ms" "$work/hosts/proxy-ready" $$ "${pairs[@]}" \
        >"$work/logs/delay-proxy.log" 2>&1 &
    proxy_pid=$!
    for _ in $(seq 200); do
        [ -f "$work/hosts/proxy-ready" ] && break
        kill -0 "$proxy_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -f "$work/hosts/proxy-ready" ]; then
        cat "$work/logs/delay-proxy.log" >&2
        delay_stop
        return 1
    fi
    # The hosts as the tools see them: the proxy's addresses, the same keys.
    awk -F'\t' -v OFS='\t' '{ sub(/^127\.0\.0\./, "127.0.1.", $2); sub(/^127\.0\.0\./, "127.0.1.", $3); print }' \
        "$hosts_tsv" >"$work/hosts/hosts-delayed.tsv"
    sed 's/^\[127\.0\.0\./[127.0.1./' "$KNOWN_HOSTS" >"$work/hosts/known_hosts-delayed"
    hosts_tsv="$work/hosts/hosts-delayed.tsv"
    KNOWN_HOSTS="$work/hosts/known_hosts-delayed"
    ssh_env="$work/hosts/ssh-delayed.env"
    printf 'SSH_PORT=%s\nIDENTITY_FILE=%s\nKNOWN_HOSTS=%s\n' "$SSH_PORT" "$IDENTITY_FILE" "$KNOWN_HOSTS" >"$ssh_env"
    echo "a delaying proxy, $1 each way (no netem in this kernel): 127.0.1.N:$SSH_PORT -> 127.0.0.N:$SSH_PORT"
}

# Remove a delay this script (or an earlier run of it that could not clean
# up) added: only the prio qdisc with handle 51:.
netem_stop_leftover() {
    if tc qdisc show dev lo 2>/dev/null | grep -q '^qdisc prio 51: root'; then
        tc qdisc del dev lo root handle 51: prio
    fi
}
netem_stop() {
    if [ "$netem_active" = 1 ]; then
        netem_stop_leftover
        netem_active=0
    fi
}
delay_stop() {
    netem_stop
    if [ -n "$proxy_pid" ]; then
        kill "$proxy_pid" 2>/dev/null
        wait "$proxy_pid" 2>/dev/null
        proxy_pid=
    fi
    return 0
}

# Print how long (ms, best of 5) a TCP connect plus the first bytes take: from
# host 1's sshd at the address the tools use (its banner), from the same sshd
# at its own address, and from a listener on 127.0.0.1 that answers at once.
connect_times() {
    "$PYTHON" - "$(cut -f 3 "$hosts_tsv" | head -n 1)" "$SSH_PORT" <<'PY'
import socket, sys, threading, time
def best(address):
    times = []
    for _ in range(5):
        start = time.perf_counter()
        with socket.create_connection(address, timeout=5) as s:
            s.recv(1)
        times.append((time.perf_counter() - start) * 1000)
    return min(times)
local = socket.create_server(("127.0.0.1", 0))
def answer():
    while True:
        connection, _ = local.accept()
        connection.sendall(b"x")
        connection.close()
threading.Thread(target=answer, daemon=True).start()
ip, port = sys.argv[1], int(sys.argv[2])
own = "127.0.0." + ip.rsplit(".", 1)[1]
print("connect + first bytes: host 1 %.1f ms (%s; %.1f ms at %s), 127.0.0.1 %.1f ms" % (
    best((ip, port)), ip, best((own, port)), own, best(local.getsockname())))
PY
}

# --- sessions, from the hosts' sshd logs (LOG_SESSIONS=1) ---------------------------------

# Remember where each host's sshd log ends now.
sessions_mark() {
    local log
    for log in "${sshd_logs[@]}"; do
        stat -c %s "$log"
    done >"$work/logs/.sessions-mark"
}

# Count, per host, the sessions ("Starting session:") and connections
# ("Accepted publickey") logged since sessions_mark; append to results
# "sessions NAME mean min max" and "connections NAME mean min max", and, as
# means over the hosts in ms, "span NAME" (first connection to last session
# start), "login NAME" (TCP connection to accepted key), "insession NAME"
# (the sessions' time, summed) and "between NAME" (the time between a
# session's end and the next one's start, summed); keep the lines in
# logs/sshd NAME.log.
sessions_count() {
    local name=$1
    paste "$work/logs/.sessions-mark" <(printf '%s\n' "${sshd_logs[@]}") >"$work/logs/.sessions-logs"
    "$PYTHON" - "$name" "$work/logs/sshd $name.log" "$work/logs/.sessions-logs" >>"$results" <<'PY'
import statistics, sys
name, out, logs = sys.argv[1], sys.argv[2], sys.argv[3]
counts = {"sessions": [], "connections": []}
times = {"span": [], "login": [], "insession": [], "between": []}
with open(out, "w") as kept:
    for index, line in enumerate(open(logs)):
        offset, path = line.rstrip("\n").split("\t", 1)
        with open(path, "rb") as log:
            log.seek(int(offset))
            text = log.read().decode(errors="replace")
        events = []
        for entry in text.splitlines():
            kept.write("%d %s\n" % (index, entry))
            stamp, _, message = entry.partition(" ")
            try:
                events.append((float(stamp), message))
            except ValueError:
                pass
        def at(prefix):
            return [t for t, m in events if m.startswith(prefix)]
        accepted, starts, closes = at("Accepted publickey"), at("Starting session:"), at("Close session:")
        connects = at("Connection from")
        counts["sessions"].append(len(starts))
        counts["connections"].append(len(accepted))
        if accepted and starts:
            times["span"].append((starts[-1] - accepted[0]) * 1000)
        if connects and accepted:
            times["login"].append((accepted[0] - connects[0]) * 1000)
        if starts and len(starts) == len(closes):
            times["insession"].append(sum(c - s for s, c in zip(starts, closes)) * 1000)
            times["between"].append(sum(s - c for c, s in zip(closes, starts[1:])) * 1000)
for what, values in counts.items():
    print("%s %s %.2f %d %d" % (what, name, statistics.mean(values), min(values), max(values)))
for what, values in times.items():
    print("%s %s %.0f" % (what, name, statistics.mean(values) if values else 0))
PY
}

# --- CPU --------------------------------------------------------------------------------

# CPU seconds of the hosts' sshd servers and every session they ran or run
# (what the sessions' shells, rc files and commands cost; not the apps, which
# detach): each server and its live descendants, with what they reaped.
hosts_cpu() {
    "$PYTHON" - "$(getconf CLK_TCK)" "${sshd_pids[@]}" <<'PY'
import os, sys
hz, roots = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
children, ticks = {}, {}
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        fields = open("/proc/%s/stat" % name).read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    children.setdefault(int(fields[1]), []).append(int(name))
    ticks[int(name)] = sum(int(f) for f in fields[11:15])
total, todo = 0, [p for p in roots if p in ticks]
while todo:
    pid = todo.pop()
    total += ticks.get(pid, 0)
    todo.extend(children.get(pid, []))
print("%.2f" % (total / hz))
PY
}

# CPU seconds the whole machine spent busy so far (every process, all cores).
machine_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# --- builds --------------------------------------------------------------------------------

# slipway in release (unless SLIPWAY_BIN names one) and the host harness;
# sets slipway to the binary measured.
build_slipway() {
    echo "== building slipway (release) and the host harness"
    if [ -z "${SLIPWAY_BIN:-}" ]; then
        cargo build --release --locked --bin slipway 2>&1 | tail -n 1
    fi
    cargo test --locked --test it --no-run 2>&1 | tail -n 1
    local target_dir
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    slipway=${SLIPWAY_BIN:-$target_dir/release/slipway}
}

# --- ansible-core ---------------------------------------------------------------------------

# ansible-core in the virtualenv $venv (made when it has none).
install_ansible() {
    if [ ! -x "$venv/bin/ansible-playbook" ]; then
        echo "== installing ansible-core into $venv"
        "$PYTHON" -m venv "$venv"
        "$venv/bin/pip" install --quiet ansible-core
    fi
}

# The inventory of the hosts and an ansible.cfg under $work/ansible, with
# BATCH forks and one multiplexed ssh connection per host, as slipway uses.
write_ansible_config() {
    inventory="$work/ansible/inventory.ini"
    mkdir -p "$work/ansible/cp" "$work/ansible/local-tmp" "$work/ansible/remote-tmp"
    {
        echo "[app]"
        while IFS=$'\t' read -r index address ip port root; do
            echo "host-$((index + 1)) ansible_host=$ip ansible_port=$port host_index=$index host_root=$root slipway_host=$address"
        done <"$hosts_tsv"
        echo
        echo "[app:vars]"
        echo "ansible_user=$(id -un)"
        echo "ansible_python_interpreter=/usr/bin/python3"
        echo "ansible_ssh_private_key_file=$IDENTITY_FILE"
    } >"$inventory"
    cat >"$work/ansible/ansible.cfg" <<EOF
[defaults]
forks = $BATCH
gathering = explicit
host_key_checking = True
retry_files_enabled = False
interpreter_python = /usr/bin/python3
local_tmp = $work/ansible/local-tmp
remote_tmp = $work/ansible/remote-tmp

[ssh_connection]
pipelining = True
control_path_dir = $work/ansible/cp
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o IdentitiesOnly=yes -o UserKnownHostsFile=$KNOWN_HOSTS -o StrictHostKeyChecking=yes
EOF
}

# tests/bench/ansible/deploy.yml on the hosts, with the extra variables given
# (-e NAME=VALUE ...) besides base_port and batch.
ansible_playbook() {
    env ANSIBLE_CONFIG="$work/ansible/ansible.cfg" \
        ANSIBLE_LOCAL_TEMP="$work/ansible/local-tmp" \
        ANSIBLE_REMOTE_TEMP="$work/ansible/remote-tmp" \
        ANSIBLE_NOCOLOR=1 ANSIBLE_HOME="$work/ansible/home" \
        "$venv/bin/ansible-playbook" -i "$inventory" tests/bench/ansible/deploy.yml \
        -e "base_port=$base_port" -e "batch=$BATCH" "$@" </dev/null
}

# End ansible's ssh masters (ControlPersist keeps them after a playbook).
stop_ansible_masters() {
    local socket
    for socket in "$work/ansible/cp"/*; do
        [ -S "$socket" ] && ssh -o ControlPath="$socket" -O exit localhost 2>/dev/null
    done
    return 0
}

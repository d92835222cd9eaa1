#!/usr/bin/env bash
# VM apply, slipway vs ansible-core (BENCHMARKS.md, "VM apply: slipway vs ansible-core").
#
# Starts HOSTS real sshd servers on loopback (127.0.0.11, .12, ..., one port)
# with the test harness (tests/it/sshd, through the ignored test `bench_hosts` in
# tests/it/apply_ssh.rs), then deploys the fixture app of tests/ssh_fixtures as
# 1.0.0 and then 2.0.0 to all of them, in rolling batches of BATCH hosts, three
# ways, each from clean hosts, and checks after each that every host answers
# with the new version:
#
#   slipway  `slipway apply`, rollout `batches = [BATCH]`
#   ansible  `ansible-playbook tests/bench/ansible/deploy.yml`, `serial: BATCH`, forks = BATCH
#   direct   tests/bench/ansible/direct.sh: the same remote commands run from bash
#            over one multiplexed ssh connection per host in the fewest sessions
#            the steps allow (at most 3 per host): the physical limit
#
# The hosts behave more like real ones than bare sshd on loopback (both on by
# default, the same for every tool):
#
#   HOST_RC=realistic|none   every ssh session's shell sources a startup file
#                            like a real ~/.bashrc (a version manager's init
#                            that starts an interpreter, PATH edits, `command -v`
#                            lookups; about 100 ms of CPU; its cost is measured
#                            and printed); `none`: a bare shell
#   NETEM_DELAY=10ms|none    network delay each way (tc netem on lo, only for
#                            the hosts' addresses and SSH port; 127.0.0.1 is not
#                            touched), so 20 ms round trip by default; needs root
#                            and tc (skipped with a note otherwise); removed at exit
#
# Reported per tool and phase (fresh, upgrade): wall time, CPU of the tool, of
# the hosts' sshd and sessions, and of the whole machine; SSH sessions and
# connections per host (counted in the hosts' sshd logs); overhead per host
# against direct ((tool - direct) / hosts); and the ratios.
#
# Usage:
#   tests/bench/ansible_vs_slipway.sh                 # 50 hosts, batches of 10, 3 runs
#   HOSTS=10 RUNS=1 tests/bench/ansible_vs_slipway.sh # a quick check
#   HOSTS=100 RUNS=1 tests/bench/ansible_vs_slipway.sh
#   HOSTS=200 RUNS=1 TOOLS="slipway direct" tests/bench/ansible_vs_slipway.sh
#                         (200 is the harness's limit; ansible takes long there)
#   KEEP=1 ...            keep the temporary directory (logs, configs, results)
#   ANSIBLE_VENV=DIR ...  use (or create) the virtualenv with ansible-core in DIR
#                         (otherwise one is made in the temporary directory, every run)
#   RESULTS_DIR=DIR ...   copy results.txt, machine.txt and the logs there
#   BATCH=N ...           hosts per batch (10)
#   TOOLS="slipway direct" ...   run only these of slipway, ansible, direct
#   SLIPWAY_BIN=PATH ...  measure this slipway binary instead of building one
#
# Needs cargo, OpenSSH (sshd, ssh, ssh-keygen), python3 with venv, and pip
# access to install ansible-core when ANSIBLE_VENV has none. Everything it
# writes goes into one temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

HOSTS=${HOSTS:-50}
BATCH=${BATCH:-10}
RUNS=${RUNS:-3}
TOOLS=${TOOLS:-slipway ansible direct}
HOST_RC=${HOST_RC:-realistic}
NETEM_DELAY=${NETEM_DELAY:-10ms}
case $HOST_RC in realistic | none) ;; *) echo "HOST_RC is realistic or none, not $HOST_RC" >&2; exit 2 ;; esac
case $NETEM_DELAY in none | [0-9]*ms | [0-9]*us) ;; *) echo "NETEM_DELAY is a delay like 10ms, or none, not $NETEM_DELAY" >&2; exit 2 ;; esac
wants() { case " $TOOLS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
PYTHON=${PYTHON:-/usr/bin/python3}

work=$(mktemp -d "${TMPDIR:-/tmp}/slipway-vs-ansible.XXXXXX")
mkdir -p "$work/hosts" "$work/tmp" "$work/logs" "$work/artifacts" "$work/ansible/cp" \
    "$work/ansible/local-tmp" "$work/ansible/remote-tmp" "$work/direct"
results="$work/results.txt"
: >"$results"

# shellcheck source=tests/bench/lib/lab.sh
. tests/bench/lib/lab.sh

cleanup() {
    set +e
    delay_stop
    stop_ansible_masters
    finish_lab
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- build -------------------------------------------------------------------
build_slipway

# --- ansible-core --------------------------------------------------------------
venv=${ANSIBLE_VENV:-$work/venv}
if wants ansible; then
    install_ansible
fi

# --- hosts -----------------------------------------------------------------------
LOG_SESSIONS=1
HOST_RC_FILE=
rc_note="none (a bare shell)"
if [ "$HOST_RC" = realistic ]; then
    HOST_RC_FILE="$work/hosts/bashrc"
    write_realistic_rc "$HOST_RC_FILE"
    read -r rc_cpu rc_wall < <(rc_cost "$HOST_RC_FILE")
    rc_note="realistic: $rc_cpu ms CPU, $rc_wall ms wall per shell (load $(cut -d' ' -f1 /proc/loadavg))"
fi
echo "== host rc: $rc_note"
start_hosts

netem_note=none
if [ "$NETEM_DELAY" != none ]; then
    if [ "$(id -u)" != 0 ] || ! command -v tc >/dev/null; then
        echo "note: no network delay (NETEM_DELAY needs root and tc)" >&2
        netem_note="none (needs root and tc)"
    elif delay_start "$NETEM_DELAY" >"$work/logs/delay.txt"; then
        netem_note=$(cat "$work/logs/delay.txt")
    else
        netem_note="none (could not add it)"
    fi
fi
# One session to host 1 over an open connection, and TCP connects (the delay
# applies to the hosts, not to 127.0.0.1).
probe_ssh() {
    local sock="$work/hosts/probe.sock" host_ip start
    host_ip=$(cut -f 3 "$hosts_tsv" | head -n 1)
    local opts=(-p "$SSH_PORT" -i "$IDENTITY_FILE" -o IdentitiesOnly=yes -o BatchMode=yes
        -o "UserKnownHostsFile=$KNOWN_HOSTS" -o StrictHostKeyChecking=yes -S "$sock")
    start=$(now)
    ssh "${opts[@]}" -M -o ControlPersist=yes -fN "$host_ip"
    local login
    login=$(since "$start")
    start=$(now)
    for _ in 1 2 3 4 5; do ssh "${opts[@]}" "$host_ip" true; done
    local session
    session=$(awk -v a="$(since "$start")" 'BEGIN { printf "%.0f", a / 5 * 1000 }')
    ssh "${opts[@]}" -O exit "$host_ip" 2>/dev/null
    echo "ssh login to host 1 $(awk -v a="$login" 'BEGIN { printf "%.0f", a * 1000 }') ms, one session over it $session ms"
}
echo "== network delay: $netem_note; $(connect_times)"
echo "== $(probe_ssh)"

# --- slipway configuration -----------------------------------------------------------
cfg="$work/slipway"
mkdir -p "$cfg"
write_slipway_config "$cfg" "$BATCH"

# The artifact of each version: the app with a VERSION file, so that the two
# versions differ and both are uploaded. slipway packs the directory itself;
# ansible and direct get the same files as a tarball.
declare -A sha
for version in 1.0.0 2.0.0; do
    echo "$version" >"$cfg/app/VERSION"
    tar -czf "$work/artifacts/app-$version.tar.gz" -C "$cfg/app" .
    sha[$version]=$(sha256sum <"$work/artifacts/app-$version.tar.gz" | cut -c 1-64)
done

slipway_apply() {
    echo "$1" >"$cfg/app/VERSION"
    env TMPDIR="$work/tmp" NO_COLOR=1 "$slipway" apply "$cfg" -auto-approve \
        -var "version=$1" -var "base_port=$base_port" </dev/null
}

# --- ansible configuration -------------------------------------------------------------
write_ansible_config

ansible_deploy() {
    ansible_playbook -e "version=$1" -e "artifact=$work/artifacts/app-$1.tar.gz" \
        -e "artifact_sha256=${sha[$1]}"
}

direct_deploy() {
    tests/bench/ansible/direct.sh "$hosts_tsv" "$ssh_env" "$BATCH" "$1" \
        "$work/artifacts/app-$1.tar.gz" "${sha[$1]}" "$base_port" "$work/direct"
}

# --- machine ------------------------------------------------------------------------------
echo "== machine"
{
    echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
    echo "ssh: $(ssh -V 2>&1)"
    echo "python (hosts and ansible): $("$PYTHON" --version 2>&1)"
    # (--version into a variable first: `| head` would close the pipe early.)
    ansible_version=$("$venv/bin/ansible-playbook" --version 2>/dev/null || echo "(not run)")
    echo "ansible: ${ansible_version%%$'\n'*}"
    echo "slipway: $("$slipway" --version 2>/dev/null) at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes to src/')"
    echo "hosts: $HOSTS, batches of $BATCH, runs: $RUNS, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "host rc: $rc_note"
    echo "network delay: $netem_note; $(connect_times)"
} | tee "$work/machine.txt"

# --- runs ------------------------------------------------------------------------------------
# One timed phase: NAME ("TOOL VERSION RUN") and the command. Besides timed's
# wall and tool CPU, records the load average before it, the CPU of the hosts'
# sshd and sessions and of the whole machine, and marks the sshd logs so that
# count_sessions NAME counts this phase's sessions.
phase() {
    local name=$1 host0 machine0
    shift
    echo "load $name $(cut -d' ' -f1 /proc/loadavg)" >>"$results"
    sessions_mark
    host0=$(hosts_cpu)
    machine0=$(machine_cpu)
    timed "$name" "$@"
    awk -v n="$name" -v a="$(hosts_cpu)" -v b="$host0" -v c="$(machine_cpu)" -v d="$machine0" \
        'BEGIN { printf "hostcpu %s %.2f\nmachinecpu %s %.2f\n", n, a - b, n, c - d }' >>"$results"
}

for run in $(seq "$RUNS"); do
    echo "== run $run"
    if wants slipway; then
        reset_hosts
        for version in 1.0.0 2.0.0; do
            phase "slipway $version $run" slipway_apply "$version"
            check_serving "$version"
            sessions_count "slipway $version $run"
        done
        for version in 1.0.0 2.0.0; do
            # slipway's own clock: from its first event to the last "step N/M
            # done" (the batches), and the whole apply ("Apply complete: ...; Xs.").
            awk -v name="$version $run" '
                match($0, /^\[ *[0-9.]+s\]/) { t = substr($0, 2, RLENGTH - 3) + 0; if (first == "") first = t }
                /step [0-9]+\/[0-9]+ done/ { last = t }
                /^Apply complete/ { a = $NF; gsub(/[^0-9.]/, "", a) }
                END { printf "slipway-batches %s %.3f\nslipway-apply %s %.3f\n", name, last - first, name, a }' \
                "$work/logs/slipway $version $run.log" >>"$results"
        done
    fi

    if wants ansible; then
        reset_hosts
        for version in 1.0.0 2.0.0; do
            phase "ansible $version $run" ansible_deploy "$version"
            stop_ansible_masters
            check_serving "$version"
            sessions_count "ansible $version $run"
        done
    fi

    if wants direct; then
        reset_hosts
        for version in 1.0.0 2.0.0; do
            phase "direct $version $run" direct_deploy "$version"
            check_serving "$version"
            sessions_count "direct $version $run"
        done
    fi
done
reset_hosts

# --- summary -----------------------------------------------------------------------------------
if [ -n "${RESULTS_DIR:-}" ]; then
    mkdir -p "$RESULTS_DIR"
    cp -R "$results" "$work/machine.txt" "$work/logs" "$RESULTS_DIR/"
fi
echo "== summary ($HOSTS hosts, batches of $BATCH; host rc: $rc_note; network delay: $netem_note)"
"$PYTHON" - "$results" "$HOSTS" "$RUNS" <<'PY'
import collections, statistics, sys
tools = ("slipway", "ansible", "direct")
versions = ("1.0.0", "2.0.0")
table = collections.defaultdict(list)   # (what, tool, version) -> values over runs
for line in open(sys.argv[1]):
    words = line.split()
    if words[0] in tools:               # tool version run wall cpu
        table[("wall",) + tuple(words[:2])].append(float(words[3]))
        table[("cpu",) + tuple(words[:2])].append(float(words[4]))
    elif words[0] in ("hostcpu", "machinecpu", "sessions", "connections", "span", "load",
                      "login", "insession", "between"):
        table[(words[0], words[1], words[2])].append(float(words[4]))
    elif words[0] == "slipway-apply":
        table[("wall", "slipway-apply", words[1])].append(float(words[3]))
hosts, runs = int(sys.argv[2]), int(sys.argv[3])
def mean(what, tool, version=None):
    if version is None:
        parts = [mean(what, tool, v) for v in versions]
        return None if None in parts else sum(parts)
    values = table.get((what, tool, version))
    return statistics.mean(values) if values else None
def fmt(value, spec):
    return spec % value if value is not None else "-"
have = [t for t in tools if table.get(("wall", t, versions[0]))]
print("%-8s %-8s %8s %9s %9s %9s %9s %9s %10s %6s" % (
    "tool", "phase", "wall s", "tool cpu", "host cpu", "mach cpu", "sess/host", "conn/host",
    "ovh/host", "load"))
for tool in have:
    for version in versions + (None,):
        phase = {"1.0.0": "fresh", "2.0.0": "upgrade", None: "total"}[version]
        wall = mean("wall", tool, version)
        direct = mean("wall", "direct", version) if "direct" in have else None
        overhead = (wall - direct) / hosts * 1000 if direct is not None else None
        sessions = mean("sessions", tool, version)
        connections = mean("connections", tool, version)
        load = mean("load", tool, version) if version else None
        print("%-8s %-8s %8s %9s %9s %9s %9s %9s %10s %6s" % (
            tool, phase, fmt(wall, "%.2f"), fmt(mean("cpu", tool, version), "%.2f"),
            fmt(mean("hostcpu", tool, version), "%.2f"), fmt(mean("machinecpu", tool, version), "%.2f"),
            fmt(sessions, "%.1f"), fmt(connections, "%.1f"),
            fmt(overhead, "%+.0f ms") if tool != "direct" else "", fmt(load, "%.2f")))
print()
print("wall: mean over %d run(s); tool cpu: the tool and the processes it waited for; host cpu:" % runs)
print("the hosts' sshd and every session (shell, rc file, commands); mach cpu: the whole machine,")
print("other processes included; sess/host, conn/host: from the sshd logs (totals: both phases);")
print("ovh/host: (tool - direct) / hosts; load: 1-minute load average before the phase.")
for version in versions + (None,):
    words = []
    w = {t: mean("wall", t, version) for t in have}
    if "slipway" in w and "direct" in w:
        words.append("slipway / direct = %.2fx" % (w["slipway"] / w["direct"]))
    if "ansible" in w and "slipway" in w:
        words.append("ansible / slipway = %.1fx" % (w["ansible"] / w["slipway"]))
    if "ansible" in w and "direct" in w:
        words.append("ansible / direct = %.1fx" % (w["ansible"] / w["direct"]))
    apply = mean("wall", "slipway-apply", version)
    if apply is not None:
        words.append("slipway's own clock %.2f s" % apply)
    print("%-7s %s" % ({"1.0.0": "fresh", "2.0.0": "upgrade", None: "total"}[version], "; ".join(words)))
print()
print("a host's time, from its sshd log (ms, mean over the hosts): login = TCP connection to key")
print("accepted; in sessions = the sessions' time, summed; between = from a session's end to the")
print("next one's start, summed; span = first login to last session start")
print("%-8s %-8s %8s %12s %9s %8s" % ("tool", "phase", "login", "in sessions", "between", "span"))
for tool in have:
    for version in versions:
        print("%-8s %-8s %8s %12s %9s %8s" % (
            tool, {"1.0.0": "fresh", "2.0.0": "upgrade"}[version],
            *(fmt(mean(what, tool, version), "%.0f") for what in ("login", "insession", "between", "span"))))
PY

#!/usr/bin/env bash
# VM apply, slipway vs ansible-core (BENCHMARKS.md, "VM apply: slipway vs ansible-core").
#
# Starts HOSTS real sshd servers on loopback (127.0.0.11, .12, ..., one port)
# with the test harness (tests/it/sshd, through the ignored test `bench_hosts` in
# tests/it/apply_ssh.rs), then deploys the fixture app of tests/ssh_fixtures as
# 1.0.0 and then 2.0.0 to all of them, in rolling batches of BATCH hosts, three
# ways, each from clean hosts:
#
#   slipway  `slipway apply`, rollout `batches = [BATCH]`
#   ansible  `ansible-playbook tests/bench/ansible/deploy.yml`, `serial: BATCH`, forks = BATCH
#   direct   tests/bench/ansible/direct.sh: the same remote commands run from bash
#            over one multiplexed ssh connection per host, nothing else: the
#            commands' own time
#
# Usage:
#   tests/bench/ansible_vs_slipway.sh                 # 50 hosts, batches of 10, 3 runs
#   HOSTS=10 RUNS=1 tests/bench/ansible_vs_slipway.sh # a quick check
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
wants() { case " $TOOLS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
PYTHON=${PYTHON:-/usr/bin/python3}

work=$(mktemp -d "${TMPDIR:-/tmp}/slipway-vs-ansible.XXXXXX")
mkdir -p "$work/hosts" "$work/tmp" "$work/logs" "$work/artifacts" "$work/ansible/cp" \
    "$work/ansible/local-tmp" "$work/ansible/remote-tmp" "$work/direct"
results="$work/results.txt"
: >"$results"

# shellcheck source=tests/bench/lib/lab.sh
. tests/bench/lib/lab.sh

stop_ansible_masters() {
    local socket
    for socket in "$work/ansible/cp"/*; do
        [ -S "$socket" ] && ssh -o ControlPath="$socket" -O exit localhost 2>/dev/null
    done
    return 0
}

cleanup() {
    set +e
    stop_ansible_masters
    finish_lab
}
trap cleanup EXIT

# --- build -------------------------------------------------------------------
echo "== building slipway (release) and the host harness"
if [ -z "${SLIPWAY_BIN:-}" ]; then
    cargo build --release --locked --bin slipway 2>&1 | tail -n 1
fi
cargo test --locked --test it --no-run 2>&1 | tail -n 1
target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
slipway=${SLIPWAY_BIN:-$target_dir/release/slipway}

# --- ansible-core --------------------------------------------------------------
venv=${ANSIBLE_VENV:-$work/venv}
if wants ansible && [ ! -x "$venv/bin/ansible-playbook" ]; then
    echo "== installing ansible-core into $venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install --quiet ansible-core
fi

# --- hosts -----------------------------------------------------------------------
start_hosts

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
inventory="$work/ansible/inventory.ini"
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

ansible_deploy() {
    env ANSIBLE_CONFIG="$work/ansible/ansible.cfg" \
        ANSIBLE_LOCAL_TEMP="$work/ansible/local-tmp" \
        ANSIBLE_REMOTE_TEMP="$work/ansible/remote-tmp" \
        ANSIBLE_NOCOLOR=1 ANSIBLE_HOME="$work/ansible/home" \
        "$venv/bin/ansible-playbook" -i "$inventory" tests/bench/ansible/deploy.yml \
        -e "version=$1" -e "artifact=$work/artifacts/app-$1.tar.gz" \
        -e "artifact_sha256=${sha[$1]}" -e "base_port=$base_port" -e "batch=$BATCH" \
        </dev/null
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
} | tee "$work/machine.txt"

# --- runs ------------------------------------------------------------------------------------
for run in $(seq "$RUNS"); do
    echo "== run $run"
    if wants slipway; then
        reset_hosts
        timed "slipway 1.0.0 $run" slipway_apply 1.0.0
        check_serving 1.0.0
        timed "slipway 2.0.0 $run" slipway_apply 2.0.0
        check_serving 2.0.0
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
        timed "ansible 1.0.0 $run" ansible_deploy 1.0.0
        stop_ansible_masters
        check_serving 1.0.0
        timed "ansible 2.0.0 $run" ansible_deploy 2.0.0
        stop_ansible_masters
        check_serving 2.0.0
    fi

    if wants direct; then
        reset_hosts
        timed "direct 1.0.0 $run" direct_deploy 1.0.0
        check_serving 1.0.0
        timed "direct 2.0.0 $run" direct_deploy 2.0.0
        check_serving 2.0.0
        for version in 1.0.0 2.0.0; do
            # The batches' own time (the sum of the batch lines) for the overhead.
            awk -v name="batches $version $run" '/^batch / { sum += $3 } END { printf "%s %.3f\n", name, sum }' \
                "$work/logs/direct $version $run.log" >>"$results"
        done
    fi
done
reset_hosts

# --- summary -----------------------------------------------------------------------------------
if [ -n "${RESULTS_DIR:-}" ]; then
    mkdir -p "$RESULTS_DIR"
    cp -R "$results" "$work/machine.txt" "$work/logs" "$RESULTS_DIR/"
fi
echo "== summary (seconds: mean, min-max over $RUNS run(s))"
"$PYTHON" - "$results" "$HOSTS" <<'PY'
import collections, statistics, sys
wall = collections.defaultdict(list)
cpu = collections.defaultdict(list)
for line in open(sys.argv[1]):
    words = line.split()
    wall[(words[0], words[1])].append(float(words[3]))
    if len(words) > 4:
        cpu[(words[0], words[1])].append(float(words[4]))
hosts = int(sys.argv[2])
versions = ("1.0.0", "2.0.0")
def mean(tool, version=None, table=wall):
    if version is None:
        return sum(mean(tool, v, table) for v in versions)
    return statistics.mean(table[(tool, version)])
def show(tool, version, table=wall):
    t = table[(tool, version)]
    spread = " sd %.2f" % statistics.stdev(t) if len(t) > 1 else ""
    return "%7.2f (%.2f-%.2f%s)" % (statistics.mean(t), min(t), max(t), spread)
print("%-16s %-30s %-30s %8s %10s" % ("wall", "1.0.0 (fresh)", "2.0.0 (upgrade)", "total", "cpu total"))
for tool in ("slipway", "ansible", "direct", "batches", "slipway-apply", "slipway-batches"):
    if not wall[(tool, versions[0])]:
        continue
    c = "%10.2f" % mean(tool, table=cpu) if cpu[(tool, versions[0])] else ""
    print("%-16s %-30s %-30s %8.2f %s" % (tool, show(tool, "1.0.0"), show(tool, "2.0.0"), mean(tool), c))
print()
print("direct = the same remote commands from bash (one ssh master per host, in the sessions slipway runs them in);")
print("batches = direct's batches alone; slipway-apply / slipway-batches = slipway's own clock")
print("(apply without config load and plan / its batches alone).")
have = lambda tool: bool(wall[(tool, versions[0])])
for version in versions + (None,):
    words = []
    if have("ansible") and have("slipway"):
        words.append("ansible / slipway = %5.1fx" % (mean("ansible", version) / mean("slipway", version)))
    if have("ansible") and have("direct"):
        words.append("ansible / direct = %4.1fx" % (mean("ansible", version) / mean("direct", version)))
    if have("slipway") and have("batches"):
        s, b = mean("slipway", version), mean("batches", version)
        words.append("slipway overhead per host = (%.2f - %.2f) / %d = %4.0f ms"
                     % (s, b, hosts, (s - b) / hosts * 1000))
    print("%-6s %s" % (version or "total", "; ".join(words)))
PY

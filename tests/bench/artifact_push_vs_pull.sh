#!/usr/bin/env bash
# Artifact delivery, runner push vs host pull, slipway vs ansible-core
# (BENCHMARKS.md, "VM artifact delivery: push vs pull").
#
# Starts HOSTS real sshd servers on loopback (127.0.0.11, .12, ..., one port)
# with the test harness (as tests/bench/ansible_vs_slipway.sh does), serves one
# artifact of SIZE_MB (the fixture app of tests/ssh_fixtures plus that much
# random data, so gzip cannot shrink it) over plain HTTP from 127.0.0.1, and
# installs it on every host from clean hosts, in rolling batches of BATCH, four
# ways:
#
#   slipway push   `slipway apply`, artifact delivery = "push": the runner
#                  sends the archive over SSH to each host
#   slipway pull   delivery = "pull": each host downloads it with curl and
#                  checks its sha256
#   ansible copy   tests/bench/ansible/deploy.yml with the `copy` module (push)
#   ansible get_url  the same playbook with `get_url` and its sha256 checksum (pull)
#
# and, as the physical limit on this machine, the download-and-install of one
# host alone and of BATCH hosts at once (curl, sha256sum, tar over one ssh
# session per host, no tool).
#
# Reported per way: wall time, the bytes the runner sent to the hosts' SSH
# port and the bytes the HTTP server sent (nftables counters on the output
# hook, which loopback traffic passes once), and the wall time per batch
# against one host's own download-and-install. Each way ends with every host
# serving the app (checked over HTTP).
#
# Usage:
#   tests/bench/artifact_push_vs_pull.sh                     # 50 hosts, 250 MB, batches of 10
#   HOSTS=10 SIZE_MB=50 tests/bench/artifact_push_vs_pull.sh # a quick check
#   WAYS="slipway-push slipway-pull" ...                     # only these ways
#   KEEP=1, ANSIBLE_VENV=DIR, RESULTS_DIR=DIR, SLIPWAY_BIN=PATH as in
#   tests/bench/ansible_vs_slipway.sh
#
# Needs root (nftables counters, the harness's hosts), nft, cargo, OpenSSH,
# curl, python3 with venv and pip access for ansible-core. Everything it writes
# goes into one temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

HOSTS=${HOSTS:-50}
BATCH=${BATCH:-10}
SIZE_MB=${SIZE_MB:-250}
WAYS=${WAYS:-slipway-push slipway-pull ansible-copy ansible-get_url}
PYTHON=${PYTHON:-/usr/bin/python3}
wants() { case " $WAYS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
[ "$(id -u)" = 0 ] && command -v nft >/dev/null || {
    echo "needs root and nft (nftables counters count the bytes)" >&2
    exit 2
}

work=$(mktemp -d "${TMPDIR:-/tmp}/slipway-push-pull.XXXXXX")
mkdir -p "$work/hosts" "$work/tmp" "$work/logs" "$work/served" "$work/ansible"
results="$work/results.txt"
: >"$results"

# shellcheck source=tests/bench/lib/lab.sh
. tests/bench/lib/lab.sh

http_pid=
cleanup() {
    set +e
    nft delete table inet slipway_bench 2>/dev/null
    [ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null
    stop_ansible_masters
    finish_lab
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

build_slipway
venv=${ANSIBLE_VENV:-$work/venv}
if wants ansible-copy || wants ansible-get_url; then
    install_ansible
fi

start_hosts
write_ansible_config

# --- the artifact and its server ---------------------------------------------------------
echo "== making a ${SIZE_MB} MB artifact"
app="$work/app"
cp -R tests/ssh_fixtures/app "$app"
echo 1.0.0 >"$app/VERSION"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$app/data.bin"
tar -cf - -C "$app" . | gzip -1 >"$work/served/app.tar.gz"
artifact_sha256=$(sha256sum <"$work/served/app.tar.gz" | cut -c 1-64)
artifact_bytes=$(stat -c %s "$work/served/app.tar.gz")

http_port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PYTHON" -m http.server --bind 127.0.0.1 --directory "$work/served" "$http_port" \
    >"$work/logs/http.log" 2>&1 &
http_pid=$!
url="http://127.0.0.1:$http_port/app.tar.gz"
for _ in $(seq 100); do curl -fsI "$url" >/dev/null 2>&1 && break; sleep 0.1; done

# --- byte counters ---------------------------------------------------------------------------
nft -f - <<EOF
table inet slipway_bench {
  chain out {
    type filter hook output priority 0; policy accept;
    tcp dport $SSH_PORT counter comment "runner to hosts over ssh"
    tcp sport $http_port counter comment "http server to its clients"
  }
}
EOF
# "SSH_BYTES HTTP_BYTES" so far.
counters() {
    nft -j list chain inet slipway_bench out | "$PYTHON" -c '
import json, sys
rules = [e["rule"] for e in json.load(sys.stdin)["nftables"] if "rule" in e]
def count(comment):
    for rule in rules:
        if rule.get("comment") == comment:
            return next(x["counter"]["bytes"] for x in rule["expr"] if "counter" in x)
print(count("runner to hosts over ssh"), count("http server to its clients"))'
}

# --- the ways ----------------------------------------------------------------------------------
cfg="$work/slipway"
mkdir -p "$cfg"
write_slipway_config "$cfg" "$BATCH"
slipway_apply() {
    local delivery=$1
    sed -e "s|source = \"./app\"|source = \"$url\"\n    sha256 = \"$artifact_sha256\"\n    delivery = \"$delivery\"|" \
        tests/ssh_fixtures/main.hcl >"$cfg/main.hcl"
    env TMPDIR="$work/tmp" NO_COLOR=1 "$slipway" apply "$cfg" -auto-approve \
        -var version=1.0.0 -var "base_port=$base_port" </dev/null
}
ansible_fetch() {
    case $1 in
    copy) ansible_playbook -e version=1.0.0 -e "artifact=$work/served/app.tar.gz" \
        -e "artifact_sha256=$artifact_sha256" ;;
    get_url) ansible_playbook -e version=1.0.0 -e "artifact_url=$url" \
        -e "artifact_sha256=$artifact_sha256" ;;
    esac
}
# Download, check and unpack on hosts $1..$2 at once, one ssh session each:
# what a host does for a pull with no tool around it.
direct_pull() {
    local i pids=() ip
    for ((i = $1; i <= $2; i++)); do
        ip=$(awk -F'\t' -v n="$i" '$1 == n { print $3 }' "$hosts_tsv")
        ssh -p "$SSH_PORT" -i "$IDENTITY_FILE" -o IdentitiesOnly=yes -o BatchMode=yes \
            -o "UserKnownHostsFile=$KNOWN_HOSTS" "$ip" "set -e; d=/opt/direct; mkdir -p \$d/r
            curl -fsS -o \$d/a.tar.gz '$url'
            [ \"\$(sha256sum < \$d/a.tar.gz | cut -c 1-64)\" = $artifact_sha256 ]
            tar -xzf \$d/a.tar.gz -C \$d/r" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
}

# Slipway's cache holds the artifact before any timing: the runner's own
# download is the same for every way and is not what is compared.
sed -e "s|source = \"./app\"|source = \"$url\"|" tests/ssh_fixtures/main.hcl >"$cfg/main.hcl"
NO_COLOR=1 "$slipway" plan "$cfg" -var version=1.0.0 -var "base_port=$base_port" \
    >"$work/logs/warm.log" 2>&1 </dev/null || [ $? = 2 ]

measure() {
    local name=$1 ssh0 http0 ssh1 http1
    shift
    reset_hosts
    read -r ssh0 http0 < <(counters)
    timed "$name" "$@"
    read -r ssh1 http1 < <(counters)
    echo "bytes $name $((ssh1 - ssh0)) $((http1 - http0))" >>"$results"
    printf '  %-24s runner sent %8.1f MB over ssh, the server %8.1f MB\n' "$name" \
        "$(awk -v b="$((ssh1 - ssh0))" 'BEGIN { print b / 1e6 }')" \
        "$(awk -v b="$((http1 - http0))" 'BEGIN { print b / 1e6 }')"
}

{
    echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
    echo "ssh: $(ssh -V 2>&1); curl: $(curl --version | head -n 1 | cut -d' ' -f1-2)"
    ansible_version=$("$venv/bin/ansible-playbook" --version 2>/dev/null || echo "(not run)")
    echo "ansible: ${ansible_version%%$'\n'*}"
    echo "slipway: $("$slipway" --version 2>/dev/null) at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "hosts: $HOSTS, batches of $BATCH, artifact $artifact_bytes bytes"
} | tee "$work/machine.txt"

echo "== one host alone, then $BATCH at once (download, sha256, unpack)"
measure "direct-1" direct_pull 0 0
measure "direct-$BATCH" direct_pull 0 "$((BATCH - 1))"
for way in $WAYS; do
    echo "== $way"
    case $way in
    slipway-push) measure "$way" slipway_apply push ;;
    slipway-pull) measure "$way" slipway_apply pull ;;
    ansible-copy) measure "$way" ansible_fetch copy ;;
    ansible-get_url) measure "$way" ansible_fetch get_url ;;
    *) echo "unknown way $way" >&2; exit 2 ;;
    esac
    stop_ansible_masters
    check_serving 1.0.0
done
reset_hosts

if [ -n "${RESULTS_DIR:-}" ]; then
    mkdir -p "$RESULTS_DIR"
    cp -R "$results" "$work/machine.txt" "$work/logs" "$RESULTS_DIR/"
fi
echo "== summary ($HOSTS hosts, batches of $BATCH, $artifact_bytes bytes)"
"$PYTHON" - "$results" "$HOSTS" "$BATCH" <<'PY'
import sys
wall, sent = {}, {}
for line in open(sys.argv[1]):
    words = line.split()
    if words[0] == "bytes":
        sent[words[1]] = (int(words[2]), int(words[3]))
    else:
        wall[words[0]] = float(words[1])
hosts, batch = int(sys.argv[2]), int(sys.argv[3])
batches = -(-hosts // batch)
alone = wall.get("direct-1")
print("%-16s %8s %10s %12s %12s %14s" % ("way", "wall s", "per batch", "runner MB", "server MB", "batch / alone"))
for name in wall:
    per_batch = wall[name] if name.startswith("direct") else wall[name] / batches
    ssh, http = sent[name]
    print("%-16s %8.1f %10.1f %12.1f %12.1f %14s" % (
        name, wall[name], per_batch, ssh / 1e6, http / 1e6,
        "%.2f" % (per_batch / alone) if alone else "-"))
PY

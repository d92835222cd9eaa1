#!/usr/bin/env bash
# The baseline of tests/bench/ansible_vs_slipway.sh, the physical limit: the
# remote commands of a slipway host update (src/vm/steps.rs), run directly from
# bash in the fewest ssh sessions the steps allow, with nothing around them.
# Each host gets one multiplexed ssh connection (ssh -M) and at most three
# sessions:
#
#   1. the connection check (user, tools) and the artifact status;
#   2. the upload, only when the artifact is absent;
#   3. sha256 check (after an upload), unpack into releases/VERSION, stop,
#      config file, config snapshot, switch `current`, start, the health check
#      with its retries (3, 0.5 s apart, as in main.hcl) on the host, release
#      marker and prune.
#
# No root probe: the host roots come from hosts.tsv. The hosts of a batch run
# in parallel, the batches one after another.
#
# Usage: direct.sh HOSTS_TSV SSH_ENV BATCH VERSION ARTIFACT SHA256 BASE_PORT SOCKET_DIR
# Prints, on stdout, one line per batch: "batch N SECONDS", then "total SECONDS".
set -euo pipefail

hosts_tsv=$1 ssh_env=$2 batch=$3 version=$4 artifact=$5 sha=$6 base_port=$7 sockets=$8
# shellcheck disable=SC1090
. "$ssh_env"   # SSH_PORT, IDENTITY_FILE, KNOWN_HOSTS
user=$(id -un)
mkdir -p "$sockets"
size=$(wc -c <"$artifact")

ssh_opts=(-p "$SSH_PORT" -i "$IDENTITY_FILE" -o IdentitiesOnly=yes -o BatchMode=yes
    -o "UserKnownHostsFile=$KNOWN_HOSTS" -o StrictHostKeyChecking=yes -l "$user")

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }

# One host's update. $1 index, $2 address (IP:PORT), $3 IP, $4 host root.
update_host() {
    local index=$1 address=$2 ip=$3 root=$4
    local sock="$sockets/$index" dir="$4/opt/app"
    local art="$dir/.slipway/artifacts/$sha.tar.gz"
    run() { ssh "${ssh_opts[@]}" -S "$sock" "$ip" "$1"; }

    ssh "${ssh_opts[@]}" -M -S "$sock" -o ControlPersist=yes -fN "$ip"
    # 1. Connection check and artifact status.
    local status verify=
    status=$(run "set -eu; id -un >/dev/null
         for t in tar gzip sha256sum readlink cmp; do
         command -v \$t >/dev/null || { echo \"\$t is not installed\" >&2; exit 1; }; done
         if [ -f $art ] && [ \"\$(sha256sum < $art | cut -c 1-64)\" = $sha ]; then echo present; else echo absent; fi")
    # 2. Upload, when absent.
    if [ "$status" = absent ]; then
        run "set -e; mkdir -p $dir/.slipway/artifacts; cat > $art.partial; [ \$(wc -c < $art.partial) -eq $size ]; mv -f $art.partial $art" <"$artifact"
        verify="(set -eu; [ \"\$(sha256sum < $art | cut -c 1-64)\" = $sha ]) || exit 1;"
    fi
    # 3. Install, stop, config file, config snapshot, switch `current`, start,
    # health check (4 attempts), release marker, prune.
    run "$verify
         (set -eu; r=$dir/releases; [ -f \$r/$version/.slipway-complete ] && exit 0; rm -rf \$r/.tmp-$version;
         mkdir -p \$r/.tmp-$version; tar -xzf $art --no-same-owner -C \$r/.tmp-$version;
         touch \$r/.tmp-$version/.slipway-complete; rm -rf \$r/$version; mv \$r/.tmp-$version \$r/$version) || exit 1
         (set -eu; if [ -e $dir/current ]; then cd $dir && sh current/bin/stop.sh; fi) || exit 1
         (set -eu; mkdir -p $dir/config; t=$dir/config/.app.env.tmp; (umask 077; : > \$t);
         printf '%s\n' 'BASE_PORT=$base_port' \"GREETING='Hello over SSH'\" \"VERSION='$version'\" > \$t;
         chmod 0644 \$t; mv -f \$t $dir/config/app.env) || exit 1
         (set -eu; s=$dir/.slipway/config/$version; rm -rf \$s.tmp; mkdir -p \$s.tmp;
         cp -p $dir/config/app.env \$s.tmp/1; echo $dir/config/app.env > \$s.tmp/manifest; rm -rf \$s; mv \$s.tmp \$s) || exit 1
         (set -eu; cd $dir; printf '%s\n%s\n' \"\$(readlink current || true)\" direct > .slipway/previous;
         ln -sfn releases/$version current.tmp; mv -T current.tmp current) || exit 1
         (cd $dir && SLIPWAY_HOST=$address SLIPWAY_HOST_INDEX=$index SLIPWAY_VERSION=$version sh current/bin/start.sh config/app.env) || exit 1
         (cd $dir; a=0; until sh current/bin/check.sh; do a=\$((a + 1)); [ \$a -le 3 ] || exit 1; sleep 0.5; done) || exit 1
         (set -eu; printf '%s\n' '{\"version\":\"$version\",\"sha256\":\"$sha\"}' > $dir/.slipway/release.json.tmp;
         mv -f $dir/.slipway/release.json.tmp $dir/.slipway/release.json) || exit 1
         (set -eu; cd $dir/releases; ls -t | tail -n +4 | while read -r n; do
         [ \"\$(readlink ../current)\" = releases/\$n ] || rm -rf \"\$n\"; done) || exit 1" >/dev/null
    ssh "${ssh_opts[@]}" -S "$sock" -O exit "$ip" 2>/dev/null
}

mapfile -t lines <"$hosts_tsv"
total_start=$(now)
n=0
for ((first = 0; first < ${#lines[@]}; first += batch)); do
    n=$((n + 1))
    start=$(now)
    pids=()
    for line in "${lines[@]:first:batch}"; do
        IFS=$'\t' read -r index address ip _port root <<<"$line"
        update_host "$index" "$address" "$ip" "$root" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid"
    done
    echo "batch $n $(since "$start")"
done
echo "total $(since "$total_start")"

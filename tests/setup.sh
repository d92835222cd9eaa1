#!/usr/bin/env bash
# Installs the real components the integration tests start (tests/it): OpenSSH
# for the sshd hosts, Prometheus for the metric gates, moto for the AWS tests,
# an OCI registry and skopeo for image artifacts.
# Idempotent: installs only what is missing. Needs root (apt-get, pip).
# .ci/run calls it; run it once on a new machine before `cargo test`. Without
# these components the tests that need them fail, naming what to install
# (SLIPWAY_TEST_ALLOW_SKIP=1 lets them skip instead).
set -euo pipefail

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# OpenSSH: real sshd servers on loopback (tests/it/sshd).
command -v /usr/sbin/sshd >/dev/null || apt_install openssh-server openssh-client
mkdir -p /run/sshd

# Prometheus (tests/it/prometheus): the harness starts its own servers on
# loopback; the packages' system services are not used.
[ -x /usr/bin/prometheus ] || apt_install prometheus prometheus-pushgateway

# iproute2 (ip): test hosts with a network namespace of their own, reached over
# veth pairs (tests/it/sshd, HostOptions::own_network).
command -v ip >/dev/null || apt_install iproute2

# unshare (util-linux): every test host's sshd runs in a mount namespace of its
# own, with its own /opt (tests/it/sshd).
command -v unshare >/dev/null || apt_install util-linux

# curl: a health check's url is fetched on the host (here, every test host is
# this machine), with curl.
command -v curl >/dev/null || apt_install curl

# openssl makes the private certificate authority of the TLS tests.
command -v openssl >/dev/null || apt_install openssl

# An OCI registry (the CNCF distribution registry) and skopeo to push images
# into it (tests/it/registry): no container daemon, nothing leaves loopback.
{ command -v docker-registry >/dev/null && command -v skopeo >/dev/null; } \
  || apt_install docker-registry skopeo

# moto (tests/it/moto): a moto server on loopback, its ECS model patched by
# tests/it/moto/launcher.py, which is written against this exact version.
MOTO_VERSION=5.2.6
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  apt_install python3 python3-pip
fi
if ! python3 -c "import sys, moto, moto.server; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  # A Debian system Python refuses plain `pip install` (PEP 668); test machines are throwaway.
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "moto[server]==$MOTO_VERSION"
fi
python3 -c "import moto, moto.server; print('moto', moto.__version__)"

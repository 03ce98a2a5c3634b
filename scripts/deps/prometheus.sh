#!/bin/sh
# Installs Debian's Prometheus (2.42 on bookworm) for tests/poller_prometheus.rs.
# Does nothing when a `prometheus` binary is already on PATH.
set -eu
if command -v prometheus >/dev/null 2>&1; then
    prometheus --version 2>&1 | head -n 1
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
prometheus --version 2>&1 | head -n 1

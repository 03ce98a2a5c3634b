#!/usr/bin/env bash
# Installs cargo-deny (licence, ban and source checks of the dependency tree) if missing.
# From source on crates.io: about 5 minutes on 2 cores (see BENCHMARKS.md).
set -euo pipefail
if cargo deny --version >/dev/null 2>&1; then
  exit 0
fi
cargo install --locked cargo-deny

#!/usr/bin/env bash
# Installs cargo-fuzz (drives the libFuzzer targets under fuzz/, see scripts/fuzz.sh) at a pinned
# version. Idempotent: does nothing when that version is already on PATH, or when fuzzing is
# switched off (FUZZ_SECONDS=0). From source on crates.io: about 30 s on 2 cores (BENCHMARKS.md).
set -euo pipefail
VERSION=0.13.2
if [ "${FUZZ_SECONDS:-}" = "0" ]; then
  echo "cargo-fuzz not needed (FUZZ_SECONDS=0)"
  exit 0
fi
if [ "$(cargo fuzz --version 2>/dev/null)" = "cargo-fuzz $VERSION" ]; then
  echo "cargo-fuzz $VERSION present"
  exit 0
fi
cargo install --locked --version "$VERSION" cargo-fuzz

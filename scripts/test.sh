#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (scripts/deps/*.sh),
# then format check, lints, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

for dep in scripts/deps/*.sh; do
  [ -e "$dep" ] || continue
  echo "== $dep"
  bash "$dep"
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo deny (licences, bans, sources; advisories need GitHub, see deny.toml)"
cargo deny check licenses bans sources
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one per test binary, the last of which may
# be an example with no tests).
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"

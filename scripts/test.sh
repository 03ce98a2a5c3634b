#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (scripts/deps/*.sh),
# then format check, lints, every test, and a short bounded run of every fuzz target
# (scripts/fuzz.sh, FUZZ_SECONDS per target, default 15; FUZZ_SECONDS=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_SECONDS=${FUZZ_SECONDS:-15}

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
echo "== fuzz, ${FUZZ_SECONDS} s per target"
# Each fuzz target counts as one test: fuzz.sh closes with "fuzz result: N passed; N failed".
fuzz_status=0
bash scripts/fuzz.sh "$FUZZ_SECONDS" 2>&1 | tee -a "$log" || fuzz_status=$?
if [ "$fuzz_status" -ne 0 ]; then
  grep -q '^fuzz result:' "$log" || echo "fuzz result: 0 passed; 1 failed" | tee -a "$log"
  echo "!! fuzzing failed (scripts/fuzz.sh exit $fuzz_status)"
  [ "$status" -ne 0 ] || status=$fuzz_status
fi
# One closing line for the whole suite (cargo prints one per test binary, the last of which may
# be an example with no tests; the fuzz targets come after).
awk '/^test result:/ { p += $4; f += $6 } /^fuzz result:/ { p += $3; f += $5 }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"

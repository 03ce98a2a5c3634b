#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: scripts/fuzz.sh [seconds-per-target, default 60].
# scripts/test.sh calls it with $FUZZ_SECONDS (default 15) after the cargo tests; 0 skips.
#
# Uses cargo-fuzz (installed by scripts/deps/cargo-fuzz.sh if missing) on the stable toolchain
# with RUSTC_BOOTSTRAP=1, since libFuzzer's instrumentation needs unstable compiler flags. The
# targets exercise safe Rust, so no sanitizer by default (it halves the build);
# FUZZ_SANITIZER=address brings AddressSanitizer back. Each target starts from a corpus seeded
# with the real Mist webhook samples. A crash fails the script and leaves its input under
# fuzz/artifacts/<target>/ (printed in base64 too when small); turn it into a regression test
# by copying it into tests/fuzz_regressions/ (tests/fuzz_regressions.rs replays every file there).
# Full libFuzzer and build output goes to fuzz/*.log; the console gets one line per target and
# a closing "fuzz result: N passed; N failed" line that scripts/test.sh adds to its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SANITIZER=${FUZZ_SANITIZER:-none}
SAMPLES=${MIST_SAMPLES_DIR:-../shared/mist-samples}
export RUSTC_BOOTSTRAP=1

if ! [[ "$SECS" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [seconds-per-target]" >&2
  exit 2
fi
if [ "$SECS" -eq 0 ]; then
  # libFuzzer reads -max_total_time=0 as "no limit".
  echo "fuzzing skipped (0 s per target)"
  exit 0
fi

FUZZ_SECONDS=$SECS bash scripts/deps/cargo-fuzz.sh

# Both `build` and `run` get the same flags, or `run` would rebuild with other ones.
flags=(-O --sanitizer "$SANITIZER")

# The fuzz crate is its own workspace: start from the main lock file so it builds the same
# versions as the server (cargo only adds libfuzzer-sys and its few dependencies).
cp Cargo.lock fuzz/Cargo.lock
echo "== cargo fuzz build ${flags[*]} (output in fuzz/build.log)"
start=$SECONDS
if ! cargo fuzz build "${flags[@]}" >fuzz/build.log 2>&1; then
  tail -n 30 fuzz/build.log
  echo "!! fuzz targets do not build"
  echo "fuzz result: 0 passed; 1 failed"
  exit 1
fi
echo "built in $((SECONDS - start)) s"

targets=$(cargo fuzz list)
passed=0
failed=0
for target in $targets; do
  corpus="fuzz/corpus/$target"
  log="fuzz/$target.log"
  mkdir -p "$corpus"
  # Seeds: every webhook sample and every past crash (both small).
  find "$SAMPLES/webhooks" -name '*.json' -exec cp -n {} "$corpus/" \; 2>/dev/null || true
  cp -n tests/fuzz_regressions/* "$corpus/" 2>/dev/null || true
  rc=0
  cargo fuzz run "${flags[@]}" "$target" "$corpus" -- \
    -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  units=$(sed -n 's/^stat::new_units_added: *//p' "$log")
  if [ "$rc" -eq 0 ] && ! grep -q "Test unit written" "$log"; then
    echo "fuzz $target: ok, ${SECS} s, ${runs:-?} runs, ${units:-?} new corpus units"
    passed=$((passed + 1))
    continue
  fi
  failed=$((failed + 1))
  echo "!! fuzz $target FAILED (exit $rc); full output in $log:"
  {
    grep -E -A1 "panicked at" "$log" | head -n 4
    grep -E "^==[0-9]+== ?ERROR|^SUMMARY|Test unit written" "$log" | head -n 6
  } | sed 's/^/   /' || true
  # The input itself, so a crash found on a CI machine can be replayed elsewhere.
  for unit in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
    if [ -f "$unit" ] && [ "$(wc -c <"$unit")" -le 4096 ]; then
      echo "   base64 of $(basename "$unit"): $(base64 -w0 "$unit")"
    fi
  done
  echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $target <input>"
done
echo "fuzz result: $passed passed; $failed failed (${SECS} s per target, sanitizer $SANITIZER)"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: scripts/fuzz.sh [seconds-per-target, default 60].
#
# Uses cargo-fuzz (installed if missing) on the stable toolchain with RUSTC_BOOTSTRAP=1, since
# libFuzzer's instrumentation and sanitizers need unstable compiler flags. Each target starts
# from a corpus seeded with the real Mist webhook samples. A crash leaves its input under
# fuzz/artifacts/<target>/; turn it into a regression test by copying it into
# tests/fuzz_regressions/ (tests/fuzz_regressions.rs replays every file there).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
SAMPLES=${MIST_SAMPLES_DIR:-../shared/mist-samples}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

# The fuzz crate is its own workspace: start from the main lock file so it builds the same
# versions as the server (cargo only adds libfuzzer-sys and its few dependencies).
cp Cargo.lock fuzz/Cargo.lock
cargo fuzz build -O
status=0
for target in $(cargo fuzz list); do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  # Seeds: every webhook sample and every past crash (both small).
  find "$SAMPLES/webhooks" -name '*.json' -exec cp -n {} "$corpus/" \; 2>/dev/null || true
  cp -n tests/fuzz_regressions/* "$corpus/" 2>/dev/null || true
  echo "== fuzz $target for ${SECS}s"
  if ! cargo fuzz run -O "$target" "$corpus" -- \
      -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      2>&1 | tee "fuzz/$target.log" | grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+==|SUMMARY|Test unit written)"; then
    :
  fi
  if grep -q "Test unit written" "fuzz/$target.log"; then
    echo "!! $target found a crash: see fuzz/artifacts/$target/"
    status=1
  fi
done
exit $status

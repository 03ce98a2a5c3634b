#!/usr/bin/env bash
# Installs rotel (a Rust OpenTelemetry collector) from its PyPI wheel and prints the path of the
# bundled `rotel-agent` executable. The end-to-end test tests/e2e_rotel.rs runs that agent on
# loopback ports. Honours ROTEL_AGENT if already set to an executable.
set -euo pipefail
if [[ -n "${ROTEL_AGENT:-}" && -x "${ROTEL_AGENT}" ]]; then
  echo "${ROTEL_AGENT}"
  exit 0
fi
PY="${PYTHON:-python3}"
"$PY" -m pip install --quiet --disable-pip-version-check rotel >&2
# The wheel ships the agent as package data; ask Python where the package lives and search it.
agent="$("$PY" - <<'PY'
import importlib.util, os, sys
spec = importlib.util.find_spec("rotel")
roots = []
if spec and spec.submodule_search_locations:
    roots += list(spec.submodule_search_locations)
for root in roots:
    for dirpath, _, files in os.walk(root):
        if "rotel-agent" in files:
            print(os.path.join(dirpath, "rotel-agent")); sys.exit(0)
sys.exit(1)
PY
)" || { echo "rotel-agent not found inside the rotel wheel" >&2; exit 1; }
chmod +x "$agent" 2>/dev/null || true
"$agent" --help >/dev/null
echo "$agent"

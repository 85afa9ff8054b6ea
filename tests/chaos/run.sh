#!/usr/bin/env bash
# The chaos run: bash tests/chaos/run.sh --minutes N --seed S [--rate LOGS_PER_SEC] [--json FILE]
# Builds (if needed) the debug shipper and the splunk-hec plugin, then hands over to chaos.py
# (tests/chaos/README.md). Needs root, `ip` and the test venv of .ci/run (target/test-venv).
# SHIPPER_BIN and SHIPPER_PLUGIN point it at other builds.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
[ "$(id -u)" = 0 ] || { echo "the chaos run needs root (network namespace, tmpfs)" >&2; exit 2; }
command -v ip >/dev/null || { echo "ip is missing: apt-get install -y iproute2" >&2; exit 2; }
python=target/test-venv/bin/python
[ -x "$python" ] || { echo "no test venv: run .ci/run, or python3 -m venv target/test-venv && target/test-venv/bin/pip install -r tests/requirements.txt" >&2; exit 2; }
shipper=${SHIPPER_BIN:-$target/debug/shipper}
plugin=${SHIPPER_PLUGIN:-$target/wasm-artifacts/wasm32-wasip2/release/shipper_plugin_splunk_hec.wasm}
if [ -z "${SHIPPER_BIN:-}" ]; then cargo build -q -p shipper; fi
if [ ! -f "$plugin" ]; then
  cargo build -q --release --target wasm32-wasip2 -p shipper-plugin-splunk-hec \
    --target-dir "$target/wasm-artifacts"
fi
exec "$python" tests/chaos/chaos.py --shipper "$shipper" --plugin "$plugin" "$@"

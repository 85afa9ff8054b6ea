#!/usr/bin/env bash
# The benchmark from a fresh checkout: builds everything it runs in release mode
# (the shipper binary, the splunk-hec and syslog-kv plugins for wasm32-wasip2, the bench
# itself), makes the Python venv with the official SLS SDK if it is missing, and runs
# shipper-bench with the given arguments.
#
#   bash tests/bench/run.sh                 # full run (≈ 10 min): tables + target/shipper-bench/summary.json
#   bash tests/bench/run.sh --smoke         # seconds: proves the harness works
#   bash tests/bench/run.sh --help          # every option (sizes, subjects, parts, rates)
#
# Needs: cargo (rustup for the wasm target), nasm + autotools (tests/support/build-deps.sh installs them), python3 with venv, openssl (test certificates);
# taskset (util-linux) to pin the subject to CPU 1 and the rig to CPU 0.
set -euo pipefail
cd "$(dirname "$0")/../.."

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
bash tests/support/build-deps.sh
cargo build --release --bin shipper
cargo build --release --target wasm32-wasip2 -p shipper-plugin-splunk-hec -p shipper-plugin-syslog-kv
cargo build --release -p shipper-bench

python="${SHIPPER_TEST_PYTHON:-target/test-venv/bin/python}"
if [ ! -x "$python" ]; then
    echo "creating the Python venv with the official SLS SDK (target/test-venv)" >&2
    python3 -m venv target/test-venv
    target/test-venv/bin/pip install -q -r tests/requirements.txt
    python=target/test-venv/bin/python
fi
command -v taskset >/dev/null || echo "taskset not found (apt-get install util-linux): running unpinned" >&2

exec target/release/shipper-bench --python "$python" "$@"

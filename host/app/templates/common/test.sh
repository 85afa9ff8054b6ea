#!/usr/bin/env bash
# Tests the plugin: builds {{name}}.wasm, runs it through shipper's production runtime on
# samples/input.jsonl with samples/config.json and compares what the sink would send with
# samples/golden.txt (a diff and exit status 1 when they differ). After an intended change
# of the output:
#
#   ./test.sh --update        (rewrites samples/golden.txt; review the change before keeping it)
#
# SHIPPER=/path/to/shipper overrides the `shipper` on PATH.
set -euo pipefail
cd "$(dirname "$0")"
shipper=${SHIPPER:-shipper}
command -v "$shipper" >/dev/null || {
  echo "{{name}}: \`$shipper\` was not found: put shipper on PATH or set SHIPPER=/path/to/shipper" >&2
  exit 3
}
{{unit_tests}}./build.sh {{name}}.wasm
"$shipper" --log-level warn plugin test --plugin {{name}}.wasm --input samples/input.jsonl \
  --config samples/config.json --expect samples/golden.txt "$@"

#!/usr/bin/env bash
# Builds the plugin into a WebAssembly component: ./build.sh [OUT.wasm]  (default {{name}}.wasm)
#
# Toolchain: componentize-py 0.25.1 (PyPI): $COMPONENTIZE_PY, else .venv/bin/componentize-py,
# else the one on PATH. Exit status 3 with the install command when it is missing.
set -euo pipefail
out=${1:-{{name}}.wasm}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")"
want=0.25.1

missing() {
  echo "{{name}}: $1. Install it with:" >&2
  echo "    python3 -m venv .venv && .venv/bin/pip install componentize-py==$want" >&2
  echo "(or set COMPONENTIZE_PY to a componentize-py $want)" >&2
  exit 3
}
cpy=${COMPONENTIZE_PY:-}
if [ -z "$cpy" ]; then
  if [ -x .venv/bin/componentize-py ]; then cpy=.venv/bin/componentize-py; else cpy=$(command -v componentize-py || true); fi
fi
[ -n "$cpy" ] && [ -x "$cpy" ] || missing "componentize-py was not found"
have=$("$cpy" --version 2>/dev/null | awk '{print $2}')
[ "$have" = "$want" ] || missing "componentize-py at $cpy is version '${have:-?}', this plugin is built with $want"

# The plugin module (app) comes from src/, the SDK module (shipper_sdk) from sdk/; the
# bindings are generated from wit/ inside componentize-py. Only src/ and sdk/ go into the
# component (never .venv).
"$cpy" -d wit -w formatter componentize app -p src -p sdk -o "$out" >/dev/null
rm -rf src/__pycache__ sdk/__pycache__

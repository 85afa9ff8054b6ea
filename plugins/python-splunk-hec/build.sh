#!/usr/bin/env bash
# Builds the Python splunk-hec plugin (app.py here, the SDK from sdk/python) into a component:
# build.sh OUT.wasm
#
# Toolchain: componentize-py 0.25.1 (PyPI), from the project's test venv (tests/requirements.txt)
# or $COMPONENTIZE_PY. Exit status 3 with the install command when it is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: build.sh OUT.wasm}
want=0.25.1
cpy=${COMPONENTIZE_PY:-$root/target/test-venv/bin/componentize-py}

missing() {
  echo "python-splunk-hec: $1. Install it with:" >&2
  echo "    python3 -m venv target/test-venv && target/test-venv/bin/pip install -r tests/requirements.txt" >&2
  echo "(or set COMPONENTIZE_PY to a componentize-py $want)" >&2
  exit 3
}
[ -x "$cpy" ] || missing "componentize-py not found at $cpy"
have=$("$cpy" --version 2>/dev/null | awk '{print $2}')
[ "$have" = "$want" ] || missing "componentize-py at $cpy is version '${have:-?}', this plugin is built with $want"

# The app module comes from here, the SDK module (shipper_sdk) from sdk/python. Bindings are
# generated from wit/ inside componentize-py; nothing is written to either directory except
# __pycache__, which is removed.
"$cpy" -d "$root/wit" -w formatter componentize app -p "$here" -p "$root/sdk/python" \
  -o "$out" >/dev/null
rm -rf "$here/__pycache__" "$root/sdk/python/__pycache__"

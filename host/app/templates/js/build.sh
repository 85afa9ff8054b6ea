#!/usr/bin/env bash
# Builds the plugin into a WebAssembly component: ./build.sh [OUT.wasm]  (default {{name}}.wasm)
#
# Toolchain: Node.js >= 20 and componentize-js 0.23.0 from ./node_modules (package.json and
# package-lock.json pin it; `npm ci` installs it). Exit status 3 with the install command when
# something is missing.
set -euo pipefail
out=${1:-{{name}}.wasm}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")"
want=0.23.0

missing() {
  echo "{{name}}: $1. Install it with:" >&2
  echo "    $2" >&2
  exit 3
}
command -v node >/dev/null || missing "node is not installed" "apt-get install nodejs npm"
cjs=node_modules/.bin/componentize-js
[ -x "$cjs" ] || missing "componentize-js is not installed in node_modules" "npm ci"
have=$(node -p "require('./node_modules/@bytecodealliance/componentize-js/package.json').version")
[ "$have" = "$want" ] || missing "componentize-js is version $have, this plugin is built with $want" "npm ci"

# componentize-js lets the engine read only below the working directory (the entry lies below
# it), so src/plugin.js can import ../sdk/*.js from here. `http` and `fetch-event` are
# disabled: shipper's sandbox refuses wasi:http imports. No --aot: it downloads a binary at
# build time.
"$cjs" src/plugin.js --wit wit --world-name formatter --disable http fetch-event -o "$out" >/dev/null

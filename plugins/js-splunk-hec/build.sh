#!/usr/bin/env bash
# Builds the JavaScript splunk-hec plugin (plugin.js here, the SDK from sdk/js) into a
# component: build.sh OUT.wasm
#
# Toolchain: node + componentize-js 0.23.0 from this directory's node_modules
# (package.json / package-lock.json; `npm ci` installs it). No AOT: componentize-js's
# --aot (weval) downloads a binary at build time, which offline builds cannot do.
# Exit status 3 with the install command when something is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: build.sh OUT.wasm}
want=0.23.0

missing() {
  echo "js-splunk-hec: $1. Install it with:" >&2
  echo "    $2" >&2
  exit 3
}
command -v node >/dev/null || missing "node is not installed" "apt-get install nodejs npm"
cjs=$here/node_modules/.bin/componentize-js
[ -x "$cjs" ] || missing "componentize-js is not installed in $here/node_modules" "npm ci --prefix plugins/js-splunk-hec"
have=$(node -p "require('$here/node_modules/@bytecodealliance/componentize-js/package.json').version")
[ "$have" = "$want" ] || missing "componentize-js is version $have, this plugin is built with $want" "npm ci --prefix plugins/js-splunk-hec"

# plugin.js imports the SDK as ../../sdk/js/*.js. componentize-js gives the engine only the
# entry's directory, or the working directory when the entry lies below it: run from the
# repository root so that sdk/js is inside.
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$root"
# `http` and `fetch-event` are disabled: shipper's sandbox refuses wasi:http imports.
"$cjs" "${here#"$root"/}/plugin.js" --wit wit --world-name formatter --disable http fetch-event -o "$out" >/dev/null

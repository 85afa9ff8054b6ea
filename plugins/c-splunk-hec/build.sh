#!/usr/bin/env bash
# Builds the C splunk-hec plugin (plugin.c here, the SDK from sdk/c) into a component:
# build.sh OUT.wasm
#
# The build is the C project template's, host/app/templates/c/build.sh (what
# `shipper plugin new --lang c` writes), run on a copy of this plugin laid out like such a
# project: src/plugin.c, sdk/ (sdk/c), wit/, adapter/, and node_modules for `jco new` (the
# JavaScript plugin's). That script lists the toolchain and checks it.
#
# The WASI preview1 reactor adapter of wasmtime 48.0.8 comes from $SHIPPER_PREVIEW1_ADAPTER
# (crate wasi-preview1-component-adapter-provider 48.0.8; tests/artifacts writes it to
# target/lang-plugins/wasi_snapshot_preview1.reactor.wasm).
# Exit status 3 with the install command when something is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: build.sh OUT.wasm}
case $out in /*) ;; *) out=$PWD/$out ;; esac

missing() {
  echo "c-splunk-hec: $1. Install it with:" >&2
  echo "    $2" >&2
  exit 3
}
modules=$root/plugins/js-splunk-hec/node_modules
[ -x "$modules/.bin/jco" ] || missing "jco (for \`jco new\`) is not installed in plugins/js-splunk-hec/node_modules" "npm ci --prefix plugins/js-splunk-hec"
adapter=${SHIPPER_PREVIEW1_ADAPTER:-$root/target/lang-plugins/wasi_snapshot_preview1.reactor.wasm}
[ -f "$adapter" ] || missing "the WASI preview1 reactor adapter is not at $adapter" \
  "cargo build -p shipper-test-artifacts   (writes it), or set SHIPPER_PREVIEW1_ADAPTER"

project=$(mktemp -d)
trap 'rm -rf "$project"' EXIT
mkdir -p "$project/src" "$project/sdk" "$project/wit" "$project/adapter"
cp "$here/plugin.c" "$project/src/"
cp "$root/sdk/c/shipper_sdk.c" "$root/sdk/c/shipper_sdk.h" "$project/sdk/"
cp "$root/wit/shipper.wit" "$project/wit/"
cp "$adapter" "$project/adapter/wasi_snapshot_preview1.reactor.wasm"
ln -s "$modules" "$project/node_modules"
sed 's/{{name}}/c-splunk-hec/g' "$root/host/app/templates/c/build.sh" >"$project/build.sh"
bash "$project/build.sh" "$out"

#!/usr/bin/env bash
# Builds the plugin into a WebAssembly component: ./build.sh [OUT.wasm]  (default {{name}}.wasm)
#
# Toolchain: Rust >= 1.95 with the wasm32-wasip2 target (it emits components directly).
# Exit status 3 with the install command when something is missing.
set -euo pipefail
out=${1:-{{name}}.wasm}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")"

missing() {
  echo "{{name}}: $1. Install it with:" >&2
  echo "    $2" >&2
  exit 3
}
command -v cargo >/dev/null || missing "cargo is not installed" "curl --proto '=https' -sSf https://sh.rustup.rs | sh"
if command -v rustup >/dev/null; then
  rustup target list --installed | grep -qx wasm32-wasip2 ||
    missing "the Rust target wasm32-wasip2 is not installed" "rustup target add wasm32-wasip2"
fi

cargo build --quiet --release --target wasm32-wasip2
crate={{name}}
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/${crate//-/_}.wasm" "$out"

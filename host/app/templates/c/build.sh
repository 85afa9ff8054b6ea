#!/usr/bin/env bash
# Builds the plugin into a WebAssembly component: ./build.sh [OUT.wasm]  (default {{name}}.wasm)
#
# Toolchain (Debian 12 + registries):
#   clang 14, lld 14, wasi-libc, libclang-rt-14-dev-wasm32   (apt)
#   wit-bindgen-cli 0.61.1 (C bindings)                      (cargo install)
#   jco 1.35.0 `new` (core module + adapter -> component)   (npm ci: package-lock.json)
# The WASI preview1 reactor adapter (adapter/, wasmtime 48.0.8's: it must match the wasmtime
# in shipper) was written out by `shipper plugin new`.
# Exit status 3 with the install command when something is missing.
set -euo pipefail
out=${1:-{{name}}.wasm}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")"
cc=${CC_WASM:-clang-14}
want_wbg=0.61.1

missing() {
  echo "{{name}}: $1. Install it with:" >&2
  echo "    $2" >&2
  exit 3
}
command -v "$cc" >/dev/null || missing "$cc is not installed" "apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32"
command -v wasm-ld-14 >/dev/null || command -v wasm-ld >/dev/null || missing "wasm-ld is not installed" "apt-get install lld-14"
[ -f /usr/include/wasm32-wasi/stdio.h ] || missing "wasi-libc is not installed" "apt-get install wasi-libc"
ls /usr/lib/llvm-14/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 ||
  missing "the wasm32 compiler-rt builtins are not installed" "apt-get install libclang-rt-14-dev-wasm32"
have=$(wit-bindgen --version 2>/dev/null | awk '{print $2}')
[ "$have" = "$want_wbg" ] ||
  missing "wit-bindgen $want_wbg is not installed (found '${have:-none}')" \
    "cargo install --locked --version $want_wbg wit-bindgen-cli --no-default-features --features c"
jco=node_modules/.bin/jco
[ -x "$jco" ] || missing "jco (for \`jco new\`) is not installed in node_modules" "npm ci"
adapter=adapter/wasi_snapshot_preview1.reactor.wasm

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wit-bindgen c wit --world formatter --out-dir "$work/gen" >"$work/wit-bindgen.log" 2>&1 ||
  { cat "$work/wit-bindgen.log" >&2; exit 1; }
"$cc" --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
  -I"$work/gen" -Isdk -o "$work/core.wasm" \
  src/*.c sdk/shipper_sdk.c "$work/gen/formatter.c" "$work/gen/formatter_component_type.o"
"$jco" new "$work/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out" >/dev/null

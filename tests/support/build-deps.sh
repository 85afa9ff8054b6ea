#!/usr/bin/env bash
# Build tools that `cargo build` of shipper needs beyond Rust: Intel ISA-L (HEC gzip level 1,
# shipper-sinks feature `isal`) is C + assembly that isal-sys builds from its vendored source
# with autotools and nasm. Installs the missing Debian packages (as root, or through sudo), or
# names them and fails when apt is not there.
set -euo pipefail
need=()
command -v nasm >/dev/null || need+=(nasm)
command -v autoreconf >/dev/null || need+=(autoconf)
command -v automake >/dev/null || need+=(automake)
command -v libtoolize >/dev/null || need+=(libtool)
command -v make >/dev/null || need+=(make)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "missing build tools for ISA-L (HEC gzip): install ${need[*]} with your package manager" >&2
  exit 1
fi
echo "installing build tools for ISA-L (HEC gzip): ${need[*]}" >&2
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null

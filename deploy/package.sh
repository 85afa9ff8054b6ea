#!/usr/bin/env bash
# Builds shipper's Debian and RPM packages from the release build:
#
#   bash deploy/package.sh [--no-build | --binary PATH]
#                                            → target/packages/shipper_VERSION_ARCH.deb
#                                              target/packages/shipper-VERSION-1.ARCH.rpm
#
# Both hold the same files: the release binary (the documented build: default features,
# ISA-L gzip), the bundled plugins (release wasm) under /usr/lib/shipper/plugins, the service
# config /etc/shipper/shipper.toml (a conffile), an empty /etc/shipper/credentials (0700),
# the hardened systemd unit, and the docs. They are built with dpkg-deb and rpmbuild, the
# distributions' own tools, from one staged tree; --no-build packages what target/ holds.
# --binary PATH packages that shipper binary instead of building the release one (the plugins
# are still built, or reused): CI packages the debug build its tests just made, which checks
# every step of the packaging without a second full build of wasmtime; a package to install
# comes from the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
binary=target/release/shipper
case "${1:-}" in
  "") ;;
  --no-build) build=0 ;;
  --binary)
    [ -x "${2:-}" ] || { echo "--binary needs the path of a built shipper binary (got '${2:-}')" >&2; exit 2; }
    binary=$2 build=plugins ;;
  *) echo "usage: bash deploy/package.sh [--no-build | --binary PATH]" >&2; exit 2 ;;
esac

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "cannot read the version from Cargo.toml" >&2; exit 1; }
plugins=(splunk-hec syslog-kv cef leef json)
wasm_dir=target/wasm-artifacts/wasm32-wasip2/release

if [ "$build" != 0 ]; then
  rustup target add wasm32-wasip2 >/dev/null
  if [ "$build" = 1 ]; then
    bash tests/support/build-deps.sh
    cargo build --release --locked --bin shipper
  fi
  # The tests' wasm build directory (tests/artifacts), so a CI run reuses its plugins.
  args=()
  for p in "${plugins[@]}"; do args+=(-p "shipper-plugin-$p"); done
  CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release --locked --target wasm32-wasip2 \
    --target-dir target/wasm-artifacts "${args[@]}"
fi

for tool in dpkg-deb rpmbuild; do
  command -v "$tool" >/dev/null || {
    echo "$tool is missing: apt-get install dpkg-dev rpm (Debian) or dnf install dpkg rpm-build" >&2
    exit 3
  }
done

out=$PWD/target/packages
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$out" "$root/usr/bin" "$root/usr/lib/shipper/plugins" "$root/etc/shipper/credentials" \
  "$root/usr/lib/systemd/system" "$root/usr/share/doc/shipper"
install -m 0755 "$binary" "$root/usr/bin/shipper"
for p in "${plugins[@]}"; do
  install -m 0644 "$wasm_dir/shipper_plugin_${p//-/_}.wasm" "$root/usr/lib/shipper/plugins/$p.wasm"
done
install -m 0640 deploy/shipper.toml "$root/etc/shipper/shipper.toml"
chmod 0700 "$root/etc/shipper/credentials"
install -m 0644 deploy/systemd/shipper.service "$root/usr/lib/systemd/system/shipper.service"
install -m 0644 README.md docs/configuration.md docs/architecture.md "$root/usr/share/doc/shipper/"
install -m 0644 examples/shipper.toml "$root/usr/share/doc/shipper/shipper.toml.example"

summary="Ships Alibaba Cloud SLS logs into on-premises SIEMs"
description="shipper joins an SLS consumer group, formats each log with a sandboxed WebAssembly
plugin and delivers it to Splunk HEC or syslog (UDP, TCP, TLS), at least once."

# --- Debian
deb_arch=$(dpkg --print-architecture)
debroot=$stage/deb
cp -a "$root" "$debroot"
mkdir -p "$debroot/DEBIAN"
cat >"$debroot/DEBIAN/control" <<EOF
Package: shipper
Version: $version
Architecture: $deb_arch
Maintainer: shipper developers <shipper@example.invalid>
Depends: libc6 (>= 2.34), libgcc-s1
Section: admin
Priority: optional
Homepage: https://example.invalid/shipper
Description: $summary
$(echo "$description" | sed 's/^/ /')
EOF
echo /etc/shipper/shipper.toml >"$debroot/DEBIAN/conffiles"
cat >"$debroot/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
chmod 0700 /etc/shipper/credentials
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
EOF
cat >"$debroot/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl stop shipper.service || true; fi
EOF
cat >"$debroot/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  # The service's state and cache (DynamicUser keeps them under /var/lib/private and
  # /var/cache/private), and the credentials an operator put in place.
  rm -rf /var/lib/shipper /var/lib/private/shipper /var/cache/shipper /var/cache/private/shipper \
    /etc/shipper/credentials
  rmdir /etc/shipper 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
EOF
chmod 0755 "$debroot/DEBIAN/postinst" "$debroot/DEBIAN/prerm" "$debroot/DEBIAN/postrm"
deb=$out/shipper_${version}_${deb_arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$debroot" "$deb" >/dev/null

# --- RPM (rpmbuild packages the staged tree as it is: no %build, no compiler)
rpm_arch=$(uname -m)
top=$stage/rpmbuild
mkdir -p "$top/SPECS" "$top/RPMS"
cat >"$top/SPECS/shipper.spec" <<EOF
Name: shipper
Version: $version
Release: 1
Summary: $summary
License: Apache-2.0
URL: https://example.invalid/shipper
BuildArch: $rpm_arch
AutoReqProv: no
Requires: glibc >= 2.34

%description
$description

%install
cp -a $root/. %{buildroot}/

%files
%attr(0755,root,root) /usr/bin/shipper
/usr/lib/shipper/plugins
%config(noreplace) %attr(0640,root,root) /etc/shipper/shipper.toml
%dir %attr(0700,root,root) /etc/shipper/credentials
/usr/lib/systemd/system/shipper.service
%doc /usr/share/doc/shipper

%post
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
EOF
rpmbuild -bb --quiet --define "_topdir $top" --define "_build_id_links none" \
  "$top/SPECS/shipper.spec" >/dev/null
rpm=$out/shipper-$version-1.$rpm_arch.rpm
cp "$top/RPMS/$rpm_arch/shipper-$version-1.$rpm_arch.rpm" "$rpm"

echo "$deb"
echo "$rpm"

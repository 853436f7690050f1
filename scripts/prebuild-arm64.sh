#!/usr/bin/env bash
# Cross-compiles the addon for linux-arm64 (ARM servers are common Node
# hosts) with Debian's aarch64 toolchain, into prebuilds/linux-arm64. Built
# in a scratch copy: node-gyp rebuilds build/ in place, and build/ here holds
# the x64 addon everything else loads.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ aarch64-linux-gnu-strip; do
  command -v "$tool" >/dev/null || { echo "prebuild-arm64: $tool is missing (Debian: gcc-aarch64-linux-gnu g++-aarch64-linux-gnu binutils-aarch64-linux-gnu)" >&2; exit 1; }
done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$root/binding.gyp" "$root/native" "$scratch/"
printf '{"name":"baton","version":"0.0.0","private":true}\n' >"$scratch/package.json"
(cd "$scratch" && CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip \
  "$root/node_modules/.bin/prebuildify" --napi --strip --name baton --arch arm64 >/dev/null)
mkdir -p "$root/prebuilds/linux-arm64"
cp "$scratch/prebuilds/linux-arm64/baton.node" "$root/prebuilds/linux-arm64/baton.node"

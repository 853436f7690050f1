#!/usr/bin/env bash
# Fetches Server::Starter 0.35's upstream test files (t/) from Debian's source
# archive into .cache/p5-Server-Starter. They are never committed.
# The archive serves the .orig.tar.gz but not the .debian.tar.xz, so
# `apt-get source` exits non-zero even when the tarball we need has arrived:
# success is judged by the tarball, not by the exit code.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/p5-Server-Starter"
[ -f "$dest/t/01-starter.t" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/dl"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" >"$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; exit 1; }
(cd "$work/dl" && apt-get "${apt_opts[@]}" source --download-only libserver-starter-perl >"$work/source.log" 2>&1) || true
tarball=$(ls "$work"/dl/libserver-starter-perl_*.orig.tar.gz 2>/dev/null | head -n1)
if [ -z "$tarball" ]; then
  cat "$work/source.log" >&2
  echo "fetch-upstream-tests: libserver-starter-perl's .orig.tar.gz did not arrive" >&2
  exit 1
fi
mkdir -p "$dest"
tar -xzf "$tarball" -C "$dest" --strip-components=1
echo "fetch-upstream-tests: $(basename "$tarball") unpacked into $dest" >&2

#!/usr/bin/env bash
# Runs a command on a slower machine: one busy loop per core, at the same
# priority as everything else, for as long as the command runs. The suite
# must hold on a machine several times slower than the one it was written on.
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: scripts/slow-cpu.sh COMMAND [ARG...]" >&2; exit 2; }
loops=()
for _ in $(seq "$(nproc)"); do
  sh -c 'while :; do :; done' &
  loops+=($!)
done
trap 'kill "${loops[@]}" 2>/dev/null' EXIT
"$@"

#!/usr/bin/env bash
# Removes everything setup.sh made: containers, the API service, the store.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${CTR_HOME:=$root/.cache/containers}"
[ -f "$CTR_HOME/env.sh" ] || exit 0
# shellcheck source=/dev/null
source "$CTR_HOME/env.sh"
podman rm -af -t 0 >/dev/null 2>&1
if [ -f "$CTR_HOME/podman-service.pid" ]; then
  kill "$(cat "$CTR_HOME/podman-service.pid")" 2>/dev/null
fi
podman system reset -f >/dev/null 2>&1
# overlay mounts may outlive the reset
grep -o "$CTR_HOME/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
rm -rf "$CTR_HOME"

#!/usr/bin/env bash
# Removes everything docker-setup.sh made: swarm, containers, dockerd (stopped
# by its pid), its state, and the network namespace (with dockerd's
# iptables rules, which lived only there).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${DKR_HOME:=$root/.cache/docker-engine}"
[ -f "$DKR_HOME/env.sh" ] || exit 0
# shellcheck source=/dev/null
source "$DKR_HOME/env.sh"
"$DOCKER_CLI" swarm leave --force >/dev/null 2>&1
"$DOCKER_CLI" rm -f $("$DOCKER_CLI" ps -aq 2>/dev/null) >/dev/null 2>&1
if [ -f "$DKR_HOME/dockerd.pid" ]; then
  pid=$(cat "$DKR_HOME/dockerd.pid")
  kill "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
fi
pkill -f "containerd --config $DKR_HOME" 2>/dev/null
grep -o "$DKR_HOME/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
ip netns del "$DKR_NS" 2>/dev/null
# the host end of DKR_HOST_LINK goes with its peer; this is for a namespace already gone
ip link del batondkr0 2>/dev/null
rm -rf "$DKR_HOME"

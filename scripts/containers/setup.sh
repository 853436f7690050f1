#!/usr/bin/env bash
# Sets up rootful podman (runc, cgroupfs) with all state under CTR_HOME, serves
# its Docker-compatible API so the stock docker CLI works, and builds the
# local image IMAGE from a root filesystem holding Node 24 and the packed
# baton package (no registry is reachable). Prints nothing on success but the
# env file to source. Quirks of these VMs (shared/notes/containers.md):
# root lacks CAP_SYS_RESOURCE, so default ulimits must be explicit; crun
# fails on the hybrid cgroup layout, so runc; one config for every call.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${CTR_HOME:=$root/.cache/containers}"
: "${IMAGE:=localhost/baton:ci}"
export CTR_HOME IMAGE

need=()
for pkg in podman runc catatonit; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-cache show podman >/dev/null 2>&1 || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${need[@]}" >/dev/null
fi

[ -f "$CTR_HOME/env.sh" ] && bash "$root/scripts/containers/teardown.sh"
mkdir -p "$CTR_HOME"/{etc,tmp}

nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] && nproc=4194304
pidmax=$(cat /proc/sys/kernel/pid_max); [ "$nproc" -gt "$pidmax" ] && nproc=$pidmax
cat >"$CTR_HOME/etc/containers.conf" <<CONF
[containers]
netns = "host"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$CTR_HOME/tmp"
CONF
cat >"$CTR_HOME/etc/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$CTR_HOME/storage"
runroot = "$CTR_HOME/run"
CONF
cat >"$CTR_HOME/env.sh" <<ENV
export CTR_HOME="$CTR_HOME"
export CONTAINERS_CONF="$CTR_HOME/etc/containers.conf"
export CONTAINERS_STORAGE_CONF="$CTR_HOME/etc/storage.conf"
export DOCKER_HOST="unix://$CTR_HOME/podman.sock"
export IMAGE="$IMAGE"
ENV
# shellcheck source=/dev/null
source "$CTR_HOME/env.sh"

# Root filesystem: Node 24 and the packed package in /app (rootfs.sh)
rootfs="$CTR_HOME/rootfs"
bash "$root/scripts/containers/rootfs.sh" "$rootfs"

tar -C "$rootfs" -cf - . | podman import -q \
  --change 'WORKDIR /app' \
  --change 'ENTRYPOINT ["/usr/bin/node", "/app/node_modules/baton-deploy/dist/cli/baton.js"]' \
  - "$IMAGE" >/dev/null

rm -f "$CTR_HOME/podman.sock"
setsid podman system service --time=0 "unix://$CTR_HOME/podman.sock" </dev/null >"$CTR_HOME/podman-service.log" 2>&1 &
echo $! >"$CTR_HOME/podman-service.pid"
for _ in $(seq 100); do [ -S "$CTR_HOME/podman.sock" ] && break; sleep 0.05; done
[ -S "$CTR_HOME/podman.sock" ] || { echo "podman API socket did not appear" >&2; exit 1; }

out=$(podman run --rm --net=host "$IMAGE" doctor 2>&1) || { echo "$out" >&2; exit 1; }
echo "$CTR_HOME/env.sh"

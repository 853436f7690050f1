#!/usr/bin/env bash
# Starts Docker Engine (Debian's docker.io, dockerd) for the tests, in a
# network namespace of its own so that the host's firewall is never touched
# (dockerd rewrites iptables): namespace DKR_NS with its loopback and a veth
# at 10.231.0.2, dockerd entered into it with nsenter (ip netns exec
# remounts /sys, and dockerd then finds no devices cgroup), all its state
# under DKR_HOME. Imports the test images (no registry is reachable):
#   IMAGE   Node 24 and the packed package (rootfs.sh), ENTRYPOINT baton
#   PYIMAGE busybox and Python 3 with the LISTEN_FDS test server (a server
#           that is not Node, behind baton reuseport-exec)
#   NGINXIMAGE nginx, for swarm's front
# Prints the env file to source: DOCKER_HOST, DOCKER_CLI, DKR_NS, images,
# DKR_HOST_ADDR (the namespace's address from the host, with DKR_HOST_LINK=1).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${DKR_HOME:=$root/.cache/docker-engine}"
: "${DKR_NS:=baton-dkr}"
: "${IMAGE:=localhost/baton:ci}"
PYIMAGE=localhost/baton-python:ci
NGINXIMAGE=localhost/baton-nginx:ci
# Debian's client: another docker CLI may come first on PATH
DOCKER_CLI=/usr/bin/docker

for bin in /usr/sbin/dockerd "$DOCKER_CLI" nsenter ip; do
  command -v "$bin" >/dev/null || { echo "missing $bin (Debian: docker.io containerd runc iproute2 util-linux)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (a network namespace, dockerd)" >&2; exit 1; }

[ -f "$DKR_HOME/env.sh" ] && bash "$root/scripts/engines/docker-teardown.sh"
mkdir -p "$DKR_HOME"
ip netns add "$DKR_NS"
ip -n "$DKR_NS" link set lo up
ip -n "$DKR_NS" link add adv0 type veth peer name adv1
ip -n "$DKR_NS" addr add 10.231.0.2/24 dev adv0
ip -n "$DKR_NS" link set adv0 up
ip -n "$DKR_NS" link set adv1 up
# DKR_HOST_LINK=1: also a link from the host (10.231.9.1) to the namespace
# (10.231.9.2), for a client that must stay on the host (bench/drill)
host_addr=
if [ "${DKR_HOST_LINK:-}" = 1 ]; then
  ip link add batondkr0 type veth peer name batondkr1 netns "$DKR_NS"
  ip addr add 10.231.9.1/30 dev batondkr0
  ip link set batondkr0 up
  ip -n "$DKR_NS" addr add 10.231.9.2/30 dev batondkr1
  ip -n "$DKR_NS" link set batondkr1 up
  host_addr=10.231.9.2
fi
setsid nsenter --net="/var/run/netns/$DKR_NS" /usr/sbin/dockerd --data-root "$DKR_HOME/data" --exec-root "$DKR_HOME/exec" \
  -H "unix://$DKR_HOME/docker.sock" --pidfile "$DKR_HOME/dockerd.pid" --storage-driver overlay2 \
  </dev/null >"$DKR_HOME/dockerd.log" 2>&1 &
cat >"$DKR_HOME/env.sh" <<ENV
export DKR_HOME="$DKR_HOME"
export DKR_NS="$DKR_NS"
export DOCKER_HOST="unix://$DKR_HOME/docker.sock"
export DOCKER_CLI="$DOCKER_CLI"
export IMAGE="$IMAGE"
export PYIMAGE="$PYIMAGE"
export NGINXIMAGE="$NGINXIMAGE"
export DKR_HOST_ADDR="$host_addr"
ENV
# shellcheck source=/dev/null
source "$DKR_HOME/env.sh"
for _ in $(seq 120); do "$DOCKER_CLI" version >/dev/null 2>&1 && break; sleep 0.25; done
"$DOCKER_CLI" version >/dev/null 2>&1 || { tail -5 "$DKR_HOME/dockerd.log" >&2; exit 1; }

rootfs="$DKR_HOME/rootfs"
CTR_HOME=$DKR_HOME bash "$root/scripts/containers/rootfs.sh" "$rootfs"
tar -C "$rootfs" -cf - . | "$DOCKER_CLI" import --change 'WORKDIR /app' \
  --change 'ENTRYPOINT ["/usr/bin/node", "/app/node_modules/baton-deploy/dist/cli/baton.js"]' - "$IMAGE" >/dev/null

# busybox (a shell for health checks and wget) beside Node, for swarm's replicas
cp /bin/busybox "$rootfs/usr/bin/busybox"
for applet in sh wget; do ln -sf busybox "$rootfs/usr/bin/$applet"; done
tar -C "$rootfs" -cf - . | "$DOCKER_CLI" import --change 'WORKDIR /app' \
  --change 'ENTRYPOINT ["/usr/bin/node", "/app/node_modules/baton-deploy/dist/cli/baton.js"]' - "$IMAGE-sh" >/dev/null

# Python 3 and busybox, the test's LISTEN_FDS server in /app
py="$DKR_HOME/rootfs-python"
rm -rf "$py"
mkdir -p "$py"/{usr/bin,usr/lib,etc,proc,sys,dev,tmp,run,app}
chmod 1777 "$py/tmp"
ln -s usr/lib "$py/lib"; ln -s usr/lib "$py/lib64"; ln -s usr/bin "$py/bin"
cp /bin/busybox "$py/usr/bin/busybox"
for applet in sh wget; do ln -sf busybox "$py/usr/bin/$applet"; done
pybin=$(readlink -f /usr/bin/python3)
cp "$pybin" "$py/usr/bin/python3"
pylib=$(dirname "$(/usr/bin/python3 -c 'import os; print(os.__file__)')")
for f in "$pybin" "$pylib"/lib-dynload/*.so; do
  for lib in $(ldd "$f" | grep -o '/[^ ]*'); do mkdir -p "$py$(dirname "$lib")"; cp -Ln "$lib" "$py$lib"; done
done
(cd / && tar -cf - --exclude=test --exclude=tests --exclude=idlelib --exclude=tkinter --exclude=ensurepip \
  --exclude=dist-packages --exclude=site-packages --exclude=__pycache__ "${pylib#/}") | tar -C "$py" -xf -
cp "$root/test/fixtures/listen-fds-server.py" "$py/app/server.py"
cp -r "$rootfs/app/node_modules" "$py/app/" 2>/dev/null || true
cp "$rootfs/usr/bin/node" "$py/usr/bin/node"
for lib in $(ldd "$rootfs/usr/bin/node" | grep -o '/[^ ]*'); do mkdir -p "$py$(dirname "$lib")"; cp -Ln "$lib" "$py$lib"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$py/etc/passwd"
printf 'hosts: files dns\n' >"$py/etc/nsswitch.conf"
tar -C "$py" -cf - . | "$DOCKER_CLI" import --change 'WORKDIR /app' --change 'ENV PYTHONUNBUFFERED=1' \
  --change 'ENTRYPOINT ["/usr/bin/node", "/app/node_modules/baton-deploy/dist/cli/baton.js"]' - "$PYIMAGE" >/dev/null

# nginx, from the host's package, for swarm's front
nx="$DKR_HOME/rootfs-nginx"
rm -rf "$nx"
mkdir -p "$nx"/{usr/sbin,usr/lib,etc/nginx,var/log/nginx,var/lib/nginx,tmp,run,dev,proc,sys}
chmod 1777 "$nx/tmp"
ln -s usr/lib "$nx/lib"; ln -s usr/lib "$nx/lib64"
cp /usr/sbin/nginx "$nx/usr/sbin/nginx"
for lib in $(ldd /usr/sbin/nginx | grep -o '/[^ ]*'); do mkdir -p "$nx$(dirname "$lib")"; cp -Ln "$lib" "$nx$lib"; done
for lib in /lib/x86_64-linux-gnu/libnss_dns.so.2 /lib/x86_64-linux-gnu/libresolv.so.2; do [ -e "$lib" ] && cp -Ln "$lib" "$nx/usr/lib/x86_64-linux-gnu/"; done
cp /etc/nginx/mime.types "$nx/etc/nginx/"
printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\nnobody:x:65534:65534::/:/bin/false\n' >"$nx/etc/passwd"
printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' >"$nx/etc/group"
tar -C "$nx" -cf - . | "$DOCKER_CLI" import --change 'ENTRYPOINT ["/usr/sbin/nginx", "-g", "daemon off;"]' - "$NGINXIMAGE" >/dev/null
echo "$DKR_HOME/env.sh"

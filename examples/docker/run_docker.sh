#!/bin/sh
# One generation of the app: a container on the host network that binds the
# port itself with SO_REUSEPORT. Run it under baton start, which starts a new
# generation on each deploy, waits until the new container says it is ready,
# and then sends TERM to the old one:
#
#   baton start --pid-file=/run/myapp.pid -- ./run_docker.sh
#   baton deploy --pid-file=/run/myapp.pid   # pull/build first; exit 0 = deployed
#
# Readiness comes from inside the container: the supervisor's notify socket
# is mounted at the same path and the container gets NOTIFY_SOCKET and this
# generation's BATON_READY_TOKEN (baton serve sends READY=1 with it). Under
# start_server without --ready-notify there is no NOTIFY_SOCKET, and a
# generation counts as ready after --interval.
#
# The old container's baton serve stops taking new connections, waits until
# the new container listens on the port, empties its accept queues, finishes
# its requests and exits: no request fails. `exec` keeps the pid start_server
# signals, and docker run forwards TERM into the container.
set -eu
if [ -n "${NOTIFY_SOCKET:-}" ]; then
  dir=$(dirname "$NOTIFY_SOCKET")
  set -- -v "$dir:$dir" -e NOTIFY_SOCKET -e BATON_READY_TOKEN
fi
exec docker run --rm --net=host "$@" --name "myapp-$(date +%s%N)" \
  "${IMAGE:-myapp:latest}" --host=0.0.0.0 --port="${PORT:-8080}"

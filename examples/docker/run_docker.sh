#!/bin/sh
# One generation of the app: a container on the host network that binds the
# port itself with SO_REUSEPORT. Run it under start_server, which starts a new
# generation on `kill -HUP` and then sends TERM to the old one:
#
#   start_server --pid-file=/run/myapp.pid -- ./run_docker.sh
#   kill -HUP "$(cat /run/myapp.pid)"      # deploy: pull/build first, then HUP
#
# The old container's baton serve stops taking new connections, waits until
# the new container listens on the port, empties its accept queues, finishes
# its requests and exits: no request fails. `exec` keeps the pid start_server
# signals, and docker run forwards TERM into the container.
set -eu
exec docker run --rm --net=host --name "myapp-$(date +%s%N)" \
  "${IMAGE:-myapp:latest}" --host=0.0.0.0 --port="${PORT:-8080}"

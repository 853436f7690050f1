#!/bin/sh
# The same recipe as run_docker.sh for a server that is not a baton serve
# app (here Starlet; gunicorn, a Go binary, anything that takes an inherited
# socket): baton reuseport-exec binds the SO_REUSEPORT socket, hands it to
# the server as fd 3 (SERVER_STARTER_PORT, and LISTEN_FDS when the image has
# /bin/sh), and on TERM hands the port over before passing TERM on.
#
#   baton start --pid-file=/run/myapp.pid -- ./run_docker_any.sh
#   baton deploy --pid-file=/run/myapp.pid
#
# reuseport-exec reports READY=1 once it holds the port (see run_docker.sh
# for the notify socket).
#
# The image needs Node >= 22.12 and `npm install baton` next to the server.
set -eu
if [ -n "${NOTIFY_SOCKET:-}" ]; then
  dir=$(dirname "$NOTIFY_SOCKET")
  set -- -v "$dir:$dir" -e NOTIFY_SOCKET -e BATON_READY_TOKEN
fi
exec docker run --rm --net=host "$@" --name "myapp-$(date +%s%N)" \
  --entrypoint node "${IMAGE:-myapp:latest}" \
  node_modules/baton-deploy/dist/cli/baton.js reuseport-exec --port="${PORT:-8080}" -- \
  plackup -s Starlet --max-workers=4 app.psgi

#!/usr/bin/env bash
# Runs Server::Starter 0.35's 13 behaviour test files against the start_server
# command in START_SERVER_BIN (default: this repository's, on the Node running
# this script's parent). Usage: test/upstream/run.sh [t/NN-name.t ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bash "$root/scripts/fetch-upstream-tests.sh"
: "${START_SERVER_BIN:=$(command -v node) $root/src/cli/start_server.ts}"
export START_SERVER_BIN
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  tests=(t/01-starter.t t/02-startfail.t t/03-starter-unix.t t/04-starter-dir.t t/05-killolddelay.t
         t/06-autorestart.t t/07-envdir.t t/10-bindaddr.t t/11-specified-fd.t t/12-stop.t
         t/13-unix-daemonize.t t/14-without-port.t t/15-udp.t)
fi
cd "$root/.cache/p5-Server-Starter"
PERL5OPT="-I$here/lib -MSSPortRange -MSSExternal" exec prove "${tests[@]}"

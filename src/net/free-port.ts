// A TCP port on 127.0.0.1 that was free a moment ago (for drills, benches
// and tests that start a server on "some" port). Picked below the kernel's
// ephemeral range: a port from that range (what binding port 0 gives) can
// at any moment be the local port of a load client's outgoing connection,
// and then a server that binds it again (each new generation, with
// SO_REUSEPORT) fails with EADDRINUSE.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const FIRST = 20_000;

function ephemeralStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
}

function tryListen(port: number): Promise<boolean> {
  const srv = createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  const last = Math.max(FIRST + 1000, Math.min(ephemeralStart(), 30_000)) - 1;
  for (let i = 0; i < 200; i++) {
    const port = FIRST + Math.floor(Math.random() * (last - FIRST + 1));
    if (await tryListen(port)) return port;
  }
  throw new Error(`no free port between ${FIRST} and ${last} on 127.0.0.1`);
}

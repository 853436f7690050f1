// Where a server's listening socket comes from, in this order:
// 1. SERVER_STARTER_PORT (start_server / Server::Starter): every TCP or UNIX
//    stream entry; UDP entries are skipped with a warning;
// 2. systemd socket activation (LISTEN_FDS, for this pid);
// 3. its own bind (host/port or path).
// A Node server re-listens on an inherited fd with listen({fd}, backlog): the
// positional backlog keeps the shared socket's queue length (the object form
// resets it to 511 for every process sharing it).
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { native, SO_TYPE, SOCK_STREAM, SOL_SOCKET } from '../net/native.ts';
import { parseServerStarterPort } from '../net/server-starter-port.ts';

export interface InheritedSocket {
  fd: number;
  /** SERVER_STARTER_PORT key, or the systemd fd name. */
  name: string;
  source: 'server-starter' | 'systemd';
}

export function systemBacklog(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim()) || 4096;
  } catch {
    return 4096;
  }
}

/** The listening sockets this process inherited, in their given order. */
export function inheritedSockets(env: NodeJS.ProcessEnv = process.env, warn = (m: string) => process.emitWarning(m)): InheritedSocket[] {
  const ssp = env.SERVER_STARTER_PORT;
  if (ssp !== undefined && ssp !== '') {
    return parseServerStarterPort(ssp).flatMap(({ key, fd }) => {
      if (native.getsockoptInt(fd, SOL_SOCKET, SO_TYPE) !== SOCK_STREAM) {
        warn(`skipping SERVER_STARTER_PORT entry ${key}=${fd}: not a stream socket (UDP)`);
        return [];
      }
      return [{ fd, name: key, source: 'server-starter' as const }];
    });
  }
  if (env.LISTEN_FDS !== undefined && Number(env.LISTEN_PID) === process.pid) {
    const count = Number(env.LISTEN_FDS);
    const names = (env.LISTEN_FDNAMES ?? '').split(':');
    return Array.from({ length: count }, (_, i) => ({ fd: 3 + i, name: names[i] || `fd${3 + i}`, source: 'systemd' as const }));
  }
  return [];
}

export interface ListenOptions {
  host?: string;
  port?: number;
  path?: string;
  backlog?: number;
  reusePort?: boolean;
}

/**
 * Makes `server` listen on the inherited socket if there is one (the first),
 * else binds as told. Resolves to a description of what it listens on.
 */
export async function listen(server: Server, options: ListenOptions = {}): Promise<string> {
  const backlog = options.backlog ?? systemBacklog();
  const [inherited] = inheritedSockets();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const ok = () => {
      server.off('error', reject);
      resolve();
    };
    if (inherited) server.listen({ fd: inherited.fd }, backlog, ok);
    else if (options.path !== undefined) server.listen({ path: options.path, backlog }, ok);
    else server.listen({ host: options.host ?? '0.0.0.0', port: options.port ?? 0, backlog, reusePort: options.reusePort ?? false }, ok);
  });
  if (inherited) return `${inherited.source} ${inherited.name} (fd ${inherited.fd})`;
  const addr = server.address();
  return typeof addr === 'string' ? addr : `${addr?.address}:${addr?.port}`;
}

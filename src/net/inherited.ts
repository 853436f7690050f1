// The listening sockets a process was handed: by start_server (or
// Server::Starter) in SERVER_STARTER_PORT, else by systemd (LISTEN_FDS, for
// this pid). A value that names something other than an open socket is a
// clear error, never a stack trace; UDP entries are skipped with a warning.
import { readFileSync } from 'node:fs';
import { BatonError } from '../errors.ts';
import { native, SO_TYPE, SOCK_STREAM, SOL_SOCKET } from './native.ts';
import { parseServerStarterPort } from './server-starter-port.ts';

export interface InheritedSocket {
  fd: number;
  /** SERVER_STARTER_PORT key, or the systemd fd name. */
  name: string;
  source: 'server-starter' | 'systemd';
}

/** More than this many LISTEN_FDS is not a real socket-activation setup. */
const MAX_LISTEN_FDS = 1024;

/** The default listen backlog: the kernel's cap (net.core.somaxconn). */
export function systemBacklog(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim()) || 4096;
  } catch {
    return 4096;
  }
}

/** The socket type of `fd` (SOCK_STREAM...), or undefined when it is not an open socket. */
function socketType(fd: number): number | undefined {
  try {
    return native.getsockoptInt(fd, SOL_SOCKET, SO_TYPE);
  } catch {
    return undefined;
  }
}

/** The listening sockets this process inherited, in their given order. */
export function inheritedSockets(env: NodeJS.ProcessEnv = process.env, warn = (m: string) => process.emitWarning(m)): InheritedSocket[] {
  const ssp = env.SERVER_STARTER_PORT;
  if (ssp !== undefined && ssp !== '') {
    return parseServerStarterPort(ssp).flatMap(({ key, fd }) => {
      const type = socketType(fd);
      if (type === undefined) {
        throw new BatonError(
          `SERVER_STARTER_PORT entry ${key}=${fd}: file descriptor ${fd} is not an open socket in this process (was it started by start_server?)`,
          'ERR_BATON_SERVER_STARTER_PORT',
          1,
        );
      }
      if (type !== SOCK_STREAM) {
        warn(`skipping SERVER_STARTER_PORT entry ${key}=${fd}: not a stream socket (UDP)`);
        return [];
      }
      return [{ fd, name: key, source: 'server-starter' as const }];
    });
  }
  if (env.LISTEN_FDS !== undefined && env.LISTEN_PID === String(process.pid)) {
    const count = /^\d+$/.test(env.LISTEN_FDS) ? Number(env.LISTEN_FDS) : Number.NaN;
    if (!(count <= MAX_LISTEN_FDS)) {
      throw new BatonError(
        `LISTEN_FDS must be a number of file descriptors (got ${JSON.stringify(env.LISTEN_FDS)})`,
        'ERR_BATON_LISTEN_FDS',
        1,
      );
    }
    const names = (env.LISTEN_FDNAMES ?? '').split(':');
    return Array.from({ length: count }, (_, i) => {
      const fd = 3 + i;
      if (socketType(fd) !== SOCK_STREAM) {
        throw new BatonError(`LISTEN_FDS=${count}: file descriptor ${fd} is not an open stream socket`, 'ERR_BATON_LISTEN_FDS', 1);
      }
      return { fd, name: names[i] || `fd${fd}`, source: 'systemd' as const };
    });
  }
  return [];
}

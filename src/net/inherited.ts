// The listening sockets a process was handed: by start_server (or
// Server::Starter) in SERVER_STARTER_PORT, else by systemd (LISTEN_FDS, for
// this pid). A value that names something other than an open socket is a
// clear error, never a stack trace; UDP entries are skipped with a warning.
import { readFileSync } from 'node:fs';
import { BatonError } from '../errors.ts';
import { native, SO_ACCEPTCONN, SO_TYPE, SOCK_STREAM, SOL_SOCKET } from './native.ts';
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

/** What `fd` is: a listening stream socket, another socket, a datagram socket, or not a socket at all. */
function socketKind(fd: number): 'listening' | 'not listening' | 'datagram' | 'not a socket' {
  try {
    if (native.getsockoptInt(fd, SOL_SOCKET, SO_TYPE) !== SOCK_STREAM) return 'datagram';
    return native.getsockoptInt(fd, SOL_SOCKET, SO_ACCEPTCONN) ? 'listening' : 'not listening';
  } catch {
    return 'not a socket';
  }
}

/** The listening sockets this process inherited, in their given order. */
export function inheritedSockets(env: NodeJS.ProcessEnv = process.env, warn = (m: string) => process.emitWarning(m)): InheritedSocket[] {
  const ssp = env.SERVER_STARTER_PORT;
  if (ssp !== undefined && ssp !== '') {
    return parseServerStarterPort(ssp).flatMap(({ key, fd }) => {
      const kind = socketKind(fd);
      if (kind === 'datagram') {
        warn(`skipping SERVER_STARTER_PORT entry ${key}=${fd}: not a stream socket (UDP)`);
        return [];
      }
      if (kind !== 'listening') {
        throw new BatonError(
          'ERR_BATON_SERVER_STARTER_PORT',
          `SERVER_STARTER_PORT entry ${key}=${fd}: file descriptor ${fd} is ${kind === 'not a socket' ? 'not an open socket' : 'a socket but not a listening one'} in this process (was it started by start_server?)`,
        );
      }
      return [{ fd, name: key, source: 'server-starter' as const }];
    });
  }
  if (env.LISTEN_FDS !== undefined && env.LISTEN_PID === String(process.pid)) {
    const count = /^\d+$/.test(env.LISTEN_FDS) ? Number(env.LISTEN_FDS) : Number.NaN;
    if (!(count <= MAX_LISTEN_FDS)) {
      throw new BatonError(
        'ERR_BATON_LISTEN_FDS',
        `LISTEN_FDS must be a number of file descriptors (got ${JSON.stringify(env.LISTEN_FDS)})`,
      );
    }
    const names = (env.LISTEN_FDNAMES ?? '').split(':');
    return Array.from({ length: count }, (_, i) => {
      const fd = 3 + i;
      if (socketKind(fd) !== 'listening') {
        throw new BatonError('ERR_BATON_LISTEN_FDS', `LISTEN_FDS=${count}: file descriptor ${fd} is not a listening stream socket`);
      }
      return { fd, name: names[i] || `fd${fd}`, source: 'systemd' as const };
    });
  }
  return [];
}

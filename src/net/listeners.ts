// Creates the listening sockets start_server hands to every generation. They
// are made by the addon, never by `net`: libuv would accept on them (stealing
// connections) and mark them O_NONBLOCK for every process sharing them.
// Invariant: sockets stay blocking and open for the supervisor's whole life;
// each gets a fixed fd number in the children, so every generation inherits
// the same open file descriptions and nothing queued is ever lost.
import { lookup } from 'node:dns/promises';
import { lstatSync, unlinkSync } from 'node:fs';
import { BatonError } from '../errors.ts';
import { bindError } from './bind-error.ts';
import { native } from './native.ts';
import { type PortSpec, parsePortSpec } from './port-spec.ts';
import { formatServerStarterPort, type PortEntry } from './server-starter-port.ts';
import { claimSocketPath } from './socket-path.ts';

export interface Listener {
  key: string;
  /** The fd in this process. */
  fd: number;
  /** The fd number the children see. */
  childFd: number;
  /** The UNIX socket path this process created, removed at exit. */
  path?: string;
}

async function resolveHost(spec: PortSpec): Promise<string> {
  if (spec.host === undefined) return spec.family === 6 ? '::' : '0.0.0.0';
  if (spec.family === 6) return spec.host;
  if (spec.host === '' || spec.host === '*') {
    throw new BatonError('ERR_BATON_PORT', `failed to resolve host:${spec.host} (give an address such as 0.0.0.0 or 127.0.0.1)`);
  }
  try {
    return (await lookup(spec.host, { family: 4 })).address;
  } catch {
    throw new BatonError('ERR_BATON_PORT', `failed to resolve host:${spec.host}`);
  }
}

function bindPort(spec: PortSpec, address: string, backlog: number): number {
  try {
    return native.openSocket({
      family: spec.family,
      type: spec.udp ? 'dgram' : 'stream',
      host: address,
      port: spec.port,
      backlog,
      reuseAddr: true,
      v6only: true,
      cloexec: true,
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_INVALID_ARG_TYPE') {
      throw new BatonError('ERR_BATON_PORT', `failed to resolve host:${spec.host} (not a valid IPv6 address)`);
    }
    throw bindError(e, `failed to bind to ${spec.key}:`, 'stop it or pick another port');
  }
}

function bindPath(path: string, backlog: number, warn: (line: string) => void): number {
  claimSocketPath(path, warn);
  try {
    return native.openSocket({ family: 1, path, backlog, mode: 0o777, cloexec: true });
  } catch (e) {
    throw bindError(e, `failed to listen to file ${path}:`, 'stop it or pick another --path');
  }
}

/**
 * Picks each child fd: `=FD` where given, otherwise the lowest free number
 * from 3 up. Duplicate `=FD` targets are refused (upstream silently dup2s one
 * socket over the other).
 */
export function assignChildFds(wanted: ReadonlyArray<number | undefined>): number[] {
  const taken = new Set<number>();
  for (const fd of wanted) {
    if (fd === undefined) continue;
    if (taken.has(fd)) {
      throw new BatonError('ERR_BATON_PORT', `two sockets ask for file descriptor ${fd}; give each --port a different =FD`, 255);
    }
    taken.add(fd);
  }
  let next = 3;
  return wanted.map((fd) => {
    if (fd !== undefined) return fd;
    while (taken.has(next)) next++;
    taken.add(next);
    return next;
  });
}

export interface OpenListenersOptions {
  ports: readonly string[];
  paths: readonly string[];
  backlog: number;
  warn: (line: string) => void;
}

/** Binds every --port then every --path, in command-line order. */
export async function openListeners(opts: OpenListenersOptions): Promise<Listener[]> {
  const specs = opts.ports.map(parsePortSpec);
  const childFds = assignChildFds([...specs.map((s) => s.fd), ...opts.paths.map(() => undefined)]);
  const out: Listener[] = [];
  try {
    for (const [i, spec] of specs.entries()) {
      const fd = bindPort(spec, await resolveHost(spec), opts.backlog);
      out.push({ key: spec.key, fd, childFd: childFds[i] as number });
      if (spec.fd !== undefined) opts.warn(`socket is duplicated to file descriptor ${spec.fd}`);
    }
    for (const [i, path] of opts.paths.entries()) {
      const fd = bindPath(path, opts.backlog, opts.warn);
      out.push({ key: path, fd, childFd: childFds[specs.length + i] as number, path });
    }
  } catch (e) {
    closeListeners(out);
    throw e;
  }
  return out;
}

/** Closes the sockets and removes the UNIX socket files this process made. */
export function closeListeners(listeners: readonly Listener[]): void {
  for (const l of listeners) {
    try {
      native.closeFd(l.fd);
    } catch {
      // already closed
    }
    if (l.path !== undefined) removeSocketFile(l.path);
  }
}

/** Unlinks a UNIX socket file, only if it still is a socket. */
export function removeSocketFile(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // gone already
  }
}

export function serverStarterPort(listeners: readonly Listener[]): string {
  const entries: PortEntry[] = listeners.map((l) => ({ key: l.key, fd: l.childFd }));
  return formatServerStarterPort(entries);
}

// Creates the listening sockets start_server hands to every generation. They
// are made by the addon, never by `net`: libuv would accept on them (stealing
// connections) and mark them O_NONBLOCK for every process sharing them.
// Invariant: sockets stay blocking and open for the supervisor's whole life;
// each gets a fixed fd number in the children, so every generation inherits
// the same open file descriptions and nothing queued is ever lost.
import { lookup } from 'node:dns/promises';
import { lstatSync, unlinkSync } from 'node:fs';
import { ExitCodeError } from '../errors.ts';
import { native } from './native.ts';
import { type PortSpec, parsePortSpec } from './port-spec.ts';
import { formatServerStarterPort, type PortEntry } from './server-starter-port.ts';

export interface Listener {
  key: string;
  /** The fd in this process. */
  fd: number;
  /** The fd number the children see. */
  childFd: number;
  /** The UNIX socket path this process created, removed at exit. */
  path?: string;
}

/** A bind failure: `exitCode` follows Perl's `die` (errno, or 255). */
export class ListenError extends ExitCodeError {}

function errnoOf(e: unknown): { code: string; errno: number; message: string } {
  const err = e as NodeJS.ErrnoException;
  return { code: err.code ?? 'EUNKNOWN', errno: Math.abs(err.errno ?? 0), message: err.message };
}

async function resolveHost(spec: PortSpec): Promise<string> {
  if (spec.host === undefined) return spec.family === 6 ? '::' : '0.0.0.0';
  if (spec.family === 6) return spec.host;
  if (spec.host === '' || spec.host === '*') {
    throw new ListenError(`failed to resolve host:${spec.host} (give an address such as 0.0.0.0 or 127.0.0.1)`, 'ENOTFOUND', 255);
  }
  try {
    return (await lookup(spec.host, { family: 4 })).address;
  } catch {
    throw new ListenError(`failed to resolve host:${spec.host}`, 'ENOTFOUND', 255);
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
    const { code, errno, message } = errnoOf(e);
    if (code === 'ERR_INVALID_ARG_TYPE') {
      throw new ListenError(`failed to resolve host:${spec.host} (not a valid IPv6 address)`, 'EINVAL', 255);
    }
    const hint = code === 'EADDRINUSE' ? ' (another process listens there; stop it or pick another port)' : '';
    throw new ListenError(`failed to bind to ${spec.key}:${message.replace(/^[a-z_()0-9]+: /i, '')}${hint}`, code, errno || 255);
  }
}

function bindPath(path: string, backlog: number, warn: (line: string) => void): number {
  let existing: import('node:fs').Stats | undefined;
  try {
    existing = lstatSync(path);
  } catch {
    existing = undefined;
  }
  if (existing?.isSocket()) {
    warn(`removing existing socket file:${path}`);
    try {
      unlinkSync(path);
    } catch (e) {
      const { errno, message } = errnoOf(e);
      throw new ListenError(`failed to remove existing socket file:${path}:${message}`, 'EPERM', errno || 255);
    }
  } else if (existing) {
    // Upstream unlinks whatever is there; a regular file is never ours to delete.
    throw new ListenError(`refusing to replace ${path}: it exists and is not a socket (remove it yourself if it is stale)`, 'EEXIST', 17);
  }
  try {
    return native.openSocket({ family: 1, path, backlog, umask: 0, cloexec: true });
  } catch (e) {
    const { code, errno, message } = errnoOf(e);
    throw new ListenError(`failed to listen to file ${path}:${message.replace(/^[a-z_()0-9]+: /i, '')}`, code, errno || 255);
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
      throw new ListenError(`two sockets ask for file descriptor ${fd}; give each --port a different =FD`, 'EINVAL', 255);
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

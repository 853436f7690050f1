// The listening sockets a `baton serve` master hands its workers: inherited
// (start_server, systemd) or bound here by the addon, never through `net`
// (the master must not accept connections itself).
import { lookup } from 'node:dns/promises';
import { lstatSync, unlinkSync } from 'node:fs';
import { isIP } from 'node:net';
import { ExitCodeError } from '../errors.ts';
import { native } from '../net/native.ts';
import { type Handover, openReuseport, type ReuseportGroupMember } from '../net/reuseport.ts';
import { inheritedSockets } from './listen.ts';

export interface SocketRequest {
  host: string;
  port: number;
  path: string | undefined;
  backlog: number;
  reusePort: boolean;
  handover: Handover;
}

export class BindError extends ExitCodeError {}

export interface AcquiredSockets {
  fds: number[];
  description: string;
  /** Set when this instance owns SO_REUSEPORT listeners it must hand over. */
  group?: ReuseportGroupMember;
}

async function bind(req: SocketRequest): Promise<number> {
  if (req.path !== undefined) {
    try {
      if (lstatSync(req.path).isSocket()) unlinkSync(req.path);
      else throw new BindError(`refusing to replace ${req.path}: it exists and is not a socket`, 'EEXIST', 17);
    } catch (e) {
      if (e instanceof BindError) throw e;
    }
    return native.openSocket({ family: 1, path: req.path, backlog: req.backlog, cloexec: true });
  }
  let host = req.host;
  if (!isIP(host)) {
    try {
      host = (await lookup(host)).address;
    } catch {
      throw new BindError(`cannot resolve --host ${req.host}`, 'ENOTFOUND', 1);
    }
  }
  return native.openSocket({
    family: isIP(host) === 6 ? 6 : 4,
    host,
    port: req.port,
    backlog: req.backlog,
    reusePort: req.reusePort,
    cloexec: true,
  });
}

export async function acquireSockets(req: SocketRequest, warn: (m: string) => void): Promise<AcquiredSockets> {
  const inherited = inheritedSockets(process.env, warn);
  if (inherited.length > 0) {
    return { fds: inherited.map((s) => s.fd), description: inherited.map((s) => `${s.name} (${s.source})`).join(', ') };
  }
  try {
    if (req.reusePort && req.path === undefined) {
      const host = isIP(req.host) ? req.host : (await lookup(req.host)).address;
      const group = openReuseport(host, req.port, isIP(host) === 6 ? 6 : 4, req.backlog, req.handover);
      const how = req.handover === 'steer' ? `${group.fds.length} per-CPU listeners, handover by steering` : `handover: ${req.handover}`;
      return { fds: group.fds, group, description: `${host}:${group.port} (SO_REUSEPORT, ${how})` };
    }
    const fd = await bind(req);
    const where = req.path ?? `${req.host}:${native.localAddress(fd).port}`;
    return { fds: [fd], description: `${where}${req.reusePort ? ' (SO_REUSEPORT)' : ''}` };
  } catch (e) {
    if (e instanceof BindError) throw e;
    const err = e as NodeJS.ErrnoException;
    const hint = err.code === 'EADDRINUSE' ? ' (another process listens there; stop it, pick another --port, or use --reuse-port)' : '';
    throw new BindError(
      `cannot listen on ${req.path ?? `${req.host}:${req.port}`}: ${err.message}${hint}`,
      err.code ?? 'EUNKNOWN',
      Math.abs(err.errno ?? 0) || 1,
    );
  }
}

// The listening sockets a `baton serve` master hands its workers: inherited
// (start_server, systemd) or bound here by the addon, never through `net`
// (the master must not accept connections itself).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { BatonError } from '../errors.ts';
import { bindError } from '../net/bind-error.ts';
import { inheritedSockets } from '../net/inherited.ts';
import { native } from '../net/native.ts';
import { type HandoverName, joinGroup, type ReuseportGroupMember } from '../net/reuseport/index.ts';
import { claimSocketPath } from '../net/socket-path.ts';

export interface SocketRequest {
  host: string;
  port: number;
  path: string | undefined;
  backlog: number;
  reusePort: boolean;
  handover: HandoverName;
  /** With a handover that joins one instance at a time: the longest wait to join. */
  joinTimeoutMs: number;
  /** Checked while waiting to join: true gives up (told to stop first). */
  cancelled: () => boolean;
}

export interface AcquiredSockets {
  fds: number[];
  description: string;
  /** Set when this instance owns SO_REUSEPORT listeners it must hand over. */
  group?: ReuseportGroupMember;
}

async function resolveHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  try {
    return (await lookup(host)).address;
  } catch {
    throw new BatonError('ERR_BATON_USAGE', `cannot resolve --host ${host}`);
  }
}

/** Inherited sockets, else bound as asked; undefined when cancelled while waiting to join a reuse-port group. */
export async function acquireSockets(req: SocketRequest, warn: (m: string) => void): Promise<AcquiredSockets | undefined> {
  const inherited = inheritedSockets(process.env, warn);
  if (inherited.length > 0) {
    return { fds: inherited.map((s) => s.fd), description: inherited.map((s) => `${s.name} (${s.source})`).join(', ') };
  }
  const where = req.path ?? `${req.host}:${req.port}`;
  try {
    if (req.path !== undefined) {
      claimSocketPath(req.path);
      const fd = native.openSocket({ family: 1, path: req.path, backlog: req.backlog, cloexec: true });
      return { fds: [fd], description: req.path };
    }
    const host = await resolveHost(req.host);
    const family = isIP(host) === 6 ? 6 : 4;
    if (req.reusePort) {
      const group = await joinGroup({
        host,
        port: req.port,
        family,
        backlog: req.backlog,
        handover: req.handover,
        timeoutMs: req.joinTimeoutMs,
        cancelled: req.cancelled,
      });
      if (!group) return undefined;
      const how = group.fds.length > 1 ? `${group.fds.length} per-CPU listeners, handover: ${req.handover}` : `handover: ${req.handover}`;
      return { fds: group.fds, group, description: `${host}:${group.port} (SO_REUSEPORT, ${how})` };
    }
    const fd = native.openSocket({ family, host, port: req.port, backlog: req.backlog, cloexec: true });
    return { fds: [fd], description: `${req.host}:${native.localAddress(fd).port}` };
  } catch (e) {
    if (e instanceof BatonError) throw e;
    throw bindError(e, `cannot listen on ${where}: `, 'stop it, pick another --port, or use --reuse-port');
  }
}

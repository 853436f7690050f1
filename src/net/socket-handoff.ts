// Socket handoff: a running instance offers its listening sockets on a UNIX
// socket at PATH; a new instance started with the same PATH receives the very
// same sockets over SCM_RIGHTS, starts serving on them, and says READY; only
// then does the old instance stop accepting and drain. The sockets never
// close, so nothing queued is lost. Works between containers that share a
// volume holding PATH, whatever their network namespaces.
//
// Invariants:
// - PATH is a socket of mode 0600 (created so, then renamed into place, so
//   it is never briefly open to others);
// - messages keep their boundaries (SOCK_SEQPACKET): one read is one whole
//   message, and one cut short is refused, not parsed;
// - a peer is served only if SO_PEERCRED says it runs as our uid (or the one
//   explicitly allowed), and a receiver only takes sockets from such a peer;
// - the old instance stops only after READY; a new instance that fails
//   before READY leaves the old one serving and offering;
// - every fd received is either used or closed;
// - PATH is unlinked only while it is still our own socket.

import { fstatSync, lstatSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatonError } from '../errors.ts';
import { native } from './native.ts';

const POLL_MS = 50;

export interface HandoffPeer {
  pid: number;
  uid: number;
}

const handoffError = (message: string) => new BatonError('ERR_BATON_HANDOFF', message);

/** The next message, or undefined at the timeout or when the peer is gone. */
async function receive(fd: number, timeoutMs: number): Promise<{ data: string; fds: number[] } | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = native.recvMsg(fd);
    if (m) return m.data === '' && m.fds.length === 0 ? undefined : m;
    if (Date.now() >= end) return undefined;
    await sleep(POLL_MS);
  }
}

function closeAll(fds: readonly number[]): void {
  for (const fd of fds) native.closeFd(fd);
}

function allowed(fd: number, allowUid: number | undefined): HandoffPeer & { ok: boolean } {
  const cred = native.peerCred(fd);
  const ok = cred.uid === process.getuid?.() || (allowUid !== undefined && cred.uid === allowUid);
  return { pid: cred.pid, uid: cred.uid, ok };
}

export interface TakenOver {
  fds: number[];
  description: string;
  from: HandoffPeer;
  /** Tells the old instance this one serves; it then drains and exits. */
  ready(): void;
}

/**
 * Takes the listening sockets from the instance offering them at `path`.
 * Undefined when nobody offers (no file, or a stale socket nobody listens on).
 */
export async function takeOver(path: string, timeoutMs: number, allowUid?: number): Promise<TakenOver | undefined> {
  let conn: number;
  try {
    conn = native.connectUnix(path, 'seqpacket');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') return undefined;
    throw handoffError(`cannot reach the instance offering sockets at ${path}: ${(e as Error).message}`);
  }
  const peer = allowed(conn, allowUid);
  if (!peer.ok) {
    native.closeFd(conn);
    throw handoffError(`refusing sockets from ${path}: its owner runs as uid ${peer.uid}, not ours`);
  }
  native.sendFds(conn, [], 'TAKE');
  let m: { data: string; fds: number[] } | undefined;
  try {
    m = await receive(conn, timeoutMs);
  } catch (e) {
    native.closeFd(conn);
    throw handoffError(`bad message from the instance at ${path} (pid ${peer.pid}): ${(e as Error).message}`);
  }
  let meta: { description?: unknown } | undefined;
  try {
    meta = m ? (JSON.parse(m.data) as { description?: unknown }) : undefined;
  } catch {
    meta = undefined;
  }
  if (!m || m.fds.length === 0 || typeof meta?.description !== 'string') {
    closeAll(m?.fds ?? []);
    native.closeFd(conn);
    throw handoffError(
      m
        ? `the instance at ${path} (pid ${peer.pid}) answered with something other than sockets and their description`
        : `the instance at ${path} (pid ${peer.pid}) sent no sockets within ${timeoutMs / 1000} s`,
    );
  }
  return {
    fds: m.fds,
    description: meta.description,
    from: { pid: peer.pid, uid: peer.uid },
    ready() {
      try {
        native.sendFds(conn, [], 'READY');
      } finally {
        native.closeFd(conn);
      }
    },
  };
}

export interface OfferOptions {
  path: string;
  fds: number[];
  description: string;
  allowUid?: number;
  log: (line: string) => void;
  /** Called once a new instance serves on our sockets. */
  onTaken: (peer: HandoffPeer) => void;
}

/** Offers `fds` at `path` until closed or taken over. */
export class HandoffOffer {
  private readonly o: OfferOptions;
  private readonly listener: number;
  private readonly inode: number;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(o: OfferOptions) {
    this.o = o;
    const tmp = `${o.path}.${process.pid}.tmp`;
    try {
      if (lstatSync(tmp).isSocket()) unlinkSync(tmp);
    } catch {
      // not there
    }
    this.listener = native.openSocket({ family: 1, type: 'seqpacket', path: tmp, backlog: 8, mode: 0o600, nonblock: true });
    this.inode = fstatSync(this.listener).ino;
    let existing: import('node:fs').Stats | undefined;
    try {
      existing = lstatSync(o.path);
    } catch {
      existing = undefined;
    }
    if (existing && !existing.isSocket()) {
      native.closeFd(this.listener);
      unlinkSync(tmp);
      throw handoffError(`refusing to replace ${o.path}: it exists and is not a socket (remove it yourself if it is stale)`);
    }
    // an older instance's socket is replaced in one step: a newcomer always finds one
    renameSync(tmp, o.path);
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    const conn = native.acceptConn(this.listener);
    if (conn === null) return;
    this.busy = true;
    try {
      const peer = allowed(conn, this.o.allowUid);
      if (!peer.ok) {
        this.o.log(`handoff: refused a request from pid ${peer.pid} uid ${peer.uid} (only uid ${process.getuid?.()} may take our sockets)`);
        return;
      }
      const take = await receive(conn, 5000).catch(() => undefined);
      closeAll(take?.fds ?? []);
      if (take?.data !== 'TAKE') return;
      native.sendFds(conn, this.o.fds, JSON.stringify({ description: this.o.description }));
      this.o.log(`handoff: sockets sent to pid ${peer.pid}; serving until it is ready`);
      const ready = await receive(conn, 10 * 60_000).catch(() => undefined);
      closeAll(ready?.fds ?? []);
      if (ready?.data === 'READY') {
        this.close();
        this.o.onTaken(peer);
      } else {
        this.o.log(`handoff: pid ${peer.pid} went away before it was ready; still serving and offering`);
      }
    } finally {
      native.closeFd(conn);
      this.busy = false;
    }
  }

  /** Stops offering; unlinks PATH only if it is still our socket. */
  close(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    try {
      if (statSync(this.o.path).ino === this.inode) unlinkSync(this.o.path);
    } catch {
      // replaced or gone
    }
    native.closeFd(this.listener);
  }
}

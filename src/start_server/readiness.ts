// When a starting generation counts as serving (--ready), and what was seen
// of it when it did not, for a hint that matches.
//
// - interval: alive --interval seconds after it started (upstream's rule;
//   the supervisor times it).
// - notify: it sent READY=1 (from its pid, or with its token).
// - accept: one of its processes is seen waiting for connections on an
//   inherited socket, or holding one it accepted on an inherited port (a
//   server saturated from its first moment never waits: net/acceptors.ts);
//   with no socket inherited, on a listening socket of its own.
// - auto: a generation that speaks sd_notify must have sent READY=1, and
//   when sockets are inherited it must also be seen accepting on one (a
//   server that says READY=1 before its workers boot is not taken at its
//   word); one that never notifies must be seen accepting. With no socket
//   inherited and a notifying generation, READY=1 alone counts: its
//   processes may be out of sight (a container).
import { acceptedIn, acceptorIn, type HeldListener, listenersHeldBy, processTree } from '../net/acceptors.ts';
import type { Generation } from './generations.ts';
import type { Readiness } from './options.ts';

/** Seeing who accepts reads /proc for a whole process tree: not more often than this. */
const ACCEPT_SCAN_MS = 40;
/** A generation's processes (new workers) are read again this often. */
const TREE_SCAN_MS = 200;
/** Which listening sockets a generation holds changes rarely: looked at this often. */
const LISTEN_SCAN_MS = 500;

export interface SocketWatch {
  /** Inodes of the inherited listening stream sockets. */
  inodes: Set<number>;
  /** Their TCP ports. */
  ports: Set<number>;
  /** How they read in a message (`127.0.0.1:8080 (fd 3)`). */
  describe: string;
}

export class ReadinessJudge {
  private readonly mode: Readiness;
  private readonly sockets: SocketWatch;
  private lastAcceptScan = 0;
  private lastListenScan = 0;
  /** The starting generation's processes, as last read. */
  private tree: { root: number; at: number; pids: number[] } | undefined;

  constructor(mode: Readiness, sockets: SocketWatch) {
    this.mode = mode;
    this.sockets = sockets;
  }

  get describeSockets(): string {
    return this.sockets.describe;
  }

  /** Timed by the supervisor (interval) rather than judged here. */
  get timed(): boolean {
    return this.mode === 'interval';
  }

  /** Why `g` now counts as serving (`READY=1`, `pid 4711 waits in accept(3)`), or undefined while it does not. */
  judge(g: Generation): string | undefined {
    const acceptOnly = this.mode === 'accept' || (this.mode === 'auto' && !g.notifies);
    if (this.mode === 'notify' || (this.mode === 'auto' && g.notifies && this.sockets.inodes.size === 0)) {
      return g.readySent ? 'READY=1' : undefined;
    }
    if (!acceptOnly && !g.readySent) return undefined;
    const seen = this.serving(g);
    if (!seen) return undefined;
    return g.readySent ? `READY=1, and ${seen}` : seen;
  }

  /** What shows `g` serving: a process waiting for connections, or holding one it accepted. */
  private serving(g: Generation): string | undefined {
    const now = Date.now();
    if (now - this.lastAcceptScan < ACCEPT_SCAN_MS) return undefined;
    this.lastAcceptScan = now;
    const own = this.sockets.inodes.size > 0 ? undefined : this.ownListeners(g);
    const inodes = own ? new Set(own.map((l) => l.inode)) : this.sockets.inodes;
    const ports = own ? new Set(own.map((l) => l.port)) : this.sockets.ports;
    if (!this.tree || this.tree.root !== g.pid || now - this.tree.at > TREE_SCAN_MS)
      this.tree = { root: g.pid, at: now, pids: processTree(g.pid) };
    const waiting = acceptorIn(g.pid, inodes, this.tree.pids);
    if (waiting) return `pid ${waiting.pid} waits for connections (${waiting.how})`;
    const accepted = acceptedIn(this.tree.pids, ports);
    return accepted && `pid ${accepted.pid} ${accepted.how}`;
  }

  /** What is newly seen of `g`: that it listens on a port of its own rather than on the inherited socket. */
  observe(g: Generation): string[] {
    const now = Date.now();
    if (now - this.lastListenScan < LISTEN_SCAN_MS || this.sockets.inodes.size === 0) return [];
    this.lastListenScan = now;
    const fresh: string[] = [];
    for (const l of this.ownListeners(g)) {
      const note = `it listens on ${address(l)} itself`;
      if (!g.seen.includes(note)) {
        g.seen.push(note);
        fresh.push(note);
      }
    }
    return fresh;
  }

  /** The listening sockets `g`'s processes hold that are not the inherited ones. */
  ownListeners(g: Generation): HeldListener[] {
    return listenersHeldBy(g.pid).filter((l) => !this.sockets.inodes.has(l.inode));
  }

  /** What it was waiting for, for the line that says a generation was not ready in time. */
  missing(g: Generation): string {
    const accept =
      this.sockets.inodes.size > 0
        ? `no process of it was seen waiting for connections on the inherited socket (${this.sockets.describe})`
        : 'no process of it was seen waiting for connections';
    if (this.mode === 'notify' || (this.mode === 'auto' && g.notifies && this.sockets.inodes.size === 0)) return 'it sent no READY=1';
    if (this.mode === 'accept' || (this.mode === 'auto' && !g.notifies)) return `${accept}, and it sent no notification`;
    return g.readySent ? `it sent READY=1, but ${accept}` : 'it sent no READY=1';
  }
}

function address(l: HeldListener): string {
  return l.address.includes(':') ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`;
}

/** A hint for a failed start that matches what was observed; undefined when there is nothing to add. */
/** What to do about a generation that binds a port itself. */
export const USE_INHERITED =
  'a server must take the inherited socket (SERVER_STARTER_PORT, or LISTEN_FDS) rather than bind the port itself; a Node app that calls listen() runs unchanged under `baton serve app.js`';

export function failureHint(
  how: 'exited' | 'not ready' | 'not run',
  status: number | undefined,
  g: Generation | undefined,
  livedMs: number,
): string | undefined {
  const own = g?.seen.find((s) => s.startsWith('it listens on '));
  const useInherited = USE_INHERITED;
  if (own) return `hint: ${own}, not on the inherited socket: ${useInherited}`;
  if (how === 'exited' && status === 0 && livedMs < 10_000) {
    return `hint: it exited with status 0 during its start, serving nothing. A server that binds a port itself and finds it taken may do that: Express 5's app.listen() hands EADDRINUSE to its callback, which then prints that it listens, and the process exits 0. ${useInherited}`;
  }
  if (how === 'exited') return 'hint: it exited during its start; its own output above says why';
  return undefined;
}

// Who accepts connections, read off /proc: whether a process (or any of its
// descendants) is waiting for a connection on a given listening socket right
// now, and which listening sockets a process tree holds. This is readiness
// that needs nothing from the server: a process blocked in accept() on the
// socket, or in poll/select/epoll with the socket among what it waits for
// readable, takes the next connection that arrives. A server whose queue
// never empties (saturated from its first moment) is never seen waiting;
// it shows that it serves by holding connections it accepted, whose local
// port is the listener's. Servers that accept through io_uring are seen
// only that second way.
//
// Reading a process's syscall and its poll/select arguments needs ptrace
// access to it (our own descendants, same uid, or root): exactly the
// generations a supervisor started. A process we may not read is not seen.
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { native } from './native.ts';

/** Syscall numbers that wait for a connection, per architecture (arm64 has no poll, select or epoll_wait). */
const SYSCALLS: Record<string, { accept: number[]; poll: number[]; select: number[]; epoll: number[] }> = {
  x64: { accept: [43, 288], poll: [7, 271], select: [23, 270], epoll: [232, 281, 441] },
  arm64: { accept: [202, 242], poll: [73], select: [72], epoll: [22, 441] },
};
const POLLIN = 0x1;
const EPOLLIN = 0x1;

/** The inode of a socket we hold (what /proc shows for every process holding it). */
export function socketInode(fd: number): number {
  return fstatSync(fd).ino;
}

/** `root` and all its descendants, from the parent pid of every process in /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [root];
  }
  for (const name of names) {
    if (name.charCodeAt(0) > 57) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3)[1]);
      const list = children.get(ppid);
      if (list) list.push(Number(name));
      else children.set(ppid, [Number(name)]);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

function fdSocket(pid: number, fd: number): number | undefined {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The socket inodes in a process's fd table. */
export function heldSockets(pid: number): Set<number> {
  const out = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    const ino = fdSocket(pid, Number(fd));
    if (ino !== undefined) out.add(ino);
  }
  return out;
}

function readMemory(pid: number, address: number, length: number): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(`/proc/${pid}/mem`, 'r');
    const buf = Buffer.alloc(length);
    return readSync(fd, buf, 0, length, address) === length ? buf : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** How one thread waits for a connection on one of `inodes`, if it does. */
function threadWaits(pid: number, tid: string, inodes: ReadonlySet<number>, nr: typeof SYSCALLS.x64): string | undefined {
  let line: string;
  try {
    line = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'latin1');
  } catch {
    return undefined;
  }
  const f = line.trim().split(' ');
  const call = Number(f[0]);
  if (!(call >= 0)) return undefined;
  const [a0 = 0, a1 = 0] = f.slice(1, 3).map((x) => Number.parseInt(x, 16));
  const ours = (fd: number) => {
    const ino = fdSocket(pid, fd);
    return ino !== undefined && inodes.has(ino);
  };
  if (nr.accept.includes(call)) return ours(a0) ? `accept(${a0})` : undefined;
  if (nr.epoll.includes(call)) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${a0}`, 'latin1');
    } catch {
      return undefined;
    }
    for (const m of info.matchAll(/tfd:\s+(\d+)\s+events:\s+([0-9a-f]+)[^\n]*?ino:([0-9a-f]+)/g)) {
      if (Number.parseInt(m[2] as string, 16) & EPOLLIN && inodes.has(Number.parseInt(m[3] as string, 16))) return `epoll on fd ${m[1]}`;
    }
    return undefined;
  }
  if (nr.poll.includes(call)) {
    if (!(a1 > 0 && a1 <= 4096)) return undefined;
    const buf = readMemory(pid, a0, a1 * 8);
    for (let i = 0; buf && i < a1; i++) {
      const fd = buf.readInt32LE(i * 8);
      if (fd >= 0 && buf.readInt16LE(i * 8 + 4) & POLLIN && ours(fd)) return `poll on fd ${fd}`;
    }
    return undefined;
  }
  if (nr.select.includes(call)) {
    if (!(a0 > 0 && a0 <= 65536 && a1 > 0)) return undefined;
    const buf = readMemory(pid, a1, Math.ceil(a0 / 64) * 8);
    for (let fd = 0; buf && fd < a0; fd++) if ((buf[fd >> 3] as number) & (1 << (fd & 7)) && ours(fd)) return `select on fd ${fd}`;
  }
  return undefined;
}

/** How `pid` waits for a connection on one of `inodes` right now (`accept(3)`, `epoll on fd 22`), if any of its threads does. */
export function waitsForConnection(pid: number, inodes: ReadonlySet<number>): string | undefined {
  const nr = SYSCALLS[process.arch];
  if (!nr || inodes.size === 0) return undefined;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const tid of tids) {
    const how = threadWaits(pid, tid, inodes, nr);
    if (how) return how;
  }
  return undefined;
}

/**
 * The first process of `root`'s tree seen waiting for a connection on one of
 * `inodes`, and how. `tree`: the tree's pids when the caller already has them
 * (reading every process's parent in /proc is most of the cost).
 */
export function acceptorIn(root: number, inodes: ReadonlySet<number>, tree = processTree(root)): { pid: number; how: string } | undefined {
  for (const pid of tree) {
    const how = waitsForConnection(pid, inodes);
    if (how) return { pid, how };
  }
  return undefined;
}

/**
 * The first process of `tree` seen holding a connection accepted on one of
 * `ports` (TCP, either family): a connected socket whose local port is one
 * of them. Connections still in a listener's queue belong to no process.
 */
export function acceptedIn(tree: readonly number[], ports: ReadonlySet<number>): { pid: number; how: string } | undefined {
  const accepted = new Map<number, number>();
  for (const port of ports) {
    for (const family of [4, 6] as const) {
      try {
        for (const c of native.tcpConnections(family, port)) if (c.inode !== 0) accepted.set(c.inode, port);
      } catch {
        // no IPv6 here
      }
    }
  }
  if (accepted.size === 0) return undefined;
  for (const pid of tree) {
    for (const inode of heldSockets(pid)) {
      const port = accepted.get(inode);
      if (port !== undefined) return { pid, how: `holds a connection it accepted on port ${port}` };
    }
  }
  return undefined;
}

export interface HeldListener {
  inode: number;
  address: string;
  port: number;
}

/** The listening TCP sockets that processes of `root`'s tree hold (every port, both families). */
export function listenersHeldBy(root: number): HeldListener[] {
  const held = new Set<number>();
  for (const pid of processTree(root)) for (const ino of heldSockets(pid)) held.add(ino);
  if (held.size === 0) return [];
  return ([4, 6] as const).flatMap((family) => {
    try {
      return native.tcpListeners(family, 0).filter((l) => held.has(l.inode));
    } catch {
      return [];
    }
  });
}

// Zero-loss handover between independent SO_REUSEPORT instances of a port.
// Each member of a reuseport group has its own accept queue, and closing a
// listener resets every connection still queued on it. Two ways out:
// - "migrate": with net.ipv4.tcp_migrate_req=1 the kernel moves a closing
//   listener's queue to another member. One listener per instance suffices.
// - "steer": each instance opens one listener per possible CPU, marked with
//   SO_INCOMING_CPU=cpu. The kernel (6.2+) hands a new connection to a member
//   marked with the CPU it arrives on; an instance that is leaving sets -1 on
//   its listeners and so receives nothing new, while it still counts as a
//   fallback if no one else is there. It then accepts until its queues stay
//   empty and only then closes. Holds with overlapping generations, unlike a
//   constant cBPF "newest index" program (shared/notes/zero-loss.md).
// Either way, a leaving instance first waits (bounded) until another
// listener holds the same address and port, so the port is never left empty.
import { fstatSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { native, SO_INCOMING_CPU, SOL_SOCKET } from './native.ts';

export type Handover = 'migrate' | 'steer' | 'none';

/** After steering away: long enough for handshakes already under way to land. */
const STEER_DRAIN_MS = 200;
/** The accept queues must stay empty this long before the listeners close. */
const QUEUE_QUIET_MS = 50;
const QUEUE_DRAIN_TIMEOUT_MS = 10_000;

export function migrateReqEnabled(): boolean {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** CPU ids the kernel may deliver on (/sys/devices/system/cpu/possible, e.g. "0-1"). */
export function possibleCpus(): number[] {
  let text = '0';
  try {
    text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  } catch {
    // single CPU
  }
  return text.split(',').flatMap((range) => {
    const [a, b] = range.split('-').map(Number);
    return Array.from({ length: (b ?? a ?? 0) - (a ?? 0) + 1 }, (_, i) => (a ?? 0) + i);
  });
}

/** Linux >= 6.2 prefers SO_INCOMING_CPU matches within a reuseport group. */
export function kernelSupportsSteering(release = readFileSync('/proc/sys/kernel/osrelease', 'utf8')): boolean {
  const [major = 0, minor = 0] = release.split('.').map((n) => Number.parseInt(n, 10));
  return major > 6 || (major === 6 && minor >= 2);
}

export function chooseHandover(wanted: 'auto' | Handover): Handover {
  if (wanted !== 'auto') return wanted;
  if (migrateReqEnabled()) return 'migrate';
  return 'steer';
}

export interface ReuseportGroupMember {
  fds: number[];
  host: string;
  port: number;
  family: 4 | 6;
  handover: Handover;
  /**
   * Listeners on the port before this instance joined: older instances,
   * possibly draining themselves, so never counted as a successor.
   */
  older: Set<string>;
}

/** Opens this instance's listeners: per CPU when steering, else one. */
export function openReuseport(host: string, port: number, family: 4 | 6, backlog: number, handover: Handover): ReuseportGroupMember {
  const cpus = handover === 'steer' ? possibleCpus() : [undefined];
  const older = port === 0 ? new Set<string>() : listenerInodes(host, port, family);
  const fds: number[] = [];
  let actualPort = port;
  try {
    for (const cpu of cpus) {
      const fd = native.openSocket({ family, host, port: actualPort, backlog, reusePort: true, cloexec: true });
      fds.push(fd);
      actualPort = native.localAddress(fd).port as number;
      // A program left on the group by someone else would override the CPU marks.
      try {
        native.detachReuseportBpf(fd);
      } catch {
        // none attached: the usual case
      }
      if (cpu !== undefined) native.setsockoptInt(fd, SOL_SOCKET, SO_INCOMING_CPU, cpu);
    }
  } catch (e) {
    for (const fd of fds) native.closeFd(fd);
    throw e;
  }
  return { fds, host, port: actualPort, family, handover, older };
}

/** Stops new connections from being steered to these listeners. */
function steerAway(member: ReuseportGroupMember): void {
  if (member.handover !== 'steer') return;
  for (const fd of member.fds) native.setsockoptInt(fd, SOL_SOCKET, SO_INCOMING_CPU, -1);
}

function hexAddress(host: string, family: 4 | 6): string {
  if (family === 4) {
    return host
      .split('.')
      .map((o) => Number(o).toString(16).padStart(2, '0').toUpperCase())
      .reverse()
      .join('');
  }
  return ''; // IPv6 entries are matched by port and wildcard only
}

/** Inodes of the listening sockets on `port` (and `host`, or a wildcard), from /proc/net/tcp{,6}. */
export function listenerInodes(host: string, port: number, family: 4 | 6): Set<string> {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const want = hexAddress(host, family);
  const wildcard = family === 4 ? '00000000' : '00000000000000000000000000000000';
  const out = new Set<string>();
  for (const file of family === 4 ? ['/proc/net/tcp'] : ['/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A') continue;
      const [addr, p] = (f[1] ?? '').split(':');
      if (p !== portHex) continue;
      if (family === 4 && addr !== want && addr !== wildcard) continue;
      out.add(f[9] as string);
    }
  }
  return out;
}

/**
 * Waits until a newer instance listens on the address and port: listeners
 * that are neither ours nor older than us, as many as we have (a steering
 * instance is only complete once it listens on every CPU). False at the timeout.
 */
async function waitForSuccessor(member: ReuseportGroupMember, timeoutMs: number): Promise<boolean> {
  const ours = new Set(member.fds.map((fd) => String(fstatSync(fd).ino)));
  const end = Date.now() + timeoutMs;
  for (;;) {
    let newer = 0;
    for (const inode of listenerInodes(member.host, member.port, member.family)) {
      if (!ours.has(inode) && !member.older.has(inode)) newer++;
    }
    if (newer >= member.fds.length) return true;
    if (Date.now() >= end) return false;
    await sleep(20);
  }
}

/** Waits until every listener's accept queue has stayed empty for `quietMs`. */
async function waitQueuesEmpty(member: ReuseportGroupMember, quietMs: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  let emptySince: number | undefined;
  for (;;) {
    const queued = member.fds.reduce((n, fd) => n + native.tcpListenQueue(fd), 0);
    const now = Date.now();
    if (queued > 0) emptySince = undefined;
    else emptySince ??= now;
    if (emptySince !== undefined && now - emptySince >= quietMs) return true;
    if (now >= end) return false;
    await sleep(5);
  }
}

/**
 * The whole handover of a stopping instance: out of selection, wait for a
 * newer listener (bounded), let the accept queues empty. Resolves to false
 * when no successor came in time (the caller stops anyway).
 */
export async function handOverPort(
  member: ReuseportGroupMember,
  successorTimeoutMs: number,
  warn: (line: string) => void,
): Promise<boolean> {
  if (member.handover === 'none') return true;
  steerAway(member);
  if (!(await waitForSuccessor(member, successorTimeoutMs))) {
    warn(
      `no other listener took ${member.host}:${member.port} within ${successorTimeoutMs / 1000} s; stopping anyway (new connections will be refused)`,
    );
    return false;
  }
  if (member.handover === 'steer') {
    await sleep(STEER_DRAIN_MS);
    if (!(await waitQueuesEmpty(member, QUEUE_QUIET_MS, QUEUE_DRAIN_TIMEOUT_MS)))
      warn('accept queues did not empty in time; stopping anyway');
    leaveGroup(member);
  }
  return true;
}

/**
 * Takes our listeners out of the group now, for every process holding them.
 * Until then a stopped instance's socket stays a member (its master and
 * workers still hold it) and is picked whenever no member is marked for the
 * CPU a connection arrives on (e.g. the successor has not bound yet), so a
 * connection could land in a queue no one will accept from.
 */
function leaveGroup(member: ReuseportGroupMember): void {
  for (const fd of member.fds) {
    try {
      native.shutdownFd(fd, 'rd');
    } catch {
      // already closed
    }
  }
}

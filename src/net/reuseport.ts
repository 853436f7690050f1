// Zero-loss handover between independent SO_REUSEPORT instances of a port.
// Each member of a reuseport group has its own accept queue, and closing a
// listener resets every connection still queued on it. Three ways out:
// - "migrate": with net.ipv4.tcp_migrate_req=1 the kernel moves a closing
//   listener's queue to another member. One listener per instance suffices.
// - "steer": each instance opens one listener per possible CPU, marked with
//   SO_INCOMING_CPU=cpu. The kernel (6.2+) hands a new connection to a member
//   marked with the CPU it arrives on; an instance that is leaving sets -1 on
//   its listeners and so receives nothing new, while it still counts as a
//   fallback if no one else is there. It then accepts until its queues stay
//   empty and only then closes. Holds with overlapping generations, unlike a
//   constant cBPF "newest index" program (shared/notes/zero-loss.md).
// - "cbpf": one listener per instance, for servers that accept on a single
//   socket (baton reuseport-exec). A classic-BPF program picks the member by
//   index, and indexes are only known while the group holds at most two
//   members: the live one at 0 and a newcomer appended at 1. So an instance
//   joins only once the group is down to one member (bounded wait, one
//   joiner at a time), attaches "return 0" (traffic stays on the live one),
//   and a leaving instance attaches "return 1" (everything to its
//   successor), empties its queue and leaves. When it is alone, index 1 is
//   out of range and the kernel falls back to its hash, i.e. to the only
//   member.
// Every way, a leaving instance first waits (bounded) until another
// listener holds the same address and port, so the port is never left empty,
// and then leaves the group with shutdown(SHUT_RD): the queue is empty by
// then, or (migrate) the kernel moves what is left to the successor.
import { fstatSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCodeError } from '../errors.ts';
import { native, SO_INCOMING_CPU, SOL_SOCKET } from './native.ts';

export type Handover = 'migrate' | 'steer' | 'cbpf' | 'none';

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

/** auto: the kernel's migration when on, else `fallback` (steer for per-CPU listeners, cbpf for one). */
export function chooseHandover(wanted: 'auto' | Handover, fallback: 'steer' | 'cbpf' = 'steer'): Handover {
  if (wanted !== 'auto') return wanted;
  if (migrateReqEnabled()) return 'migrate';
  return fallback;
}

/** A classic-BPF reuseport program that always picks the member at `index`. */
function pickIndex(index: number): [number, number, number, number][] {
  const BPF_RET_K = 0x06;
  return [[BPF_RET_K, 0, 0, index]];
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
      if (handover === 'cbpf') {
        // Joined at index 1 (or alone at 0): the live member keeps the traffic.
        native.attachReuseportCbpf(fd, pickIndex(0));
        continue;
      }
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

export class JoinError extends ExitCodeError {}

/**
 * The join lock of a cbpf group: an abstract UNIX socket named for the
 * address. Abstract names live per network namespace, like the group itself
 * (containers with --net=host share the host's), and vanish with their
 * holder, so a crashed joiner never leaves it stuck.
 */
function tryJoinLock(host: string, port: number): number | undefined {
  try {
    return native.openSocket({ family: 1, type: 'dgram', path: `@baton-reuseport-join/${host}/${port}`, cloexec: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return undefined;
    throw e;
  }
}

/**
 * cbpf only: holding the join lock, waits until at most one listener holds
 * the address and port, then joins at index 1 (or 0 when alone). Other
 * mechanisms open at once. Undefined when `cancelled()` turns true first:
 * an instance told to stop before it joined has nothing to hand over.
 */
export async function joinReuseport(
  host: string,
  port: number,
  family: 4 | 6,
  backlog: number,
  handover: Handover,
  timeoutMs: number,
  cancelled: () => boolean = () => false,
): Promise<ReuseportGroupMember | undefined> {
  if (handover !== 'cbpf' || port === 0) return openReuseport(host, port, family, backlog, handover);
  const end = Date.now() + timeoutMs;
  let lock: number | undefined;
  try {
    for (;;) {
      if (cancelled()) return undefined;
      lock ??= tryJoinLock(host, port);
      const members = listenerInodes(host, port, family).size;
      if (lock !== undefined && members <= 1) return openReuseport(host, port, family, backlog, handover);
      if (Date.now() >= end) {
        throw new JoinError(
          lock === undefined
            ? `another instance has been joining ${host}:${port} for ${timeoutMs / 1000} s; --handover=cbpf lets one instance join at a time`
            : `${host}:${port} still has ${members} listeners after ${timeoutMs / 1000} s; --handover=cbpf joins only once one member is left (an instance that never leaves, or the per-CPU listeners of baton serve --reuse-port, keep it out: use one --handover everywhere, or migrate)`,
          'EBUSY',
          16,
        );
      }
      await sleep(20);
    }
  } finally {
    if (lock !== undefined) native.closeFd(lock);
  }
}

/** Stops new connections from reaching these listeners. */
function steerAway(member: ReuseportGroupMember): void {
  if (member.handover === 'steer') {
    for (const fd of member.fds) native.setsockoptInt(fd, SOL_SOCKET, SO_INCOMING_CPU, -1);
  }
}

/** cbpf: once a successor has joined (at index 1), send it everything. */
function steerToSuccessor(member: ReuseportGroupMember): void {
  if (member.handover === 'cbpf') {
    for (const fd of member.fds) native.attachReuseportCbpf(fd, pickIndex(1));
  }
}

/** Inodes of the listening sockets on `port` at `host` or a wildcard address, in this network namespace. */
export function listenerInodes(host: string, port: number, family: 4 | 6): Set<string> {
  const wildcard = family === 4 ? '0.0.0.0' : '::';
  return new Set(
    native
      .tcpListeners(family, port)
      .filter((l) => l.address === host || l.address === wildcard)
      .map((l) => String(l.inode)),
  );
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
 * newer listener (bounded), let the accept queues empty, leave the group.
 * `beforeLeave` runs just before leaving (reuseport-exec signals its command
 * there, so the command is not woken by a failing accept first). Resolves to
 * false when no successor came in time (the caller stops anyway).
 */
export async function handOverPort(
  member: ReuseportGroupMember,
  successorTimeoutMs: number,
  warn: (line: string) => void,
  beforeLeave?: () => void,
): Promise<boolean> {
  if (member.handover === 'none') return true;
  steerAway(member);
  if (!(await waitForSuccessor(member, successorTimeoutMs))) {
    warn(
      `no other listener took ${member.host}:${member.port} within ${successorTimeoutMs / 1000} s; stopping anyway (new connections will be refused)`,
    );
    return false;
  }
  steerToSuccessor(member);
  if (member.handover !== 'migrate') {
    await sleep(STEER_DRAIN_MS);
    if (!(await waitQueuesEmpty(member, QUEUE_QUIET_MS, QUEUE_DRAIN_TIMEOUT_MS)))
      warn('accept queues did not empty in time; stopping anyway');
  }
  beforeLeave?.();
  leaveGroup(member);
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

// The plumbing every handover mechanism shares: the SO_REUSEPORT group of a
// port as the kernel shows it (sock_diag), waiting for a newer member,
// waiting for our accept queues to empty, and leaving the group.
import { fstatSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../native.ts';

export type HandoverName = 'steer' | 'migrate' | 'cbpf' | 'none';

/** One instance's listeners in a port's SO_REUSEPORT group. */
export interface ReuseportGroupMember {
  fds: number[];
  host: string;
  port: number;
  family: 4 | 6;
  handover: HandoverName;
  /** With a per-CPU mechanism: the CPU each of `fds` serves, in the same order. */
  cpus: Array<number | undefined>;
  /**
   * Listeners on the port before this instance joined: older instances,
   * possibly draining themselves, so never counted as a successor.
   */
  older: Set<string>;
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
export async function waitForSuccessor(member: ReuseportGroupMember, timeoutMs: number): Promise<boolean> {
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
export async function waitQueuesEmpty(member: ReuseportGroupMember, quietMs: number, timeoutMs: number): Promise<boolean> {
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
 * Takes our listeners out of the group now, for every process holding them.
 * Until then a stopped instance's socket stays a member (its master and
 * workers still hold it) and is picked whenever no member is marked for the
 * CPU a connection arrives on (e.g. the successor has not bound yet), so a
 * connection could land in a queue no one will accept from. With
 * tcp_migrate_req, shutdown also moves what is queued to another member.
 */
export function leaveGroup(member: ReuseportGroupMember): void {
  for (const fd of member.fds) {
    try {
      native.shutdownFd(fd, 'rd');
    } catch {
      // already closed
    }
  }
}

// The ways to hand a SO_REUSEPORT port over from one instance to the next
// without resetting the connections waiting in the leaving instance's accept
// queue (each member of a group has its own queue, and closing a listener
// resets what waits in it). Everything that names or offers them (the CLI
// choices and help, baton doctor, listen(), serve, reuseport-exec) reads
// this one table: a new mechanism is a new entry.
import { readFileSync } from 'node:fs';
import { native, SO_INCOMING_CPU, SOL_SOCKET } from '../native.ts';
import type { HandoverName, ReuseportGroupMember } from './group.ts';

export interface Mechanism {
  name: HandoverName;
  /** One line for --help and baton doctor. */
  summary: string;
  /** One listener per CPU (else one per instance, which any server can take). */
  perCpu: boolean;
  /** Why this machine cannot use it; undefined when it can. */
  unavailable(): string | undefined;
  /** Readies a listener just bound. */
  prepare(fd: number): void;
  /** Instances join one at a time, and only once the group is down to one member. */
  exclusiveJoin: boolean;
  /** Once this instance accepts on its listeners: its share of new connections comes to it. */
  steerIn(member: ReuseportGroupMember): void;
  /** On stop, before waiting for a successor: new connections stop coming to us. */
  steerAway(member: ReuseportGroupMember): void;
  /** Once a successor listens: everything goes to it. */
  steerToSuccessor(member: ReuseportGroupMember): void;
  /** Leaving moves our queue to the successor (the kernel does it); else we empty it first. */
  kernelMigrates: boolean;
}

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

export function kernelRelease(): string {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** Whether the running kernel is at least major.minor. */
export function kernelAtLeast(major: number, minor: number, release = kernelRelease()): boolean {
  const [a = 0, b = 0] = release.split('.').map((n) => Number.parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}

/** A classic-BPF reuseport program that always picks the member at `index`. */
function pickIndex(index: number): [number, number, number, number][] {
  const BPF_RET_K = 0x06;
  return [[BPF_RET_K, 0, 0, index]];
}

/** A program left on the group by another mechanism would override ours. */
function detachProgram(fd: number): void {
  try {
    native.detachReuseportBpf(fd);
  } catch {
    // none attached: the usual case
  }
}

const nothing = () => {};

export const MECHANISMS: Readonly<Record<HandoverName, Mechanism>> = {
  // The kernel (5.14+, with the sysctl) moves a closing listener's queue to
  // another member: one listener per instance suffices.
  migrate: {
    name: 'migrate',
    summary: 'the kernel moves the queue of a leaving listener to the next (net.ipv4.tcp_migrate_req=1)',
    perCpu: false,
    unavailable: () => (!kernelAtLeast(5, 14) ? 'needs Linux >= 5.14' : migrateReqEnabled() ? undefined : 'net.ipv4.tcp_migrate_req is 0'),
    prepare: detachProgram,
    exclusiveJoin: false,
    steerIn: nothing,
    steerAway: nothing,
    steerToSuccessor: nothing,
    kernelMigrates: true,
  },
  // One listener per possible CPU, marked SO_INCOMING_CPU=cpu: the kernel
  // (6.2+) hands a connection to a member marked with the CPU it arrives on,
  // and to any member (by hash) only when none is marked for that CPU. A
  // joining instance stays unmarked until it accepts (a booting instance
  // marked at bind got half the new connections here, which then waited for
  // its boot); a leaving instance unmarks its listeners and so gets nothing
  // new while it still counts as a fallback; it accepts until its queues
  // stay empty. Holds with overlapping generations, unlike a constant cBPF
  // program.
  steer: {
    name: 'steer',
    summary:
      'one listener per CPU (SO_INCOMING_CPU); an instance takes new connections once it accepts, and a leaving one steers them away, then empties its queues',
    perCpu: true,
    unavailable: () => (kernelAtLeast(6, 2) ? undefined : 'needs Linux >= 6.2 (SO_INCOMING_CPU preference in reuseport groups)'),
    prepare: detachProgram,
    exclusiveJoin: false,
    steerIn: (member) => {
      member.fds.forEach((fd, i) => {
        const cpu = member.cpus[i];
        if (cpu !== undefined) native.setsockoptInt(fd, SOL_SOCKET, SO_INCOMING_CPU, cpu);
      });
    },
    steerAway: (member) => {
      for (const fd of member.fds) native.setsockoptInt(fd, SOL_SOCKET, SO_INCOMING_CPU, -1);
    },
    steerToSuccessor: nothing,
    kernelMigrates: false,
  },
  // One listener per instance, for servers that accept on a single socket.
  // A classic-BPF program picks the member by index, and indexes are only
  // known while the group holds at most two members: the live one at 0 and
  // a newcomer appended at 1. So an instance joins only once the group is
  // down to one member (one joiner at a time), attaches "return 0" (traffic
  // stays on the live one), and a leaving instance attaches "return 1"
  // (everything to its successor), empties its queue and leaves. Alone,
  // index 1 is out of range and the kernel falls back to its hash.
  cbpf: {
    name: 'cbpf',
    summary: 'one listener per instance; a classic-BPF program sends new connections to the newcomer, one join at a time',
    perCpu: false,
    unavailable: () => (kernelAtLeast(4, 5) ? undefined : 'needs Linux >= 4.5 (SO_ATTACH_REUSEPORT_CBPF)'),
    prepare: (fd) => native.attachReuseportCbpf(fd, pickIndex(0)),
    exclusiveJoin: true,
    steerIn: nothing,
    steerAway: nothing,
    steerToSuccessor: (member) => {
      for (const fd of member.fds) native.attachReuseportCbpf(fd, pickIndex(1));
    },
    kernelMigrates: false,
  },
  // A plain close: what waits in the queue is reset. The control in tests.
  none: {
    name: 'none',
    summary: 'a plain close (connections waiting in the queue are reset)',
    perCpu: false,
    unavailable: () => undefined,
    prepare: detachProgram,
    exclusiveJoin: false,
    steerIn: nothing,
    steerAway: nothing,
    steerToSuccessor: nothing,
    kernelMigrates: false,
  },
};

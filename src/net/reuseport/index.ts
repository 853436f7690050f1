// Zero-loss handover of a SO_REUSEPORT port between independent instances:
// joining the port's group, and leaving it without losing what is queued.
// The mechanisms themselves are in mechanisms.ts.
//
// Invariants:
// - Every instance joins through joinGroup(), whatever the mechanism, so a
//   mechanism's join rules (cbpf: one member left, one joiner at a time)
//   hold for baton serve, listen() and reuseport-exec alike.
// - cbpf: a joiner's turn lasts until its predecessor has left and the
//   group's program points at the live member again ("return 0"). A
//   finished handover leaves "return 1" on the group, and the kernel keeps
//   one program per group: a newcomer that listened into it would get every
//   new connection until it attached its own, and a build that then fails
//   at once would reset them.
// - A joining instance takes new connections only once it accepts
//   (steerIn): until then they go to the members already serving, rather
//   than waiting in its queue for its boot (steer, cbpf).
// - A leaving instance first stops taking new connections, then waits
//   (bounded) until another listener holds the same address and port, so the
//   port is never left empty, then empties its queue (or has the kernel move
//   it), and only then leaves the group with shutdown(SHUT_RD).
import { setTimeout as sleep } from 'node:timers/promises';
import { BatonError } from '../../errors.ts';
import { native } from '../native.ts';
import { type HandoverName, leaveGroup, listenerInodes, type ReuseportGroupMember, waitForSuccessor, waitQueuesEmpty } from './group.ts';
import { MECHANISMS, type Mechanism, migrateReqEnabled, possibleCpus } from './mechanisms.ts';

export type { HandoverName, ReuseportGroupMember } from './group.ts';
export { MECHANISMS } from './mechanisms.ts';

/** After steering away: long enough for handshakes already under way to land. */
const STEER_DRAIN_MS = 200;
/** The accept queues must stay empty this long before the listeners close. */
const QUEUE_QUIET_MS = 50;
const QUEUE_DRAIN_TIMEOUT_MS = 10_000;
/** A member holding its join turn looks this often whether its predecessor has left. */
const TURN_POLL_MS = 20;

/** The mechanisms a server can use: all, or (`oneSocket`) those that give an instance a single listener. */
export function mechanismsFor(oneSocket: boolean): Mechanism[] {
  return Object.values(MECHANISMS).filter((m) => !(oneSocket && m.perCpu));
}

/** The --handover choices, auto first. */
export function handoverChoices(oneSocket: boolean): string[] {
  return ['auto', ...mechanismsFor(oneSocket).map((m) => m.name)];
}

/** Help lines: what each choice does. */
export function handoverHelp(oneSocket: boolean, indent: string): string {
  const auto = `auto: migrate when net.ipv4.tcp_migrate_req=1, else ${oneSocket ? 'cbpf' : 'steer'}`;
  return [auto, ...mechanismsFor(oneSocket).map((m) => `${m.name}: ${m.summary}`)].map((l) => `${indent}${l}`).join('\n');
}

/** auto: the kernel's migration when it is on, else steering (or, for one socket, cbpf). An explicit choice this machine lacks is refused. */
export function chooseHandover(wanted: string, oneSocket: boolean): HandoverName {
  if (wanted === 'auto') return migrateReqEnabled() ? 'migrate' : oneSocket ? 'cbpf' : 'steer';
  const m = mechanismsFor(oneSocket).find((x) => x.name === wanted);
  if (!m)
    throw new BatonError(
      'ERR_BATON_USAGE',
      `--handover must be one of ${handoverChoices(oneSocket).join(', ')} (got ${JSON.stringify(wanted)})`,
    );
  const why = m.unavailable();
  if (why) throw new BatonError('ERR_BATON_HANDOVER', `--handover=${wanted} is not available here: ${why} (baton doctor tells what is)`);
  return m.name;
}

/** Opens this instance's listeners (per CPU or one) and readies them for the mechanism. */
function open(host: string, port: number, family: 4 | 6, backlog: number, handover: HandoverName): ReuseportGroupMember {
  const m = MECHANISMS[handover];
  const cpus: Array<number | undefined> = m.perCpu ? possibleCpus() : [undefined];
  const older = port === 0 ? new Set<string>() : listenerInodes(host, port, family);
  const fds: number[] = [];
  let actualPort = port;
  try {
    for (let i = 0; i < cpus.length; i++) {
      const fd = native.openSocket({ family, host, port: actualPort, backlog, reusePort: true, cloexec: true });
      fds.push(fd);
      actualPort = native.localAddress(fd).port as number;
      m.prepare(fd);
    }
  } catch (e) {
    for (const fd of fds) native.closeFd(fd);
    throw e;
  }
  return { fds, cpus, host, port: actualPort, family, handover, older };
}

/** The instance accepts on its listeners now: its share of new connections may come to it (until then the others take them). */
export function steerIn(member: ReuseportGroupMember): void {
  MECHANISMS[member.handover].steerIn(member);
}

/**
 * The join lock of a port: an abstract UNIX socket named for the address.
 * Abstract names live per network namespace, like the group itself
 * (containers with --net=host share the host's), and vanish with their
 * holder, so a crashed joiner never leaves it stuck.
 */
export function joinLockPath(host: string, port: number): string {
  return `@baton-reuseport-join/${host}/${port}`;
}

function tryJoinLock(host: string, port: number): number | undefined {
  try {
    return native.openSocket({ family: 1, type: 'dgram', path: joinLockPath(host, port), cloexec: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return undefined;
    throw e;
  }
}

export interface JoinOptions {
  host: string;
  port: number;
  family: 4 | 6;
  backlog: number;
  handover: HandoverName;
  /** With an exclusive join: the longest wait for our turn. */
  timeoutMs: number;
  /** Checked while waiting: true gives up (an instance told to stop before it joined has nothing to hand over). */
  cancelled?: () => boolean;
}

/** Joins the port's group; undefined when cancelled while waiting for its turn. */
export async function joinGroup(o: JoinOptions): Promise<ReuseportGroupMember | undefined> {
  if (!MECHANISMS[o.handover].exclusiveJoin || o.port === 0) return open(o.host, o.port, o.family, o.backlog, o.handover);
  const end = Date.now() + o.timeoutMs;
  let lock: number | undefined;
  try {
    for (;;) {
      if (o.cancelled?.()) return undefined;
      lock ??= tryJoinLock(o.host, o.port);
      const members = listenerInodes(o.host, o.port, o.family).size;
      if (lock !== undefined && members <= 1) {
        const member = open(o.host, o.port, o.family, o.backlog, o.handover);
        if (member.older.size > 0) keepTurnUntilAlone(member, lock);
        else native.closeFd(lock);
        lock = undefined;
        return member;
      }
      if (Date.now() >= end) {
        throw new BatonError(
          'ERR_BATON_REUSEPORT_JOIN',
          members <= 1
            ? `another instance has been joining ${o.host}:${o.port} for ${o.timeoutMs / 1000} s; --handover=${o.handover} lets one instance join at a time`
            : `${o.host}:${o.port} still has ${members} listeners after ${o.timeoutMs / 1000} s; --handover=${o.handover} joins only once one member is left (an instance that never leaves, or the per-CPU listeners of --handover=steer, keep it out: use one --handover everywhere, or migrate)`,
          16,
        );
      }
      await sleep(20);
    }
  } finally {
    if (lock !== undefined) native.closeFd(lock);
  }
}

/**
 * Holds the join lock until the members that were there when we joined have
 * left, then readies our listeners again (the program a leaver attached is
 * the group's, and now points past the end) and lets the next joiner in.
 * In the background: the caller serves meanwhile. Ends, releasing the lock,
 * if our listeners are closed first; a process that exits releases it too.
 */
function keepTurnUntilAlone(member: ReuseportGroupMember, lock: number): void {
  const m = MECHANISMS[member.handover];
  const timer = setInterval(() => {
    let alone: boolean;
    try {
      const now = listenerInodes(member.host, member.port, member.family);
      alone = ![...member.older].some((inode) => now.has(inode));
      if (alone) for (const fd of member.fds) m.prepare(fd);
    } catch {
      alone = true; // our listeners are gone: there is nothing to ready
    }
    if (!alone) return;
    clearInterval(timer);
    native.closeFd(lock);
  }, TURN_POLL_MS);
  timer.unref();
}

/**
 * The whole handover of a stopping instance (see the invariants above).
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
  const m = MECHANISMS[member.handover];
  if (m.name === 'none') return true;
  m.steerAway(member);
  if (!(await waitForSuccessor(member, successorTimeoutMs))) {
    warn(
      `no other listener took ${member.host}:${member.port} within ${successorTimeoutMs / 1000} s; stopping anyway (new connections will be refused)`,
    );
    return false;
  }
  m.steerToSuccessor(member);
  if (!m.kernelMigrates) {
    await sleep(STEER_DRAIN_MS);
    if (!(await waitQueuesEmpty(member, QUEUE_QUIET_MS, QUEUE_DRAIN_TIMEOUT_MS)))
      warn('accept queues did not empty in time; stopping anyway');
  }
  beforeLeave?.();
  leaveGroup(member);
  return true;
}

// A generation that boots beside the one serving takes CPU from it: on a busy
// host that is a dip in throughput and a latency spike at every deploy. So a
// booting worker runs at the lowest CPU priority (nice 19) and takes only what
// the serving generation leaves, and goes back to its normal priority just
// before it listens, so it never serves slowly. Going back needs the right to
// raise a priority (root, CAP_SYS_NICE, or an RLIMIT_NICE that allows it:
// systemd's LimitNICE=): without it, nothing is lowered in the first place.
// A boot starved for long (it waited to run for as long as it ran or waited
// on anything else, as when the machine has nothing to spare at all) goes
// back to normal priority early: a boot takes at most about twice what it
// takes unloaded, however loaded the machine. A starved process cannot see
// that it starves (its timers fire only once it gets the CPU back, seconds
// later at nice 19 beside a saturated generation), so its master watches it
// from outside, by the time the kernel says it waited to run.
// Linux keeps a nice value per thread: coming back sets every thread's, or
// V8's GC and compiler threads and libuv's pool would stay at nice 19.

import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The priority of a booting worker. */
export const BOOT_NICE = 19;
/** How often a boot at low priority looks at itself. */
const TICK_MS = 25;
/** Starved for less than this, a boot stays low whatever the ratio. */
const STARVED_GRACE_MS = 50;
const CAP_SYS_NICE = 23;

/** Whether this process may raise its priority back to `to` after lowering it. */
export function canRestorePriority(to = getPriority()): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const eff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
    if ((eff >> BigInt(CAP_SYS_NICE)) & 1n) return true;
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const soft = Number(/^Max nice priority\s+(\d+)/m.exec(limits)?.[1] ?? 0);
    // RLIMIT_NICE: the nice value may go down to 20 - limit
    return 20 - soft <= to;
  } catch {
    return false;
  }
}

/** Sets the nice value of every thread of `pid` (errors ignored: a thread may just have exited). */
export function setProcessPriority(pid: number, nice: number): void {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    tids = [String(pid)];
  }
  for (const tid of tids) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      // exited meanwhile, or not permitted
    }
  }
}

/** Milliseconds `pid`'s main thread (where a boot runs) has spent waiting for a CPU (schedstat), or undefined where the kernel does not say. */
export function waitedToRunMs(pid: number): number | undefined {
  try {
    const ms = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'latin1').split(' ')[1]) / 1e6;
    return Number.isFinite(ms) ? ms : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a boot that has run `elapsedMs` and waited `starvedMs` of it for a CPU should come back to normal priority now. */
function starved(starvedMs: number, elapsedMs: number): boolean {
  return starvedMs > STARVED_GRACE_MS && starvedMs > elapsedMs - starvedMs;
}

/**
 * Watches a booting child from outside; brings it back to `normal` once it
 * has starved, and calls `onStarved`. Returns the function that ends the
 * watch (the child listens, or exits). `onlyFrom`: act only on a child whose
 * main thread is at that nice value (one that lowered itself for its boot).
 */
export function watchBoot(
  pid: number,
  normal: number,
  onStarved: (starvedMs: number, elapsedMs: number) => void,
  onlyFrom?: number,
): () => void {
  const started = performance.now();
  const base = waitedToRunMs(pid);
  if (base === undefined) return () => {};
  const timer = setInterval(() => {
    const now = waitedToRunMs(pid);
    if (now === undefined) return clearInterval(timer);
    const starvedMs = now - base;
    const elapsed = performance.now() - started;
    if (!starved(starvedMs, elapsed)) return;
    try {
      // not lowered (yet): it waits like everything else on a busy machine
      if (onlyFrom !== undefined && getPriority(pid) !== onlyFrom) return;
    } catch {
      return clearInterval(timer); // exited meanwhile
    }
    clearInterval(timer);
    setProcessPriority(pid, normal);
    onStarved(starvedMs, elapsed);
  }, TICK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * `baton serve` started beside a serving generation (the supervisor sets
 * BATON_SERVING_GENERATION) lowers itself at once, unless told
 * --boot-priority=normal; its master comes back once its workers listen.
 */
export function bootsBesideServing(argv: readonly string[], env: NodeJS.ProcessEnv): void {
  if (argv[0] !== 'serve' || env.BATON_SERVING_GENERATION === undefined) return;
  if (argv.some((a) => /^--?boot-priority(=|$)/.test(a) && !/=low$/.test(a))) return;
  if (!canRestorePriority()) return;
  try {
    // what the master and its workers come back to
    env.BATON_NORMAL_NICE = String(getPriority());
    setPriority(BOOT_NICE);
  } catch {
    // not permitted: boot at normal priority
  }
}

/** The priority this process was started with, before bootsBesideServing lowered it. */
export function normalPriority(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.BATON_NORMAL_NICE);
  return env.BATON_NORMAL_NICE !== undefined && Number.isInteger(n) ? n : getPriority();
}

/**
 * A boot at low priority: started at once (`lower`; else the process was born
 * low), ended by restore() (before listening) or once starved. Starved time
 * is told from a timer: one that fires late while the process used little
 * CPU meanwhile was waiting for a CPU (late because of our own work, the CPU
 * used says so; waiting on I/O, it fires on time). /proc's schedstat would
 * say it exactly, but is often compiled out.
 */
export class LowPriorityBoot {
  private readonly normal: number;
  private restored = false;
  private readonly watch: NodeJS.Timeout;
  private readonly started = performance.now();
  private starvedMs = 0;

  constructor(normal: number, lower = true) {
    this.normal = normal;
    if (lower) setPriority(BOOT_NICE);
    let last = performance.now();
    let cpu = process.cpuUsage();
    this.watch = setInterval(() => {
      const now = performance.now();
      const used = process.cpuUsage(cpu);
      const lateMs = now - last - TICK_MS;
      this.starvedMs += Math.max(0, lateMs - (used.user + used.system) / 1000);
      last = now;
      cpu = process.cpuUsage();
      const elapsed = now - this.started;
      if (starved(this.starvedMs, elapsed)) this.restore();
    }, TICK_MS);
    this.watch.unref();
  }

  restore(): void {
    if (this.restored) return;
    this.restored = true;
    clearInterval(this.watch);
    // not permitted after all: serve at the lower priority rather than not at all
    setProcessPriority(process.pid, this.normal);
  }
}

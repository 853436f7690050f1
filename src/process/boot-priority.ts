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
// takes unloaded, however loaded the machine.

import { readFileSync } from 'node:fs';
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
 * A boot at low priority: started at once, ended by restore() (before
 * listening) or once starved. Starved time is told from a timer: one that
 * fires late while the process used little CPU meanwhile was waiting for a
 * CPU (late because of our own work, the CPU used says so; waiting on I/O,
 * it fires on time). /proc's schedstat would say it exactly, but is often
 * compiled out.
 */
export class LowPriorityBoot {
  private readonly normal: number;
  private restored = false;
  private readonly watch: NodeJS.Timeout;
  private readonly started = performance.now();
  private starvedMs = 0;

  constructor(normal: number) {
    this.normal = normal;
    setPriority(BOOT_NICE);
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
      if (this.starvedMs > STARVED_GRACE_MS && this.starvedMs > elapsed - this.starvedMs) this.restore();
    }, TICK_MS);
    this.watch.unref();
  }

  restore(): void {
    if (this.restored) return;
    this.restored = true;
    clearInterval(this.watch);
    try {
      setPriority(this.normal);
    } catch {
      // not permitted after all: serve at the lower priority rather than not at all
    }
  }
}

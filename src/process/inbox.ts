// What wakes the supervisor's loop: signals (queued in arrival order, as
// upstream queues them) and reaped children. Children are reaped with
// waitpid(-1) on SIGCHLD, like Perl's wait(): every child, including a
// --log-file pipe or orphans re-parented to us, is collected.
import { native } from '../net/native.ts';

export interface Exit {
  pid: number;
  /** The raw wait status, as Perl's $? shows it (256 = exit 1, 15 = TERM). */
  status: number;
}

/** Collects one exited child: [pid, raw status], or null when none is waiting. */
export type Reaper = () => [pid: number, status: number] | null;

const waitAny: Reaper = () => native.waitpid(-1, true);

export class Inbox {
  readonly signals: string[] = [];
  private readonly reapOne: Reaper;
  private readonly exits: Exit[] = [];
  private wakers: Array<() => void> = [];
  private readonly listeners: Array<[string, () => void]> = [];
  private backstop: NodeJS.Timeout | undefined;

  /** `reap`: where exits come from (waitpid(-1) here; a stand-in in tests). */
  constructor(reap: Reaper = waitAny) {
    this.reapOne = reap;
  }

  /** Starts reaping and queueing the given signals. */
  listen(signals: readonly string[]): void {
    const reap = () => this.reap();
    process.on('SIGCHLD', reap);
    this.listeners.push(['SIGCHLD', reap]);
    for (const name of signals) {
      const handler = () => this.push(name);
      process.on(`SIG${name}` as NodeJS.Signals, handler);
      this.listeners.push([`SIG${name}`, handler]);
    }
    // SIGCHLD is not queued by the kernel; a slow poll catches any coalesced
    // one, and keeps the event loop alive while the loop awaits.
    this.backstop = setInterval(reap, 1000);
  }

  close(): void {
    for (const [name, handler] of this.listeners) process.off(name, handler);
    clearInterval(this.backstop);
  }

  push(signal: string): void {
    this.signals.push(signal);
    this.wake();
  }

  reap(): void {
    for (let r = this.reapOne(); r; r = this.reapOne()) {
      this.exits.push({ pid: r[0], status: r[1] });
    }
    if (this.exits.length > 0) this.wake();
  }

  /** Removes and returns the exit of `pid` (any child when omitted). */
  takeExit(pid?: number): Exit | undefined {
    this.reap();
    const i = pid === undefined ? 0 : this.exits.findIndex((e) => e.pid === pid);
    if (i < 0 || i >= this.exits.length) return undefined;
    return this.exits.splice(i, 1)[0];
  }

  /** Resolves at the next signal or exit, or after `ms` when given. */
  next(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.wakers.push(done);
      if (ms !== undefined) timer = setTimeout(() => this.wake(), ms);
    });
  }

  /**
   * Sleeps `ms`, or less when `interrupted()` becomes true first. Always
   * yields once, so a zero sleep still lets queued signals in.
   */
  async sleep(ms: number, interrupted: () => boolean): Promise<void> {
    const end = Date.now() + ms;
    do await this.next(Math.max(0, end - Date.now()));
    while (Date.now() < end && !interrupted());
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const w of wakers) w();
  }
}

// The supervisor as a service to its own manager (systemd, or anything that
// speaks sd_notify): when NOTIFY_SOCKET is set for the supervisor itself, it
// says READY=1 once the first generation serves; on a deploy RELOADING=1
// (with MONOTONIC_USEC, as Type=notify-reload wants), then READY=1 and a
// STATUS= line with the verdict once it has ended; STOPPING=1 on stop; and
// WATCHDOG=1 at half of WATCHDOG_USEC when the manager asks for a watchdog.
// That socket is the manager's, never the one the generations are given: it
// is taken out of the environment they inherit.
import { native } from '../net/native.ts';

/** What the generations must not inherit from the supervisor's manager. */
export const MANAGER_ENV = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'];

export class ServiceManager {
  private readonly path: string;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly log: (line: string) => void;
  private failedOnce = false;

  private constructor(path: string, log: (line: string) => void) {
    this.path = path;
    this.log = log;
  }

  /** The manager that started us, if it listens for notifications. */
  static fromEnv(env: NodeJS.ProcessEnv, log: (line: string) => void): ServiceManager | undefined {
    const path = env.NOTIFY_SOCKET;
    if (!path) return undefined;
    const m = new ServiceManager(path, log);
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = env.WATCHDOG_PID === undefined || env.WATCHDOG_PID === String(process.pid);
    if (usec > 0 && forUs) {
      m.watchdog = setInterval(() => m.send('WATCHDOG=1'), Math.max(100, usec / 2000));
      m.watchdog.unref();
    }
    return m;
  }

  private send(state: string): void {
    try {
      native.sendDatagram(this.path, `${state}\nMAINPID=${process.pid}`);
    } catch (e) {
      // one line, not one per message: a manager that went away is not news twice
      if (!this.failedOnce) this.log(`could not notify the service manager at ${this.path}: ${(e as Error).message}`);
      this.failedOnce = true;
    }
  }

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}`);
  }

  reloading(status: string): void {
    const monotonicUsec = process.hrtime.bigint() / 1000n;
    this.send(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec}\nSTATUS=${status}`);
  }

  status(status: string): void {
    this.send(`STATUS=${status}`);
  }

  stopping(): void {
    clearInterval(this.watchdog);
    this.send('STOPPING=1\nSTATUS=stopping');
  }
}

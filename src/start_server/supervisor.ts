// start_server's supervisor loop: Server::Starter 0.35's algorithm, step for
// step, with its log lines.
//
// Invariants:
// - The listening sockets are bound once, before the first generation, and
//   stay open here until exit; every generation inherits the same sockets, so
//   a connection waiting in the kernel's queue outlives any generation.
// - A new generation is started before any old one is signalled; an old
//   generation is signalled only after a new one has passed its readiness
//   check (alive after --interval, or READY=1 with --ready-notify). A new
//   generation that fails is retried; the old one keeps serving meanwhile.
// - Generation numbers grow by one per start attempt, failed ones included.
// - Every child is reaped; the status file lists exactly the live, accepted
//   workers; the supervisor never writes to stdout.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatonError } from '../errors.ts';
import { type Listener, serverStarterPort } from '../net/listeners.ts';
import { native } from '../net/native.ts';
import type { Exit, Inbox } from '../process/inbox.ts';
import { logLine as log } from '../process/log.ts';
import { signalNumber } from '../process/signals.ts';
import { devNullFd, type SpawnRequest, spawnProcess } from '../process/spawn.ts';
import { loadEnvdir, perlTrue } from './envdir.ts';
import { type StatusEntry, writeStatusFile } from './files.ts';
import type { StartServerOptions } from './options.ts';

/** Signals the loop takes (QUIT like INT; USR1/USR2 are logged and ignored). */
export const HANDLED_SIGNALS = ['HUP', 'TERM', 'INT', 'QUIT', 'USR1', 'USR2'];

const FAILURE_HINT_AFTER = 3;
const MIN_RETRY_MS = 100;

/** What the supervisor does to the system, in one place: tests put a recording stand-in here. */
export interface SupervisorOs {
  spawn(req: SpawnRequest): number;
  /** Throws when the process is gone. */
  kill(pid: number, signal: string): void;
  writeStatus(file: string, entries: readonly StatusEntry[]): void;
}

export const systemOs: SupervisorOs = {
  spawn: spawnProcess,
  kill: (pid, signal) => process.kill(pid, signalNumber(signal)),
  writeStatus: writeStatusFile,
};

export interface SupervisorConfig {
  options: StartServerOptions;
  listeners: readonly Listener[];
  inbox: Inbox;
  /** The environment at start-up, with the option variables and envdir applied. */
  baseEnv: Record<string, string | undefined>;
  /** Give the children /dev/null as stdin (after --daemonize). */
  stdinDevNull: boolean;
  os?: SupervisorOs;
}

export class Supervisor {
  private readonly opts: StartServerOptions;
  private readonly inbox: Inbox;
  private readonly listeners: readonly Listener[];
  private readonly baseEnv: Record<string, string | undefined>;
  private readonly stdinDevNull: boolean;
  private readonly os: SupervisorOs;
  private env: Record<string, string | undefined>;
  private generation = 0;
  private current: { pid: number; generation: number } | undefined;
  /** Old workers still alive: pid -> generation. */
  private readonly old = new Map<number, number>();
  /** Workers given up on before they were accepted (readiness timeout). */
  private readonly abandoned = new Set<number>();
  private lastRestart = 0;
  private consecutiveFailures = 0;
  private notify: { dir: string; path: string; fd: number } | undefined;
  /** Whether this process wrote the status file (only then is it removed at exit). */
  statusWritten = false;

  constructor(cfg: SupervisorConfig) {
    this.opts = cfg.options;
    this.inbox = cfg.inbox;
    this.listeners = cfg.listeners;
    this.baseEnv = cfg.baseEnv;
    this.env = cfg.baseEnv;
    this.stdinDevNull = cfg.stdinDevNull;
    this.os = cfg.os ?? systemOs;
  }

  /** Runs until TERM/INT/QUIT has stopped every worker; resolves to the exit code. */
  async run(): Promise<number> {
    if (this.opts.readyNotify) this.openNotifySocket();
    try {
      await this.startWorker();
      for (;;) {
        const exit = await this.wait();
        this.env = { ...this.baseEnv, ...loadEnvdir(this.baseEnv.ENVDIR) };
        if (perlTrue(this.env.ENABLE_AUTO_RESTART) && !this.env.AUTO_RESTART_INTERVAL) this.env.AUTO_RESTART_INTERVAL = '360';
        if (exit) await this.onExit(exit);
        let restart = false;
        while (this.inbox.signals.length > 0) {
          const sig = this.inbox.signals.shift() as string;
          if (sig === 'HUP') {
            log('received HUP, spawning a new worker');
            restart = true;
            break;
          }
          if (sig === 'USR1' || sig === 'USR2') {
            log(`received ${sig}, ignored (send HUP to restart, TERM to stop)`);
            continue;
          }
          return await this.cleanup(sig);
        }
        if (!restart && perlTrue(this.env.ENABLE_AUTO_RESTART)) restart = this.autoRestartDue();
        if (restart) await this.restart();
      }
    } finally {
      this.closeNotifySocket();
    }
  }

  private async wait(): Promise<Exit | undefined> {
    const block = this.inbox.signals.length === 0;
    const exit = this.inbox.takeExit();
    if (exit || !block) return exit;
    await this.inbox.next(perlTrue(this.baseEnv.ENABLE_AUTO_RESTART) ? 1000 : undefined);
    return this.inbox.takeExit();
  }

  private async onExit({ pid, status }: Exit): Promise<void> {
    if (pid === this.current?.pid) {
      log(`worker ${pid} died unexpectedly with status:${status}, restarting`);
      await this.startWorker();
    } else if (this.abandoned.delete(pid)) {
      log(`abandoned worker ${pid} exited, status:${status}`);
    } else {
      log(`old worker ${pid} died, status:${status}`);
      this.old.delete(pid);
      this.updateStatus();
    }
  }

  private autoRestartDue(): boolean {
    const interval = Number(this.env.AUTO_RESTART_INTERVAL);
    const elapsed = Math.floor(Date.now() / 1000) - this.lastRestart;
    if (elapsed >= interval && this.old.size === 0) {
      log(`autorestart triggered (interval=${this.env.AUTO_RESTART_INTERVAL})`);
      return true;
    }
    if (elapsed >= interval * 2) {
      log(`autorestart triggered (forced, interval=${this.env.AUTO_RESTART_INTERVAL})`);
      return true;
    }
    return false;
  }

  private async restart(): Promise<void> {
    if (this.current) this.old.set(this.current.pid, this.current.generation);
    await this.startWorker();
    const pids = this.oldPids();
    log(`new worker is now running, sending ${this.opts.signalOnHup} to old workers:${pids.length ? pids.join(',') : 'none'}`);
    const configured = this.env.KILL_OLD_DELAY;
    let delay = configured !== undefined && configured !== '' ? Number(configured) : perlTrue(this.env.ENABLE_AUTO_RESTART) ? 5 : 0;
    if (!Number.isFinite(delay) || delay < 0) {
      log(`ignoring KILL_OLD_DELAY=${configured}: not a number of seconds`);
      delay = 0;
    }
    if (delay !== 0) {
      log(`sleeping ${delay} secs before killing old workers`);
      await this.inbox.sleep(delay * 1000, () => false);
    }
    log('killing old workers');
    this.signalAll(this.oldPids(), this.opts.signalOnHup);
  }

  /** Starts generations until one passes the readiness check (upstream's start_worker). */
  private async startWorker(): Promise<void> {
    for (;;) {
      this.generation++;
      const started = Date.now();
      const pid = this.spawnGeneration();
      const ready = pid === undefined ? false : await this.awaitReady(pid);
      const otherSignal = this.inbox.signals.some((s) => s !== 'HUP');
      if (pid !== undefined && (otherSignal || ready)) {
        this.current = { pid, generation: this.generation };
        this.lastRestart = Math.floor(Date.now() / 1000);
        this.consecutiveFailures = 0;
        this.updateStatus();
        return;
      }
      if (pid === undefined) {
        // Nothing ran: keep upstream's pace of one attempt per --interval,
        // and never spin (upstream at least pays for a fork per attempt).
        await this.inbox.sleep(Math.max(this.opts.interval * 1000, MIN_RETRY_MS) - (Date.now() - started), () => false);
      }
      if (++this.consecutiveFailures === FAILURE_HINT_AFTER) {
        log(
          'hint: the server keeps exiting during its start; read its output above. A server that binds the port itself instead of using the inherited socket (SERVER_STARTER_PORT) fails with "address in use".',
        );
      }
      if (otherSignal) return;
    }
  }

  private spawnGeneration(): number | undefined {
    const env: Record<string, string | undefined> = {
      ...this.env,
      SERVER_STARTER_PORT: serverStarterPort(this.listeners),
      SERVER_STARTER_GENERATION: String(this.generation),
    };
    if (this.notify) env.NOTIFY_SOCKET = this.notify.path;
    const fds: Array<[number, number]> = this.listeners.map((l) => [l.fd, l.childFd]);
    if (this.stdinDevNull && !this.listeners.some((l) => l.childFd === 0)) fds.push([devNullFd(), 0]);
    try {
      const pid = this.os.spawn({ command: this.opts.command, env, fds, cwd: this.opts.dir });
      log(`starting new worker ${pid}`);
      return pid;
    } catch (e) {
      const err = e as BatonError;
      log(err.code === 'ENOENT' && err.message.startsWith('failed to chdir') ? err.message : `failed to exec ${err.message}`);
      return undefined;
    }
  }

  /**
   * Upstream's check: the worker is still alive after --interval (cut short by
   * any signal). With --ready-notify: it sent READY=1 before --ready-timeout.
   */
  private async awaitReady(pid: number): Promise<boolean> {
    if (!this.notify) {
      await this.inbox.sleep(this.opts.interval * 1000, () => this.inbox.signals.length > 0);
      return this.aliveAfterStart(pid);
    }
    const deadline = Date.now() + this.opts.readyTimeout * 1000;
    for (;;) {
      if (this.readyMessageFrom(pid)) return this.aliveAfterStart(pid);
      const exit = this.inbox.takeExit(pid);
      if (exit) {
        log(`new worker ${pid} seems to have failed to start, exit status:${exit.status}`);
        return false;
      }
      if (this.inbox.signals.some((s) => s !== 'HUP')) return true;
      if (Date.now() >= deadline) {
        log(`new worker ${pid} sent no READY=1 within ${this.opts.readyTimeout} secs, sending TERM and giving up on it`);
        this.abandoned.add(pid);
        this.signalAll([pid], 'TERM');
        return false;
      }
      await this.inbox.next(25);
    }
  }

  /** True when `pid` is still running; logs upstream's failure line otherwise. */
  private aliveAfterStart(pid: number): boolean {
    const exit = this.inbox.takeExit(pid);
    if (!exit) return true;
    log(`new worker ${pid} seems to have failed to start, exit status:${exit.status}`);
    return false;
  }

  private openNotifySocket(): void {
    const dir = mkdtempSync(join(tmpdir(), 'baton-notify-'));
    const path = join(dir, 'notify.sock');
    const fd = native.openSocket({ family: 1, type: 'dgram', path, passCred: true, nonblock: true });
    this.notify = { dir, path, fd };
  }

  private closeNotifySocket(): void {
    if (!this.notify) return;
    native.closeFd(this.notify.fd);
    rmSync(this.notify.dir, { recursive: true, force: true });
    this.notify = undefined;
  }

  /** Drains the notify socket; true when `pid` itself sent READY=1. */
  private readyMessageFrom(pid: number): boolean {
    const notify = this.notify as { fd: number };
    let ready = false;
    for (let m = native.recvMsg(notify.fd); m; m = native.recvMsg(notify.fd)) {
      for (const fd of m.fds) native.closeFd(fd);
      if (m.pid !== pid || m.uid !== process.getuid?.()) {
        log(`ignored a notification from pid ${m.pid} uid ${m.uid}: only generation ${this.generation} (pid ${pid}) may report readiness`);
        continue;
      }
      if (m.data.split('\n').includes('READY=1')) ready = true;
    }
    return ready;
  }

  private async cleanup(sig: string): Promise<number> {
    const termSignal = sig === 'TERM' ? this.opts.signalOnTerm : 'TERM';
    if (this.current) this.old.set(this.current.pid, this.current.generation);
    this.current = undefined;
    const pids = this.oldPids();
    log(`received ${sig}, sending ${termSignal} to all workers:${pids.join(',')}`);
    this.signalAll(pids, termSignal);
    for (const pid of this.abandoned) this.old.set(pid, 0);
    while (this.old.size > 0) {
      const exit = this.inbox.takeExit();
      if (!exit) {
        await this.inbox.next();
        continue;
      }
      log(`worker ${exit.pid} died, status:${exit.status}`);
      this.old.delete(exit.pid);
      this.abandoned.delete(exit.pid);
      this.updateStatus();
    }
    log('exiting');
    return 0;
  }

  private oldPids(): number[] {
    return [...this.old.keys()].sort((a, b) => a - b);
  }

  /** Sends `sig` to each pid; with --kill-timeout, KILLs those that outlive it. */
  private signalAll(pids: readonly number[], sig: string): void {
    for (const pid of pids) {
      try {
        this.os.kill(pid, sig);
      } catch {
        // already gone; its exit is (or will be) in the inbox
      }
    }
    const timeout = this.opts.killTimeout;
    if (timeout <= 0 || pids.length === 0) return;
    setTimeout(() => {
      for (const pid of pids) {
        if (!this.old.has(pid) && !this.abandoned.has(pid)) continue;
        log(`worker ${pid} still alive ${timeout} secs after ${sig}, sending KILL`);
        try {
          this.os.kill(pid, 'KILL');
        } catch {
          // exited meanwhile
        }
      }
    }, timeout * 1000).unref();
  }

  private updateStatus(): void {
    const file = this.opts.statusFile;
    if (!file) return;
    const entries = [...this.old].map(([pid, generation]) => ({ pid, generation }));
    if (this.current) entries.push(this.current);
    try {
      this.os.writeStatus(file, entries);
      this.statusWritten = true;
    } catch (e) {
      log(`failed to write status file ${file}: ${(e as Error).message}`);
    }
  }
}

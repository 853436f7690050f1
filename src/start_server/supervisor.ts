// start_server's supervisor loop: Server::Starter 0.35's algorithm, step for
// step, with its log lines, and baton's deploys on top (events and a verdict
// for control clients, bounded retries, coalesced requests, a bound on
// draining generations).
//
// Invariants:
// - The listening sockets are bound once, before the first generation, and
//   stay open here until exit; every generation inherits the same sockets, so
//   a connection waiting in the kernel's queue outlives any generation.
// - A new generation is started before any old one is signalled; an old
//   generation is signalled only after a new one has passed its readiness
//   check (alive after --interval, or READY=1 with --ready-notify). A new
//   generation that fails is retried (up to --max-start-attempts, and within
//   a waiting caller's deadline); the old one keeps serving meanwhile, and
//   stays the one serving when the deploy gives up.
// - Generation numbers grow by one per start attempt, failed ones included.
// - Every child is reaped, and an exit is logged and recorded when it
//   happens (also while a new generation starts); the status file lists
//   exactly the live, accepted workers; the supervisor never writes to stdout.
// - Readiness is taken only from the generation's own pid (under our uid) or
//   from a process holding its per-generation token (BATON_READY_TOKEN: the
//   container of a `docker run` generation); notifications from our older
//   generations are accepted quietly, anyone else's are logged.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeployTrigger, Verdict } from '../control/protocol.ts';
import type { BatonError } from '../errors.ts';
import { type Listener, serverStarterPort } from '../net/listeners.ts';
import { native } from '../net/native.ts';
import { claimSocketPath } from '../net/socket-path.ts';
import type { Exit, Inbox } from '../process/inbox.ts';
import { logLine as log } from '../process/log.ts';
import { signalNumber } from '../process/signals.ts';
import { devNullFd, type SpawnRequest, spawnProcess } from '../process/spawn.ts';
import { type Deploy, DeployLog, type DeploySink } from './deploys.ts';
import { loadEnvdir, perlTrue } from './envdir.ts';
import { type StatusEntry, writeStatusFile } from './files.ts';
import type { StartServerOptions } from './options.ts';
import { StderrTail } from './stderr-tail.ts';

/** Signals the loop takes (QUIT like INT; USR1/USR2 are logged and ignored). */
export const HANDLED_SIGNALS = ['HUP', 'TERM', 'INT', 'QUIT', 'USR1', 'USR2'];
/** What the inbox carries for a control client's deploy request (not a signal). */
const DEPLOY = 'DEPLOY';
const TRIGGERS = new Set(['HUP', DEPLOY]);

const FAILURE_HINT_AFTER = 3;
const MIN_RETRY_MS = 100;
/** A generation given up on gets this long after TERM before KILL (unless --kill-timeout says otherwise). */
const ABANDON_KILL_MS = 5000;
/** How many generations' readiness tokens are remembered (a late notification of an old one is not a forgery). */
const RECENT_TOKENS = 64;

type Readiness = { ready: true } | { ready: false; how: 'exited' | 'not ready'; status?: number } | { ready: false; how: 'stopping' };

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
  /** Workers given up on before they were accepted (not ready in time): pid -> generation. */
  private readonly abandoned = new Map<number, number>();
  /** Old workers --max-draining already stopped for good: no longer counted, not stopped twice. */
  private readonly stoppedForGood = new Set<number>();
  private lastRestart = 0;
  private consecutiveFailures = 0;
  private notify: { path: string; fd: number; dir: string | undefined } | undefined;
  /** The readiness token of each generation still starting: pid -> token. */
  private readonly tokens = new Map<number, string>();
  private readonly tails = new Map<number, StderrTail>();
  /** Generations reaped lately: a notification of theirs (STOPPING=1) may still be on its way. */
  private readonly former = new Set<number>();
  /**
   * The tokens of recent generations: their notifications (an old
   * container's STOPPING=1, sent from a pid we never knew) are taken quietly.
   */
  private readonly issued = new Set<string>();
  readonly deploys = new DeployLog();
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

  /** A control client asks for a deploy; it hears the events and verdict of the next one to start. */
  requestDeploy(sink: DeploySink): void {
    this.deploys.request(sink);
    this.inbox.push(DEPLOY);
  }

  /** The generations alive now, for `baton status`. */
  generations(): Array<{ generation: number; pid: number; state: 'serving' | 'starting' | 'draining' }> {
    const out: Array<{ generation: number; pid: number; state: 'serving' | 'starting' | 'draining' }> = [];
    for (const [pid, generation] of this.old) if (pid !== this.current?.pid) out.push({ generation, pid, state: 'draining' });
    if (this.current) out.push({ ...this.current, state: this.old.has(this.current.pid) ? 'draining' : 'serving' });
    for (const pid of this.tokens.keys()) out.push({ generation: this.generation, pid, state: 'starting' });
    return out.sort((a, b) => a.generation - b.generation);
  }

  /** Runs until TERM/INT/QUIT has stopped every worker; resolves to the exit code. */
  async run(): Promise<number> {
    if (this.opts.readyNotify) this.openNotifySocket();
    try {
      if (!(await this.deploy('start'))) return await this.giveUp();
      for (;;) {
        const exit = await this.wait();
        this.env = { ...this.baseEnv, ...loadEnvdir(this.baseEnv.ENVDIR) };
        if (perlTrue(this.env.ENABLE_AUTO_RESTART) && !this.env.AUTO_RESTART_INTERVAL) this.env.AUTO_RESTART_INTERVAL = '360';
        if (exit) await this.onExit(exit);
        let trigger: 'HUP' | 'control' | undefined;
        while (this.inbox.signals.length > 0 && trigger === undefined) {
          const sig = this.inbox.signals.shift() as string;
          if (sig === DEPLOY) {
            // one deploy covers every request made before it starts
            if (this.deploys.requested) trigger = 'control';
            continue;
          }
          if (sig === 'HUP') {
            log('received HUP, spawning a new worker');
            trigger = 'HUP';
            continue;
          }
          if (sig === 'USR1' || sig === 'USR2') {
            log(`received ${sig}, ignored (send HUP to restart, TERM to stop)`);
            continue;
          }
          return await this.cleanup(sig);
        }
        if (trigger !== undefined && (this.opts.coalesceHup || trigger === 'control')) this.coalesce();
        if (trigger === undefined && perlTrue(this.env.ENABLE_AUTO_RESTART) && this.autoRestartDue()) trigger = 'HUP';
        if (trigger !== undefined) await this.deploy(trigger);
      }
    } finally {
      this.closeNotifySocket();
    }
  }

  /**
   * Requests that queued up while a deploy ran are covered by the next one:
   * control requests always, HUPs with --coalesce-hup (upstream runs one
   * deploy per HUP).
   */
  private coalesce(): void {
    const sigs = this.inbox.signals;
    let dropped = 0;
    for (let i = 0; i < sigs.length && TRIGGERS.has(sigs[i] as string); ) {
      if (sigs[i] === DEPLOY || this.opts.coalesceHup) {
        if (sigs[i] === 'HUP') dropped++;
        sigs.splice(i, 1);
      } else i++;
    }
    if (dropped > 0) log(`${dropped} more HUP${dropped > 1 ? 's' : ''} received meanwhile: one deploy covers them`);
  }

  private async wait(): Promise<Exit | undefined> {
    const block = this.inbox.signals.length === 0;
    const exit = this.inbox.takeExit();
    if (exit || !block) return exit;
    await this.inbox.next(perlTrue(this.baseEnv.ENABLE_AUTO_RESTART) ? 1000 : undefined);
    return this.inbox.takeExit();
  }

  private serving(): Verdict['serving'] {
    return this.current && !this.old.has(this.current.pid) ? { ...this.current } : undefined;
  }

  private async onExit(exit: Exit): Promise<void> {
    if (exit.pid === this.current?.pid && !this.old.has(exit.pid)) {
      log(`worker ${exit.pid} died unexpectedly with status:${exit.status}, restarting`);
      this.current = undefined;
      this.updateStatus();
      if (!(await this.deploy('crash'))) this.inbox.push('TERM');
    } else this.noteExit(exit);
  }

  /** An exit other than the serving generation's or the starting one's: logged and recorded now. */
  private noteExit({ pid, status }: Exit): void {
    const abandoned = this.abandoned.get(pid);
    if (abandoned !== undefined) {
      this.abandoned.delete(pid);
      log(`abandoned worker ${pid} exited, status:${status}`);
      return;
    }
    const generation = this.old.get(pid);
    if (generation === undefined) return;
    this.remember(pid);
    log(`old worker ${pid} died, status:${status}`);
    this.old.delete(pid);
    this.stoppedForGood.delete(pid);
    this.updateStatus();
    this.deploys.gone(pid, generation, status, this.serving());
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

  /** A deploy: a new generation, then the old ones signalled; or, when none starts, the old one kept. */
  /** Resolves to false when no generation serves afterwards (the first start, or a restart after a crash, gave up). */
  private async deploy(trigger: DeployTrigger): Promise<boolean> {
    const d = this.deploys.begin(trigger);
    const previous = this.current;
    if (previous) this.old.set(previous.pid, previous.generation);
    const outcome = await this.startWorker(d);
    if (outcome !== 'started') {
      // the previous generation goes on serving, unless it died meanwhile
      this.current = previous && this.old.delete(previous.pid) ? previous : undefined;
      this.updateStatus();
      d.end(outcome, this.serving());
      return this.current !== undefined || outcome === 'stopped';
    }
    if (trigger === 'start' || trigger === 'crash') {
      this.deploys.drain(d, this.serving());
      return true;
    }
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
    const signalled = this.oldPids();
    for (const pid of signalled) {
      d.waitingFor.add(pid);
      d.emit({ event: 'stopping', deploy: d.id, generation: this.old.get(pid) as number, pid, signal: this.opts.signalOnHup, ms: d.ms() });
    }
    this.signalAll(signalled, this.opts.signalOnHup);
    this.limitDraining();
    this.deploys.drain(d, this.serving());
    return true;
  }

  /**
   * --max-draining: when more old generations are still draining than that
   * (long-lived connections, a deploy storm), the oldest are stopped for good:
   * TERM now, KILL after --kill-timeout (or 5 s).
   */
  private limitDraining(): void {
    const max = this.opts.maxDraining;
    const draining = [...this.old].filter(([pid]) => !this.stoppedForGood.has(pid));
    if (max <= 0 || draining.length <= max) return;
    const oldest = draining.sort((a, b) => a[1] - b[1]).slice(0, draining.length - max);
    for (const [pid, generation] of oldest) {
      log(
        `${draining.length} generations draining, more than --max-draining=${max}: stopping generation ${generation} (pid ${pid}) for good`,
      );
      this.stoppedForGood.add(pid);
      this.killLater(pid, 'TERM', this.opts.killTimeout > 0 ? this.opts.killTimeout * 1000 : ABANDON_KILL_MS);
    }
  }

  /**
   * Starts generations until one passes the readiness check (upstream's
   * start_worker); gives up after --max-start-attempts failed starts, or at
   * the deadline of the callers waiting on this deploy.
   */
  private async startWorker(d: Deploy): Promise<'started' | 'start-failed' | 'not-ready' | 'stopped'> {
    for (let attempt = 1; ; attempt++) {
      this.generation++;
      const started = Date.now();
      const pid = this.spawnGeneration();
      if (pid !== undefined) d.emit({ event: 'started', deploy: d.id, generation: this.generation, pid, attempt, ms: d.ms() });
      const r: Readiness = pid === undefined ? { ready: false, how: 'exited' } : await this.awaitReady(pid, d.deadline);
      const tail = pid === undefined ? undefined : this.tails.get(pid);
      this.tokens.delete(pid as number);
      // told to stop meanwhile: taken as started, as upstream does, so the stop reaches it too
      if (pid !== undefined && (r.ready || r.how === 'stopping')) {
        tail?.stopKeeping();
        this.current = { pid, generation: this.generation };
        this.lastRestart = Math.floor(Date.now() / 1000);
        this.consecutiveFailures = 0;
        this.updateStatus();
        d.emit({ event: 'ready', deploy: d.id, generation: this.generation, pid, ms: d.ms() });
        return 'started';
      }
      const how = pid === undefined ? 'not run' : r.ready ? 'exited' : (r.how as 'exited' | 'not ready');
      d.emit({
        event: 'start-failed',
        deploy: d.id,
        generation: this.generation,
        how,
        ms: d.ms(),
        ...(pid === undefined ? {} : { pid }),
        ...('status' in r && r.status !== undefined ? { status: r.status } : {}),
        ...(tail ? { stderr: tail.tail() } : {}),
      });
      if (pid !== undefined) this.tails.delete(pid);
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
      if (this.stopRequested()) return 'stopped';
      const outcome = how === 'not ready' ? 'not-ready' : 'start-failed';
      const max = this.opts.maxStartAttempts;
      if (max > 0 && attempt >= max) {
        log(`gave up after ${attempt} failed start${attempt > 1 ? 's' : ''} of this deploy; ${this.servingLine()}`);
        return outcome;
      }
      const deadline = d.deadline;
      if (deadline !== undefined && Date.now() >= deadline) {
        log(`gave up: the deploy's caller stopped waiting; ${this.servingLine()}`);
        return outcome;
      }
    }
  }

  private remember(pid: number): void {
    this.former.add(pid);
    if (this.former.size > 64) this.former.delete(this.former.values().next().value as number);
  }

  /** The first start gave up (--max-start-attempts): nothing to serve with, so stop. */
  private async giveUp(): Promise<number> {
    log('no generation could be started; exiting');
    await this.cleanup('TERM');
    return 1;
  }

  private servingLine(): string {
    const p = this.current;
    return p ? `generation ${p.generation} (pid ${p.pid}) keeps serving` : 'no generation is serving';
  }

  private stopRequested(): boolean {
    return this.inbox.signals.some((s) => !TRIGGERS.has(s) && s !== 'USR1' && s !== 'USR2');
  }

  private spawnGeneration(): number | undefined {
    const token = randomBytes(16).toString('hex');
    const env: Record<string, string | undefined> = {
      ...this.env,
      SERVER_STARTER_PORT: serverStarterPort(this.listeners),
      SERVER_STARTER_GENERATION: String(this.generation),
    };
    if (this.notify) {
      env.NOTIFY_SOCKET = this.notify.path;
      env.BATON_READY_TOKEN = token;
    }
    const fds: Array<[number, number]> = this.listeners.map((l) => [l.fd, l.childFd]);
    if (this.stdinDevNull && !this.listeners.some((l) => l.childFd === 0)) fds.push([devNullFd(), 0]);
    const tail = this.opts.stderrTail > 0 ? new StderrTail(this.opts.stderrTail) : undefined;
    if (tail && !this.listeners.some((l) => l.childFd === 2)) fds.push([tail.childFd, 2]);
    try {
      const pid = this.os.spawn({ command: this.opts.command, env, fds, cwd: this.opts.dir });
      log(`starting new worker ${pid}`);
      this.tokens.set(pid, token);
      this.issued.add(token);
      if (this.issued.size > RECENT_TOKENS) this.issued.delete(this.issued.values().next().value as string);
      if (tail) this.tails.set(pid, tail);
      return pid;
    } catch (e) {
      const err = e as BatonError;
      log(err.code === 'ENOENT' && err.message.startsWith('failed to chdir') ? err.message : `failed to exec ${err.message}`);
      return undefined;
    } finally {
      tail?.spawned();
    }
  }

  /**
   * Upstream's check: the worker is still alive after --interval (cut short by
   * any signal). With --ready-notify: it sent READY=1 before --ready-timeout
   * (or before the waiting caller's `deadline`). Either way, other exits are
   * noted as they come.
   */
  private async awaitReady(pid: number, deadline: number | undefined): Promise<Readiness> {
    if (!this.notify) {
      const end = Date.now() + this.opts.interval * 1000;
      do {
        const exit = this.takeExitsFor(pid);
        if (exit) return this.failedStart(pid, exit.status);
        if (this.inbox.signals.length > 0) break;
        await this.inbox.next(Math.max(0, end - Date.now()));
      } while (Date.now() < end);
      const exit = this.takeExitsFor(pid);
      return exit ? this.failedStart(pid, exit.status) : { ready: true };
    }
    const readyBy = Math.min(Date.now() + this.opts.readyTimeout * 1000, deadline ?? Number.POSITIVE_INFINITY);
    for (;;) {
      if (this.readyMessageFrom(pid)) {
        const exit = this.takeExitsFor(pid);
        return exit ? this.failedStart(pid, exit.status) : { ready: true };
      }
      const exit = this.takeExitsFor(pid);
      if (exit) return this.failedStart(pid, exit.status);
      if (this.stopRequested()) return { ready: false, how: 'stopping' };
      if (Date.now() >= readyBy) {
        const within = deadline !== undefined && readyBy === deadline ? "the deploy's time" : `${this.opts.readyTimeout} secs`;
        log(`new worker ${pid} sent no READY=1 within ${within}, sending TERM and giving up on it`);
        return this.abandon(pid);
      }
      await this.inbox.next(25);
    }
  }

  private failedStart(pid: number, status: number): Readiness {
    log(`new worker ${pid} seems to have failed to start, exit status:${status}`);
    return { ready: false, how: 'exited', status };
  }

  /**
   * Gives up on a generation still starting: TERM, and KILL if it outlives the
   * grace; the caller hears the verdict once it is gone.
   */
  private async abandon(pid: number): Promise<Readiness> {
    this.abandoned.set(pid, this.generation);
    this.killLater(pid, 'TERM', this.opts.killTimeout > 0 ? this.opts.killTimeout * 1000 : ABANDON_KILL_MS);
    for (;;) {
      const exit = this.takeExitsFor(pid);
      if (exit) {
        this.abandoned.delete(pid);
        log(`abandoned worker ${pid} exited, status:${exit.status}`);
        return { ready: false, how: 'not ready', status: exit.status };
      }
      await this.inbox.next(100);
    }
  }

  /** Takes every exit reaped so far: `pid`'s is returned, the others are noted. */
  private takeExitsFor(pid: number): Exit | undefined {
    let mine: Exit | undefined;
    for (let e = this.inbox.takeExit(); e; e = this.inbox.takeExit()) {
      if (e.pid === pid) mine = e;
      else if (e.pid === this.current?.pid && !this.old.has(e.pid)) {
        // the serving generation died while its successor starts: the successor takes over
        log(`worker ${e.pid} died unexpectedly with status:${e.status}`);
        this.current = undefined;
        this.updateStatus();
      } else this.noteExit(e);
    }
    return mine;
  }

  /**
   * In a private directory, or at --notify-socket (a path a container can
   * have mounted). Anyone may write to it: what counts is who sent a
   * message (the generation's pid, under our uid) or what it holds (the
   * generation's token).
   */
  private openNotifySocket(): void {
    const dir = this.opts.notifySocket === undefined ? mkdtempSync(join(tmpdir(), 'baton-notify-')) : undefined;
    const path = this.opts.notifySocket ?? join(dir as string, 'notify.sock');
    if (dir === undefined) claimSocketPath(path);
    const fd = native.openSocket({ family: 1, type: 'dgram', path, passCred: true, nonblock: true, mode: 0o622 });
    this.notify = { path, fd, dir };
  }

  private closeNotifySocket(): void {
    if (!this.notify) return;
    native.closeFd(this.notify.fd);
    if (this.notify.dir) rmSync(this.notify.dir, { recursive: true, force: true });
    else claimSocketPath(this.notify.path);
    this.notify = undefined;
  }

  /**
   * Drains the notify socket; true when `pid` itself, or a process holding
   * its token, sent READY=1. Messages from our other generations (an old
   * one's STOPPING=1) are taken quietly; anyone else's are logged.
   */
  private readyMessageFrom(pid: number): boolean {
    const notify = this.notify as { fd: number };
    const token = this.tokens.get(pid);
    let ready = false;
    for (let m = native.recvMsg(notify.fd); m; m = native.recvMsg(notify.fd)) {
      for (const fd of m.fds) native.closeFd(fd);
      const lines = m.data.split('\n');
      const ours = m.uid === process.getuid?.();
      const fromIt = (ours && m.pid === pid) || (token !== undefined && lines.includes(`BATON_READY_TOKEN=${token}`));
      if (fromIt) {
        if (lines.includes('READY=1')) ready = true;
        continue;
      }
      const known =
        m.pid !== undefined && (this.old.has(m.pid) || this.abandoned.has(m.pid) || this.former.has(m.pid) || m.pid === this.current?.pid);
      if ((ours && known) || lines.some((l) => l.startsWith('BATON_READY_TOKEN=') && this.issued.has(l.slice(18)))) continue;
      log(`ignored a notification from pid ${m.pid} uid ${m.uid}: only generation ${this.generation} (pid ${pid}) may report readiness`);
    }
    return ready;
  }

  private async cleanup(sig: string): Promise<number> {
    const termSignal = sig === 'TERM' ? this.opts.signalOnTerm : 'TERM';
    if (this.current) this.old.set(this.current.pid, this.current.generation);
    this.current = undefined;
    this.deploys.stopAll(undefined);
    const pids = this.oldPids();
    log(`received ${sig}, sending ${termSignal} to all workers:${pids.join(',')}`);
    this.signalAll(pids, termSignal);
    for (const [pid] of this.abandoned) this.old.set(pid, 0);
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

  /** Sends `sig` now and KILL after `ms` if the process is still one of ours. */
  private killLater(pid: number, sig: string, ms: number): void {
    this.signalAll([pid], sig, ms / 1000);
  }

  /** Sends `sig` to each pid; with a kill timeout (--kill-timeout), KILLs those that outlive it. */
  private signalAll(pids: readonly number[], sig: string, killAfter = this.opts.killTimeout): void {
    for (const pid of pids) {
      try {
        this.os.kill(pid, sig);
      } catch {
        // already gone; its exit is (or will be) in the inbox
      }
    }
    if (killAfter <= 0 || pids.length === 0) return;
    setTimeout(() => {
      for (const pid of pids) {
        if (!this.old.has(pid) && !this.abandoned.has(pid)) continue;
        log(`worker ${pid} still alive ${killAfter} secs after ${sig}, sending KILL`);
        try {
          this.os.kill(pid, 'KILL');
        } catch {
          // exited meanwhile
        }
      }
    }, killAfter * 1000).unref();
  }

  private updateStatus(): void {
    const file = this.opts.statusFile;
    if (!file) return;
    const entries = [...this.old].map(([pid, generation]) => ({ pid, generation }));
    if (this.current && !this.old.has(this.current.pid)) entries.push(this.current);
    try {
      this.os.writeStatus(file, entries);
      this.statusWritten = true;
    } catch (e) {
      log(`failed to write status file ${file}: ${(e as Error).message}`);
    }
  }
}

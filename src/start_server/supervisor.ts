// start_server's supervisor loop: Server::Starter 0.35's algorithm, step for
// step, with its log lines, and baton's deploys on top (events and a verdict
// for control clients, readiness it can see, bounded and paced retries,
// coalesced requests, a bound on draining generations).
//
import { getPriority } from 'node:os';
import { native } from '../net/native.ts';
import { BOOT_NICE, watchBoot } from '../process/boot-priority.ts';
// Invariants:
// - An old generation is signalled only after a newer one has been seen
//   serving (--ready: alive after --interval; READY=1; one of its processes
//   waiting for connections on the inherited socket). Nothing a new
//   generation, its launcher, a signal or a timeout does leaves the port with
//   no generation accepting, unless the operator stops the service: a start
//   that fails, exits, is never ready or is stopped by TERM is retried or
//   given up on, and the generation serving before serves on.
// - TERM/INT/QUIT stop; they never start or promote a generation, even with
//   a deploy pending. A first generation that runs but is never seen ready
//   is kept (nothing else serves), not stopped; the supervisor never exits on
//   its own while a generation serves.
// - Failed starts are retried no faster than --interval, the pause doubling
//   (to 10 s, or --interval if longer) while they keep failing; a start that
//   succeeds resets it.
// - The listening sockets are bound once, before the first generation, and
//   stay open here until exit; every generation inherits the same sockets,
//   so a connection waiting in the kernel's queue outlives any generation.
// - Generation numbers grow by one per start attempt, failed ones included.
// - Every child is reaped, and an exit is logged and recorded when it
//   happens (also while a new generation starts); the status file lists
//   exactly the live, accepted generations; the supervisor never writes to
//   stdout.
// - Readiness is taken only from the generation's own pid (under our uid) or
//   from a process holding its token (notify-socket.ts).
// Log lines that upstream prints keep its wording, "worker" included.

import type { DeployRecord, DeployTrigger, StatusReport, Verdict } from '../control/protocol.ts';
import { type StatusEntry, writeStatusFile } from '../control/status-file.ts';
import type { BatonError } from '../errors.ts';
import { socketInode } from '../net/acceptors.ts';
import type { Listener } from '../net/listeners.ts';
import type { Exit, Inbox } from '../process/inbox.ts';
import { logLine as log } from '../process/log.ts';
import { signalNumber } from '../process/signals.ts';
import { type SpawnRequest, spawnProcess } from '../process/spawn.ts';
import { type Deploy, DeployLog, type DeploySink } from './deploys.ts';
import { perlTrue } from './envdir.ts';
import { type Generation, Generations, type GenerationsSnapshot } from './generations.ts';
import { generationEnv, generationFds } from './inheritance.ts';
import { Metrics } from './metrics.ts';
import { NotifySocket } from './notify-socket.ts';
import type { StartServerOptions } from './options.ts';
import { failureHint, ReadinessJudge, USE_INHERITED } from './readiness.ts';
import { ServiceManager } from './service-manager.ts';
import { StderrTail } from './stderr-tail.ts';
import { autoRestartDue, type Env, killOldDelay, passEnv } from './upstream-env.ts';

/** Signals the loop takes (QUIT like INT; USR1 reopens --log-file, USR2 upgrades baton in place, each logged and otherwise ignored where it does not apply). */
export const HANDLED_SIGNALS = ['HUP', 'TERM', 'INT', 'QUIT', 'USR1', 'USR2'];
/** What the inbox carries for a control client's deploy request (not a signal). */
const DEPLOY = 'DEPLOY';
/** ...and for an upgrade of the supervisor itself. */
export const UPGRADE = 'UPGRADE';
const TRIGGERS = new Set(['HUP', DEPLOY]);
const STOPS = new Set(['TERM', 'INT', 'QUIT']);

/** Retries of a failing start: never faster than this, even with --interval=0. */
const MIN_RETRY_MS = 100;
/** ...and the pause doubles up to this (or --interval, if longer). */
const MAX_RETRY_MS = 10_000;
/** A generation given up on gets this long after TERM before KILL (unless --kill-timeout says otherwise). */
const ABANDON_KILL_MS = 5000;
/** How often a starting generation is looked at (notifications, its processes). */
const READY_POLL_MS = 25;

type Started =
  | { ok: true; g: Generation; how: string }
  | { ok: false; how: 'exited'; status: number }
  | { ok: false; how: 'not ready' }
  | { ok: false; how: 'stopping' };

/** What a supervisor hands over to its next program (upgrade). */
export interface SupervisorSnapshot {
  number: number;
  failures: number;
  lastRestart: number;
  generations: GenerationsSnapshot;
  deploys: { seq: number; records: DeployRecord[] };
  metrics: object;
  notify: { fd: number; path: string; dir: string | undefined } | undefined;
  statusWritten: boolean;
}

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
  baseEnv: Env;
  /** Give the children /dev/null as stdin (after --daemonize). */
  stdinDevNull: boolean;
  /** --log-file: opens the file at its path again (USR1, after logrotate moved it); the reason when it cannot. */
  reopenLog?: (() => string | undefined) | undefined;
  /**
   * An upgrade of baton itself (USR2, baton upgrade): run at a quiet moment
   * of the loop (no deploy under way); it does not return when it worked (the
   * process is a new program), and resolves to the reason when it did not.
   */
  upgrade?: (() => Promise<string>) | undefined;
  /** After an upgrade's exec: what the supervisor was. */
  restore?: SupervisorSnapshot | undefined;
  os?: SupervisorOs;
}

export class Supervisor {
  private readonly opts: StartServerOptions;
  private readonly inbox: Inbox;
  private readonly listeners: readonly Listener[];
  private readonly baseEnv: Env;
  private readonly stdinDevNull: boolean;
  private readonly os: SupervisorOs;
  private readonly judge: ReadinessJudge;
  private readonly reopenLog: (() => string | undefined) | undefined;
  private readonly upgrade: (() => Promise<string>) | undefined;
  private readonly restored: boolean;
  private env: Env;
  /** SERVER_STARTER_GENERATION of the last start attempt. */
  private number = 0;
  private readonly gens = new Generations();
  private notify: NotifySocket | undefined;
  private lastRestart = 0;
  /** Failed starts in a row (the retry pace, and when to stop repeating a hint). */
  private failures = 0;
  private lastHint: string | undefined;
  /** The deploy under way, for requests that arrive meanwhile. */
  private current: Deploy | undefined;
  readonly deploys = new DeployLog();
  /** --metrics (kept whether served or not: baton status reads it too). */
  readonly metrics = new Metrics();
  /** Our own service manager (systemd), when it listens for notifications. */
  private readonly manager: ServiceManager | undefined;
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
    this.manager = ServiceManager.fromEnv(cfg.baseEnv, log);
    this.reopenLog = cfg.reopenLog;
    this.upgrade = cfg.upgrade;
    this.restored = cfg.restore !== undefined;
    if (cfg.restore) this.restoreFrom(cfg.restore);
    this.deploys.onEnd = (v, r) => {
      this.metrics.deployEnded(v, r);
      if (r.trigger === 'HUP' || r.trigger === 'control') this.manager?.ready(verdictStatus(v));
    };
    this.gens.onReaped = (g) => this.metrics.generationGone(g.number);
    this.judge = new ReadinessJudge(cfg.options.ready, {
      inodes: new Set(cfg.listeners.flatMap((l) => inodeOf(l.fd))),
      ports: new Set(cfg.listeners.flatMap((l) => tcpPortOf(l.fd))),
      describe: cfg.listeners.map((l) => `${l.key}, fd ${l.childFd}`).join('; '),
    });
  }

  /** For an upgrade's exec, at a quiet moment of the loop: all that the new program needs to go on. */
  snapshot(): SupervisorSnapshot {
    return {
      number: this.number,
      failures: this.failures,
      lastRestart: this.lastRestart,
      generations: this.gens.snapshot(),
      deploys: this.deploys.snapshot(),
      metrics: this.metrics.snapshot(),
      notify: this.notify && { fd: this.notify.fd, path: this.notify.path, dir: this.notify.dir },
      statusWritten: this.statusWritten,
    };
  }

  /** The fds the new program must find open. */
  keptFds(): number[] {
    return [...(this.notify ? [this.notify.fd] : []), ...this.gens.all().flatMap((g) => (g.tail ? [g.tail.readFd] : []))];
  }

  private restoreFrom(snap: SupervisorSnapshot): void {
    this.number = snap.number;
    this.failures = snap.failures;
    this.lastRestart = snap.lastRestart;
    this.gens.restore(snap.generations, (fd) => new StderrTail(this.opts.stderrTail, fd));
    this.deploys.restore(snap.deploys);
    this.metrics.restore(snap.metrics);
    if (snap.notify) this.notify = new NotifySocket(undefined, snap.notify);
    this.statusWritten = snap.statusWritten;
    // the KILL timers did not survive the exec: armed again for those still owed one
    for (const g of this.gens.inState('stopping', 'abandoned')) this.signalAll([g.pid], 'TERM', this.abandonKillS());
  }

  /** A control client asks for a deploy; it hears the events and verdict of the next one to start. */
  requestDeploy(sink: DeploySink): void {
    const d = this.current;
    if (d) {
      const starting = this.gens.inState('starting')[0];
      const why =
        d.record.trigger === 'start' || d.record.trigger === 'crash'
          ? `generation ${starting?.number ?? this.number} is still starting; this deploy follows once it serves`
          : `deploy ${d.id} is under way; this one follows it`;
      sink.event({ event: 'queued', deploy: 0, why, ms: 0 });
    }
    this.deploys.request(sink);
    this.inbox.push(DEPLOY);
  }

  /** The Prometheus text, as of now. */
  metricsText(): string {
    this.readNotifications();
    return this.metrics.render({
      serving: this.gens.serving()?.number,
      draining: this.gens.inState('draining', 'stopping').length,
      generations: this.gens.all().map((g) => ({ generation: g.number, state: g.state })),
    });
  }

  /** What runs now, for `baton status`. */
  status(): Pick<StatusReport, 'generations' | 'deploys'> {
    this.readNotifications();
    return {
      generations: this.gens.all().map((g) => {
        const connections = this.metrics.connectionsOf(g.number);
        return {
          generation: g.number,
          pid: g.pid,
          state: g.state,
          startedAt: g.startedAt,
          ...(connections === undefined ? {} : { connections }),
        };
      }),
      deploys: this.deploys.history(),
    };
  }

  /** Runs until TERM/INT/QUIT has stopped every generation; resolves to the exit code. */
  async run(): Promise<number> {
    // also for --metrics: baton serve generations report on it
    if (!this.notify && (this.opts.ready !== 'interval' || this.opts.metrics !== undefined))
      this.notify = new NotifySocket(this.opts.notifySocket);
    try {
      if (!this.restored) {
        if (!(await this.deploy('start'))) return await this.giveUp();
        this.manager?.ready(`generation ${this.gens.serving()?.number} serves`);
      }
      for (;;) {
        const exit = await this.wait();
        this.env = passEnv(this.baseEnv);
        if (exit) await this.onExit(exit);
        // a stop wins over any deploy queued before it
        const stop = this.inbox.signals.find((s) => STOPS.has(s));
        if (stop) return await this.cleanup(stop);
        let trigger: 'HUP' | 'control' | undefined;
        while (this.inbox.signals.length > 0 && trigger === undefined) {
          const sig = this.inbox.signals.shift() as string;
          if (sig === DEPLOY) {
            // one deploy covers every request made before it starts
            if (this.deploys.requested) trigger = 'control';
          } else if (sig === 'HUP') {
            log('received HUP, spawning a new worker');
            trigger = 'HUP';
          } else if ((sig === 'USR2' || sig === UPGRADE) && this.upgrade) {
            log(`${sig === UPGRADE ? 'asked' : 'received USR2'}: upgrading baton in place`);
            // resolves only when it did not happen (on success this process is already the new program)
            log(`upgrade refused: ${await this.upgrade()}; this supervisor runs on unchanged`);
          } else if (sig === 'USR1' && this.reopenLog) {
            const why = this.reopenLog();
            log(
              why
                ? `received USR1: could not reopen the log file (${why}); still writing to the old one`
                : 'received USR1: reopened the log file',
            );
          } else log(`received ${sig}, ignored (send HUP to restart, TERM to stop)`);
        }
        if (trigger !== undefined && (this.opts.coalesceHup || trigger === 'control')) this.coalesce();
        if (trigger === undefined && autoRestartDue(this.env, this.lastRestart, this.gens.inState('draining').length > 0, log))
          trigger = 'HUP';
        if (trigger !== undefined && !(await this.deploy(trigger)) && !this.stopRequested()) {
          // the serving generation died while its successor failed: start one as after a crash
          log('no generation is serving; starting one');
          if (!(await this.deploy('crash'))) this.inbox.push('TERM');
        }
      }
    } finally {
      this.notify?.close();
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
    const g = this.gens.serving();
    return g ? { generation: g.number, pid: g.pid } : undefined;
  }

  private async onExit(exit: Exit): Promise<void> {
    const g = this.gens.get(exit.pid);
    if (g?.state !== 'serving') {
      this.noteExit(exit);
      return;
    }
    log(`worker ${exit.pid} died unexpectedly with status:${exit.status}, restarting`);
    this.gens.reaped(exit.pid);
    this.updateStatus();
    if (!(await this.deploy('crash'))) this.inbox.push('TERM');
  }

  /** An exit other than the serving generation's or the starting one's: logged and recorded now. */
  private noteExit({ pid, status }: Exit): void {
    const g = this.gens.reaped(pid);
    if (!g) return;
    if (g.state === 'abandoned' || g.state === 'starting') {
      log(`abandoned worker ${pid} exited, status:${status}`);
      return;
    }
    log(`old worker ${pid} died, status:${status}`);
    this.updateStatus();
    this.deploys.gone(pid, g.number, status, this.serving());
  }

  /**
   * A deploy: a new generation, then the old ones signalled; or, when none
   * gets started, the old one kept. Resolves to false when no generation
   * serves afterwards (a first start, or a restart after a crash, gave up).
   */
  private async deploy(trigger: DeployTrigger): Promise<boolean> {
    const d = this.deploys.begin(trigger);
    if (trigger === 'HUP' || trigger === 'control') this.manager?.reloading(`deploy ${d.id}: generation ${this.number + 1} starting`);
    this.current = d;
    try {
      const started = await this.startGeneration(d);
      if (started === undefined) return this.gens.serving() !== undefined || this.stopRequested();
      const previous = this.gens.serving();
      started.state = 'serving';
      if (previous) previous.state = 'draining';
      this.lastRestart = Math.floor(Date.now() / 1000);
      this.updateStatus();
      if (trigger === 'start' || trigger === 'crash') {
        this.deploys.drain(d, this.serving());
        return true;
      }
      const old = () => this.gens.inState('draining', 'stopping').map((g) => g.pid);
      const pids = old().sort((a, b) => a - b);
      log(`new worker is now running, sending ${this.opts.signalOnHup} to old workers:${pids.length ? pids.join(',') : 'none'}`);
      const delay = killOldDelay(this.env, log);
      if (delay !== 0) {
        log(`sleeping ${delay} secs before killing old workers`);
        await this.inbox.sleep(delay * 1000, () => false);
      }
      log('killing old workers');
      const now = Date.now();
      for (const g of this.gens.inState('draining', 'stopping')) {
        g.signalledAt ??= now;
        d.waitingFor.add(g.pid);
        d.emit({ event: 'stopping', deploy: d.id, generation: g.number, pid: g.pid, signal: this.opts.signalOnHup, ms: d.ms() });
      }
      this.signalAll(old(), this.opts.signalOnHup);
      this.limitDraining();
      this.deploys.drain(d, this.serving());
      return true;
    } finally {
      this.current = undefined;
    }
  }

  /**
   * --max-draining: when more old generations are still draining than that
   * (long-lived connections, a deploy storm), the oldest are stopped for good:
   * TERM now, KILL after --kill-timeout (or 5 s). Each is stopped once, and
   * no longer counted.
   */
  private limitDraining(): void {
    const max = this.opts.maxDraining;
    const draining = this.gens.inState('draining');
    if (max <= 0 || draining.length <= max) return;
    for (const g of draining.slice(0, draining.length - max)) {
      log(
        `${draining.length} generations draining, more than --max-draining=${max}: stopping generation ${g.number} (pid ${g.pid}) for good`,
      );
      g.state = 'stopping';
      this.signalAll([g.pid], 'TERM', this.abandonKillS());
    }
  }

  private abandonKillS(): number {
    return this.opts.killTimeout > 0 ? this.opts.killTimeout : ABANDON_KILL_MS / 1000;
  }

  /**
   * Starts generations until one is seen serving (upstream's start_worker);
   * undefined when the deploy gives up (--max-start-attempts, the waiting
   * caller's deadline) or is stopped, after ending it so. A first generation
   * that runs but is never seen ready is kept rather than stopped when no
   * other serves.
   */
  private async startGeneration(d: Deploy): Promise<Generation | undefined> {
    for (let attempt = 1; ; attempt++) {
      if (this.stopRequested()) return this.endDeploy(d, 'stopped');
      this.number++;
      const startedAt = Date.now();
      const g = this.spawnGeneration();
      if (g) d.emit({ event: 'started', deploy: d.id, generation: g.number, pid: g.pid, attempt, ms: d.ms() });
      const r: Started = g ? await this.awaitReady(g, d.deadline) : { ok: false, how: 'exited', status: 127 << 8 };
      if (r.ok) {
        r.g.tail?.stopKeeping();
        r.g.readyAt = Date.now();
        this.failures = 0;
        this.lastHint = undefined;
        d.emit({ event: 'ready', deploy: d.id, generation: r.g.number, pid: r.g.pid, how: r.how, ms: d.ms() });
        return r.g;
      }
      // told to stop while it started: it is stopped with the rest, never promoted
      if (r.how === 'stopping') return this.endDeploy(d, 'stopped');
      if (r.how === 'not ready' && g && !this.gens.serving()) {
        const why = this.judge.missing(g);
        log(
          `generation ${g.number} (pid ${g.pid}) was not seen ready within ${this.opts.readyTimeout} secs (${why}); keeping it, as nothing else serves`,
        );
        g.tail?.stopKeeping();
        d.emit({ event: 'kept', deploy: d.id, generation: g.number, pid: g.pid, why, ms: d.ms() });
        this.failures = 0;
        return g;
      }
      const how = g === undefined ? 'not run' : r.how;
      if (g && r.how === 'not ready') await this.abandon(g);
      this.failures++;
      const retryInMs = this.retryPause();
      const hint = failureHint(how, r.how === 'exited' ? r.status : undefined, g ?? undefined, Date.now() - startedAt);
      if (hint && hint !== this.lastHint) log(hint);
      this.lastHint = hint ?? this.lastHint;
      this.metrics.startFailed();
      d.emit({
        event: 'start-failed',
        deploy: d.id,
        generation: this.number,
        how,
        ms: d.ms(),
        ...(g ? { pid: g.pid } : {}),
        ...(r.how === 'exited' && g ? { status: r.status } : {}),
        ...(g?.tail ? { stderr: g.tail.tail() } : {}),
        ...(hint ? { hint: hint.replace(/^hint: /, '') } : {}),
        retryInMs,
      });
      const outcome = how === 'not ready' ? 'not-ready' : 'start-failed';
      const max = this.opts.maxStartAttempts;
      if (max > 0 && attempt >= max) {
        log(`gave up after ${attempt} failed start${attempt > 1 ? 's' : ''} of this deploy; ${this.servingLine()}`);
        return this.endDeploy(d, outcome);
      }
      if (d.deadline !== undefined && startedAt + retryInMs >= d.deadline) {
        log(`gave up: the deploy's caller stopped waiting; ${this.servingLine()}`);
        return this.endDeploy(d, outcome);
      }
      await this.inbox.sleep(retryInMs - (Date.now() - startedAt), () => this.stopRequested());
    }
  }

  /** The pause from one failed start to the next: --interval (at least 100 ms), doubling while starts keep failing. */
  private retryPause(): number {
    const base = Math.max(this.opts.interval * 1000, MIN_RETRY_MS);
    return Math.min(Math.max(MAX_RETRY_MS, base), base * 2 ** Math.min(this.failures - 1, 20));
  }

  private endDeploy(d: Deploy, outcome: 'stopped' | 'not-ready' | 'start-failed'): undefined {
    this.updateStatus();
    d.end(outcome, this.serving());
    return undefined;
  }

  /** The first start gave up: nothing to serve with, so stop. */
  private async giveUp(): Promise<number> {
    if (this.stopRequested()) return this.cleanup(this.inbox.signals.find((s) => STOPS.has(s)) as string);
    log('no generation could be started; exiting');
    await this.cleanup('TERM');
    return 1;
  }

  private servingLine(): string {
    const g = this.gens.serving();
    return g ? `generation ${g.number} (pid ${g.pid}) keeps serving` : 'no generation is serving';
  }

  private stopRequested(): boolean {
    return this.inbox.signals.some((s) => STOPS.has(s));
  }

  private spawnGeneration(): Generation | undefined {
    const token = Generations.newToken();
    const env = generationEnv(this.env, {
      listeners: this.listeners,
      generation: this.number,
      // a boot at low priority is only safe where its readiness is waited
      // for: timed by --interval, the old generation is stopped when the time
      // is up, booted or not (a starved boot there left no one accepting)
      serving: this.judge.timed ? undefined : this.gens.serving()?.number,
      notify: this.notify && { path: this.notify.path, token },
      metrics: this.opts.metrics !== undefined,
    });
    const tail = this.opts.stderrTail > 0 ? new StderrTail(this.opts.stderrTail) : undefined;
    const fds = generationFds(this.listeners, this.stdinDevNull, tail);
    try {
      const pid = this.os.spawn({ command: this.opts.command, env, fds, cwd: this.opts.dir });
      log(`starting new worker ${pid}`);
      return this.gens.spawned(this.number, pid, token, tail);
    } catch (e) {
      const err = e as BatonError;
      log(err.code === 'ENOENT' && err.message.startsWith('failed to chdir') ? err.message : `failed to exec ${err.message}`);
      return undefined;
    } finally {
      tail?.spawned();
    }
  }

  /**
   * Waits until `g` is seen serving (--ready), exits, or is given up on
   * (--ready-timeout, or the waiting caller's `deadline`); a stop request
   * ends the wait. Other exits are noted as they come.
   */
  private async awaitReady(g: Generation, deadline: number | undefined): Promise<Started> {
    if (this.judge.timed) {
      // upstream's rule: alive after --interval; only a stop cuts the wait short
      const end = g.startedAt + this.opts.interval * 1000;
      for (;;) {
        const exit = this.takeExitsFor(g.pid);
        if (exit) return this.failedStart(g, exit.status);
        if (this.stopRequested()) return { ok: false, how: 'stopping' };
        if (Date.now() >= end) return { ok: true, g, how: `alive after ${this.opts.interval} s` };
        await this.inbox.next(Math.max(0, end - Date.now()));
      }
    }
    const readyBy = Math.min(g.startedAt + this.opts.readyTimeout * 1000, deadline ?? Number.POSITIVE_INFINITY);
    // a `baton serve` booting beside the serving generation lowered itself
    // to nice 19; starved, it cannot tell, so it is watched from here
    const endWatch = this.gens.serving()
      ? watchBoot(
          g.pid,
          getPriority(),
          (starvedMs, elapsedMs) =>
            log(
              `generation ${g.number} (pid ${g.pid}) waited ${Math.round(starvedMs)} of its ${Math.round(elapsedMs)} ms of boot for a CPU at nice ${BOOT_NICE}: back to normal priority`,
            ),
          BOOT_NICE,
        )
      : () => {};
    try {
      for (;;) {
        this.readNotifications();
        const exit = this.takeExitsFor(g.pid);
        if (exit) return this.failedStart(g, exit.status);
        if (this.stopRequested()) return { ok: false, how: 'stopping' };
        for (const note of this.judge.observe(g)) {
          log(
            `generation ${g.number} (pid ${g.pid}): ${note}, not on the inherited socket (${this.judge.describeSockets}); ${USE_INHERITED}`,
          );
        }
        const how = this.judge.judge(g);
        if (how) return { ok: true, g, how };
        if (Date.now() >= readyBy) {
          const within = deadline !== undefined && readyBy === deadline ? "the deploy's time" : `${this.opts.readyTimeout} secs`;
          if (this.gens.serving()) {
            log(`new worker ${g.pid} was not seen ready within ${within} (${this.judge.missing(g)}), sending TERM and giving up on it`);
          }
          return { ok: false, how: 'not ready' };
        }
        await this.inbox.next(READY_POLL_MS);
      }
    } finally {
      endWatch();
    }
  }

  private failedStart(g: Generation, status: number): Started {
    log(`new worker ${g.pid} seems to have failed to start, exit status:${status}`);
    return { ok: false, how: 'exited', status };
  }

  /** Gives up on a generation still starting: TERM, and KILL if it outlives the grace; resolves once it is gone. */
  private async abandon(g: Generation): Promise<void> {
    g.state = 'abandoned';
    this.signalAll([g.pid], 'TERM', this.abandonKillS());
    for (;;) {
      const exit = this.takeExitsFor(g.pid);
      if (exit) {
        log(`abandoned worker ${g.pid} exited, status:${exit.status}`);
        return;
      }
      await this.inbox.next(100);
    }
  }

  /** Takes every exit reaped so far: `pid`'s is returned (and its record dropped), the others are noted. */
  private takeExitsFor(pid: number): Exit | undefined {
    let mine: Exit | undefined;
    for (let e = this.inbox.takeExit(); e; e = this.inbox.takeExit()) {
      if (e.pid === pid) {
        mine = e;
        this.gens.reaped(pid);
      } else if (this.gens.get(e.pid)?.state === 'serving') {
        // the serving generation died while its successor starts: the successor takes over
        log(`worker ${e.pid} died unexpectedly with status:${e.status}`);
        this.gens.reaped(e.pid);
        this.updateStatus();
      } else this.noteExit(e);
    }
    return mine;
  }

  /** Takes what the generations said: READY=1, and that they speak sd_notify at all. */
  private readNotifications(): void {
    if (!this.notify) return;
    const starting = this.gens.inState('starting');
    const notes = this.notify.drain(
      this.gens.all(),
      (pid, token) => this.gens.known(pid, token),
      (pid, uid) => {
        const g = starting[0];
        log(
          `ignored a notification from pid ${pid} uid ${uid}: only generation ${g?.number ?? this.number}${g ? ` (pid ${g.pid})` : ''} may report readiness`,
        );
      },
    );
    for (const n of notes) {
      const g = this.gens.get(n.from.pid);
      if (!g) continue;
      const stats = n.lines.find((l) => l.startsWith('BATON_STATS='));
      if (stats) this.metrics.generationSaid(g.number, stats);
      if (g.state !== 'starting') continue;
      g.notifies = true;
      if (n.lines.includes('READY=1')) g.readySent = true;
    }
  }

  private async cleanup(sig: string): Promise<number> {
    this.manager?.stopping();
    const termSignal = sig === 'TERM' ? this.opts.signalOnTerm : 'TERM';
    this.deploys.stopAll(undefined);
    const live = this.gens.all();
    const pids = live.filter((g) => g.state !== 'abandoned').map((g) => g.pid);
    log(`received ${sig}, sending ${termSignal} to all workers:${pids.sort((a, b) => a - b).join(',')}`);
    for (const g of live) if (g.state !== 'abandoned') g.state = 'draining';
    this.signalAll(pids, termSignal);
    while (this.gens.size > 0) {
      const exit = this.inbox.takeExit();
      if (!exit) {
        await this.inbox.next();
        continue;
      }
      if (!this.gens.reaped(exit.pid)) continue;
      log(`worker ${exit.pid} died, status:${exit.status}`);
      this.updateStatus();
    }
    log('exiting');
    return 0;
  }

  /** Sends `sig` to each pid; with a kill timeout (--kill-timeout), KILLs those still ours that outlive it. */
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
        const g = this.gens.get(pid);
        if (!g || g.state === 'serving' || g.state === 'starting') continue;
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
    const entries = this.gens.inState('serving', 'draining', 'stopping').map((g) => ({ pid: g.pid, generation: g.number }));
    try {
      this.os.writeStatus(file, entries);
      this.statusWritten = true;
    } catch (e) {
      log(`failed to write status file ${file}: ${(e as Error).message}`);
    }
  }
}

/** A verdict as one STATUS= line for the service manager. */
function verdictStatus(v: Verdict): string {
  const serving = v.serving ? `generation ${v.serving.generation} serves` : 'no generation serves';
  const how = v.outcome === 'deployed' ? `deployed in ${v.goneMs} ms` : `FAILED (${v.outcome})`;
  return `deploy ${v.deploy} ${how}; ${serving}`;
}

/** The inode of a listening socket we hold (none for one the tests stand in for). */
function tcpPortOf(fd: number): number[] {
  try {
    const port = native.localAddress(fd).port;
    return port ? [port] : [];
  } catch {
    return [];
  }
}

function inodeOf(fd: number): number[] {
  try {
    return [socketInode(fd)];
  } catch {
    return [];
  }
}

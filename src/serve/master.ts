// The `baton serve` master: keeps --max-workers workers accepting on the
// shared listening sockets. It never accepts a connection itself.
//
// Invariants:
// - The listening sockets stay open here for the master's whole life; workers
//   come and go around them, so a connection queued in the kernel is never
//   lost to a worker change.
// - Workers are only ever retired after their replacements listen: on a
//   recycle (request limit), on HUP (a whole new set, new code), never the
//   other way round. A reload whose new workers fail leaves the old set serving.
// - Readiness (sd_notify READY=1) is reported only when every worker of the
//   set listens. The first set failing to start ends the master with status 1.
// - On TERM/INT/QUIT every worker is told to stop, and told again every second
//   until it is gone (a signal can land just before a worker is ready to act
//   on it); what outlives --graceful-timeout plus a margin is KILLed.
// - With --shutdown-delay, TERM (or QUIT) first turns the instance unready
//   (the workers answer --ready-path with 503) and it goes on serving and
//   accepting for that long, as load balancers that learn of a shutdown late
//   (Kubernetes endpoints, kube-proxy) still send it connections; INT or a
//   second TERM cuts the delay short.
import { spawn } from 'node:child_process';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { native } from '../net/native.ts';
import { handOverPort, type ReuseportGroupMember, steerIn } from '../net/reuseport/index.ts';
import { HandoffOffer, type TakenOver } from '../net/socket-handoff.ts';
import { BOOT_NICE, canRestorePriority, LowPriorityBoot, normalPriority, watchBoot } from '../process/boot-priority.ts';
import { logger } from '../process/log.ts';
import { sdNotify } from '../process/sd-notify.ts';
import type { MasterMessage, WorkerConfig, WorkerMessage } from './ipc.ts';

const WORKER_ENTRY = join(import.meta.dirname, `worker${import.meta.filename.endsWith('.ts') ? '.ts' : '.js'}`);
const RESEND_TERM_MS = 1000;
const KILL_MARGIN_MS = 5000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** A worker that lived this long resets its slot's backoff. */
const STABLE_MS = 5000;

export interface ServeConfig {
  app: string;
  workers: number;
  maxRequests: number;
  minRequests: number;
  spawnIntervalMs: number;
  timeoutMs: number;
  keepAliveTimeoutMs: number;
  gracefulTimeoutMs: number;
  drainTimeoutMs: number;
  closeSpreadMs: number;
  backlog: number;
  /** Longest wait, on stop, for another listener to take the port (reuse-port mode). */
  handoverTimeoutMs: number;
  /** Node's compile cache for the workers (process/compile-cache.ts), or none. */
  compileCache: string | undefined;
  /** Path the workers answer themselves: 200 while serving, 503 once going away. */
  readyPath: string | undefined;
  /** On TERM, serve on (unready) this long before stopping. */
  shutdownDelayMs: number;
  /** An app that listens by itself: which of its listens is served (default: its first). */
  appPort: number | undefined;
  listenTimeoutMs: number;
  /** HTTPS: the certificate and key (PEM) this generation read at its start. */
  tls: { certFile: string; keyFile: string } | undefined;
  http2: boolean;
  /** Another generation serves while this one boots (the supervisor says so). */
  besideServing: boolean;
  /** --boot-priority: low (beside a serving generation, where it can come back) or normal. */
  bootPriority: 'low' | 'normal';
}

export interface HandoffConfig {
  path: string;
  taken: TakenOver | undefined;
  allowUid: number | undefined;
  description: string;
}

/** What the master needs of a worker process (a ChildProcess; a stand-in in tests). */
export interface WorkerProcess {
  readonly pid?: number | undefined;
  kill(signal: NodeJS.Signals): boolean;
  send?(message: MasterMessage): boolean;
  on(event: 'message', listener: (m: WorkerMessage) => void): this;
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

/** Starts a worker process with `config`, the listening sockets at fds 4... */
export type WorkerLauncher = (
  config: WorkerConfig,
  fds: number[],
  compileCache: string | undefined,
  env: Record<string, string>,
) => WorkerProcess;

/** A real worker: this Node running worker.ts, IPC on fd 3, the sockets from fd 4. */
export const launchWorker: WorkerLauncher = (config, fds, compileCache, appEnv) =>
  spawn(process.execPath, [...process.execArgv, WORKER_ENTRY], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc', ...fds],
    env: {
      ...process.env,
      ...appEnv,
      BATON_SERVE_WORKER: JSON.stringify(config),
      // set at start-up, the cache covers the worker's own modules as well as the app's
      ...(compileCache === undefined ? {} : { NODE_COMPILE_CACHE: compileCache }),
    },
  });

interface Worker {
  child: WorkerProcess;
  pid: number;
  slot: number;
  set: number;
  state: 'starting' | 'listening' | 'stopping';
  startedAt: number;
  onListening?: () => void;
  onFailedStart?: (why: string) => void;
  retireTimer?: NodeJS.Timeout;
  /** It reported listening at least once (state may have moved on to stopping). */
  listened: boolean;
  /** Why it cannot start, as it said (an app that cannot be loaded). */
  failure?: string;
  /** Its open connections, as it last said (--metrics). */
  connections?: number;
  /** Ends the watch of its low-priority boot (boot-priority.ts). */
  endBootWatch?: () => void;
}

const log = logger('baton serve: ');

/** PORT and HOST of the socket served, for apps that read them (TCP only). */
function appEnvironment(fd: number | undefined): Record<string, string> {
  if (fd === undefined) return {};
  try {
    const a = native.localAddress(fd);
    return a.port === undefined || a.address === undefined ? {} : { PORT: String(a.port), HOST: a.address };
  } catch {
    return {};
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exited with code ${code}`;
}

export class Master {
  private readonly cfg: ServeConfig;
  private readonly fds: number[];
  private readonly workers = new Set<Worker>();
  private currentSet = 0;
  /**
   * running; TERM received, serving on unready for --shutdown-delay
   * (delaying); stop requested and the port being handed over (workers
   * still serve and are still restarted); stopping (workers told to stop).
   */
  private phase: 'running' | 'delaying' | 'handing-over' | 'stopping' = 'running';
  private delayTimer: NodeJS.Timeout | undefined;
  private readonly backoff = new Map<number, number>();
  private readonly launch: WorkerLauncher;

  /** A method, not a getter on `phase`: TypeScript would keep its narrowing across awaits. */
  private stopping(): boolean {
    return this.phase === 'stopping';
  }

  private readonly group: ReuseportGroupMember | undefined;
  private readonly handoff: HandoffConfig | undefined;
  private offer: HandoffOffer | undefined;

  /**
   * `group`: this instance's own SO_REUSEPORT listeners, handed over on stop.
   * `handoff`: sockets taken from a previous instance (told READY once we
   * serve) and offered at `path` to the next one.
   */
  constructor(cfg: ServeConfig, fds: number[], group?: ReuseportGroupMember, handoff?: HandoffConfig, launch = launchWorker) {
    this.cfg = cfg;
    this.fds = fds;
    this.group = group;
    this.handoff = handoff;
    this.launch = launch;
    this.appEnv = appEnvironment(fds[0]);
  }

  /** PORT and HOST as the app reads them: what is served (an app that listens on PORT is served there anyway). */
  private readonly appEnv: Record<string, string>;
  /** Workers that died and were restarted (--metrics). */
  private restarts = 0;
  /** The first thing a worker said about why it could not start. */
  private appFailure: string | undefined;
  /** The priority to come back to: what we were started with (cli/baton.ts may have lowered us already). */
  private readonly normalNice = normalPriority();
  /** Whether a booting worker could come back to normal priority (boot-priority.ts). */
  private readonly lowPriorityBoots = canRestorePriority(this.normalNice);

  /**
   * A set boots beside one that serves (a reload's, or our first beside the
   * supervisor's serving generation): at low priority, where it can come back.
   */
  private bootsBeside(set: number): boolean {
    if (!this.lowPriorityBoots || this.cfg.bootPriority === 'normal') return false;
    return set > 1 || this.cfg.besideServing;
  }

  private stopDone!: () => void;
  private readonly stopped = new Promise<void>((resolve) => {
    this.stopDone = resolve;
  });

  /**
   * Runs until stopped; resolves to the exit status. `early` holds signals
   * that arrived before the master existed (the caller queues them from
   * process start, so a TERM during start-up is never fatal).
   */
  async run(early: readonly string[] = []): Promise<number> {
    for (const sig of early) this.signal(sig);
    // a supervisor that sees we speak sd_notify waits for our READY=1, sent once every worker listens
    sdNotify(`STATUS=starting ${this.cfg.workers} workers`, log);
    if (process.env.BATON_METRICS === '1') {
      // for the supervisor's --metrics, on its notify socket
      setInterval(() => {
        const connections = [...this.workers].reduce((n, w) => n + (w.connections ?? 0), 0);
        sdNotify(`BATON_STATS=connections=${connections} restarts=${this.restarts}`, log);
      }, 1000).unref();
    }
    if (this.phase === 'running') {
      // workers are born with the master's priority: low from their first
      // instruction; unless the supervisor has already brought us back from a
      // starved boot (lowering again would undo it, with no one watching)
      const low = this.bootsBeside(1) && getPriority() === BOOT_NICE ? new LowPriorityBoot(this.normalNice, false) : undefined;
      const started = await this.startSet(++this.currentSet, () => low?.restore());
      if (started.ok) {
        if (this.group) steerIn(this.group);
        log(`${this.cfg.workers} workers listening (pid ${process.pid}); HUP reloads, TERM stops`);
        this.startOffering();
        sdNotify('READY=1', log);
      } else if (this.phase === 'running') {
        // an app that cannot be loaded said why in one line of its own
        log(this.appFailure ?? `could not start: ${started.why}`);
        await this.stopAll(this.allWorkers());
        return 1;
      }
    }
    await this.stopped;
    return 0;
  }

  /** Offers our sockets to the next instance, then releases the previous one. */
  private startOffering(): void {
    const h = this.handoff;
    if (!h) return;
    this.offer = new HandoffOffer({
      path: h.path,
      fds: this.fds,
      description: h.description.replace(/, handed over by pid \d+$/, ''),
      allowUid: h.allowUid,
      log,
      onTaken: (peer) => this.stop(`sockets handed off to pid ${peer.pid}`),
    });
    log(`offering the listening sockets at ${h.path}`);
    h.taken?.ready();
  }

  /** TERM, INT and QUIT stop; HUP reloads. */
  signal(sig: string): void {
    if (sig === 'HUP') void this.reload();
    // nothing to delay for before anything served
    else if (this.phase === 'delaying' || sig === 'INT' || this.cfg.shutdownDelayMs <= 0 || ![...this.workers].some((w) => w.listened))
      this.stop(`received ${sig}`);
    else this.delayStop(`received ${sig}`);
  }

  /** --shutdown-delay: unready now, stop later. */
  private delayStop(why: string): void {
    if (this.phase !== 'running') return;
    this.phase = 'delaying';
    const where = this.cfg.readyPath ? ` (${this.cfg.readyPath} answers 503)` : '';
    log(`${why}: unready${where}, serving on for ${this.cfg.shutdownDelayMs / 1000} s (--shutdown-delay) before stopping`);
    for (const w of this.workers) this.tellUnready(w);
    this.delayTimer = setTimeout(() => this.stop(`${why}, ${this.cfg.shutdownDelayMs / 1000} s ago`), this.cfg.shutdownDelayMs);
  }

  private tellUnready(w: Worker): void {
    try {
      w.child.send?.({ type: 'unready' });
    } catch {
      // gone meanwhile; its exit is on its way
    }
  }

  private allWorkers(): Worker[] {
    return [...this.workers];
  }

  private requestLimit(): number {
    const { maxRequests: max, minRequests: min } = this.cfg;
    if (max <= 0) return 0;
    if (min <= 0 || min >= max) return max;
    return min + Math.floor(Math.random() * (max - min + 1));
  }

  private spawnWorker(slot: number, set: number): Worker {
    const config: WorkerConfig = {
      app: this.cfg.app,
      fds: this.fds.map((_, i) => 4 + i),
      backlog: this.cfg.backlog,
      maxRequests: this.requestLimit(),
      timeoutMs: this.cfg.timeoutMs,
      keepAliveTimeoutMs: this.cfg.keepAliveTimeoutMs,
      gracefulTimeoutMs: this.cfg.gracefulTimeoutMs,
      drainTimeoutMs: this.cfg.drainTimeoutMs,
      closeSpreadMs: this.cfg.closeSpreadMs,
      tls: this.cfg.tls,
      http2: this.cfg.http2,
      readyPath: this.cfg.readyPath,
      unready: this.phase === 'delaying',
      appPort: this.cfg.appPort,
      listenTimeoutMs: this.cfg.listenTimeoutMs,
      bootNice: this.bootsBeside(set) ? BOOT_NICE : undefined,
      // a child is born with our priority
      bornLow: getPriority() === BOOT_NICE,
      normalNice: this.normalNice,
    };
    const child = this.launch(config, this.fds, this.cfg.compileCache, this.appEnv);
    const w: Worker = { child, pid: child.pid as number, slot, set, state: 'starting', startedAt: Date.now(), listened: false };
    if (config.bootNice !== undefined && child.pid !== undefined) {
      // one born at normal priority is watched once it has lowered itself: brought
      // back before that, it would lower itself after, with no one watching
      w.endBootWatch = watchBoot(
        child.pid,
        this.normalNice,
        (starvedMs, elapsedMs) =>
          log(
            `worker ${w.pid} waited ${Math.round(starvedMs)} of its ${Math.round(elapsedMs)} ms of boot for a CPU at nice ${BOOT_NICE}: back to normal priority`,
          ),
        config.bornLow ? undefined : BOOT_NICE,
      );
    }
    this.workers.add(w);
    child.on('message', (m: WorkerMessage) => this.onMessage(w, m));
    child.on('exit', (code, signal) => this.onExit(w, code, signal));
    child.on('error', (err) => log(`worker in slot ${slot} could not be started: ${err.message}`));
    return w;
  }

  private whenListening(w: Worker): Promise<{ ok: true } | { ok: false; why: string }> {
    return new Promise((resolve) => {
      w.onListening = () => resolve({ ok: true });
      w.onFailedStart = (why) => resolve({ ok: false, why });
    });
  }

  /**
   * Starts one worker per slot (--spawn-interval apart). Resolves once all
   * listen, or as soon as one fails: the set has failed then, whatever the
   * others are doing (one still loading might never finish). `spawned`
   * runs once every worker has been started (or the start given up): a
   * master that lowered itself so they are born low comes back there, to
   * watch them at normal priority (a starved watcher sees nothing).
   */
  private async startSet(set: number, spawned: () => void): Promise<{ ok: true } | { ok: false; why: string }> {
    let failed: (why: string) => void = () => {};
    const firstFailure = new Promise<{ ok: false; why: string }>((resolve) => {
      failed = (why) => resolve({ ok: false, why });
    });
    const waits: Array<Promise<unknown>> = [];
    try {
      for (let slot = 0; slot < this.cfg.workers && !this.stopping(); slot++) {
        if (slot > 0 && this.cfg.spawnIntervalMs > 0) await new Promise((r) => setTimeout(r, this.cfg.spawnIntervalMs));
        waits.push(this.whenListening(this.spawnWorker(slot, set)).then((r) => r.ok || failed(r.why)));
      }
    } finally {
      spawned();
    }
    const r = await Promise.race([Promise.all(waits).then(() => ({ ok: true }) as const), firstFailure]);
    if (this.stopping()) return { ok: false, why: 'stopped while starting' };
    return r;
  }

  private onMessage(w: Worker, m: WorkerMessage): void {
    if (m?.type === 'listening') {
      w.endBootWatch?.();
      w.listened = true;
      w.state = w.state === 'starting' ? 'listening' : w.state;
      w.onListening?.();
    } else if (m?.type === 'stats') {
      w.connections = m.connections;
    } else if (m?.type === 'failed') {
      w.failure = m.message;
    } else if (m?.type === 'recycle' && w.state === 'listening' && !this.stopping() && w.set === this.currentSet) {
      void this.replace(w, `served ${m.handled} requests`);
    }
  }

  /** Starts a replacement in w's slot; retires w once the replacement listens. */
  private async replace(w: Worker, why: string): Promise<void> {
    const next = this.spawnWorker(w.slot, w.set);
    const r = await this.whenListening(next);
    if (r.ok) {
      log(`worker ${w.pid} ${why}: replaced by ${next.pid}`);
      this.retire(w);
    }
  }

  private onExit(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    w.endBootWatch?.();
    this.workers.delete(w);
    const how = describeExit(code, signal);
    if (!w.listened) {
      // also when it was told to stop while starting: whoever awaits its start must hear
      this.appFailure ??= w.failure;
      w.onFailedStart?.(w.failure ?? `worker ${w.pid} ${how} before it was listening`);
    } else if (w.state === 'listening' && !this.stopping() && w.set === this.currentSet) {
      this.restarts++;
      const delay = this.nextBackoff(w.slot, Date.now() - w.startedAt >= STABLE_MS);
      log(
        `worker ${w.pid} ${how} unexpectedly (its in-flight requests are lost); restarting slot ${w.slot}${delay ? ` in ${delay} ms` : ''}`,
      );
      setTimeout(() => {
        if (!this.stopping() && w.set === this.currentSet) void this.restartSlot(w.slot, w.set);
      }, delay);
    }
    clearInterval(w.retireTimer);
    if (this.workers.size === 0) {
      for (const wake of this.goneWaiters) wake();
      this.goneWaiters = [];
    }
  }

  private async restartSlot(slot: number, set: number): Promise<void> {
    const w = this.spawnWorker(slot, set);
    const r = await this.whenListening(w);
    if (!r.ok && !this.stopping() && set === this.currentSet) {
      const delay = this.nextBackoff(slot, false);
      log(`${r.why}; retrying slot ${slot} in ${delay} ms`);
      setTimeout(() => {
        if (!this.stopping() && set === this.currentSet) void this.restartSlot(slot, set);
      }, delay);
    }
  }

  /** HUP: a fresh set of workers (new code); the old set retires once it listens. */
  private async reload(): Promise<void> {
    if (this.phase !== 'running') return;
    const set = ++this.currentSet;
    log(`reloading: starting ${this.cfg.workers} new workers`);
    sdNotify('RELOADING=1', log);
    const low = this.bootsBeside(set) ? new LowPriorityBoot(this.normalNice) : undefined;
    const r = await this.startSet(set, () => low?.restore());
    if (this.stopping()) return;
    if (!r.ok) {
      log(`reload failed (${r.why}); the previous workers keep serving`);
      for (const w of this.allWorkers()) if (w.set === set) this.retire(w);
      if (this.currentSet === set) this.currentSet = set - 1;
      sdNotify('READY=1', log);
      return;
    }
    if (this.currentSet !== set) return;
    const old = this.allWorkers().filter((w) => w.set < set);
    log(`reload done: new workers listen; retiring ${old.length} old workers`);
    for (const w of old) this.retire(w);
    sdNotify('READY=1', log);
  }

  /** Tells a worker to stop, again every second, and KILLs it past the deadline. */
  private retire(w: Worker): void {
    if (w.state === 'stopping') return;
    w.state = 'stopping';
    const deadline = Date.now() + this.cfg.gracefulTimeoutMs + KILL_MARGIN_MS;
    const tell = () => {
      if (!this.workers.has(w)) return clearInterval(timer);
      if (Date.now() > deadline) {
        log(`worker ${w.pid} still running past --graceful-timeout; sending KILL`);
        w.child.kill('SIGKILL');
        return clearInterval(timer);
      }
      w.child.kill('SIGTERM');
    };
    const timer = setInterval(tell, RESEND_TERM_MS);
    w.retireTimer = timer;
    tell();
  }

  /** The delay before restarting a slot: none after a stable life, else doubling from 100 ms to 10 s. */
  private nextBackoff(slot: number, stable: boolean): number {
    const delay = stable ? 0 : Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, (this.backoff.get(slot) ?? 0) * 2));
    this.backoff.set(slot, delay);
    return delay;
  }

  private stopAll(workers: Worker[]): Promise<void> {
    this.phase = 'stopping';
    for (const w of workers) this.retire(w);
    return this.allGone();
  }

  private goneWaiters: Array<() => void> = [];

  private allGone(): Promise<void> {
    if (this.workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.goneWaiters.push(resolve));
  }

  /** `why`: for the log line ("received TERM", "sockets handed off to pid N"). */
  private stop(why: string): void {
    if (this.phase !== 'running' && this.phase !== 'delaying') return;
    clearTimeout(this.delayTimer);
    this.phase = 'handing-over';
    this.offer?.close();
    log(`${why}: stopping ${this.workers.size} workers gracefully`);
    sdNotify('STOPPING=1', log);
    void this.handOver()
      .then(() => this.stopAll(this.allWorkers()))
      .then(() => this.stopDone());
  }

  /**
   * In reuse-port mode, before any worker stops accepting: take this
   * instance out of new-connection selection, wait for another listener on
   * the port, and let the workers empty the accept queues.
   */
  private async handOver(): Promise<void> {
    const g = this.group;
    if (!g || g.handover === 'none') return;
    if (await handOverPort(g, this.cfg.handoverTimeoutMs, log)) log(`handed ${g.host}:${g.port} over (${g.handover}); stopping workers`);
  }
}

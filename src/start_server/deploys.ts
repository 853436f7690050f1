// The supervisor's record of its deploys: what each one did, as it happened
// (events for the control clients waiting on it), how it ended (a verdict for
// them), and the last few for `baton status`.
import type { DeployEvent, DeployOutcome, DeployRecord, DeployTrigger, Verdict } from '../control/protocol.ts';

/** Someone waiting on a deploy (a `baton deploy` connection). */
export interface DeploySink {
  event(e: DeployEvent): void;
  verdict(v: Verdict): void;
  /** When this caller stops waiting (ms since the epoch). */
  deadline: number;
}

const HISTORY = 20;

/** One deploy in progress. */
export class Deploy {
  readonly id: number;
  readonly record: DeployRecord;
  private readonly sinks: DeploySink[];
  private readonly t0 = performance.now();
  /** Older generations still to exit before this deploy is done. */
  readonly waitingFor = new Set<number>();
  private ended = false;
  /** Its generation serves without having been seen ready (a first one, kept as nothing else serves). */
  kept = false;

  constructor(id: number, trigger: DeployTrigger, sinks: DeploySink[]) {
    this.id = id;
    this.sinks = sinks;
    this.record = { deploy: id, trigger, at: Date.now(), outcome: 'in progress', attempts: 0 };
  }

  /** The earliest time a caller stops waiting; undefined when none waits (a HUP). */
  get deadline(): number | undefined {
    return this.sinks.length ? Math.min(...this.sinks.map((s) => s.deadline)) : undefined;
  }

  ms(): number {
    return Math.round(performance.now() - this.t0);
  }

  emit(e: DeployEvent): void {
    if (e.event === 'started') this.record.attempts = e.attempt;
    if (e.event === 'kept') {
      this.kept = true;
      this.record.generation = e.generation;
    }
    if (e.event === 'ready') {
      this.record.generation = e.generation;
      this.record.readyMs = e.ms;
    }
    for (const s of this.sinks) s.event(e);
  }

  /** A generation this deploy waits for has exited. */
  gone(e: Extract<DeployEvent, { event: 'gone' }>): void {
    if (!this.waitingFor.delete(e.pid)) return;
    this.emit(e);
  }

  get done(): boolean {
    return this.ended;
  }

  end(outcome: DeployOutcome, serving: Verdict['serving']): void {
    if (this.ended) return;
    this.ended = true;
    this.record.outcome = outcome;
    if (outcome === 'deployed') this.record.goneMs = this.ms();
    const verdict: Verdict = {
      deploy: this.id,
      outcome,
      serving,
      lingering: [...this.waitingFor],
      ...(this.record.readyMs === undefined ? {} : { readyMs: this.record.readyMs }),
      ...(this.record.goneMs === undefined ? {} : { goneMs: this.record.goneMs }),
    };
    for (const s of this.sinks) s.verdict(verdict);
    this.onEnd?.(verdict, this.record);
  }

  /** Told each verdict (the service manager's STATUS, the metrics). */
  onEnd?: (v: Verdict, r: DeployRecord) => void;
}

export class DeployLog {
  private seq = 0;
  private readonly records: DeployRecord[] = [];
  /** Callers waiting for the next deploy to start. */
  private waiting: DeploySink[] = [];
  /** Deploys whose old generations are still draining. */
  private readonly draining = new Set<Deploy>();

  /** A caller asks for a deploy: it is covered by the next one that starts. */
  request(sink: DeploySink): void {
    this.waiting.push(sink);
  }

  get requested(): boolean {
    return this.waiting.length > 0;
  }

  /** Told each deploy's verdict. */
  onEnd?: (v: Verdict, r: DeployRecord) => void;

  begin(trigger: DeployTrigger): Deploy {
    const d = new Deploy(++this.seq, trigger, this.waiting);
    d.onEnd = (v, r) => this.onEnd?.(v, r);
    this.waiting = [];
    this.records.push(d.record);
    if (this.records.length > HISTORY) this.records.shift();
    return d;
  }

  /** `d` has signalled its old generations; it ends once they have all exited. */
  drain(d: Deploy, serving: Verdict['serving']): void {
    if (d.waitingFor.size === 0) d.end(d.kept ? 'not-ready' : 'deployed', serving);
    else this.draining.add(d);
  }

  /** An old generation has exited: every deploy waiting for it hears so. */
  gone(pid: number, generation: number, status: number, serving: Verdict['serving']): void {
    for (const d of this.draining) {
      d.gone({ event: 'gone', deploy: d.id, generation, pid, status, ms: d.ms() });
      if (d.waitingFor.size === 0) {
        this.draining.delete(d);
        d.end('deployed', serving);
      }
    }
  }

  /** The supervisor is stopping: every deploy not yet done ends so. */
  stopAll(serving: Verdict['serving']): void {
    for (const d of this.draining) d.end('stopped', serving);
    this.draining.clear();
    for (const s of this.waiting) s.verdict({ deploy: 0, outcome: 'stopped', serving, lingering: [] });
    this.waiting = [];
  }

  history(): DeployRecord[] {
    return [...this.records];
  }

  /** For an upgrade's exec: the history and the numbering go on (no deploy is under way then). */
  snapshot(): { seq: number; records: DeployRecord[] } {
    return { seq: this.seq, records: this.history() };
  }

  restore(snap: { seq: number; records: DeployRecord[] }): void {
    this.seq = snap.seq;
    this.records.push(...snap.records);
  }
}

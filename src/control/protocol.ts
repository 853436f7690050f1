// The control channel of a running supervisor: a UNIX stream socket (mode
// 0600, peers checked with SO_PEERCRED) carrying one JSON object per line.
// A client asks for a deploy and gets its events as they happen, then one
// verdict; or asks for the status (generations and the deploy history).
// start_server serves it; baton deploy, baton status and baton drill use it.

/** Where a supervisor with this pid file listens for control clients. */
export function controlPath(pidFile: string): string {
  return `${pidFile}.sock`;
}

/** A generation's state as the supervisor keeps it (start_server/generations.ts). */
export type GenerationState = 'starting' | 'serving' | 'draining' | 'stopping' | 'abandoned';

export type DeployTrigger = 'start' | 'HUP' | 'control' | 'crash';

/** What happens during a deploy, in order; `ms` counts from the deploy's start. */
export type DeployEvent =
  /** The request waits: the supervisor is busy (`why`: what with); the deploy that covers it starts after. */
  | { event: 'queued'; deploy: number; why: string; ms: number }
  | { event: 'started'; deploy: number; generation: number; pid: number; attempt: number; ms: number }
  | {
      event: 'start-failed';
      deploy: number;
      generation: number;
      pid?: number;
      how: 'exited' | 'not ready' | 'not run';
      status?: number;
      stderr?: string[];
      /** What was observed, when it says more than `how` (`it listens on 0.0.0.0:3000 itself`). */
      hint?: string;
      /** The next attempt starts this long after this one did (the backoff), when there is one. */
      retryInMs?: number;
      ms: number;
    }
  /** `how`: the evidence (`READY=1`, `pid 4711 waits for connections (accept(3))`, `alive after 1 s`). */
  | { event: 'ready'; deploy: number; generation: number; pid: number; how: string; ms: number }
  /** A first generation (nothing else serves) that was not seen ready in time, kept serving rather than stopped. */
  | { event: 'kept'; deploy: number; generation: number; pid: number; why: string; ms: number }
  | { event: 'stopping'; deploy: number; generation: number; pid: number; signal: string; ms: number }
  | { event: 'gone'; deploy: number; generation: number; pid: number; status: number; ms: number };

export type DeployOutcome =
  /** The new generation serves and every older one has exited. */
  | 'deployed'
  /** The new generation serves; older ones were still running when the time was up. */
  | 'old-not-gone'
  /** No generation got started: each attempt exited (or could not run). */
  | 'start-failed'
  /** The generation did not report ready in time. */
  | 'not-ready'
  /** The supervisor stopped (TERM) during the deploy. */
  | 'stopped';

export interface Verdict {
  deploy: number;
  outcome: DeployOutcome;
  /** The generation serving now. */
  serving: { generation: number; pid: number } | undefined;
  /** With old-not-gone: those still running. */
  lingering: number[];
  readyMs?: number;
  goneMs?: number;
}

export interface DeployRecord {
  deploy: number;
  trigger: DeployTrigger;
  /** ms since the epoch. */
  at: number;
  outcome: DeployOutcome | 'in progress';
  generation?: number;
  readyMs?: number;
  goneMs?: number;
  attempts: number;
}

export interface StatusReport {
  supervisorPid: number;
  /** baton's package name and version, of the program running now. */
  version: string;
  /** ms since the epoch: when the supervisor started, and when it last re-executed itself (upgrade). */
  startedAt: number;
  upgradedAt?: number;
  upgrades: number;
  generations: Array<{ generation: number; pid: number; state: GenerationState; startedAt: number; connections?: number }>;
  deploys: DeployRecord[];
}

export type Request = { deploy: { timeoutMs: number } } | { status: true } | { upgrade: true };

export type Reply =
  | DeployEvent
  | { verdict: Verdict }
  | { report: StatusReport }
  | { error: string }
  /** The new program passed its check; the supervisor is about to become it (the connection ends there). */
  | { upgrading: { from: string; to: string } };

// The control channel of a running supervisor: a UNIX stream socket (mode
// 0600, peers checked with SO_PEERCRED) carrying one JSON object per line.
// A client asks for a deploy and gets its events as they happen, then one
// verdict; or asks for the status (generations and the deploy history).
// start_server serves it; baton deploy, baton status and baton drill use it.

/** Where a supervisor with this pid file listens for control clients. */
export function controlPath(pidFile: string): string {
  return `${pidFile}.sock`;
}

export type DeployTrigger = 'start' | 'HUP' | 'control' | 'crash';

/** What happens during a deploy, in order; `ms` counts from the deploy's start. */
export type DeployEvent =
  | { event: 'started'; deploy: number; generation: number; pid: number; attempt: number; ms: number }
  | {
      event: 'start-failed';
      deploy: number;
      generation: number;
      pid?: number;
      how: 'exited' | 'not ready' | 'not run';
      status?: number;
      stderr?: string[];
      ms: number;
    }
  | { event: 'ready'; deploy: number; generation: number; pid: number; ms: number }
  | { event: 'stopping'; deploy: number; generation: number; pid: number; signal: string; ms: number }
  | { event: 'gone'; deploy: number; generation: number; pid: number; status: number; ms: number };

export type Outcome =
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
  outcome: Outcome;
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
  outcome: Outcome | 'in progress';
  generation?: number;
  readyMs?: number;
  goneMs?: number;
  attempts: number;
}

export interface StatusReport {
  supervisorPid: number;
  generations: Array<{ generation: number; pid: number; state: 'serving' | 'starting' | 'draining' }>;
  deploys: DeployRecord[];
}

export type Request = { deploy: { timeoutMs: number } } | { status: true };

export type Reply = DeployEvent | { verdict: Verdict } | { report: StatusReport } | { error: string };

// The supervisor's record of its generations: one record per process it
// started, from its spawn until it is reaped, and the generations it
// remembers a while after (their late notifications are not a stranger's).
import { randomBytes } from 'node:crypto';
import type { GenerationState } from '../control/protocol.ts';
import type { StderrTail } from './stderr-tail.ts';

/**
 * starting: spawned, not ready yet; serving: the one generation that
 * serves; draining: an older one, signalled (or about to be) to stop;
 * stopping: a draining one --max-draining stopped for good (TERM, then
 * KILL), no longer counted; abandoned: given up on while starting (TERM,
 * then KILL), never served.
 */
export type { GenerationState };

export interface Generation {
  /** SERVER_STARTER_GENERATION. */
  number: number;
  pid: number;
  state: GenerationState;
  /** Its BATON_READY_TOKEN: a notification carrying it is its own, whoever sends it. */
  token: string;
  /** Its stderr, kept while it starts (--stderr-tail). */
  tail: StderrTail | undefined;
  /** ms since the epoch. */
  startedAt: number;
  readyAt?: number;
  signalledAt?: number;
  /** It has sent a notification of any kind: it speaks sd_notify. */
  notifies: boolean;
  /** It has sent READY=1. */
  readySent: boolean;
  /** What was seen of it while it started, for the hints (`listens on 0.0.0.0:3000 itself`). */
  seen: string[];
}

/** How many past generations' pids and tokens are remembered. */
const REMEMBERED = 64;

export class Generations {
  private readonly live = new Map<number, Generation>();
  private readonly formerPids = new Set<number>();
  private readonly formerTokens = new Set<string>();

  spawned(number: number, pid: number, token: string, tail: StderrTail | undefined): Generation {
    const g: Generation = {
      number,
      pid,
      state: 'starting',
      token,
      tail,
      startedAt: Date.now(),
      notifies: false,
      readySent: false,
      seen: [],
    };
    this.live.set(pid, g);
    return g;
  }

  static newToken(): string {
    return randomBytes(16).toString('hex');
  }

  get(pid: number): Generation | undefined {
    return this.live.get(pid);
  }

  /** Told of each generation reaped. */
  onReaped?: (g: Generation) => void;

  /** It was reaped: forgotten, but remembered for its late notifications. */
  reaped(pid: number): Generation | undefined {
    const g = this.live.get(pid);
    if (!g) return undefined;
    this.live.delete(pid);
    this.onReaped?.(g);
    remember(this.formerPids, pid);
    remember(this.formerTokens, g.token);
    return g;
  }

  /** Ours now or lately: a notification from it is not a stranger's. */
  known(pid: number | undefined, token: string | undefined): boolean {
    if (pid !== undefined && (this.live.has(pid) || this.formerPids.has(pid))) return true;
    if (token === undefined) return false;
    return this.formerTokens.has(token) || [...this.live.values()].some((g) => g.token === token);
  }

  all(): Generation[] {
    return [...this.live.values()].sort((a, b) => a.number - b.number);
  }

  inState(...states: GenerationState[]): Generation[] {
    return this.all().filter((g) => states.includes(g.state));
  }

  serving(): Generation | undefined {
    return this.all().find((g) => g.state === 'serving');
  }

  get size(): number {
    return this.live.size;
  }

  /** For an upgrade's exec: every record (the stderr tail as its pipe's fd), and who we remember. */
  snapshot(): GenerationsSnapshot {
    return {
      live: this.all().map(({ tail, ...g }) => ({ ...g, ...(tail ? { tailFd: tail.readFd } : {}) })),
      formerPids: [...this.formerPids],
      formerTokens: [...this.formerTokens],
    };
  }

  /** After it: the same records, `tail` making each stderr tail again from its fd. */
  restore(snap: GenerationsSnapshot, tail: (fd: number) => StderrTail): void {
    for (const { tailFd, ...g } of snap.live) this.live.set(g.pid, { ...g, tail: tailFd === undefined ? undefined : tail(tailFd) });
    for (const p of snap.formerPids) this.formerPids.add(p);
    for (const t of snap.formerTokens) this.formerTokens.add(t);
  }
}

export interface GenerationsSnapshot {
  live: Array<Omit<Generation, 'tail'> & { tailFd?: number }>;
  formerPids: number[];
  formerTokens: string[];
}

function remember<T>(set: Set<T>, value: T): void {
  set.add(value);
  if (set.size > REMEMBERED) set.delete(set.values().next().value as T);
}

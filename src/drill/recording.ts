// What a drill's load records: every request as exactly one outcome, its
// latency in HDR histograms (bounded memory however long the drill runs),
// and the first failures with their details. Time is cut into slices of
// SLICE_MS so that the report can say what happened around each deploy.
// Recordings made in separate load threads merge into one.
import * as hdr from 'hdr-histogram-js';

export const OUTCOMES = ['ok', 'bad-status', 'refused', 'reset', 'timeout', 'body-mismatch'] as const;
export type RequestOutcome = (typeof OUTCOMES)[number];
export const OUTCOME_INDEX: Readonly<Record<RequestOutcome, number>> = Object.fromEntries(OUTCOMES.map((o, i) => [o, i])) as Record<
  RequestOutcome,
  number
>;

export const SLICE_MS = 250;
/** Failures kept with their details; beyond that they are only counted. */
const MAX_FAILURES = 10_000;
/** Latencies are kept in microseconds, up to an hour. */
const HIGHEST_US = 3_600_000_000;

export interface Failure {
  /** ms since the load began. */
  at: number;
  outcome: RequestOutcome;
  detail: string;
}

/** The whole run at 3 significant digits; each slice at 2 (1% is plenty for a timeline) and packed. */
const wholeHistogram = () =>
  hdr.build({
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  });
const sliceHistogram = () =>
  hdr.build({
    bitBucketSize: 'packed',
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 2,
    autoResize: true,
  });

export type Histogram = hdr.Histogram;

export interface Slice {
  /** Latencies of the requests started in this slice. */
  latency: Histogram;
  /** Outcomes of the requests started in this slice, by OUTCOMES index. */
  outcomes: number[];
  /** Requests answered ok in this slice (by the time they ended): the throughput. */
  completed: number;
}

/** A Recording as it crosses a thread boundary. */
export interface RecordingData {
  whole: string;
  slices: Array<{ latency: string; outcomes: number[]; completed: number } | null>;
  failures: Failure[];
}

export class Recording {
  readonly whole: Histogram = wholeHistogram();
  readonly slices: Array<Slice | undefined> = [];
  readonly failures: Failure[] = [];
  readonly outcomes: number[] = OUTCOMES.map(() => 0);
  requests = 0;

  /** `start` and `end` in ms since the load began. */
  record(start: number, end: number, outcome: number, detail: string): void {
    const us = Math.max(1, Math.round((end - start) * 1000));
    this.whole.recordValue(us);
    const slice = this.slice(start);
    slice.latency.recordValue(us);
    (slice.outcomes[outcome] as number)++;
    (this.outcomes[outcome] as number)++;
    this.requests++;
    if (outcome === 0) this.slice(end).completed++;
    else if (this.failures.length < MAX_FAILURES) this.failures.push({ at: start, outcome: OUTCOMES[outcome] as RequestOutcome, detail });
  }

  get failed(): number {
    return this.requests - (this.outcomes[0] as number);
  }

  private slice(t: number): Slice {
    const k = Math.max(0, Math.floor(t / SLICE_MS));
    let s = this.slices[k];
    if (!s) {
      s = { latency: sliceHistogram(), outcomes: OUTCOMES.map(() => 0), completed: 0 };
      this.slices[k] = s;
    }
    return s;
  }

  toData(): RecordingData {
    return {
      whole: hdr.encodeIntoCompressedBase64(this.whole),
      slices: Array.from(this.slices, (s) =>
        s ? { latency: hdr.encodeIntoCompressedBase64(s.latency), outcomes: s.outcomes, completed: s.completed } : null,
      ),
      failures: this.failures,
    };
  }

  /** Adds another recording (from another load thread) into this one. */
  merge(data: RecordingData): void {
    const whole = hdr.decodeFromCompressedBase64(data.whole);
    this.whole.add(whole);
    data.slices.forEach((d, k) => {
      if (!d) return;
      const s = this.slice(k * SLICE_MS);
      s.latency.add(hdr.decodeFromCompressedBase64(d.latency));
      s.completed += d.completed;
      d.outcomes.forEach((n, i) => {
        s.outcomes[i] = (s.outcomes[i] as number) + n;
        this.outcomes[i] = (this.outcomes[i] as number) + n;
        this.requests += n;
      });
    });
    for (const f of data.failures) if (this.failures.length < MAX_FAILURES) this.failures.push(f);
    this.failures.sort((a, b) => a.at - b.at);
  }
}

/** A histogram of the slices [from, to) merged, for a window of the run. */
export function sliceLatency(r: Recording, from: number, to: number): Histogram {
  const h = sliceHistogram();
  for (let k = Math.max(0, from); k < Math.min(to, r.slices.length); k++) {
    const s = r.slices[k];
    if (s) h.add(s.latency);
  }
  return h;
}

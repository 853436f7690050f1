// Turns a drill's recording and deploy timings into numbers and a text report.
import { type Histogram, OUTCOMES, type Recording, type RequestOutcome, SLICE_MS, sliceLatency } from './recording.ts';

/** One deploy the drill made, as seen from the drill. */
export interface DeployMark {
  index: number;
  /** ms since the load began: when the deploy was triggered. */
  at: number;
  /**
   * Followed through the supervisor's control socket: ms until its old
   * generation was gone. A deploy command (`--deploy`) is not followed: the
   * drill cannot tell when its old generation went, only how long the
   * command ran (`commandMs`).
   */
  followed: boolean;
  durationMs: number | undefined;
  commandMs?: number;
  /** The supervisor's verdict (followed deploys). */
  outcome?: string;
}

/** Latencies in ms. */
export interface LatencyStats {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** Answered requests per second. */
export interface Throughput {
  /** In the STEADY_MS before the deploy. */
  before: number;
  /** From the trigger until the old generation was gone (at least one slice). */
  during: number;
  /** The lowest slice from the trigger until a second after the old generation was gone. */
  lowest: number;
}

export interface Bucket {
  /** Start of the slice, seconds since the load began. */
  t: number;
  /** Requests started in the slice. */
  requests: number;
  failed: number;
  /** Requests answered ok in the slice. */
  completed: number;
  p50: number;
  p99: number;
}

export interface DrillReport {
  label: string;
  seconds: number;
  requests: number;
  outcomes: Record<RequestOutcome, number>;
  failed: number;
  /** Deploys whose verdict was not "deployed". */
  failedDeploys: number;
  latency: LatencyStats;
  /** The load client's own cost: CPU seconds of all its threads, and per request. */
  client: { cpuSeconds: number; cpuUsPerRequest: number };
  deploys: Array<DeployMark & { window: LatencyStats; failed: number; throughput: Throughput }>;
  failures: Recording['failures'];
  /** Throughput and latency over time, in bucketMs slices. */
  timeline: Bucket[];
  bucketMs: number;
}

/** Deploy windows run from WINDOW_MS before the trigger to WINDOW_MS after the old generation is gone. */
const WINDOW_MS = 1000;
/** The steady state a deploy's throughput is compared with: this long before its trigger. */
const STEADY_MS = 2000;

function stats(h: Histogram): LatencyStats {
  const ms = (us: number) => us / 1000;
  if (h.totalCount === 0) return { count: 0, p50: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

const sliceOf = (ms: number) => Math.floor(ms / SLICE_MS);

/** Answered requests per second over slices [from, to). */
function rate(r: Recording, from: number, to: number): number {
  let n = 0;
  for (let k = Math.max(0, from); k < to; k++) n += r.slices[k]?.completed ?? 0;
  return to > from ? n / (((to - Math.max(0, from)) * SLICE_MS) / 1000) : 0;
}

function deployFigures(r: Recording, d: DeployMark) {
  const end = d.at + (d.durationMs ?? d.commandMs ?? 0);
  const [from, to] = [sliceOf(d.at - WINDOW_MS), sliceOf(end + WINDOW_MS) + 1];
  let failed = 0;
  for (let k = Math.max(0, from); k < to; k++) {
    const s = r.slices[k];
    if (s) failed += s.outcomes.reduce((a, b) => a + b, 0) - (s.outcomes[0] as number);
  }
  const [trigger, gone] = [sliceOf(d.at), Math.max(sliceOf(d.at) + 1, sliceOf(end) + 1)];
  let lowest = Number.POSITIVE_INFINITY;
  for (let k = trigger; k < Math.min(to, r.slices.length); k++) lowest = Math.min(lowest, rate(r, k, k + 1));
  return {
    window: stats(sliceLatency(r, from, to)),
    failed,
    throughput: {
      before: rate(r, trigger - STEADY_MS / SLICE_MS, trigger),
      during: rate(r, trigger, gone),
      lowest: Number.isFinite(lowest) ? lowest : 0,
    },
  };
}

function timeline(r: Recording): Bucket[] {
  return Array.from(r.slices, (s, k) => {
    const requests = s ? s.outcomes.reduce((a, b) => a + b, 0) : 0;
    const st = s ? stats(s.latency) : undefined;
    return {
      t: (k * SLICE_MS) / 1000,
      requests,
      failed: requests - (s?.outcomes[0] ?? 0),
      completed: s?.completed ?? 0,
      p50: st?.p50 ?? 0,
      p99: st?.p99 ?? 0,
    };
  });
}

export function buildReport(label: string, r: Recording, deploys: readonly DeployMark[], seconds: number, cpuSeconds: number): DrillReport {
  return {
    label,
    seconds,
    requests: r.requests,
    outcomes: Object.fromEntries(OUTCOMES.map((o, i) => [o, r.outcomes[i] ?? 0])) as Record<RequestOutcome, number>,
    failed: r.failed,
    failedDeploys: deploys.filter((d) => d.outcome !== undefined && d.outcome !== 'deployed').length,
    latency: stats(r.whole),
    client: { cpuSeconds, cpuUsPerRequest: r.requests ? (cpuSeconds * 1e6) / r.requests : 0 },
    deploys: deploys.map((d) => ({ ...d, ...deployFigures(r, d) })),
    failures: r.failures,
    timeline: timeline(r),
    bucketMs: SLICE_MS,
  };
}

const ms = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;
const pct = (part: number, whole: number) => (whole > 0 ? `${Math.round((part / whole) * 100)}%` : 'n/a');

export function formatReport(r: DrillReport): string {
  const lines = [`== ${r.label}`];
  lines.push(
    `requests: ${r.requests} in ${r.seconds.toFixed(1)} s (${Math.round(r.requests / r.seconds)} req/s); client CPU ${r.client.cpuUsPerRequest.toFixed(1)} µs/request`,
  );
  lines.push(`outcomes: ${OUTCOMES.map((o) => `${o} ${r.outcomes[o]}`).join(', ')}`);
  lines.push(`latency: p50 ${ms(r.latency.p50)}, p99 ${ms(r.latency.p99)}, p99.9 ${ms(r.latency.p999)}, max ${ms(r.latency.max)}`);
  for (const d of r.deploys) {
    const took =
      d.outcome !== undefined && d.outcome !== 'deployed'
        ? `FAILED (${d.outcome})`
        : !d.followed
          ? `not followed (the deploy command ran ${ms(d.commandMs ?? 0)})`
          : d.durationMs === undefined
            ? 'old generation not seen to exit'
            : `old generation gone after ${ms(d.durationMs)}`;
    const w = d.window;
    const tp = d.throughput;
    lines.push(
      `deploy ${String(d.index).padStart(2)} at ${(d.at / 1000).toFixed(1)} s: ${took}; around it p50 ${ms(w.p50)}, p99 ${ms(w.p99)}, p99.9 ${ms(w.p999)}, max ${ms(w.max)}, failed ${d.failed}; throughput ${pct(tp.during, tp.before)} of before (lowest ${SLICE_MS} ms: ${pct(tp.lowest, tp.before)})`,
    );
  }
  for (const f of r.failures.slice(0, 20)) lines.push(`failure at ${(f.at / 1000).toFixed(3)} s: ${f.outcome} ${f.detail}`);
  if (r.failures.length > 20) lines.push(`... and ${r.failed - 20} more failures`);
  if (r.failed > 0) lines.push(`verdict: FAIL - ${r.failed} of ${r.requests} requests failed through ${r.deploys.length} deploys`);
  else if (r.failedDeploys > 0)
    lines.push(`verdict: FAIL - ${r.failedDeploys} of ${r.deploys.length} deploys did not take effect (no request failed)`);
  else lines.push(`verdict: PASS - ${r.requests} requests through ${r.deploys.length} deploys, none failed`);
  return `${lines.join('\n')}\n`;
}

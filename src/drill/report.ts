// Turns a drill's samples and deploy timings into numbers and a text report.
import { OUTCOMES, type Outcome, type Samples } from './client.ts';

export interface Deploy {
  index: number;
  /** ms since the drill began: when the deploy was triggered. */
  at: number;
  /** ms until the old generation was gone (or the deploy command ended). */
  durationMs: number | undefined;
}

export interface LatencyStats {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface Bucket {
  /** Start of the bucket, seconds since the load began. */
  t: number;
  requests: number;
  failed: number;
  p50: number;
  p99: number;
}

export interface DrillReport {
  label: string;
  seconds: number;
  requests: number;
  outcomes: Record<Outcome, number>;
  failed: number;
  latency: LatencyStats;
  deploys: Array<Deploy & { window: LatencyStats; failed: number }>;
  failures: Samples['failures'];
  /** Throughput and latency over time, in BUCKET_MS slices. */
  timeline: Bucket[];
  bucketMs: number;
}

const BUCKET_MS = 250;

function stats(latencies: number[]): LatencyStats {
  if (latencies.length === 0) return { count: 0, p50: 0, p99: 0, max: 0 };
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number;
  return { count: latencies.length, p50: at(0.5), p99: at(0.99), max: latencies[latencies.length - 1] as number };
}

/** Latency of requests started in [from, to) ms. */
function windowStats(s: Samples, from: number, to: number): { window: LatencyStats; failed: number } {
  const lat: number[] = [];
  let failed = 0;
  for (let i = 0; i < s.count; i++) {
    const t = s.start[i] as number;
    if (t < from || t >= to) continue;
    lat.push(s.latency[i] as number);
    if (s.outcome[i] !== 0) failed++;
  }
  return { window: stats(lat), failed };
}

/** Deploy windows run from 1 s before the trigger to 1 s after the old generation is gone. */
const WINDOW_MS = 1000;

function timeline(s: Samples, origin: number): Bucket[] {
  const slices: Array<{ lat: number[]; failed: number }> = [];
  for (let i = 0; i < s.count; i++) {
    const k = Math.max(0, Math.floor(((s.start[i] as number) - origin) / BUCKET_MS));
    slices[k] ??= { lat: [], failed: 0 };
    (slices[k].lat as number[]).push(s.latency[i] as number);
    if (s.outcome[i] !== 0) slices[k].failed++;
  }
  return Array.from(slices, (b, k) => {
    const st = stats(b?.lat ?? []);
    return { t: (k * BUCKET_MS) / 1000, requests: st.count, failed: b?.failed ?? 0, p50: st.p50, p99: st.p99 };
  });
}

export function buildReport(label: string, samples: Samples, deploys: readonly Deploy[], seconds: number): DrillReport {
  const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const all: number[] = new Array(samples.count);
  let origin = Number.POSITIVE_INFINITY;
  for (let i = 0; i < samples.count; i++) {
    outcomes[OUTCOMES[samples.outcome[i] as number] as Outcome]++;
    all[i] = samples.latency[i] as number;
    origin = Math.min(origin, samples.start[i] as number);
  }
  if (!Number.isFinite(origin)) origin = 0;
  return {
    label,
    seconds,
    requests: samples.count,
    outcomes,
    failed: samples.count - outcomes.ok,
    latency: stats(all),
    deploys: deploys.map((d) => ({
      ...d,
      at: d.at - origin,
      ...windowStats(samples, d.at - WINDOW_MS, d.at + (d.durationMs ?? 0) + WINDOW_MS),
    })),
    failures: samples.failures.map((f) => ({ ...f, at: f.at - origin })),
    timeline: timeline(samples, origin),
    bucketMs: BUCKET_MS,
  };
}

const ms = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;

export function formatReport(r: DrillReport): string {
  const lines = [`== ${r.label}`];
  lines.push(`requests: ${r.requests} in ${r.seconds.toFixed(1)} s (${Math.round(r.requests / r.seconds)} req/s)`);
  lines.push(`outcomes: ${OUTCOMES.map((o) => `${o} ${r.outcomes[o]}`).join(', ')}`);
  lines.push(`latency: p50 ${ms(r.latency.p50)}, p99 ${ms(r.latency.p99)}, max ${ms(r.latency.max)}`);
  for (const d of r.deploys) {
    const took = d.durationMs === undefined ? 'old generation not seen to exit' : `old generation gone after ${ms(d.durationMs)}`;
    lines.push(
      `deploy ${String(d.index).padStart(2)} at ${(d.at / 1000).toFixed(1)} s: ${took}; around it p50 ${ms(d.window.p50)}, p99 ${ms(d.window.p99)}, max ${ms(d.window.max)}, failed ${d.failed}`,
    );
  }
  for (const f of r.failures.slice(0, 20)) lines.push(`failure at ${(f.at / 1000).toFixed(3)} s: ${f.outcome} ${f.detail}`);
  if (r.failures.length > 20) lines.push(`... and ${r.failed - 20} more failures`);
  lines.push(
    r.failed === 0
      ? `verdict: PASS - ${r.requests} requests through ${r.deploys.length} deploys, none failed`
      : `verdict: FAIL - ${r.failed} of ${r.requests} requests failed through ${r.deploys.length} deploys`,
  );
  return `${lines.join('\n')}\n`;
}

// --metrics=HOST:PORT: Prometheus text at /metrics, cheap enough to scrape
// every second (a few counters kept as things happen, rendered on request;
// nothing is computed per scrape beyond the text itself). What `baton serve`
// generations add (connections, worker restarts) arrives on the notify
// socket as BATON_STATS= lines, sent once a second by their masters.
import type { Server } from 'node:http';
import type { DeployOutcome, DeployRecord, Verdict } from '../control/protocol.ts';
import { BatonError } from '../errors.ts';
import { http } from '../net/node-modules.ts';

/** The verdicts, named as a Prometheus label wants them. */
const OUTCOME_LABEL: Record<DeployOutcome, string> = {
  deployed: 'deployed',
  'start-failed': 'exited',
  'not-ready': 'not_ready',
  'old-not-gone': 'timeout',
  stopped: 'stopped',
};
/** Seconds: a deploy takes from a tenth of a second to the deploy bound. */
const BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

class Histogram {
  readonly counts = BUCKETS.map(() => 0);
  sum = 0;
  count = 0;
  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (const [i, b] of BUCKETS.entries()) if (seconds <= b) this.counts[i] = (this.counts[i] ?? 0) + 1;
  }
}

/** What a generation's master last said of itself. */
export interface GenerationStats {
  connections: number;
  workerRestarts: number;
}

export class Metrics {
  private readonly deploys = new Map<string, number>(Object.values(OUTCOME_LABEL).map((o) => [o, 0]));
  private readonly durations = { ready: new Histogram(), gone: new Histogram() };
  private startFailures = 0;
  /** Restarts counted from generations that are gone, so the total never goes down. */
  private pastRestarts = 0;
  private readonly stats = new Map<number, GenerationStats>();

  /** For an upgrade's exec: the counters go on. */
  snapshot(): object {
    return {
      deploys: [...this.deploys],
      durations: this.durations,
      startFailures: this.startFailures,
      pastRestarts: this.pastRestarts,
      stats: [...this.stats],
    };
  }

  restore(snap: object): void {
    const s = snap as {
      deploys: Array<[string, number]>;
      durations: Record<'ready' | 'gone', { counts: number[]; sum: number; count: number }>;
      startFailures: number;
      pastRestarts: number;
      stats: Array<[number, GenerationStats]>;
    };
    for (const [k, v] of s.deploys) this.deploys.set(k, v);
    for (const phase of ['ready', 'gone'] as const) Object.assign(this.durations[phase], s.durations[phase]);
    this.startFailures = s.startFailures;
    this.pastRestarts = s.pastRestarts;
    for (const [k, v] of s.stats) this.stats.set(k, v);
  }

  deployEnded(v: Verdict, r: DeployRecord): void {
    this.deploys.set(OUTCOME_LABEL[v.outcome], (this.deploys.get(OUTCOME_LABEL[v.outcome]) ?? 0) + 1);
    if (r.readyMs !== undefined) this.durations.ready.observe(r.readyMs / 1000);
    if (r.goneMs !== undefined) this.durations.gone.observe(r.goneMs / 1000);
  }

  startFailed(): void {
    this.startFailures++;
  }

  /** A BATON_STATS= line from a generation's master: `connections=12 restarts=0`. */
  generationSaid(generation: number, line: string): void {
    const field = (name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(line)?.[1] ?? 0);
    this.stats.set(generation, { connections: field('connections'), workerRestarts: field('restarts') });
  }

  /** What a generation last said of its connections (baton serve under --metrics). */
  connectionsOf(generation: number): number | undefined {
    return this.stats.get(generation)?.connections;
  }

  generationGone(generation: number): void {
    this.pastRestarts += this.stats.get(generation)?.workerRestarts ?? 0;
    this.stats.delete(generation);
  }

  render(now: { serving: number | undefined; draining: number; generations: Array<{ generation: number; state: string }> }): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    metric('baton_generation', 'gauge', 'The generation serving now (SERVER_STARTER_GENERATION); 0 when none does.');
    out.push(`baton_generation ${now.serving ?? 0}`);
    metric('baton_generations_draining', 'gauge', 'Older generations still draining.');
    out.push(`baton_generations_draining ${now.draining}`);
    metric('baton_deploys_total', 'counter', 'Deploys by how they ended.');
    for (const [outcome, n] of this.deploys) out.push(`baton_deploys_total{outcome="${outcome}"} ${n}`);
    metric(
      'baton_deploy_duration_seconds',
      'histogram',
      'How long deploys took: until the new generation was ready, until the old ones were gone.',
    );
    for (const [phase, h] of Object.entries(this.durations)) {
      for (const [i, b] of BUCKETS.entries()) out.push(`baton_deploy_duration_seconds_bucket{phase="${phase}",le="${b}"} ${h.counts[i]}`);
      out.push(`baton_deploy_duration_seconds_bucket{phase="${phase}",le="+Inf"} ${h.count}`);
      out.push(
        `baton_deploy_duration_seconds_sum{phase="${phase}"} ${h.sum}`,
        `baton_deploy_duration_seconds_count{phase="${phase}"} ${h.count}`,
      );
    }
    metric(
      'baton_generation_start_failures_total',
      'counter',
      'Generations that exited, could not run, or were not ready in time while starting.',
    );
    out.push(`baton_generation_start_failures_total ${this.startFailures}`);
    metric('baton_worker_restarts_total', 'counter', 'baton serve workers that died and were restarted.');
    out.push(`baton_worker_restarts_total ${this.pastRestarts + [...this.stats.values()].reduce((n, s) => n + s.workerRestarts, 0)}`);
    metric('baton_connections', 'gauge', 'Connections open in each generation (baton serve), draining ones included.');
    for (const g of now.generations) {
      const s = this.stats.get(g.generation);
      if (s) out.push(`baton_connections{generation="${g.generation}",state="${g.state}"} ${s.connections}`);
    }
    return `${out.join('\n')}\n`;
  }
}

/** Serves `render()` at http://HOST:PORT/metrics. */
export async function serveMetrics(address: string, render: () => string): Promise<Server> {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  if (!m) throw new BatonError('ERR_BATON_USAGE', `--metrics must be HOST:PORT, like 127.0.0.1:9464 (got ${JSON.stringify(address)})`);
  const host = m[1] ?? (m[2] || '0.0.0.0');
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics' && !req.url?.startsWith('/metrics?')) {
      res.statusCode = 404;
      res.end('see /metrics\n');
      return;
    }
    res.setHeader('Content-Type', 'text/plain; version=0.0.4');
    res.end(render());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new BatonError('ERR_BATON_USAGE', `--metrics ${address}: cannot listen (${e.code ?? e.message}); pick another address`)),
    );
    server.listen(Number(m[3]), host, resolve);
  });
  server.unref();
  return server;
}

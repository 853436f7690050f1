// One drill: a server under baton's supervisor (or any running URL), load
// from the counting client, N hot deploys, then a report.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../net/free-port.ts';
import { LoadClient, type LoadOptions } from './client.ts';
import { buildReport, type Deploy, type DrillReport } from './report.ts';

const START_SERVER = join(import.meta.dirname, '..', 'cli', `start_server${import.meta.filename.endsWith('.ts') ? '.ts' : '.js'}`);

export interface DrillOptions {
  label: string;
  /** Server command to run under start_server; or undefined with `url` + `deployCommand`. */
  command?: string[];
  url?: string;
  deployCommand?: string;
  path: string;
  deploys: number;
  everyMs: number;
  warmupMs: number;
  cooldownMs: number;
  /** Total load time; by default until cooldownMs after the last deploy. */
  durationMs?: number | undefined;
  load: Omit<LoadOptions, 'url'>;
  /** Load threads (default 1). */
  workers?: number;
  progress?: (line: string) => void;
  /** Ends the drill early (no more deploys, load stopped), still with a report. */
  signal?: AbortSignal;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}

/** Follows start_server's log: when did each deploy's old generation exit? */
class DeployTracker {
  readonly deploys: Deploy[] = [];
  private readonly pendingOld = new Map<number, Set<number>>();
  log = '';
  private buffer = '';
  /** performance.now() when the load began; deploy times count from there. */
  t0 = 0;

  constructor(child: ChildProcess) {
    child.stderr?.on('data', (d: Buffer) => this.feed(d.toString()));
  }

  trigger(index: number): void {
    this.deploys.push({ index, at: performance.now() - this.t0, durationMs: undefined });
  }

  private feed(text: string): void {
    this.log += text;
    if (this.log.length > 1_000_000) this.log = this.log.slice(-500_000);
    this.buffer += text;
    const lines = this.buffer.split('\n');
    this.buffer = lines.pop() as string;
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    const now = performance.now() - this.t0;
    const running = /^new worker is now running, sending \w+ to old workers:(.*)$/.exec(line);
    const deploy = this.deploys.find((d) => d.durationMs === undefined && !this.pendingOld.has(d.index));
    if (running && deploy) {
      const pids = new Set(running[1] === 'none' ? [] : (running[1] as string).split(',').map(Number));
      // old workers of earlier deploys may still be listed: only new ones matter
      for (const set of this.pendingOld.values()) for (const p of set) pids.delete(p);
      this.pendingOld.set(deploy.index, pids);
      if (pids.size === 0) deploy.durationMs = now - deploy.at;
    }
    const died = /^old worker (\d+) died/.exec(line);
    if (died) {
      const pid = Number(died[1]);
      for (const [index, pids] of this.pendingOld) {
        if (!pids.delete(pid) || pids.size > 0) continue;
        const d = this.deploys.find((x) => x.index === index) as Deploy;
        d.durationMs = now - d.at;
      }
    }
  }
}

async function waitServing(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await fetch(url).catch(() => undefined))?.ok) return;
    await sleep(100);
  }
  throw new Error(`the server did not answer ${url} within ${ms / 1000} s`);
}

export async function runDrill(o: DrillOptions): Promise<{ report: DrillReport; serverLog: string }> {
  let url = o.url;
  let supervisor: ChildProcess | undefined;
  let tracker: DeployTracker | undefined;
  if (o.command) {
    const port = await freePort();
    url = `http://127.0.0.1:${port}${o.path}`;
    supervisor = spawn(process.execPath, [START_SERVER, `--port=127.0.0.1:${port}`, '--', ...o.command], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PORT: String(port) },
    });
    tracker = new DeployTracker(supervisor);
  }
  const target = url as string;
  try {
    await waitServing(target, 30_000);
    const client = new LoadClient({ ...o.load, url: target }, o.workers);
    const t0 = await client.start();
    if (tracker) tracker.t0 = t0;
    const deploys: Deploy[] = [];
    let done = 0;
    const progress = setInterval(() => {
      const secs = (performance.now() - t0) / 1000;
      const p = client.progress();
      o.progress?.(
        `${o.label}: ${secs.toFixed(0)} s, ${Math.round(p.requests / secs)} req/s, ${p.failed} failed, ${done}/${o.deploys} deploys`,
      );
    }, 1000);
    await pause(o.warmupMs, o.signal);
    for (let i = 1; i <= o.deploys && !o.signal?.aborted; i++) {
      if (supervisor && tracker) {
        tracker.trigger(i);
        supervisor.kill('SIGHUP');
        await pause(o.everyMs, o.signal);
      } else {
        const at = performance.now() - t0;
        await new Promise<void>((resolve) =>
          spawn('sh', ['-c', o.deployCommand as string], { stdio: 'ignore' }).on('close', () => resolve()),
        );
        deploys.push({ index: i, at, durationMs: performance.now() - t0 - at });
        await pause(Math.max(0, o.everyMs - (performance.now() - t0 - at)), o.signal);
      }
      done = i;
    }
    const elapsed = performance.now() - t0;
    await pause(o.durationMs === undefined ? o.cooldownMs : Math.max(0, o.durationMs - elapsed), o.signal);
    const { recording, cpuSeconds } = await client.stop();
    clearInterval(progress);
    const seconds = (performance.now() - t0) / 1000;
    return {
      report: buildReport(o.label, recording, tracker ? tracker.deploys : deploys, seconds, cpuSeconds),
      serverLog: tracker?.log ?? '',
    };
  } finally {
    if (supervisor && supervisor.exitCode === null) {
      const exited = new Promise((resolve) => supervisor.once('close', resolve));
      supervisor.kill('SIGTERM');
      await exited;
    }
  }
}

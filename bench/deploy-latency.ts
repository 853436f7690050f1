// How long a hot deploy takes, seen from outside: from the deploy command
// (a HUP, `pm2 reload`) to the new version ready, as its supervisor decides
// it (the log line after which it stops the old one: readiness or a fixed
// --interval), and to every process of the old version gone, as /proc shows
// it (exited or a zombie). Under a light keep-alive load, so the old version
// has connections to drain, every request counted.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { treeCpu } from '../harness/proc.ts';
import { LoadClient } from '../src/drill/load-client.ts';

export interface Deployable {
  /** The process whose descendants are the served version (the supervisor, PM2's daemon). */
  root: number;
  /** The supervisor's log so far. */
  log: () => string;
  /** A line of the log that says the new version is ready... */
  ready: RegExp;
  /** ...and how many of them one deploy writes (PM2 reloads worker by worker). */
  readyLines?: number;
  /** Shell command that deploys. */
  deploy: string;
}

export interface Latency {
  readyMs: number[];
  goneMs: number[];
  requests: number;
  failed: number;
}

/** How long one deploy may take here before it counts as never done. */
const GIVE_UP_MS = 60_000;

function gone(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function count(re: RegExp, text: string): number {
  return (text.match(new RegExp(re.source, 'g')) ?? []).length;
}

/** `deploys` deploys one after another (each once the previous one is done and settled). */
export async function deployLatency(d: Deployable, url: string, deploys: number): Promise<Latency> {
  const client = new LoadClient({
    url,
    connections: 10,
    keepAlive: true,
    method: 'GET',
    bodyBytes: 0,
    timeoutMs: 5000,
    expectStatus: 200,
    thinkMs: 10,
  });
  await client.start();
  const readyMs: number[] = [];
  const goneMs: number[] = [];
  for (let i = 0; i < deploys; i++) {
    const old = [...treeCpu(d.root).keys()].filter((pid) => pid !== d.root);
    const readyBefore = count(d.ready, d.log());
    const t0 = performance.now();
    const command = new Promise((resolve) => spawn('sh', ['-c', d.deploy], { stdio: 'ignore' }).on('close', resolve));
    let ready = Number.NaN;
    let allGone = Number.NaN;
    while (performance.now() - t0 < GIVE_UP_MS && (Number.isNaN(ready) || Number.isNaN(allGone))) {
      const now = performance.now() - t0;
      if (Number.isNaN(ready) && count(d.ready, d.log()) >= readyBefore + (d.readyLines ?? 1)) ready = now;
      if (Number.isNaN(allGone) && old.every(gone)) allGone = now;
      await sleep(2);
    }
    readyMs.push(ready);
    goneMs.push(allGone);
    await command;
    await sleep(1000);
  }
  const { recording } = await client.stop();
  return { readyMs, goneMs, requests: recording.requests, failed: recording.failed };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

// One drill: a server under baton's supervisor (or any running URL), load
// from the counting client, N hot deploys, then a report.
// Deploys go through the supervisor's control socket whenever there is one
// (a server command run here under `baton start`, or `--pid-file` of a
// running one): each then has its real duration (until the old generation
// is gone) and its verdict, and a deploy that did not take effect fails the
// drill. With `--deploy CMD` (a deploy the drill cannot follow) a deploy
// lasts as long as the command.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../control/client.ts';
import { controlPath, type Verdict } from '../control/protocol.ts';
import { DEPLOY_TIMEOUT_S } from '../defaults.ts';
import { BatonError } from '../errors.ts';
import { freePort } from '../net/free-port.ts';
import { LoadClient, type LoadOptions } from './load-client.ts';
import { buildReport, type DeployMark, type DrillReport } from './report.ts';

const BATON = join(import.meta.dirname, '..', 'cli', `baton${import.meta.filename.endsWith('.ts') ? '.ts' : '.js'}`);
/** How long one deploy may take before it counts as failed. */
const DEPLOY_TIMEOUT_MS = DEPLOY_TIMEOUT_S * 1000;

export interface DrillOptions {
  label: string;
  /** Server command to run under baton start; or undefined with `url`. */
  command?: string[];
  /** With a command: baton start's --ready. */
  readiness?: 'auto' | 'notify' | 'accept' | 'interval';
  url?: string;
  /** With `url`: the running supervisor's pid file (deploys through its control socket)... */
  pidFile?: string;
  /** ...or a shell command that deploys it. */
  deployCommand?: string;
  path: string;
  /** Waited on with a GET before the load; default: the load's own request, until it answers as expected. */
  checkPath?: string | undefined;
  deploys: number;
  everyMs: number;
  warmupMs: number;
  cooldownMs: number;
  /** Total load time; by default until cooldownMs after the last deploy. */
  durationMs?: number | undefined;
  load: Omit<LoadOptions, 'url'>;
  /** Load threads (default 1). */
  threads?: number;
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

/**
 * One request on a connection of its own that is closed after the answer:
 * a GET of `checkPath` answered below 400, or the load's own request (its
 * method and body) answered with the status the load expects.
 */
function answersOk(url: string, check: { method: string; bodyBytes: number; expectStatus: number } | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const body = check?.method === 'POST' ? randomBytes(check.bodyBytes) : undefined;
    const req = request(
      url,
      {
        method: check?.method ?? 'GET',
        agent: false,
        headers: { connection: 'close', ...(body ? { 'content-length': String(body.length) } : {}) },
        timeout: 5000,
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(check ? status === check.expectStatus : status < 400);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end(body);
  });
}

// The probe must not leave an idle keep-alive connection behind: the old
// generation's drain waits for idle connections to go quiet, which would add
// seconds to the first deploy and measure the probe, not the server.
/** Waits until `url` answers; gives up (a one-line error) when `gone` says the server will never answer, or on abort. */
async function waitServing(
  url: string,
  check: Parameters<typeof answersOk>[1],
  ms: number,
  gone: () => string | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await answersOk(url, check)) return;
    const why = gone();
    if (why !== undefined) throw new BatonError('ERR_BATON_DRILL_SERVER', why);
    if (signal?.aborted)
      throw signal.reason instanceof BatonError
        ? signal.reason
        : new BatonError('ERR_BATON_STOPPED', `stopped before ${url} answered`, 130);
    await pause(100, signal);
  }
  throw new BatonError('ERR_BATON_DRILL_SERVER', `the server did not answer ${url} within ${ms / 1000} s`);
}

/** The last lines of a log, indented, for an error message. */
function lastLines(log: string, n: number): string {
  const lines = log.trimEnd().split('\n').slice(-n);
  return lines.length && lines[0] ? `; its last lines:\n${lines.map((l) => `  | ${l}`).join('\n')}` : '';
}

/** One deploy through the control socket; resolves to its verdict (or undefined when none came). */
function deployVia(path: string): Promise<Verdict | undefined> {
  let verdict: Verdict | undefined;
  return controlRequest(path, { deploy: { timeoutMs: DEPLOY_TIMEOUT_MS } }, (r) => {
    if ('verdict' in r) verdict = r.verdict;
  }).done.then(
    () => verdict,
    () => undefined,
  );
}

function runShell(command: string): Promise<void> {
  return new Promise((resolve) => spawn('sh', ['-c', command], { stdio: 'ignore' }).on('close', () => resolve()));
}

export async function runDrill(o: DrillOptions): Promise<{ report: DrillReport; serverLog: string }> {
  let url = o.url;
  let supervisor: ChildProcess | undefined;
  let serverLog = '';
  let control = o.pidFile === undefined ? undefined : controlPath(o.pidFile);
  const scratch = o.command ? mkdtempSync(join(tmpdir(), 'baton-drill-')) : undefined;
  if (o.command && scratch) {
    const port = await freePort();
    url = `http://127.0.0.1:${port}${o.path}`;
    const pidFile = join(scratch, 'pid');
    control = controlPath(pidFile);
    const readiness = o.readiness === undefined ? [] : [`--ready=${o.readiness}`];
    supervisor = spawn(
      process.execPath,
      [BATON, 'start', `--port=127.0.0.1:${port}`, `--pid-file=${pidFile}`, ...readiness, '--', ...o.command],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, PORT: String(port) },
      },
    );
    supervisor.stderr?.on('data', (d: Buffer) => {
      serverLog += d.toString();
      if (serverLog.length > 1_000_000) serverLog = serverLog.slice(-500_000);
    });
  }
  const target = url as string;
  try {
    const gone = () =>
      supervisor && (supervisor.exitCode !== null || supervisor.signalCode !== null)
        ? `the server command never served: its supervisor (baton start) exited ${supervisor.exitCode !== null ? `with status ${supervisor.exitCode}` : `on ${supervisor.signalCode}`}${lastLines(serverLog, 8)}`
        : undefined;
    const checkUrl = o.checkPath === undefined ? target : new URL(o.checkPath, target).href;
    await waitServing(checkUrl, o.checkPath === undefined ? o.load : undefined, 30_000, gone, o.signal);
    const client = new LoadClient({ ...o.load, url: target }, o.threads);
    const t0 = await client.start();
    const deploys: DeployMark[] = [];
    const pending: Array<Promise<void>> = [];
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
      const at = performance.now() - t0;
      const d: DeployMark = { index: i, at, followed: control !== undefined, durationMs: undefined };
      deploys.push(d);
      if (control) {
        // deploys may overlap (the supervisor coalesces them); each is followed to its verdict
        pending.push(
          deployVia(control).then((v) => {
            d.outcome = v?.outcome ?? 'no verdict';
            if (v?.outcome === 'deployed') d.durationMs = performance.now() - t0 - at;
          }),
        );
        await pause(o.everyMs, o.signal);
      } else {
        await runShell(o.deployCommand as string);
        d.commandMs = performance.now() - t0 - at;
        await pause(Math.max(0, o.everyMs - (performance.now() - t0 - at)), o.signal);
      }
      done = i;
    }
    await Promise.all(pending);
    const elapsed = performance.now() - t0;
    await pause(o.durationMs === undefined ? o.cooldownMs : Math.max(0, o.durationMs - elapsed), o.signal);
    const { recording, cpuSeconds } = await client.stop();
    clearInterval(progress);
    const seconds = (performance.now() - t0) / 1000;
    return { report: buildReport(o.label, recording, deploys, seconds, cpuSeconds), serverLog };
  } finally {
    if (supervisor && supervisor.exitCode === null) {
      const exited = new Promise((resolve) => supervisor.once('close', resolve));
      supervisor.kill('SIGTERM');
      await exited;
    }
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

// `npm run demo`: the README's first real use. Runs the hello app under
// baton's start_server and hot-deploys it 10 times under keep-alive load,
// then 10 times under one-request-per-connection load, counting every
// request (hung ones included). Exits non-zero if any request failed.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderHtml } from '../src/drill/html.ts';
import type { DrillReport } from '../src/drill/report.ts';
import { formatReport } from '../src/drill/report.ts';
import { runDrill } from '../src/drill/run.ts';

const app = [process.execPath, join(import.meta.dirname, 'hello', 'app.ts')];
let failed = 0;
const reports: DrillReport[] = [];
for (const keepAlive of [true, false]) {
  const { report } = await runDrill({
    label: `hello app, ${keepAlive ? 'keep-alive' : 'no keep-alive'}, 20 connections, 10 hot deploys`,
    command: app,
    path: '/',
    deploys: 10,
    everyMs: 1000,
    warmupMs: 1000,
    cooldownMs: 2000,
    load: { connections: 20, keepAlive, method: 'GET', bodyBytes: 0, timeoutMs: 5000, expectStatus: 200 },
    progress: (line) => process.stderr.isTTY && process.stderr.write(`\r${line}\x1b[K`),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  process.stdout.write(`${formatReport(report)}\n`);
  failed += report.failed;
  reports.push(report);
}
const html = join(tmpdir(), 'baton-demo-report.html');
writeFileSync(html, renderHtml(reports));
process.stdout.write(`HTML report with timeline charts: ${html}\n`);
process.exitCode = failed === 0 ? 0 : 1;

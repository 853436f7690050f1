// `npm run demo`: the README's first real use. Runs the hello app under
// baton's start_server and hot-deploys it 10 times under keep-alive load,
// then 10 times under one-request-per-connection load, counting every
// request (hung ones included). Exits non-zero if any request failed.
import { join } from 'node:path';
import { formatReport } from '../src/drill/report.ts';
import { runDrill } from '../src/drill/run.ts';

const app = [process.execPath, join(import.meta.dirname, 'hello', 'app.ts')];
let failed = 0;
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
    progress: (line) => process.stderr.write(`${line}\r`),
  });
  process.stderr.write('\n');
  process.stdout.write(`${formatReport(report)}\n`);
  failed += report.failed;
}
process.exitCode = failed === 0 ? 0 : 1;

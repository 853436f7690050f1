// Scripts that listen by themselves under `baton serve`, beyond the
// frameworks' examples: an app's own shutdown code (exit on TERM, close its
// server, close every connection) costs nothing, because it runs after the
// drain; WebSockets on the app's own server are drained too; an app with a
// second port is refused with a line naming both, and served with
// --app-port; one that never listens is one line.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { drillLoad } from '../../harness/load.ts';
import { BATON, freePort, ROOT, run, serveLocal, superviseServe, tempDir, waitFor } from '../helpers.ts';
import { deploySeries } from '../swap.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures');

for (const how of ['exit', 'close', 'close-all'] as const) {
  test(`an app whose own TERM handler does "${how}": 10 deploys under keep-alive GET and POST load, 0 failed`, {
    timeout: 120_000,
  }, async (t) => {
    const x = await superviseServe(t, join(FIXTURES, 'own-shutdown-app.js'), { env: { APP_SHUTDOWN: how } });
    const base = { url: x.url, connections: 8, keepAlive: true, bodyBytes: 1024, timeoutMs: 10_000, expectStatus: 200, thinkMs: 1 };
    const loads = await Promise.all([drillLoad({ ...base, method: 'GET' }), drillLoad({ ...base, method: 'POST' })]);
    await deploySeries({ deploy: x.hup, count: 10, done: x.deploysDone });
    const [get, post] = await Promise.all(loads.map((l) => l.stop()));
    t.diagnostic(`GET ${get?.requests}, POST ${post?.requests}; failed ${get?.failures}/${post?.failures}`);
    assert.equal(get?.failures, 0, get?.output);
    assert.equal(post?.failures, 0, post?.output);
    x.s.child.kill('SIGTERM');
    await x.s.exited;
  });
}

test("WebSockets on the app's own server are ended (1001) at --drain-timeout, and come back to the new generation", {
  timeout: 60_000,
}, async (t) => {
  const x = await superviseServe(t, join(FIXTURES, 'ws-own-app.js'), { serveArgs: ['--max-workers=2', '--drain-timeout=1'] });
  const closes: number[] = [];
  const open = () =>
    new Promise<WebSocket>((resolve) => {
      const ws = new WebSocket(x.url.replace('http', 'ws'));
      ws.on('open', () => resolve(ws));
      ws.on('close', (code) => closes.push(code));
    });
  const sockets = await Promise.all(Array.from({ length: 5 }, open));
  x.hup();
  await waitFor('closed by the drain', () => closes.length === 5, 20_000);
  assert.deepEqual(
    closes,
    sockets.map(() => 1001),
  );
  const again = await open();
  again.send('hi');
  assert.equal(String((await new Promise((r) => again.once('message', r))) as Buffer), 'hi');
  again.close();
  x.s.child.kill('SIGTERM');
  await x.s.exited;
});

test('an app that listens on a second port: one line naming both without --app-port; with it, served, its admin port bound in every worker', {
  timeout: 60_000,
}, async (t) => {
  const metrics = await freePort();
  const port = await freePort();
  const refused = run(t, BATON, ['serve', join(FIXTURES, 'two-ports-app.js'), `--port=${port}`, '--max-workers=1'], {
    env: { METRICS_PORT: String(metrics) },
  });
  assert.equal((await refused.exited).code, 1);
  const lines = refused
    .stderr()
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith(`baton serve: ${join(FIXTURES, 'two-ports-app.js')} on`));
  assert.equal(lines.length, 1, refused.stderr());
  assert.match(lines[0] as string, new RegExp(`listens on port 3000 and on 127\\.0\\.0\\.1:${metrics}; .*--app-port=PORT`));
  assert.doesNotMatch(refused.stderr(), /\n\s+at /);

  const { url } = await serveLocal(t, join(FIXTURES, 'two-ports-app.js'), ['--app-port=3000', '--max-workers=2'], {
    METRICS_PORT: String(metrics),
  });
  assert.match(await (await fetch(url)).text(), /^main \d+\n$/);
  assert.match(await (await fetch(`http://127.0.0.1:${metrics}/`)).text(), /^metrics \d+\n$/);
});

test('an app module that exports nothing and never listens: one line, exit 1', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const { writeFileSync } = await import('node:fs');
  const app = join(dir, 'idle.js');
  writeFileSync(app, 'setInterval(() => {}, 1000);\n');
  const r = run(t, BATON, ['serve', app, `--port=${await freePort()}`, '--listen-timeout=1', '--max-workers=1']);
  assert.equal((await r.exited).code, 1);
  assert.match(r.stderr(), /the app .*idle\.js exports no handler and did not call listen\(\) within 1 s/);
  assert.doesNotMatch(r.stderr(), /\n\s+at /);
});

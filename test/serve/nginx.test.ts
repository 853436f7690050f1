// Behind nginx, the seed's reverse proxy: Debian's nginx runs the recipes in
// examples/nginx/ as they are (ports and paths rewritten), with upstream
// keep-alive on, in front of `start_server --ready-notify -- baton serve`,
// over TCP and over a UNIX socket. Through hot deploys under load, GET and
// POST (which nginx does not retry), nothing fails: no 5xx in nginx's access
// log, no failed request at the client. A light load, where nginx's cached
// upstream connections sit idle for about a second between uses, loses
// nothing either. The control: the same nginx in front of an app that exits
// on TERM answers 502s.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { drillLoad, type Load, type LoadResult } from '../../harness/load.ts';
import { NGINX, type Nginx, startNginx } from '../../harness/nginx.ts';
import { have } from '../../harness/peers.ts';
import { ROOT, superviseServe, tempDir } from '../helpers.ts';
import { deploySeries } from '../swap.ts';

const APP = join(ROOT, 'test', 'fixtures', 'serve-app.ts');
const NAIVE = join(ROOT, 'test', 'fixtures', 'naive-app.ts');
const missing = have(NGINX) ? false : 'needs nginx (Debian package nginx)';

/** nginx running examples/nginx/<site>.conf in front of `upstream`, stopped at the test's end. */
async function nginxInFront(t: Parameters<typeof tempDir>[0], site: 'tcp' | 'unix', upstream: string): Promise<Nginx> {
  const nginx = await startNginx(tempDir(t), { site, upstream });
  t.after(() => nginx.stop());
  return nginx;
}

async function stopAll(loads: Load[]): Promise<LoadResult[]> {
  return Promise.all(loads.map((l) => l.stop()));
}

for (const site of ['tcp', 'unix'] as const) {
  test(`nginx (examples/nginx/${site}.conf, upstream keep-alive) in front of baton serve: 20 deploys under GET and POST load, no 5xx, 0 failed`, {
    skip: missing,
    timeout: 180_000,
  }, async (t) => {
    const path = site === 'unix' ? join(tempDir(t), 'app.sock') : undefined;
    const app = await superviseServe(t, APP, path ? { path } : {});
    const nginx = await nginxInFront(t, site, path ?? `127.0.0.1:${app.port}`);
    const base = { url: nginx.url, keepAlive: true, timeoutMs: 5000, expectStatus: 200 };
    const loads = [
      await drillLoad({ ...base, connections: 16, method: 'GET', bodyBytes: 0 }),
      await drillLoad({ ...base, connections: 16, method: 'POST', bodyBytes: 16_384 }),
    ];
    let results: LoadResult[];
    try {
      await deploySeries({ count: 20, deploy: app.hup, done: app.deploysDone, gapMs: () => 300 + Math.random() * 400 });
    } finally {
      results = await stopAll(loads);
    }
    const [get, post] = results as [LoadResult, LoadResult];
    const statuses = nginx.statuses();
    t.diagnostic(
      `${site}: GET ${get.requests} requests, ${get.failures} failed ${get.detail}; POST ${post.requests}, ${post.failures} failed ${post.detail}; nginx statuses ${JSON.stringify(statuses)}`,
    );
    assert.equal(nginx.errors(), 0, nginx.errorLog().slice(-2000));
    assert.equal(get.failures, 0, get.output);
    assert.equal(post.failures, 0, post.output);
    assert.ok(get.requests > 1000 && post.requests > 1000, 'the load ran');
  });
}

test("nginx in front of baton serve under a light load (nginx's upstream connections idle about 1 s between uses), 30 deploys 0.7 s apart: no 5xx, 0 failed", {
  skip: missing,
  timeout: 180_000,
}, async (t) => {
  const app = await superviseServe(t, APP);
  const nginx = await nginxInFront(t, 'tcp', `127.0.0.1:${app.port}`);
  const light = await drillLoad({
    url: nginx.url,
    connections: 60,
    keepAlive: true,
    method: 'POST',
    bodyBytes: 2048,
    timeoutMs: 5000,
    expectStatus: 200,
    thinkMs: 1000,
    thinkMaxMs: 1050,
  });
  let result: LoadResult;
  try {
    await deploySeries({ count: 30, deploy: app.hup, done: app.deploysDone, gapMs: 700 });
  } finally {
    [result] = (await stopAll([light])) as [LoadResult];
  }
  const statuses = nginx.statuses();
  t.diagnostic(
    `light POST load: ${result.requests} requests, ${result.failures} failed ${result.detail}; nginx statuses ${JSON.stringify(statuses)}`,
  );
  assert.equal(nginx.errors(), 0, nginx.errorLog().slice(-2000));
  assert.equal(result.failures, 0, result.output);
});

test('control: the same nginx in front of an app that exits on TERM answers POSTs with 502 through the same deploys', {
  skip: missing,
  timeout: 180_000,
}, async (t) => {
  const app = await superviseServe(t, NAIVE, { command: [process.execPath, NAIVE] });
  const nginx = await nginxInFront(t, 'tcp', `127.0.0.1:${app.port}`);
  // POST: a GET that fails on a cached upstream connection nginx retries on a new one, hiding the loss
  const load = await drillLoad({
    url: nginx.url,
    connections: 16,
    keepAlive: true,
    method: 'POST',
    bodyBytes: 16_384,
    timeoutMs: 5000,
    expectStatus: 200,
  });
  let result: LoadResult;
  try {
    await deploySeries({ count: 10, deploy: app.hup, done: app.deploysDone, gapMs: 500 });
  } finally {
    [result] = (await stopAll([load])) as [LoadResult];
  }
  const statuses = nginx.statuses();
  t.diagnostic(
    `control: ${result.requests} requests, ${result.failures} failed ${result.detail}; nginx statuses ${JSON.stringify(statuses)}`,
  );
  assert.ok(nginx.errors() > 0, JSON.stringify(statuses));
  assert.ok(result.failures > 0);
});

// baton serve with real processes and sockets: app formats, socket sources,
// recycling, crash restart, graceful TERM, HUP reload.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../../src/net/native.ts';
import { BATON, freePort, ROOT, run, START_SERVER, serveLocal, tempDir, waitFor } from '../helpers.ts';

const APP = join(ROOT, 'test', 'fixtures', 'serve-app.ts');

async function get(url: string | { socketPath: string; path: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time, so the kernel picks the worker.
    const target = typeof url === 'string' ? new URL(url) : url;
    const options =
      typeof url === 'string' ? { host: (target as URL).hostname, port: (target as URL).port, path: (target as URL).pathname } : url;
    const req = request({ ...options, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode as number, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const serving = (url: string) => waitFor(`serving ${url}`, async () => (await get(url).catch(() => undefined))?.status === 200, 15_000);

test('every app format from examples/ is served', async (t) => {
  const want: Record<string, RegExp> = {
    plain: /^plain \/\n$/,
    express: /^express \/\n$/,
    koa: /^koa \/\n$/,
    hono: /^hono \/\n$/,
    fetch: /^fetch \/\n$/,
    factory: /^factory \d+ up since \d+\n$/,
    fastify: /^fastify \/\n$/,
  };
  for (const [name, body] of Object.entries(want)) {
    const { s, url } = await serveLocal(t, join(ROOT, 'examples', 'formats', `${name}.ts`), ['--max-workers=1']);
    const r = await get(url);
    assert.match(r.body, body, name);
    s.child.kill('SIGTERM');
    assert.equal((await s.exited).code, 0, `${name}: ${s.stderr()}`);
  }
});

test('fetch handlers get streamed POST bodies and can set several cookies', async (t) => {
  const { s, url } = await serveLocal(t, join(ROOT, 'examples', 'formats', 'hono.ts'), ['--max-workers=1']);
  const body = 'x'.repeat(200_000);
  const r = await fetch(`${url}echo`, { method: 'POST', body });
  assert.equal(await r.text(), body);
  s.child.kill('SIGTERM');
  await s.exited;
});

test('sockets: inherited from start_server, from systemd LISTEN_FDS, or bound (TCP and UNIX)', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const ss = run(t, START_SERVER, [`--port=127.0.0.1:${port}`, '--', process.execPath, BATON, 'serve', APP, '--max-workers=2']);
  await serving(`http://127.0.0.1:${port}/`);
  assert.match(ss.stderr(), /on 127\.0\.0\.1:\d+ \(server-starter\)/);
  ss.child.kill('SIGTERM');
  assert.equal((await ss.exited).code, 0);

  const sdPort = await freePort();
  const fd = native.openSocket({ family: 4, host: '127.0.0.1', port: sdPort, backlog: 128 });
  t.after(() => native.closeFd(fd));
  const sd = spawn(
    'sh',
    ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec "${process.execPath}" "${BATON}" serve "${APP}" --max-workers=1`],
    {
      stdio: ['ignore', 'ignore', 'pipe', fd],
      detached: true,
    },
  );
  let sdErr = '';
  sd.stderr?.on('data', (d) => {
    sdErr += d;
  });
  t.after(() => sd.kill('SIGKILL'));
  await serving(`http://127.0.0.1:${sdPort}/`);
  assert.match(sdErr, /on web \(systemd\)/);
  sd.kill('SIGTERM');

  const sock = join(dir, 'app.sock');
  const ux = run(t, BATON, ['serve', APP, `--path=${sock}`, '--max-workers=1']);
  await waitFor(
    'unix socket',
    async () => existsSync(sock) && (await get({ socketPath: sock, path: '/' }).catch(() => undefined))?.status === 200,
  );
  ux.child.kill('SIGTERM');
  assert.equal((await ux.exited).code, 0);
});

test('workers are replaced at their request limit without a failed request', async (t) => {
  const { s, url } = await serveLocal(t, APP, ['--max-workers=2', '--max-request-per-child=5', '--min-request-per-child=3']);
  // a worker past its limit serves on until its replacement listens, which a loaded machine
  // takes seconds to boot: requests go on until four workers have answered, every one a 200
  const pids = new Set<string>();
  let requests = 0;
  for (const end = Date.now() + 120_000; pids.size < 4 && Date.now() < end; requests++) {
    const r = await get(url);
    assert.equal(r.status, 200);
    pids.add(r.body.trim());
    await sleep(25);
  }
  assert.ok(pids.size >= 4, `requests at 3-5 per worker need replacements, saw ${pids.size} workers in ${requests} requests`);
  await waitFor('recycle log', () => /worker \d+ served \d+ requests: replaced by \d+/.test(s.stderr()));
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a crashed worker is logged and replaced; others keep serving', async (t) => {
  const { s, url } = await serveLocal(t, APP, ['--max-workers=2']);
  await get(`${url}crash`).catch(() => undefined);
  await waitFor('crash logged', () =>
    /worker \d+ exited with code 3 unexpectedly \(its in-flight requests are lost\); restarting slot \d/.test(s.stderr()),
  );
  await waitFor('two workers again', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add((await get(url)).body);
    return seen.size === 2;
  });
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('TERM lets in-flight slow requests finish, then the master exits 0', async (t) => {
  const { s, url } = await serveLocal(t, APP, ['--max-workers=2']);
  const slow = [get(`${url}slow`), get(`${url}slow`), get(`${url}slow`)];
  await sleep(200);
  s.child.kill('SIGTERM');
  for (const r of await Promise.all(slow)) assert.deepEqual(r, { status: 200, body: 'slow done\n' });
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  await assert.rejects(get(url), /ECONNREFUSED/);
});

test('--shutdown-delay with --ready-path: TERM turns /ready to 503 while new connections are still served, then the drain', async (t) => {
  const { s, url } = await serveLocal(t, APP, ['--max-workers=2', '--shutdown-delay=1.5', '--ready-path=/ready']);
  assert.deepEqual(await get(`${url}ready`), { status: 200, body: 'ready\n' });
  assert.deepEqual(await get(`${url}ready?probe=kubelet`), { status: 200, body: 'ready\n' });
  assert.match((await get(`${url}readyz`)).body, /^\d{8}\n$/, "a longer path is the app's");
  const before = Date.now();
  s.child.kill('SIGTERM');
  await waitFor('unready', async () => (await get(`${url}ready`)).status === 503, 1000);
  // new connections during the delay: served, every worker of them
  for (let i = 0; i < 20; i++) assert.equal((await get(url)).status, 200);
  assert.match(s.stderr(), /received TERM: unready \(\/ready answers 503\), serving on for 1\.5 s \(--shutdown-delay\)/);
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  assert.ok(Date.now() - before >= 1500, `exited ${Date.now() - before} ms after TERM, within the delay`);
  await assert.rejects(get(url), /ECONNREFUSED/);
  const bad = run(t, BATON, ['serve', APP, '--ready-path=ready']);
  assert.equal((await bad.exited).code, 1);
  assert.match(bad.stderr(), /--ready-path must be a path starting with \//);
});

test('HUP to a standalone master: new workers with new code, then the old ones retire', async (t) => {
  const dir = tempDir(t);
  const app = join(dir, 'app.mjs');
  writeFileSync(app, "export default (req, res) => res.end('v1\\n');");
  const { s, url } = await serveLocal(t, app, ['--max-workers=2']);
  assert.equal((await get(url)).body, 'v1\n');
  writeFileSync(app, "export default (req, res) => res.end('v2\\n');");
  s.child.kill('SIGHUP');
  // a loaded machine may take many seconds to start two workers, and a broken reload is retried first
  await waitFor('reload done', () => s.stderr().includes('reload done'), 60_000);
  assert.equal((await get(url)).body, 'v2\n');
  writeFileSync(app, 'throw new Error("broken deploy")');
  s.child.kill('SIGHUP');
  await waitFor('reload failed', () => s.stderr().includes('reload failed'), 60_000);
  assert.equal((await get(url)).body, 'v2\n', 'a broken reload leaves the previous workers serving');
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('readiness: READY=1 to NOTIFY_SOCKET only once every worker listens (start_server --ready-notify)', async (t) => {
  const port = await freePort();
  const dir = tempDir(t);
  const status = join(dir, 'status');
  const s = run(t, START_SERVER, [
    `--port=127.0.0.1:${port}`,
    '--ready-notify',
    `--status-file=${status}`,
    '--',
    process.execPath,
    BATON,
    'serve',
    APP,
    '--max-workers=2',
  ]);
  await waitFor('accepted', () => existsSync(status));
  assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 200, 'serving as soon as start_server accepted it');
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('bad input: clear one-line errors', async (t) => {
  const cases: Array<[string[], RegExp, number]> = [
    [['serve'], /give the app module to serve/, 1],
    [['serve', '/nope/app.js'], /app module not found: \/nope\/app\.js/, 1],
    [['serve', APP, '--max-workers=0'], /--max-workers must be 1 or more/, 1],
    [['serve', APP, '--timeout=soon'], /--request-timeout must be a number of seconds/, 1],
    [['serve', APP, '--bogus'], /Unknown option: bogus/, 1],
  ];
  for (const [args, message, code] of cases) {
    const r = run(t, BATON, args);
    assert.equal((await r.exited).code, code, args.join(' '));
    assert.match(r.stderr(), message);
  }
  const busy = await freePort();
  const holder = run(t, BATON, ['serve', APP, `--port=${busy}`, '--host=127.0.0.1', '--max-workers=1']);
  await serving(`http://127.0.0.1:${busy}/`);
  const second = run(t, BATON, ['serve', APP, `--port=${busy}`, '--host=127.0.0.1']);
  assert.equal((await second.exited).code, 98);
  assert.match(second.stderr(), /cannot listen on 127\.0\.0\.1:\d+: .*address already in use.*--reuse-port/i);
  holder.child.kill('SIGTERM');
  const broken = join(tempDir(t), 'broken.mjs');
  writeFileSync(broken, 'export default 42;');
  const b = run(t, BATON, ['serve', broken, '--port=0', '--max-workers=1']);
  assert.equal((await b.exited).code, 1);
  // one line, the worker's own account, not a worker's exit status
  assert.match(b.stderr(), /^baton serve: cannot serve the app .*broken\.mjs: it must export a request listener .*\(got number\)$/m);
  assert.doesNotMatch(b.stderr(), /could not start|\n\s+at /);
});

test('TERM while the app is still loading (or never finishes): workers exit at once, the master exits 0', async (t) => {
  const port = await freePort();
  const s = run(t, BATON, ['serve', join(ROOT, 'bench', 'apps', 'chaos-app.ts'), `--port=${port}`, '--host=127.0.0.1', '--max-workers=2'], {
    env: { BATON_CHAOS: 'never-ready' },
  });
  await waitFor('master up', () => /on 127\.0\.0\.1:\d+/.test(s.stderr()));
  await sleep(500);
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  // the KILL deadline is --graceful-timeout (30 s) plus 5 s
  assert.ok(Date.now() - t0 < 15_000, `stopped in ${Date.now() - t0} ms, not at the KILL deadline`);
  assert.doesNotMatch(s.stderr(), /sending KILL/);
});

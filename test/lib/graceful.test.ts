import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, createServer, request } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { graceful, nodeConnectionList } from '../../src/lib/graceful/index.ts';
import { waitFor } from '../helpers.ts';

async function start(handler: Parameters<typeof createServer>[1]) {
  const server = createServer(handler);
  const g = graceful(server, { idleMs: 300, timeoutMs: 5000 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, g, port: (server.address() as { port: number }).port };
}

function get(port: number, agent: Agent): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', agent }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode as number, connection: res.headers.connection, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('after shutdown, a busy keep-alive connection gets Connection: close (even from a synchronous handler) and the server drains', async () => {
  const { g, port } = await start((_req, res) => res.end('ok'));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  assert.equal((await get(port, agent)).connection, 'keep-alive');
  const done = g.shutdown();
  const after = await get(port, agent);
  assert.deepEqual([after.status, after.connection, after.body], [200, 'close', 'ok']);
  assert.equal(await done, 'drained');
  agent.destroy();
});

test('an in-flight slow request finishes, with Connection: close', async () => {
  const { g, port } = await start(async (_req, res) => {
    await sleep(500);
    res.end('slow');
  });
  const agent = new Agent({ keepAlive: true });
  const pending = get(port, agent);
  await sleep(100);
  const done = g.shutdown();
  const r = await pending;
  assert.deepEqual([r.status, r.body, r.connection], [200, 'slow', 'close']);
  assert.equal(await done, 'drained');
  agent.destroy();
});

test('an idle keep-alive connection is closed only after idleMs, and a connection that never goes idle hits the timeout', async () => {
  const { g, port } = await start((_req, res) => res.end('ok'));
  const agent = new Agent({ keepAlive: true });
  await get(port, agent);
  const t0 = Date.now();
  assert.equal(await g.shutdown(), 'drained');
  assert.ok(Date.now() - t0 >= 250, 'waited for the idle threshold');
  agent.destroy();

  const server = createServer(() => {});
  const g2 = graceful(server, { idleMs: 100, timeoutMs: 400 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const req = request({ port: (server.address() as { port: number }).port, host: '127.0.0.1' });
  req.on('error', () => {});
  req.end();
  await sleep(100);
  assert.equal(await g2.shutdown(), 'timeout');
});

test("by default an idle keep-alive connection is kept as long as Node would keep it (the announced keep-alive timeout and Node's margin), then closed", async () => {
  const server = createServer((_req, res) => res.end('ok'));
  server.keepAliveTimeout = 700;
  (server as { keepAliveTimeoutBuffer?: number }).keepAliveTimeoutBuffer = 300;
  const g = graceful(server, { timeoutMs: 5000 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // graceful reads Node's own connection list: no per-request or per-connection work of its own
  assert.ok(nodeConnectionList(server), 'this Node keeps server[kConnections]');
  // a client that keeps its connection whatever the server announces
  const sock = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1' });
  sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await once(sock, 'data');
  const closed = once(sock, 'close');
  const t0 = Date.now();
  assert.equal(await g.shutdown(), 'drained');
  await closed;
  assert.ok(Date.now() - t0 >= 950, `closed after ${Date.now() - t0} ms, before Node itself would have closed it`);
});

test('the idle rule, on its own: a quiet connection is closed after idleMs, never one with bytes waiting unread in the kernel', async () => {
  const { createServer: createNetServer } = await import('node:net');
  const { IdleSweep } = await import('../../src/lib/graceful/idle.ts');
  const accepted: import('node:net').Socket[] = [];
  // Node reads nothing: what arrives stays in the kernel
  const server = createNetServer({ pauseOnConnect: true }, (s) => accepted.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const quiet = connect({ port, host: '127.0.0.1' }).resume();
  const talking = connect({ port, host: '127.0.0.1' });
  await once(talking, 'connect');
  talking.write('GET / HTTP/1.1\r\n');
  await sleep(100);
  const sweep = new IdleSweep(200);
  const t0 = Date.now();
  assert.equal(sweep.sweep(accepted, undefined, t0), 0);
  assert.equal(sweep.sweep(accepted, undefined, t0 + 100), 0, 'not quiet for long enough yet');
  const closed = sweep.sweep(accepted, undefined, t0 + 250);
  assert.equal(closed, 1, `only the quiet one (closed ${closed}; bytesRead ${accepted.map((s) => s.bytesRead)})`);
  await once(quiet, 'close');
  assert.equal(talking.destroyed, false);
  talking.destroy();
  server.close();
});

test("long-lived connections, on their own: an event stream begun before the drain is the app's until the bound, then ended with a retry hint", async () => {
  const { Connections } = await import('../../src/lib/graceful/connections.ts');
  const { LongLived } = await import('../../src/lib/graceful/long-lived.ts');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('data: hello\n\n');
  });
  const conns = new Connections(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let text = '';
  const ended = new Promise<void>((resolve) => {
    request({ port: (server.address() as { port: number }).port, host: '127.0.0.1' }, (res) => {
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', resolve);
    }).end();
  });
  await waitForText(() => text.includes('hello'));
  const long = new LongLived(conns);
  long.noteBegun();
  assert.equal(long.endEventStreams(false), 0, 'begun before the drain: left to the app');
  assert.equal(long.endAll(), 1);
  await ended;
  assert.match(text, /\nretry: 100\n\n$/);
  server.close();
});

async function waitForText(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await sleep(10);
}

test('HTTP/2 (TLS, allowHTTP1): sessions get the two-phase GOAWAY, every stream started finishes, nothing is reset, the drain resolves', async (t) => {
  const { createSecureServer, connect: h2connect } = await import('node:http2');
  const { readFileSync, mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { selfSignedCertificate } = await import('../../harness/tls.ts');
  const dir = mkdtempSync(join(tmpdir(), 'baton-h2-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { cert, key } = selfSignedCertificate(dir);
  const server = createSecureServer({ cert: readFileSync(cert), key: readFileSync(key), allowHTTP1: true }, (_req, res) => {
    setTimeout(() => res.end('ok'), 20);
  });
  const g = graceful(server, { goawayGapMs: 200, timeoutMs: 5000 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  const sessions = Array.from({ length: 4 }, () => h2connect(origin, { rejectUnauthorized: false }));
  const goaways: number[] = [];
  const outcomes = { ok: 0, refused: 0, other: [] as string[] };
  /** Streams each session finished; and how many of all finished once the drain had begun. */
  const perSession = sessions.map(() => 0);
  let draining = false;
  let okInDrain = 0;
  let stop = false;
  const loops = sessions.map(async (s, i) => {
    s.on('goaway', (code) => goaways.push(code));
    s.on('error', () => {});
    while (!stop && !s.closed && !s.destroyed) {
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const req = s.request({ ':path': `/${i}` });
          let st = 0;
          req.on('response', (h) => {
            st = Number(h[':status']);
          });
          req.on('error', reject);
          req.on('close', () => (req.rstCode === 0 ? resolve(st) : reject(Object.assign(new Error('rst'), { code: req.rstCode }))));
          req.resume();
          req.end();
        });
        if (status === 200) {
          outcomes.ok++;
          perSession[i] = (perSession[i] ?? 0) + 1;
          if (draining) okInDrain++;
        }
      } catch (e) {
        // REFUSED_STREAM (7) is the one a client may retry anywhere: a stream the server never saw
        if ((e as { code?: unknown }).code === 7 || (e as { code?: unknown }).code === 'ERR_HTTP2_GOAWAY_SESSION') outcomes.refused++;
        else outcomes.other.push(String((e as Error).message ?? e));
      }
    }
  });
  // every session busy before the drain, however slow the machine (TLS handshakes first)
  await waitFor('5 streams finished on every session before the drain', () => perSession.every((n) => n >= 5), 10_000);
  draining = true;
  assert.equal(await g.shutdown(), 'drained');
  stop = true;
  await Promise.all(loops);
  for (const s of sessions) s.destroy();
  t.diagnostic(`streams ok ${outcomes.ok} (${okInDrain} during the drain), refused ${outcomes.refused}, goaway frames ${goaways.length}`);
  assert.ok(goaways.length >= 4, `every session heard GOAWAY (${goaways.length})`);
  assert.deepEqual(outcomes.other, [], 'no stream reset, no connection error');
  assert.ok(okInDrain > 0, 'streams in flight at the drain finished');
});

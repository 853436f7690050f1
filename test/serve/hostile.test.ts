// Hostile HTTP input to baton serve: each gets the right status or a close,
// no worker is stuck or crashed, and a slow client cannot hold a graceful
// shutdown beyond --graceful-timeout.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { childProcesses } from '../../harness/proc.ts';
import { ROOT, type run, serveLocal, waitFor } from '../helpers.ts';

const APP = join(ROOT, 'test', 'fixtures', 'serve-app.ts');

/** Sends raw bytes; resolves to what came back once the server closed (or `ms` passed). */
function raw(port: number, send: string | Buffer, ms = 5000): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data, closed: false });
    }, ms);
    s.on('data', (d) => {
      data += d;
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closed: true });
    });
    s.on('error', () => {});
    s.write(send);
  });
}

async function server(t: Parameters<typeof run>[0], extra: string[] = []) {
  const { s, port, url } = await serveLocal(t, APP, ['--max-workers=1', ...extra]);
  return { s, port, alive: async () => (await fetch(url, { headers: { connection: 'close' } })).status === 200 };
}

test('malformed, oversized and smuggling requests get 400/431 and a close; the worker keeps serving', async (t) => {
  const { s, port, alive } = await server(t);
  const cases: Array<[string, string | Buffer, RegExp]> = [
    ['malformed request line', 'GARBAGE\r\n\r\n', /^HTTP\/1\.1 400 Bad Request/],
    ['bad HTTP version', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 (400|505)/],
    ['oversized headers', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
    [
      'Content-Length with Transfer-Encoding',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      /^HTTP\/1\.1 400 /,
    ],
    [
      'two different Content-Lengths',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde',
      /^HTTP\/1\.1 400 /,
    ],
    ['bad chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['NUL in a header', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n'), /^HTTP\/1\.1 400 /],
  ];
  for (const [name, send, want] of cases) {
    const r = await raw(port, send);
    assert.match(r.data, want, name);
    assert.ok(r.closed, `${name}: connection closed`);
    assert.ok(await alive(), `${name}: worker still serving`);
  }
  assert.doesNotMatch(s.stderr(), /exited .* unexpectedly/);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a client that resets mid-body does not hurt the worker', async (t) => {
  const { s, port, alive } = await server(t);
  for (let i = 0; i < 20; i++) {
    const sock = connect({ port, host: '127.0.0.1' });
    await new Promise((r) => sock.once('connect', r));
    sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial body');
    await sleep(5);
    sock.resetAndDestroy();
  }
  assert.ok(await alive());
  assert.doesNotMatch(s.stderr(), /exited .* unexpectedly/);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('slowloris: trickled headers are cut off at --timeout with 408, while others are served', async (t) => {
  const { s, port, alive } = await server(t, ['--timeout=2']);
  const sock: Socket = connect({ port, host: '127.0.0.1' });
  let data = '';
  sock.on('data', (d) => {
    data += d;
  });
  const closed = new Promise((r) => sock.on('close', r));
  sock.on('error', () => {});
  const t0 = Date.now();
  sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
  const trickle = setInterval(() => sock.writable && sock.write('X-A: b\r\n'), 300);
  assert.ok(await alive(), 'other clients are served meanwhile');
  await closed;
  clearInterval(trickle);
  const took = Date.now() - t0;
  assert.match(data, /^HTTP\/1\.1 408 /);
  assert.ok(took < 20_000, `cut off after ${took} ms, the trickle goes on forever`);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('an idle or trickling client cannot hold a graceful shutdown past --graceful-timeout', async (t) => {
  const { s, port } = await server(t, ['--graceful-timeout=2', '--timeout=60']);
  const idle = connect({ port, host: '127.0.0.1' });
  idle.on('error', () => {});
  const slow = connect({ port, host: '127.0.0.1' });
  slow.on('error', () => {});
  slow.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
  const trickle = setInterval(() => slow.writable && slow.write('a'), 200);
  await sleep(300);
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  const { code } = await s.exited;
  clearInterval(trickle);
  const took = Date.now() - t0;
  assert.equal(code, 0);
  assert.ok(took >= 1500, `stopped after ${took} ms, before --graceful-timeout`);
  assert.doesNotMatch(s.stderr(), /sending KILL/, 'the workers stopped by themselves, not at the KILL deadline');
  assert.match(s.stderr(), /dropped connections still open at --graceful-timeout/);
});

test('kill -9 of the master: its workers notice and exit instead of lingering', async (t) => {
  const { s } = await server(t);
  const workers: number[] = await waitFor('worker pids', () => {
    const out = childProcesses(s.child.pid as number).map((c) => c.pid);
    return out.length > 0 ? out : undefined;
  }).then((w) => w ?? []);
  s.child.kill('SIGKILL');
  await waitFor('workers gone', () => workers.every((pid) => !isAlive(pid)), 10_000);
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Long-lived connections through deploys, with real clients from npm: `ws`
// WebSockets that send numbered messages and re-send what was not
// acknowledged, and `eventsource` streams, all connected to an app under
// baton serve under baton start while it is deployed 3 times.
// - an app that ends them on baton's drain signal: every WebSocket closes
//   with 1001, every stream ends cleanly, every client is back (on the new
//   generation) within a second, no message is lost, and the old
//   generation is gone long before the bound;
// - an app that ignores the signal: at --drain-timeout baton ends them for
//   it, still cleanly (1001), and says so in one line;
// - the control: with no bound before --graceful-timeout, the connections
//   are cut (1006), as they are for any server that just exits;
// - socket.io (examples/socketio) with socket.io-client: moved by a clean
//   transport close on the drain signal, back at once, nothing lost.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventSource } from 'eventsource';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { BATON, freePort, ROOT, run, tempDir, waitFor } from '../helpers.ts';

const APP = join(ROOT, 'test', 'fixtures', 'long-lived-app.ts');
const SOCKETS = 40;
const STREAMS = 20;
const DEPLOYS = 3;

interface Seen {
  closeCodes: number[];
  errors: string[];
  /** ms from a close (or stream end) to the next open. */
  gaps: number[];
  /** Generations each client is on at the end. */
  last: string[];
  unacked: number;
}

/** A WebSocket client that reconnects at once and re-sends what was not acknowledged. */
function socketClient(url: string, seen: Seen, index: number) {
  let ws: WebSocket;
  let next = 0;
  let closedAt = 0;
  let stopped = false;
  const unacked = new Set<number>();
  const send = (id: number) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ id }));
  const timer = setInterval(() => {
    const id = next++;
    unacked.add(id);
    send(id);
  }, 50);
  const connect = () => {
    ws = new WebSocket(url);
    ws.on('open', () => {
      if (closedAt) seen.gaps.push(performance.now() - closedAt);
      for (const id of unacked) send(id);
    });
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { hello?: string; ack?: number };
      if (m.hello !== undefined) seen.last[index] = m.hello;
      if (m.ack !== undefined) unacked.delete(m.ack);
    });
    ws.on('error', (err) => seen.errors.push(`ws: ${err.message}`));
    ws.on('close', (code) => {
      if (stopped) return;
      seen.closeCodes.push(code);
      closedAt = performance.now();
      connect();
    });
  };
  connect();
  return {
    stop: async () => {
      clearInterval(timer);
      await waitFor('acknowledgements', () => unacked.size === 0, 5000).catch(() => undefined);
      seen.unacked += unacked.size;
      stopped = true;
      ws.close();
    },
  };
}

function streamClient(url: string, seen: Seen, index: number) {
  const es = new EventSource(url);
  let endedAt = 0;
  es.addEventListener('open', () => {
    if (endedAt) seen.gaps.push(performance.now() - endedAt);
  });
  es.addEventListener('message', (e) => {
    seen.last[index] = e.data;
  });
  // a stream that ended cleanly comes as an error event with no message; a cut one has one
  es.addEventListener('error', (e) => {
    endedAt = performance.now();
    if (e.message) seen.errors.push(`event stream: ${e.message}`);
  });
  return { stop: () => es.close() };
}

/** `baton start -- baton serve APP` on a free port, once it answers; its pid file is for `baton deploy`. */
async function startServing(t: Parameters<typeof run>[0], app: string, serveArgs: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const dir = tempDir(t);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  const s = run(
    t,
    BATON,
    [
      'start',
      `--port=127.0.0.1:${port}`,
      `--pid-file=${pidFile}`,
      '--',
      process.execPath,
      BATON,
      'serve',
      app,
      '--max-workers=2',
      ...serveArgs,
    ],
    { env },
  );
  const base = `127.0.0.1:${port}`;
  // a probe that leaves no idle keep-alive connection behind: it would hold the first drain open
  await waitFor(
    'serving',
    async () => (await fetch(`http://${base}/`, { headers: { connection: 'close' } }).catch(() => undefined))?.ok,
    20_000,
  );
  return { s, base, pidFile };
}

async function deployWithClients(t: Parameters<typeof run>[0], serveArgs: string[], env: NodeJS.ProcessEnv = {}) {
  const { s, base, pidFile } = await startServing(t, APP, serveArgs, env);
  const ws: Seen = { closeCodes: [], errors: [], gaps: [], last: [], unacked: 0 };
  const sse: Seen = { closeCodes: [], errors: [], gaps: [], last: [], unacked: 0 };
  const sockets = Array.from({ length: SOCKETS }, (_, i) => socketClient(`ws://${base}/`, ws, i));
  const streams = Array.from({ length: STREAMS }, (_, i) => streamClient(`http://${base}/events`, sse, i));
  await waitFor(
    'clients connected',
    () => ws.last.filter(Boolean).length === SOCKETS && sse.last.filter(Boolean).length === STREAMS,
    10_000,
  );
  const goneMs: number[] = [];
  for (let i = 0; i < DEPLOYS; i++) {
    const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=60']);
    const { code } = await d.exited;
    assert.equal(code, 0, d.stdout() + d.stderr() + s.stderr().slice(-2000));
    // from the moment the old generation was told to stop (the new one ready), not from the deploy's start:
    // on a slow machine the new generation's boot alone can take seconds
    const [, ready, gone] = /ready after (\d+) ms, the old generations gone after (\d+) ms/.exec(d.stdout()) ?? [];
    goneMs.push(Number(gone) - Number(ready));
    await sleep(300);
  }
  const final = String(DEPLOYS + 1);
  await waitFor('every client on the last generation', () => [...ws.last, ...sse.last].every((g) => g === final), 5000).catch(
    () => undefined,
  );
  await Promise.all(sockets.map((c) => c.stop()));
  for (const c of streams) c.stop();
  s.child.kill('SIGTERM');
  await s.exited;
  return { ws, sse, goneMs, final, log: s.stderr() };
}

const summary = (r: Awaited<ReturnType<typeof deployWithClients>>) =>
  `WebSocket close codes ${[...new Set(r.ws.closeCodes)].map((c) => `${c} ×${r.ws.closeCodes.filter((x) => x === c).length}`).join(', ')}, ` +
  `reconnect max ${Math.round(Math.max(0, ...r.ws.gaps, ...r.sse.gaps))} ms, errors ${r.ws.errors.length + r.sse.errors.length}, ` +
  `old generation gone ${r.goneMs.join(', ')} ms after it was told to stop`;

test(`an app that ends them on baton's drain signal: ${SOCKETS} WebSockets and ${STREAMS} event streams through ${DEPLOYS} deploys, all closed with 1001 and back within a second, nothing lost`, {
  timeout: 120_000,
}, async (t) => {
  const r = await deployWithClients(t, []);
  t.diagnostic(summary(r));
  assert.deepEqual(r.ws.errors.concat(r.sse.errors), []);
  assert.equal(r.ws.closeCodes.length, SOCKETS * DEPLOYS);
  assert.ok(
    r.ws.closeCodes.every((c) => c === 1001),
    `close codes: ${r.ws.closeCodes.join(',')}`,
  );
  // a stream that came back on a kept-alive connection to the old generation is ended again at once
  assert.ok(r.sse.gaps.length >= STREAMS * DEPLOYS, 'each stream ended and came back in each deploy');
  assert.ok(Math.max(...r.ws.gaps, ...r.sse.gaps) < 1000, `reconnects took ${Math.max(...r.ws.gaps, ...r.sse.gaps)} ms`);
  assert.equal(r.ws.unacked, 0, 'every message acknowledged');
  assert.deepEqual(new Set([...r.ws.last, ...r.sse.last]), new Set([r.final]));
  // the old generation left as soon as its clients did, not at the 10 s bound
  assert.ok(
    r.goneMs.every((ms) => ms < 10_000),
    `old generation gone ${r.goneMs.join(', ')} ms after it was told to stop`,
  );
  assert.doesNotMatch(r.log, /long-lived connections/);
});

test('an app that ignores the drain signal: at --drain-timeout baton ends them for it, still cleanly (1001), in one log line', {
  timeout: 120_000,
}, async (t) => {
  const r = await deployWithClients(t, ['--drain-timeout=1'], { APP_IGNORES_DRAIN: '1' });
  t.diagnostic(summary(r));
  assert.deepEqual(r.ws.errors.concat(r.sse.errors), []);
  assert.equal(r.ws.closeCodes.length, SOCKETS * DEPLOYS);
  assert.ok(
    r.ws.closeCodes.every((c) => c === 1001),
    `close codes: ${r.ws.closeCodes.join(',')}`,
  );
  assert.equal(r.ws.unacked, 0, 'every message acknowledged');
  assert.deepEqual(new Set([...r.ws.last, ...r.sse.last]), new Set([r.final]));
  assert.ok(
    r.goneMs.every((ms) => ms >= 1000 && ms < 10_000),
    `old generation gone ${r.goneMs.join(', ')} ms after it was told to stop`,
  );
  assert.match(r.log, /worker \d+: ended \d+ long-lived connections \(WebSockets, event streams\) still open at --drain-timeout/);
});

test('control: without a bound before --graceful-timeout, the connections are cut (1006), as for any server that just exits', {
  timeout: 120_000,
}, async (t) => {
  const r = await deployWithClients(t, ['--drain-timeout=60', '--graceful-timeout=1'], { APP_IGNORES_DRAIN: '1' });
  t.diagnostic(summary(r));
  assert.ok(
    r.ws.closeCodes.some((c) => c === 1006),
    `close codes: ${r.ws.closeCodes.join(',')}`,
  );
  assert.ok(r.sse.errors.length > 0, 'the streams were cut');
});

test('socket.io (examples/socketio): 20 clients through 3 deploys, every one moved by a clean transport close, back on the new generation within a second, every message acknowledged', {
  timeout: 120_000,
}, async (t) => {
  const { s, base, pidFile } = await startServing(t, join(ROOT, 'examples', 'socketio', 'app.ts'));
  const url = `http://${base}`;
  const reasons: string[] = [];
  const errors: string[] = [];
  const gaps: number[] = [];
  const last: string[] = [];
  let unacked = 0;
  const clients = Array.from({ length: 20 }, (_, i) => {
    const socket = io(url, { transports: ['websocket'], reconnectionDelay: 50, reconnectionDelayMax: 200 });
    let next = 0;
    let lostAt = 0;
    const pending = new Set<number>();
    const send = (id: number) =>
      socket.emit('message', id, (reply: { id: number; generation: string }) => {
        pending.delete(reply.id);
      });
    socket.on('hello', (g: string) => {
      last[i] = g;
      if (lostAt) gaps.push(performance.now() - lostAt);
      // what was in flight when the transport closed goes again
      for (const id of pending) send(id);
    });
    socket.on('disconnect', (reason) => {
      // our own close at the end is not the server's doing
      if (reason !== 'io client disconnect') reasons.push(reason);
      lostAt = performance.now();
    });
    socket.on('connect_error', (e) => errors.push(e.message));
    const timer = setInterval(() => {
      const id = next++;
      pending.add(id);
      if (socket.connected) send(id);
    }, 50);
    return {
      stop: async () => {
        clearInterval(timer);
        await waitFor('acknowledgements', () => pending.size === 0, 5000).catch(() => undefined);
        unacked += pending.size;
        socket.close();
      },
    };
  });
  await waitFor('clients connected', () => last.filter(Boolean).length === 20, 10_000);
  for (let i = 0; i < 3; i++) {
    const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=60']);
    assert.equal((await d.exited).code, 0, d.stdout() + d.stderr());
    await sleep(300);
  }
  await waitFor('every client on the last generation', () => last.every((g) => g === '4'), 5000).catch(() => undefined);
  await Promise.all(clients.map((c) => c.stop()));
  s.child.kill('SIGTERM');
  await s.exited;
  t.diagnostic(
    `socket.io: disconnect reasons ${JSON.stringify(Object.fromEntries([...new Set(reasons)].map((r) => [r, reasons.filter((x) => x === r).length])))}, reconnect max ${Math.round(Math.max(0, ...gaps))} ms, connect errors ${errors.length}, unacknowledged ${unacked}`,
  );
  assert.equal(reasons.length, 60);
  assert.ok(
    reasons.every((r) => r === 'transport close'),
    reasons.join(','),
  );
  assert.deepEqual(errors, []);
  assert.ok(Math.max(...gaps) < 1000, `reconnects took up to ${Math.max(...gaps)} ms`);
  assert.equal(unacked, 0);
  assert.deepEqual(new Set(last), new Set(['4']));
});

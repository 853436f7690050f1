// The SO_REUSEPORT group as the kernel keeps it: what joining and handing
// over leave behind for the next instance, with real listeners on 127.0.0.1.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../../../src/net/native.ts';
import {
  type HandoverName,
  handOverPort,
  joinGroup,
  joinLockPath,
  type ReuseportGroupMember,
  steerIn,
} from '../../../src/net/reuseport/index.ts';
import { kernelAtLeast } from '../../../src/net/reuseport/mechanisms.ts';
import { freePort, waitFor } from '../../helpers.ts';

const HOST = '127.0.0.1';

function tryLock(port: number): number | undefined {
  try {
    return native.openSocket({ family: 1, type: 'dgram', path: joinLockPath(HOST, port), cloexec: true });
  } catch {
    return undefined;
  }
}

async function connections(port: number, n: number): Promise<Socket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, HOST, () => resolve(s));
          s.on('error', reject);
        }),
    ),
  );
}

/** A port's group for one test: members join with `handover`; every fd and client is closed after the test. */
async function group(t: TestContext, handover: HandoverName) {
  const port = await freePort();
  const fds: number[] = [];
  const clients: Socket[] = [];
  t.after(() => {
    for (const c of clients) c.destroy();
    for (const fd of fds) native.closeFd(fd);
  });
  const join = async () => {
    const m = (await joinGroup({ host: HOST, port, family: 4, backlog: 512, handover, timeoutMs: 5_000 })) as ReuseportGroupMember;
    fds.push(...m.fds);
    return m;
  };
  return { port, fds, clients, join };
}

test("cbpf: when a joiner's turn ends, new connections go to the live member, not to a newcomer that has not chosen yet", async (t) => {
  const { port, fds, clients, join } = await group(t, 'cbpf');
  const first = await join();
  const live = await join();
  assert.equal(tryLock(port), undefined, 'the successor holds its turn while its predecessor is still there');
  assert.equal(await handOverPort(first, 5_000, (line) => assert.fail(line)), true);
  // the next joiner: it takes the lock, then listens before it attaches any
  // program (the instant between listen() and setsockopt() in every joiner)
  const lock = await waitFor('the join turn', () => tryLock(port), 5_000);
  fds.push(lock as number);
  const newcomer = native.openSocket({ family: 4, host: HOST, port, backlog: 128, reusePort: true, cloexec: true });
  fds.push(newcomer);
  clients.push(...(await connections(port, 20)));
  await sleep(50);
  assert.equal(native.tcpListenQueue(newcomer), 0, 'connections landed on a listener that had not chosen to take them');
  assert.equal(native.tcpListenQueue(live.fds[0] as number), 20);
});

test('steer: a joiner takes no new connection until it steers in (it accepts); alone, it takes them all; then they are shared', {
  skip: kernelAtLeast(6, 2) ? false : 'steer needs Linux >= 6.2',
}, async (t) => {
  const { port, clients, join } = await group(t, 'steer');
  const queued = (m: ReuseportGroupMember) => m.fds.reduce((n, fd) => n + native.tcpListenQueue(fd), 0);
  const first = await join();
  clients.push(...(await connections(port, 20)));
  await sleep(50);
  assert.equal(queued(first), 20, 'a lone member that has not steered in still takes every connection');
  steerIn(first);
  const booting = await join();
  clients.push(...(await connections(port, 40)));
  await sleep(50);
  assert.equal(queued(booting), 0, 'connections waited in the queue of an instance that does not accept yet');
  assert.equal(queued(first), 60);
  steerIn(booting);
  clients.push(...(await connections(port, 40)));
  await sleep(50);
  assert.ok(queued(booting) > 0 && queued(first) > 60, `shared once both accept: ${queued(first)} and ${queued(booting)}`);
  assert.equal(queued(first) + queued(booting), 100);
});

// The C addon against the real kernel: errors with errno codes, fd flags,
// reuseport cBPF steering, fd passing with SCM_RIGHTS, datagrams with
// credentials.
import assert from 'node:assert/strict';
import { existsSync, fstatSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { native, SO_REUSEPORT, SOL_SOCKET } from '../../src/net/native.ts';
import { freePort, tempDir } from '../helpers.ts';

test('errors carry the errno code, number and syscall', () => {
  const a = native.openSocket({ family: 4, host: '127.0.0.1', port: 0, backlog: 8 });
  const { port } = native.localAddress(a);
  assert.throws(
    () => native.openSocket({ family: 4, host: '127.0.0.1', port, backlog: 8 }),
    (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE' && e.errno === 98 && e.syscall === 'bind',
  );
  assert.throws(
    () => native.closeFd(99_999),
    (e: NodeJS.ErrnoException) => e.code === 'EBADF',
  );
  assert.throws(() => native.openSocket({ family: 4, host: 'not-an-ip', port: 0 }), /numeric address/);
  native.closeFd(a);
});

test('fd flags: blocking/non-blocking and close-on-exec are set and read back; dup2 places an fd', () => {
  const fd = native.openSocket({ family: 6, host: '::1', port: 0, backlog: 8, cloexec: false });
  assert.deepEqual(native.fdFlags(fd), { cloexec: false, nonblock: false });
  assert.deepEqual(native.fdFlags(fd, { nonblock: true, cloexec: true }), { cloexec: true, nonblock: true });
  const copy = native.dup2(fd, 200);
  assert.equal(copy, 200);
  assert.equal(native.localAddress(200).port, native.localAddress(fd).port);
  assert.equal(native.localAddress(fd).family, 6);
  native.closeFd(200);
  native.closeFd(fd);
});

async function countAccepts(fds: number[], connections: number, port: number): Promise<number[]> {
  const counts = fds.map(() => 0);
  const servers: Server[] = [];
  for (const [i, fd] of fds.entries()) {
    const s = createServer((sock) => {
      counts[i] = (counts[i] as number) + 1;
      sock.destroy();
    });
    await new Promise<void>((r) => s.listen({ fd }, 8, r));
    servers.push(s);
  }
  for (let i = 0; i < connections; i++) {
    await new Promise<void>((resolve) => {
      const c = createConnection({ port, host: '127.0.0.1' });
      c.on('close', () => resolve());
      c.on('error', () => {});
    });
  }
  await sleep(50);
  for (const s of servers) s.close();
  return counts;
}

test('a reuseport cBPF program steers every connection to the socket it names', async () => {
  const a = native.openSocket({ family: 4, host: '127.0.0.1', port: 0, backlog: 64, reusePort: true });
  const port = native.localAddress(a).port as number;
  const b = native.openSocket({ family: 4, host: '127.0.0.1', port, backlog: 64, reusePort: true });
  assert.equal(native.getsockoptInt(b, SOL_SOCKET, SO_REUSEPORT), 1);
  // BPF_RET | BPF_K: return 1 (the second socket of the group)
  native.attachReuseportCbpf(b, [[0x06, 0, 0, 1]]);
  assert.deepEqual(await countAccepts([a, b], 20, port), [0, 20]);
});

test('a reuseport cBPF program can be detached once; a second detach says ENOENT', () => {
  const a = native.openSocket({ family: 4, host: '127.0.0.1', port: 0, backlog: 8, reusePort: true });
  native.attachReuseportCbpf(a, [[0x06, 0, 0, 0]]);
  native.detachReuseportBpf(a);
  assert.throws(
    () => native.detachReuseportBpf(a),
    (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
  );
  assert.throws(() => native.attachReuseportCbpf(a, []), /1\.\.4096 instructions/);
  native.closeFd(a);
});

test('SCM_RIGHTS: a listening socket passes over a UNIX socket pair and still listens', async () => {
  const [x, y] = native.socketPair();
  const listener = native.openSocket({ family: 4, host: '127.0.0.1', port: 0, backlog: 8 });
  const port = native.localAddress(listener).port;
  assert.equal(native.recvMsg(y), null, 'nothing queued yet');
  native.sendFds(x, [listener], 'take it');
  native.closeFd(listener);
  const m = native.recvMsg(y);
  assert.equal(m?.data, 'take it');
  assert.equal(m?.fds.length, 1);
  const received = m?.fds[0] as number;
  assert.equal(native.fdFlags(received).cloexec, true, 'received fds are close-on-exec');
  assert.equal(native.localAddress(received).port, port);
  assert.deepEqual(await countAccepts([received], 3, port as number), [3]);
  native.closeFd(x);
  native.closeFd(y);
});

test('datagrams to a SO_PASSCRED socket carry the sender credentials (sd_notify)', (t) => {
  const path = `${tempDir(t)}/notify.sock`;
  const fd = native.openSocket({ family: 1, type: 'dgram', path, passCred: true, nonblock: true });
  native.sendDatagram(path, 'READY=1');
  const m = native.recvMsg(fd);
  assert.deepEqual([m?.data, m?.pid, m?.uid], ['READY=1', process.pid, process.getuid?.()]);
  native.closeFd(fd);
});

test('an "@name" unix address is abstract: held by one socket at a time, free again once closed, no file', () => {
  const name = `@baton-test-${process.pid}`;
  const a = native.openSocket({ family: 1, type: 'dgram', path: name });
  assert.throws(() => native.openSocket({ family: 1, type: 'dgram', path: name }), { code: 'EADDRINUSE' });
  assert.equal(existsSync(name), false);
  native.closeFd(a);
  native.closeFd(native.openSocket({ family: 1, type: 'dgram', path: name }));
});

test('tcpListeners (sock_diag) lists every listener on a port with its inode and address, and nothing else', async () => {
  const port = await freePort();
  const fds = [0, 1].map(() => native.openSocket({ family: 4, host: '127.0.0.1', port, backlog: 8, reusePort: true }));
  const client = await new Promise<Socket>((resolve) => {
    const c = createConnection(port, '127.0.0.1', () => resolve(c));
  });
  const listed = native.tcpListeners(4, port);
  assert.deepEqual(listed.map((l) => l.inode).sort(), fds.map((fd) => fstatSync(fd).ino).sort(), 'both listeners, not the connection');
  assert.ok(listed.every((l) => l.address === '127.0.0.1'));
  assert.deepEqual(native.tcpListeners(6, port), []);
  client.destroy();
  for (const fd of fds) native.closeFd(fd);
  assert.deepEqual(native.tcpListeners(4, port), []);
});

// The C addon against the real kernel: errors with errno codes, fd flags,
// reuseport cBPF steering, fd passing with SCM_RIGHTS, datagrams with
// credentials.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, fstatSync, readdirSync, statSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { have } from '../../harness/peers.ts';
import { native, SO_REUSEPORT, SOL_SOCKET } from '../../src/net/native.ts';
import { freePort, ROOT, tempDir } from '../helpers.ts';

/**
 * Under qemu-user (the arm64 run, see addon-portability.test.ts), what the
 * emulator does not pass through to the kernel: it answers ENOPROTOOPT for
 * SO_ATTACH_REUSEPORT_CBPF and refuses NETLINK_SOCK_DIAG sockets.
 */
function qemuLacks(what: string): string | false {
  return process.env.BATON_UNDER_QEMU ? `qemu-user does not emulate ${what}` : false;
}

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

test('a reuseport cBPF program steers every connection to the socket it names', {
  skip: qemuLacks('SO_ATTACH_REUSEPORT_CBPF'),
}, async () => {
  const a = native.openSocket({ family: 4, host: '127.0.0.1', port: 0, backlog: 64, reusePort: true });
  const port = native.localAddress(a).port as number;
  const b = native.openSocket({ family: 4, host: '127.0.0.1', port, backlog: 64, reusePort: true });
  assert.equal(native.getsockoptInt(b, SOL_SOCKET, SO_REUSEPORT), 1);
  // BPF_RET | BPF_K: return 1 (the second socket of the group)
  native.attachReuseportCbpf(b, [[0x06, 0, 0, 1]]);
  assert.deepEqual(await countAccepts([a, b], 20, port), [0, 20]);
});

test('a reuseport cBPF program can be detached once; a second detach says ENOENT', { skip: qemuLacks('SO_ATTACH_REUSEPORT_CBPF') }, () => {
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

test('tcpListeners (sock_diag) lists every listener on a port with its inode and address, and nothing else', {
  skip: qemuLacks('NETLINK_SOCK_DIAG sockets'),
}, async () => {
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

test('tcpConnections (sock_diag) lists the connections on a port: accepted ones with their inode, queued ones with none', {
  skip: qemuLacks('NETLINK_SOCK_DIAG sockets'),
}, async (t) => {
  const port = await freePort();
  const listener = native.openSocket({ family: 4, host: '127.0.0.1', port, backlog: 8, nonblock: true });
  const clients: Socket[] = [];
  const fds = [listener];
  t.after(() => {
    for (const c of clients) c.destroy();
    for (const fd of fds) native.closeFd(fd);
  });
  for (let i = 0; i < 2; i++) {
    clients.push(
      await new Promise<Socket>((resolve) => {
        const c = createConnection(port, '127.0.0.1', () => resolve(c));
      }),
    );
  }
  // the client ends (local port ephemeral) and the listener are not listed
  assert.deepEqual(native.tcpConnections(4, port), [
    { inode: 0, address: '127.0.0.1', port },
    { inode: 0, address: '127.0.0.1', port },
  ]);
  const accepted = native.acceptConn(listener) as number;
  fds.push(accepted);
  const inodes = native.tcpConnections(4, port).map((c) => c.inode);
  assert.deepEqual(inodes.sort(), [0, fstatSync(accepted).ino]);
});

test('a UNIX socket path gets its mode without the process umask changing (other threads create files too)', (t) => {
  const dir = tempDir(t);
  const before = process.umask();
  const fd = native.openSocket({ family: 1, path: `${dir}/s`, backlog: 8, mode: 0o600 });
  assert.equal(process.umask(), before);
  assert.equal(statSync(`${dir}/s`).mode & 0o777, 0o600);
  const wide = native.openSocket({ family: 1, path: `${dir}/w`, backlog: 8, mode: 0o777 });
  assert.equal(statSync(`${dir}/w`).mode & 0o777, 0o777, 'exactly the mode asked for, whatever the umask');
  native.closeFd(fd);
  native.closeFd(wide);
});

test('SOCK_SEQPACKET keeps message boundaries; a message cut short is refused and the fds it brought are closed', (t) => {
  const dir = tempDir(t);
  const listener = native.openSocket({ family: 1, type: 'seqpacket', path: `${dir}/q`, backlog: 8, nonblock: true });
  const client = native.connectUnix(`${dir}/q`, 'seqpacket');
  const server = native.acceptConn(listener) as number;
  native.sendFds(client, [], 'one');
  native.sendFds(client, [], 'two');
  assert.equal(native.recvMsg(server)?.data, 'one');
  assert.equal(native.recvMsg(server)?.data, 'two');
  // more than recvMsg takes (4096 bytes of data), with an fd riding along
  const passed = native.openSocket({ family: 4, host: '127.0.0.1', port: 0, backlog: 1 });
  const inode = fstatSync(passed).ino;
  const fdsBefore = readdirSync('/proc/self/fd').length;
  native.sendFds(client, [passed], 'x'.repeat(5000));
  assert.throws(
    () => native.recvMsg(server),
    (e: NodeJS.ErrnoException) => e.code === 'EMSGSIZE',
  );
  assert.equal(readdirSync('/proc/self/fd').length, fdsBefore, 'the fd that came with the cut message was closed');
  assert.equal(fstatSync(passed).ino, inode, 'ours is untouched');
  for (const fd of [passed, server, client, listener]) native.closeFd(fd);
});

test('bad arguments are type errors, never a silent stand-in (no fd 0 for a pair that cannot be read)', () => {
  assert.throws(() => native.spawn('/bin/true', ['true'], [], { fds: [[1, 'x' as unknown as number]] }), TypeError);
  assert.throws(() => native.spawn('/bin/true', ['true'], [], { fds: [[-1, 3]] }), TypeError);
  assert.throws(() => native.sendFds(1, [-5], 'x'), TypeError);
});

test('the addon needs nothing newer than glibc 2.28 (Debian 10, RHEL 8, Ubuntu 20.04)', {
  skip: have('objdump') ? false : 'missing objdump (binutils)',
}, () => {
  const built = [
    join(ROOT, 'build', 'Release', 'baton.node'),
    join(ROOT, 'prebuilds', 'linux-x64', 'baton.node'),
    join(ROOT, 'prebuilds', 'linux-arm64', 'baton.node'),
  ].filter((f) => existsSync(f));
  assert.ok(built.length > 0, 'a built addon');
  for (const file of built) {
    const versions = execFileSync('objdump', ['-T', file], { encoding: 'utf8' }).match(/GLIBC_[\d.]+/g) ?? [];
    const newest = [...new Set(versions)]
      .map((v) => v.slice(6).split('.').map(Number))
      .sort((a, b) => (b[0] ?? 0) - (a[0] ?? 0) || (b[1] ?? 0) - (a[1] ?? 0))[0];
    assert.ok(newest && (newest[0] as number) <= 2 && (newest[1] ?? 0) <= 28, `${file} needs GLIBC_${newest?.join('.')}`);
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignChildFds } from '../../src/net/listeners.ts';
import { parsePortSpec } from '../../src/net/port-spec.ts';
import { formatServerStarterPort, parseServerStarterPort } from '../../src/net/server-starter-port.ts';

test('--port forms give upstream keys, families and fds', () => {
  const cases: Array<[string, Partial<ReturnType<typeof parsePortSpec>>]> = [
    ['19500', { key: '19500', host: undefined, port: 19500, family: 4, udp: false, fd: undefined }],
    [' 19582 ', { key: '19582', port: 19582 }],
    ['127.0.0.1:19501', { key: '127.0.0.1:19501', host: '127.0.0.1', family: 4 }],
    ['[127.0.0.1]:19583', { key: '127.0.0.1:19583', host: '127.0.0.1', family: 4 }],
    ['0.0.0.0:19584=5', { key: '0.0.0.0:19584', fd: 5 }],
    ['localhost:19503', { key: 'localhost:19503', host: 'localhost', family: 4 }],
    ['[::1]:19502', { key: '[::1]:19502', host: '::1', family: 6 }],
    ['[::]:19585', { key: '[::]:19585', host: '::', family: 6 }],
    ['::1:8080', { key: '[::1]:8080', host: '::1', port: 8080, family: 6 }],
    ['u19505', { key: '19505', udp: true }],
    ['0.0.0.0:u19506', { key: '0.0.0.0:19506', udp: true }],
    ['u19586=6', { key: '19586', udp: true, fd: 6 }],
    ['19587 =0', { key: '19587', fd: 0 }],
    ['[ ::1 ] : 80', { key: '[::1]:80', host: '::1' }],
    ['0', { key: '0', port: 0 }],
  ];
  for (const [raw, want] of cases) {
    const got = parsePortSpec(raw);
    for (const [k, v] of Object.entries(want)) assert.equal(got[k as keyof typeof got], v, `${raw}: ${k}`);
  }
});

test('invalid --port values are refused with upstream wording', () => {
  for (const raw of ['abc', '', 'u 80', '80=', '1.2.3.4:', '70000', 'host:port']) {
    assert.throws(() => parsePortSpec(raw), /invalid ``port'' value:/, raw);
  }
});

test('child fds: =FD where asked, else the lowest free from 3; duplicates refused', () => {
  assert.deepEqual(assignChildFds([undefined, undefined, undefined]), [3, 4, 5]);
  assert.deepEqual(assignChildFds([undefined, 3, undefined]), [4, 3, 5]);
  assert.deepEqual(assignChildFds([0, undefined]), [0, 3]);
  assert.throws(() => assignChildFds([7, 7]), /two sockets ask for file descriptor 7/);
});

test('SERVER_STARTER_PORT round-trips, splitting each entry at its last "="', () => {
  const entries = [
    { key: '127.0.0.1:9090', fd: 4 },
    { key: '8080', fd: 5 },
    { key: '/tmp/a=b.sock', fd: 6 },
    { key: '[::1]:80', fd: 7 },
  ];
  const text = formatServerStarterPort(entries);
  assert.equal(text, '127.0.0.1:9090=4;8080=5;/tmp/a=b.sock=6;[::1]:80=7');
  assert.deepEqual(parseServerStarterPort(text), entries);
  assert.deepEqual(parseServerStarterPort(''), []);
  for (const bad of ['8080', '8080=', '=3', '8080=x', '80=3;;81=4']) {
    assert.throws(() => parseServerStarterPort(bad), /not of the form key=fd/, bad);
  }
});

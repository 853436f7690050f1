// Server::Starter 0.35's own behaviour tests (t/01-07, t/10-15: 115
// assertions), fetched from Debian's source archive at test time and run
// against our start_server through test/upstream/lib/SSExternal.pm.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, START_SERVER } from '../helpers.ts';

const missing = ['prove', 'perl'].filter((bin) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0);
const hasModules = spawnSync('perl', ['-MServer::Starter', '-MTest::TCP', '-MTest::SharedFork', '-e1']).status === 0;

test('upstream Server::Starter test suite passes against our start_server', {
  skip: missing.length
    ? `missing ${missing.join(', ')}`
    : !hasModules
      ? 'missing Perl modules (libserver-starter-perl, libtest-tcp-perl, libtest-sharedfork-perl)'
      : false,
  timeout: 300_000,
}, () => {
  const r = spawnSync('bash', [join(ROOT, 'test', 'upstream', 'run.sh')], {
    env: { ...process.env, START_SERVER_BIN: `${process.execPath} ${START_SERVER}` },
    encoding: 'utf8',
  });
  // prove's verdict per file is on stdout, the supervisors' logs on stderr
  const out = `${r.stdout
    .split('\n')
    .filter((l) => !/^\s*ok\b/.test(l))
    .join('\n')
    .slice(-6000)}\n--- stderr:\n${r.stderr.slice(-2000)}`;
  assert.equal(r.status, 0, out);
  assert.match(r.stdout, /Files=13, Tests=115,/);
  assert.match(r.stdout, /Result: PASS/);
});

// baton drill against real servers: a correct one gets a clean report; broken
// ones get each failure counted under the right outcome.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { BATON, ROOT, run, tempDir } from '../helpers.ts';

const HELLO = join(ROOT, 'examples', 'hello', 'app.ts');
const FIXTURES = join(ROOT, 'test', 'fixtures');

async function drill(t: Parameters<typeof run>[0], args: string[]) {
  const r = run(t, BATON, ['drill', '--deploys=3', '--every=0.7', ...args]);
  const { code } = await r.exited;
  return { code, out: r.stdout(), err: r.stderr() };
}

test('a correct server: clean report, exit 0, POST bodies verified', async (t) => {
  const dir = tempDir(t);
  const json = join(dir, 'report.json');
  const r = await drill(t, ['--connections=8', '--method=POST', '--body-bytes=4096', `--json=${json}`, '--', process.execPath, HELLO]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /verdict: PASS - \d+ requests through 3 deploys, none failed/);
  assert.match(r.out, /deploy +3 at [\d.]+ s: old generation gone after/);
  const report = JSON.parse((await import('node:fs')).readFileSync(json, 'utf8'));
  assert.equal(report.failed, 0);
  assert.ok(report.outcomes.ok > 100);
});

test('an app that exits on TERM: keep-alive resets are counted and the drill fails', async (t) => {
  const r = await drill(t, ['--connections=20', '--', process.execPath, join(FIXTURES, 'naive-app.ts')]);
  assert.equal(r.code, 2, r.out);
  const resets = Number(/reset (\d+)/.exec(r.out)?.[1]);
  assert.ok(resets > 0, r.out);
  assert.match(r.out, /verdict: FAIL - \d+ of \d+ requests failed through 3 deploys/);
});

test('a server that never answers some requests: they count as timeouts (hung)', async (t) => {
  const r = await drill(t, ['--connections=4', '--timeout=0.5', '--', process.execPath, join(FIXTURES, 'hanging-app.ts')]);
  assert.equal(r.code, 2, r.out);
  assert.ok(Number(/timeout (\d+)/.exec(r.out)?.[1]) > 0, r.out);
});

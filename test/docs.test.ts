// The docs cannot drift from the code: the generated blocks (the error table,
// the option tables) are what the code says now, and every error code the
// code throws is in the registry, and every registry entry is thrown.
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { docFiles, regenerate } from '../scripts/docs.ts';
import { ERRORS } from '../src/errors.ts';
import { ROOT } from './helpers.ts';

test('every generated block in README.md and docs/ is up to date (node scripts/docs.ts rewrites them)', () => {
  for (const file of docFiles()) {
    const text = readFileSync(file, 'utf8');
    assert.equal(regenerate(text), text, `${file} is out of date: run node scripts/docs.ts`);
  }
  assert.match(readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8'), /<!-- generated: errors -->/);
});

test('the error registry lists exactly the codes the code throws', () => {
  const thrown = new Set<string>();
  for (const file of globSync('src/**/*.ts', { cwd: ROOT })) {
    if (file === 'src/errors.ts') continue;
    for (const m of readFileSync(join(ROOT, file), 'utf8').matchAll(/'(ERR_BATON_[A-Z_]+)'/g)) thrown.add(m[1] as string);
  }
  assert.deepEqual([...thrown].sort(), Object.keys(ERRORS).sort());
});

// The layout is the architecture, checked: command folders sit on the
// library and the shared layers and never reach into one another; the
// library (what users import) sits on the shared layers only; shared layers
// never reach up; benches and the test harness never import the tests.
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers.ts';

const COMMANDS = ['start_server', 'serve', 'drill', 'reuseport_exec', 'ctl'];
const LIBRARY = ['lib', 'index.ts'];
const SHARED = ['cli-kit', 'process', 'net', 'control', 'errors.ts', 'defaults.ts', 'version.ts'];

/** Every relative module a file imports (static or dynamic), as paths from the repository root. */
function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.[^']+)'/g)].map((m) => m[1] as string);
  return specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)));
}

/** The top folder under src/ (or the file name for files directly in src/). */
const area = (path: string) => path.split('/')[1] as string;

test('every folder under src/ is a known layer', () => {
  const known = new Set([...COMMANDS, ...LIBRARY, ...SHARED, 'cli']);
  assert.deepEqual(
    globSync('src/**/*.ts', { cwd: ROOT })
      .map(area)
      .filter((a) => !known.has(a)),
    [],
  );
});

test('no command folder imports another; the library and shared layers import no command; shared layers not the library', () => {
  const bad: string[] = [];
  for (const file of globSync('src/**/*.ts', { cwd: ROOT })) {
    const from = area(file);
    for (const target of imports(file).filter((t) => t.startsWith('src/'))) {
      const to = area(target);
      if (COMMANDS.includes(from) && COMMANDS.includes(to) && to !== from) bad.push(`${file} -> ${target}`);
      if ([...SHARED, ...LIBRARY].includes(from) && COMMANDS.includes(to)) bad.push(`${file} -> ${target}`);
      if (SHARED.includes(from) && LIBRARY.includes(to)) bad.push(`${file} -> ${target}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('src never imports tests, benches or the harness; benches and the harness never import tests', () => {
  const bad: string[] = [];
  for (const [dir, forbidden] of [
    ['src', ['test/', 'bench/', 'harness/']],
    ['bench', ['test/']],
    ['harness', ['test/', 'bench/']],
  ] as const) {
    for (const file of globSync(`${dir}/**/*.ts`, { cwd: ROOT })) {
      for (const target of imports(file)) if (forbidden.some((f) => target.startsWith(f))) bad.push(`${file} -> ${target}`);
    }
  }
  assert.deepEqual(bad, []);
});

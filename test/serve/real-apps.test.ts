// Real apps through hot deploys: the Next.js example (a production build,
// served through a factory: next({ dev: false }), getRequestHandler()) and
// an Express app serving static files, each under `start_server
// --ready-notify -- baton serve` (2 workers). Four loads at once from the
// drill client while it is deployed again and again: a page with keep-alive,
// the same without, a 1 MiB static file whose every body is checked against
// its sha256, and POSTs whose bodies come back as their sha256. 0 failed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { drillLoad, type LoadResult } from '../../harness/load.ts';
import { buildNextExample, NEXT_DIR } from '../../harness/nextjs.ts';
import { ROOT, superviseServe, tempDir } from '../helpers.ts';
import { deploySeries } from '../swap.ts';

const DEPLOYS = 10;

/** 1 MiB that does not compress to nothing. */
function bigFile(): Buffer {
  const blocks: Buffer[] = [];
  let block = createHash('sha256').update('baton').digest();
  for (let n = 0; n < (1 << 20) / block.length; n++) {
    blocks.push(block);
    block = createHash('sha256').update(block).digest();
  }
  return Buffer.concat(blocks);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface App {
  name: string;
  /** Makes what the app needs (a build, a directory of files); the env to serve it with and the big file's bytes. */
  prepare(t: Parameters<typeof tempDir>[0]): { module: string; env: NodeJS.ProcessEnv; big: Buffer };
  page: string;
  echo: string;
}

const apps: App[] = [
  {
    name: 'the Next.js example (production build, factory)',
    prepare: () => {
      buildNextExample();
      return { module: join(NEXT_DIR, 'serve.mjs'), env: {}, big: readFileSync(join(NEXT_DIR, 'public', 'big.bin')) };
    },
    page: '/',
    echo: '/api/echo',
  },
  {
    name: 'Express serving static files (examples/static)',
    prepare: (t) => {
      const dir = tempDir(t);
      const big = bigFile();
      writeFileSync(join(dir, 'big.bin'), big);
      writeFileSync(join(dir, 'index.html'), readFileSync(join(ROOT, 'examples', 'static', 'public', 'index.html')));
      return { module: join(ROOT, 'examples', 'static', 'app.ts'), env: { STATIC_ROOT: dir }, big };
    },
    page: '/index.html',
    echo: '/echo',
  },
];

for (const app of apps) {
  test(`${app.name}: ${DEPLOYS} deploys under page, static-file and POST load, keep-alive and not: 0 failed, bodies intact`, {
    timeout: 300_000,
  }, async (t) => {
    const { module, env, big } = app.prepare(t);
    const served = await superviseServe(t, module, { env });
    const origin = served.url.replace(/\/$/, '');
    const base = { timeoutMs: 10_000, expectStatus: 200, bodyBytes: 0, method: 'GET' as const };
    const loads = {
      'page, keep-alive': await drillLoad({ ...base, url: origin + app.page, connections: 6, keepAlive: true }),
      'page, no keep-alive': await drillLoad({ ...base, url: origin + app.page, connections: 4, keepAlive: false }),
      '1 MiB file, sha256 checked': await drillLoad({
        ...base,
        url: `${origin}/big.bin`,
        connections: 4,
        keepAlive: true,
        expectSha256: sha256(big),
      }),
      'POST 16 KiB, echoed sha256': await drillLoad({
        ...base,
        url: origin + app.echo,
        connections: 4,
        keepAlive: true,
        method: 'POST',
        bodyBytes: 16_384,
      }),
    };
    let results: LoadResult[];
    try {
      await deploySeries({ count: DEPLOYS, deploy: served.hup, done: served.deploysDone, gapMs: () => 300 + Math.random() * 400 });
    } finally {
      results = await Promise.all(Object.values(loads).map((l) => l.stop()));
    }
    const named = Object.keys(loads).map((name, i) => [name, results[i] as LoadResult] as const);
    t.diagnostic(named.map(([name, r]) => `${name}: ${r.requests} requests, ${r.failures} failed ${r.detail}`).join('; '));
    for (const [name, r] of named) {
      assert.equal(r.failures, 0, `${name}: ${r.output}`);
      assert.ok(r.requests > 20, `${name}: only ${r.requests} requests`);
    }
  });
}

// The apps people already have, unchanged: each framework's own production
// server (examples/apps/: the Express, Koa, Fastify and Hono examples from
// their own docs, and Next.js's standalone server.js as `next build` leaves
// it), every one of which calls listen() itself on port 3000, run as
// `baton start --port=P -- baton serve server.js` and deployed 10 times under
// three loads at once: GET with keep-alive, GET without, and POST (bodies
// sent whole and every answer checked). 0 failed, 0 hung, every deploy
// verdict 0, and nothing ever listening on the app's own port.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { drillLoad } from '../../harness/load.ts';
import { nextStandaloneServer } from '../../harness/nextjs.ts';
import { native } from '../../src/net/native.ts';
import { BATON, freePort, ROOT, run, tempDir, waitFor } from '../helpers.ts';

const DEPLOYS = 10;
const APPS = join(ROOT, 'examples', 'apps');
const MODULES = join(ROOT, 'node_modules');

/** The code block after `heading` (a line that contains it) in a Markdown file. */
function codeBlockAfter(file: string, heading: string): string {
  const text = readFileSync(file, 'utf8');
  const at = text.indexOf(heading);
  assert.ok(at >= 0, `${file} has no "${heading}"`);
  // a block may sit in a quote (> ```js)
  const m = /```(?:js|ts)\n([\s\S]*?)```/.exec(text.slice(at).replace(/^> ?/gm, ''));
  assert.ok(m, `${file} has no code block after "${heading}"`);
  return m[1] as string;
}

interface Framework {
  name: string;
  server: () => string;
  /** What the framework's docs show, which the example must be exactly. */
  docs?: () => string;
  /** A POST route that echoes the body's sha256; else every POST to / gets the same answer. */
  echo?: string;
}

const FRAMEWORKS: Framework[] = [
  {
    name: 'Express 5 (its README)',
    server: () => join(APPS, 'express', 'server.js'),
    docs: () => codeBlockAfter(join(MODULES, 'express', 'Readme.md'), '[![NPM Version]'),
  },
  {
    name: 'Koa 3 app.listen (its README)',
    server: () => join(APPS, 'koa', 'server.cjs'),
    docs: () => codeBlockAfter(join(MODULES, 'koa', 'Readme.md'), '## Hello Koa'),
  },
  {
    name: "Fastify 5, listen({ port: 3000, host: '0.0.0.0' }) (its Getting Started)",
    server: () => join(APPS, 'fastify', 'server.js'),
    // the guide's ESM form of its first server, listening on 0.0.0.0 as the guide's note says to for containers
    docs: () => {
      const guide = join(MODULES, 'fastify', 'docs', 'Guides', 'Getting-Started.md');
      const first = codeBlockAfter(guide, 'Do you prefer to use `async/await`?');
      const esm = first.slice(0, first.indexOf('// CommonJs'));
      const route = first.slice(first.indexOf('fastify.get'), first.indexOf('/**'));
      return `${esm}\n${route}${codeBlockAfter(guide, 'available IPv4 interfaces')}`;
    },
  },
  {
    name: "Hono's @hono/node-server serve() (its README)",
    server: () => join(APPS, 'hono', 'server.ts'),
    docs: () => codeBlockAfter(join(MODULES, '@hono', 'node-server', 'README.md'), '## Usage'),
  },
  { name: "Next.js 16's standalone server.js, as next build leaves it", server: nextStandaloneServer, echo: '/api/echo' },
];

test("the examples are the frameworks' own, unchanged", () => {
  for (const f of FRAMEWORKS) {
    if (f.docs) assert.equal(readFileSync(f.server(), 'utf8'), f.docs(), f.name);
  }
});

/** The listeners on the apps' own port: there must never be one. */
const onPort3000 = () => [...native.tcpListeners(4, 3000), ...native.tcpListeners(6, 3000)].length;

for (const f of FRAMEWORKS) {
  test(`${f.name}: ${DEPLOYS} deploys under keep-alive, new-connection and POST load, 0 failed, every verdict 0, nothing on port 3000`, {
    // Next.js boots in seconds per worker on a slowed machine: 10 deploys of it took 97 s here, over 300 s slowed
    timeout: 900_000,
  }, async (t) => {
    const server = f.server();
    const dir = tempDir(t);
    const port = await freePort();
    const pidFile = join(dir, 'pid');
    assert.equal(onPort3000(), 0, 'port 3000 is free before the test');
    const s = run(t, BATON, [
      'start',
      `--port=127.0.0.1:${port}`,
      `--pid-file=${pidFile}`,
      '--',
      process.execPath,
      BATON,
      'serve',
      server,
      '--max-workers=2',
    ]);
    const url = `http://127.0.0.1:${port}/`;
    await waitFor('serving', async () => (await fetch(url, { headers: { connection: 'close' } }).catch(() => undefined))?.ok, 60_000);
    let seen3000 = 0;
    const watch = setInterval(() => {
      seen3000 += onPort3000();
    }, 50);
    t.after(() => clearInterval(watch));
    // without an echo route, every POST to / gets one answer: its status and sha256 are what each must have
    const post = f.echo ? undefined : await fetch(url, { method: 'POST', body: randomBytes(2048) });
    const postAnswer = post && {
      status: post.status,
      sha: createHash('sha256')
        .update(Buffer.from(await post.arrayBuffer()))
        .digest('hex'),
    };
    const base = { bodyBytes: 4096, timeoutMs: 10_000, expectStatus: 200, thinkMs: 2 };
    const loads = await Promise.all([
      drillLoad({ ...base, url, connections: 8, keepAlive: true, method: 'GET' }),
      drillLoad({ ...base, url, connections: 4, keepAlive: false, method: 'GET' }),
      drillLoad({
        ...base,
        url: f.echo ? new URL(f.echo, url).href : url,
        connections: 4,
        keepAlive: true,
        method: 'POST',
        ...(postAnswer ? { expectStatus: postAnswer.status, expectSha256: postAnswer.sha } : {}),
      }),
    ]);
    for (let i = 0; i < DEPLOYS; i++) {
      const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=60']);
      const { code } = await d.exited;
      assert.equal(code, 0, `deploy ${i + 1}: ${d.stdout()}${s.stderr().slice(-2000)}`);
    }
    const results = await Promise.all(loads.map((l) => l.stop()));
    clearInterval(watch);
    const [ka, nka, posts] = results;
    t.diagnostic(
      `GET keep-alive ${ka?.requests}, GET new connections ${nka?.requests}, POST ${posts?.requests}${postAnswer ? ` (answered ${postAnswer.status})` : ' (echoed)'}; failed ${results.map((r) => r.failures).join('/')}`,
    );
    for (const r of results) {
      assert.ok(r.requests > 50, r.output);
      assert.equal(r.failures, 0, `${r.detail}\n${r.output}`);
    }
    assert.equal(seen3000, 0, "something listened on the app's own port 3000");
    s.child.kill('SIGTERM');
    assert.equal((await s.exited).code, 0);
  });
}

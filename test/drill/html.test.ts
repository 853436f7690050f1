// The drill's HTML report opens in headless Chromium without errors and shows
// its timeline: throughput and latency paths, deploy lines, failure points.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { BATON, ROOT, run, tempDir } from '../helpers.ts';

const CHROMIUM = '/usr/bin/chromium';

test('the HTML report renders in headless Chromium with its chart', {
  skip: existsSync(CHROMIUM) ? false : 'no /usr/bin/chromium (Debian package chromium)',
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir(t);
  const html = join(dir, 'report.html');
  const r = run(t, BATON, [
    'drill',
    '--deploys=3',
    '--every=0.7',
    '--connections=4',
    '--timeout=0.5',
    `--html=${html}`,
    '--',
    process.execPath,
    join(ROOT, 'test', 'fixtures', 'hanging-app.ts'),
  ]);
  assert.equal((await r.exited).code, 2, r.stdout());
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()}`));
  await page.goto(`file://${html}`);
  assert.deepEqual(errors, []);
  const chart = page.locator('svg#timeline');
  const box = await chart.boundingBox();
  assert.ok(box && box.width > 500 && box.height > 200, `chart laid out: ${JSON.stringify(box)}`);
  assert.ok(((await page.getAttribute('path.rps', 'd')) ?? '').length > 50, 'throughput line drawn');
  assert.ok(((await page.getAttribute('path.p99', 'd')) ?? '').length > 50, 'latency line drawn');
  assert.equal(await page.locator('line.deploy').count(), 3);
  assert.ok((await page.locator('circle.failure').count()) > 0, 'failures plotted');
  assert.match((await page.locator('.verdict').textContent()) ?? '', /^FAIL: \d+ of \d+ requests failed/);
  const png = await chart.screenshot();
  writeFileSync(join(dir, 'chart.png'), png);
  assert.ok(png.length > 5000, `a non-empty screenshot (${png.length} bytes)`);
});

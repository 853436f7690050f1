// The drill's HTML report: one self-contained file (no script, no external
// resource) with an SVG timeline: throughput and p99 latency over time,
// deploys as vertical lines, failed requests as red points.
import { OUTCOMES } from './recording.ts';
import type { DrillReport } from './report.ts';

const W = 960;
const H = 320;
const PAD = { left: 96, right: 96, top: 20, bottom: 36 };

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot' }[c]};`);

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return Math.ceil(v / p) * p;
}

function chart(r: DrillReport): string {
  const span = Math.max(r.seconds, ...r.timeline.map((b) => b.t + r.bucketMs / 1000), 1);
  const rpsOf = (n: number) => n / (r.bucketMs / 1000);
  const maxRps = niceMax(Math.max(...r.timeline.map((b) => rpsOf(b.requests)), 1));
  const maxLat = niceMax(Math.max(...r.timeline.map((b) => b.p99), 1));
  const x = (t: number) => PAD.left + (t / span) * (W - PAD.left - PAD.right);
  const yR = (v: number) => H - PAD.bottom - (v / maxRps) * (H - PAD.top - PAD.bottom);
  const yL = (v: number) => H - PAD.bottom - (Math.min(v, maxLat) / maxLat) * (H - PAD.top - PAD.bottom);
  const line = (pts: Array<[number, number]>) => pts.map(([a, b], i) => `${i ? 'L' : 'M'}${a.toFixed(1)},${b.toFixed(1)}`).join('');
  const mid = (t: number) => t + r.bucketMs / 2000;
  const rps = line(r.timeline.map((b) => [x(mid(b.t)), yR(rpsOf(b.requests))]));
  const p99 = line(r.timeline.map((b) => [x(mid(b.t)), yL(b.p99)]));
  const deploys = r.deploys
    .map(
      (d) =>
        `<line class="deploy" x1="${x(d.at / 1000)}" x2="${x(d.at / 1000)}" y1="${PAD.top}" y2="${H - PAD.bottom}"><title>deploy ${d.index}</title></line>`,
    )
    .join('');
  const failures = r.failures
    .slice(0, 2000)
    .map(
      (f) =>
        `<circle class="failure" cx="${x(f.at / 1000).toFixed(1)}" cy="${H - PAD.bottom - 6}" r="4"><title>${esc(`${f.outcome} ${f.detail}`)}</title></circle>`,
    )
    .join('');
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => span / s <= 10) ?? 600;
  const ticks = Array.from({ length: Math.floor(span / step) + 1 }, (_, i) => i * step)
    .map((t) => `<text x="${x(t)}" y="${H - 12}" text-anchor="middle">${t} s</text>`)
    .join('');
  return `<svg id="timeline" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="throughput and latency over time">
<rect x="${PAD.left}" y="${PAD.top}" width="${W - PAD.left - PAD.right}" height="${H - PAD.top - PAD.bottom}" class="frame"/>
${deploys}
<path class="rps" d="${rps}"/>
<path class="p99" d="${p99}"/>
${failures}
${ticks}
<text x="${PAD.left - 6}" y="${PAD.top + 10}" text-anchor="end" class="rps-label">${maxRps.toLocaleString('en-US')} req/s</text>
<text x="${PAD.left - 6}" y="${H - PAD.bottom}" text-anchor="end">0</text>
<text x="${W - PAD.right + 6}" y="${PAD.top + 10}" class="p99-label">${maxLat} ms p99</text>
<text x="${W - PAD.right + 6}" y="${H - PAD.bottom}">0 ms</text>
</svg>`;
}

function table(headers: string[], rows: string[][]): string {
  return `<table><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
}

export function renderHtml(reports: readonly DrillReport[]): string {
  const sections = reports.map((r) => {
    const verdict =
      r.failed === 0
        ? `PASS: ${r.requests} requests through ${r.deploys.length} deploys, none failed`
        : `FAIL: ${r.failed} of ${r.requests} requests failed`;
    return `<section>
<h2>${esc(r.label)}</h2>
<p class="verdict ${r.failed === 0 ? 'pass' : 'fail'}">${esc(verdict)}</p>
${chart(r)}
<p class="legend"><span class="rps">throughput</span> <span class="p99">p99 latency</span> <span class="deploy">deploy</span> <span class="failure">failed request</span></p>
${table(
  ['outcome', 'requests'],
  OUTCOMES.map((o) => [o, String(r.outcomes[o])]),
)}
<p>latency p50 ${r.latency.p50.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms, max ${r.latency.max.toFixed(1)} ms over ${r.seconds.toFixed(1)} s</p>
${table(
  ['deploy', 'at', 'old generation gone after', 'p50 around it', 'p99 around it', 'max around it', 'failed around it'],
  r.deploys.map((d) => [
    String(d.index),
    `${(d.at / 1000).toFixed(2)} s`,
    d.durationMs === undefined ? 'not seen' : `${d.durationMs.toFixed(0)} ms`,
    `${d.window.p50.toFixed(2)} ms`,
    `${d.window.p99.toFixed(2)} ms`,
    `${d.window.max.toFixed(1)} ms`,
    String(d.failed),
  ]),
)}
${
  r.failures.length
    ? table(
        ['at', 'outcome', 'detail'],
        r.failures.slice(0, 200).map((f) => [`${(f.at / 1000).toFixed(3)} s`, f.outcome, f.detail]),
      )
    : ''
}
</section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>baton drill report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
svg text{font-size:11px;fill:#555}.frame{fill:#fafafa;stroke:#ccc}
path.rps{fill:none;stroke:#2563eb;stroke-width:1.5}path.p99{fill:none;stroke:#d97706;stroke-width:1.2}
line.deploy{stroke:#16a34a;stroke-dasharray:4 3}circle.failure{fill:#dc2626}
.legend span{margin-right:16px}.legend .rps{color:#2563eb}.legend .p99{color:#d97706}.legend .deploy{color:#16a34a}.legend .failure{color:#dc2626}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}
.verdict{font-weight:bold}.pass{color:#16a34a}.fail{color:#dc2626}
</style></head><body>
<h1>baton drill</h1>
${sections.join('\n')}
</body></html>
`;
}

// The Kubernetes manifests in examples/kubernetes/, checked without a
// cluster. kubectl cannot: even `kubectl apply --dry-run=client` asks an API
// server for its resource list first ("unable to recognize ...: connection
// refused"), and its --validate downloads the server's OpenAPI. So the
// check uses the API's own schema, as kubernetes-models generates it from
// Kubernetes' OpenAPI (1.33 or later: it knows preStop `sleep` and
// `stopSignal`): each object is validated at run time (types, required
// fields, enums), and type-checked as a literal of its interface, which
// rejects any field the API does not have (a misspelt one would otherwise be
// dropped by the API server without a word). Then the timings: each
// Deployment's terminationGracePeriodSeconds is what baton's options make
// it: preStop sleep + --shutdown-delay + --graceful-timeout + the margin.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { globSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { stopBudget } from '../../src/process/stop-budget.ts';
import { ROOT } from '../helpers.ts';

const MODELS = {
  'apps/v1 Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1', type: 'IDeployment' },
  'v1 Service': { model: Service, module: 'kubernetes-models/v1', type: 'IService' },
} as const;

type Manifest = { file: string; index: number; object: Record<string, unknown> };

function manifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of globSync('examples/kubernetes/*.yaml', { cwd: ROOT }).sort()) {
    parseAllDocuments(readFileSync(join(ROOT, file), 'utf8')).forEach((doc, index) => {
      assert.deepEqual(doc.errors, [], `${file}, document ${index + 1}`);
      out.push({ file, index, object: doc.toJS() as Record<string, unknown> });
    });
  }
  return out;
}

const kindOf = (o: Record<string, unknown>) => `${o.apiVersion} ${o.kind}` as keyof typeof MODELS;

/** The type checker's verdict on each object as a literal of its API type: the errors, one line each. */
function typeCheck(objects: Manifest[]): string[] {
  const dir = join(ROOT, '.cache', 'kubernetes-manifests');
  mkdirSync(dir, { recursive: true });
  const lines = Object.values(MODELS).map((m) => `import type { ${m.type} } from '${m.module}';`);
  for (const [i, m] of objects.entries()) {
    const spec = MODELS[kindOf(m.object)];
    lines.push(`// ${m.file}, document ${m.index + 1}`, `export const m${i}: ${spec.type} = ${JSON.stringify(m.object, null, 2)};`);
  }
  writeFileSync(join(dir, 'manifests.ts'), `${lines.join('\n')}\n`);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: true, types: [] },
      files: ['manifests.ts'],
    }),
  );
  const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', relative(ROOT, dir)], { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0
    ? []
    : `${r.stdout}${r.stderr}`
        .trim()
        .split('\n')
        .filter((l) => /error TS/.test(l));
}

test('examples/kubernetes: every object is valid against the API schema, with no field the API lacks', () => {
  const all = manifests();
  assert.ok(all.length >= 3, 'the manifests are there');
  for (const m of all) {
    const spec = MODELS[kindOf(m.object)];
    assert.ok(spec, `${m.file}: ${kindOf(m.object)} is not checked here`);
    assert.doesNotThrow(() => new spec.model(m.object as never).validate(), `${m.file}, document ${m.index + 1}`);
  }
  assert.deepEqual(typeCheck(all), []);
});

test('the schema check catches what the API server would reject or silently drop', () => {
  const [deployment] = manifests().filter((m) => m.object.kind === 'Deployment');
  assert.ok(deployment);
  const copy = () => structuredClone(deployment.object) as { spec: { template: { spec: Record<string, unknown> } } };
  // a wrong type: rejected at run time
  const wrongType = copy();
  wrongType.spec.template.spec.terminationGracePeriodSeconds = '45';
  assert.throws(() => new Deployment(wrongType as never).validate(), /terminationGracePeriodSeconds/);
  // a misspelt field: the API server would drop it; the type check names it
  const misspelt = copy();
  misspelt.spec.template.spec.terminationGracePeriod = 45;
  const errors = typeCheck([{ ...deployment, object: misspelt }]);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0] as string, /terminationGracePeriod\b/);
});

test("examples/kubernetes: each Deployment's terminationGracePeriodSeconds is computed from baton's options", () => {
  for (const m of manifests().filter((x) => x.object.kind === 'Deployment')) {
    const pod = new Deployment(m.object as never).spec?.template.spec;
    assert.ok(pod);
    for (const c of pod.containers) {
      const preStop = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
      const budget = stopBudget(c.command ?? [], preStop);
      assert.ok(budget, `${m.file}: ${c.name} runs baton serve`);
      assert.equal(
        pod.terminationGracePeriodSeconds,
        budget.seconds,
        `${m.file}: preStop ${preStop} + --shutdown-delay ${budget.shutdownDelay} + --graceful-timeout ${budget.gracefulTimeout} + margin`,
      );
      // The wait for the endpoint removal is there once: in the kubelet or in baton.
      assert.ok(preStop > 0 !== budget.shutdownDelay > 0, `${m.file}: a preStop sleep or --shutdown-delay, one of them`);
      assert.equal(c.readinessProbe?.httpGet?.path, '/ready');
      assert.ok(c.command?.includes('--ready-path=/ready'), `${m.file}: the probe's path is baton's`);
    }
  }
});

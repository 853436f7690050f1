// Docker Engine for the tests (scripts/engines/docker-setup.sh): dockerd in
// a network namespace of its own. `--net=host` containers live in that
// namespace, so whatever talks to them (the supervisor, the loads, a probe)
// runs there too, behind `where`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

export interface DockerEngine {
  env: NodeJS.ProcessEnv;
  /** The command prefix that runs a program in dockerd's network namespace. */
  where: string[];
  docker(...args: string[]): { status: number | null; stdout: string; stderr: string };
}

/** `hostLink`: also an address of the namespace the host reaches (env.DKR_HOST_ADDR). */
export function setUpDockerEngine(opts: { hostLink?: boolean } = {}): DockerEngine | { error: string } {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'engines', 'docker-setup.sh')], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, DKR_HOST_LINK: opts.hostLink ? '1' : '' },
  });
  if (r.status !== 0) return { error: `Docker Engine setup failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}` };
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const m of readFileSync(r.stdout.trim(), 'utf8').matchAll(/^export (\w+)="(.*)"$/gm)) env[m[1] as string] = m[2];
  return {
    env,
    where: ['nsenter', `--net=/var/run/netns/${env.DKR_NS}`],
    docker: (...args) => {
      const d = spawnSync(env.DOCKER_CLI as string, args, { env, encoding: 'utf8', timeout: 120_000 });
      return { status: d.status, stdout: d.stdout, stderr: d.stderr };
    },
  };
}

export function tearDownDockerEngine(env: NodeJS.ProcessEnv): void {
  spawnSync('bash', [join(ROOT, 'scripts', 'engines', 'docker-teardown.sh')], { env, timeout: 120_000 });
}

// The container set-up shared by the container tests and bench/drill.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { have } from './peers.ts';

const ROOT = join(import.meta.dirname, '..');

/** The container CLI: the stock docker client (against podman's API) where present. */
export const CONTAINER_CLI = have('docker') ? 'docker' : 'podman';

/** Runs scripts/containers/setup.sh; the environment to call podman/docker with, or why it failed. */
export function setUpContainers(): { env: NodeJS.ProcessEnv } | { error: string } {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'containers', 'setup.sh')], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) return { error: `container setup failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}` };
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const m of readFileSync(r.stdout.trim(), 'utf8').matchAll(/^export (\w+)="(.*)"$/gm)) env[m[1] as string] = m[2];
  return { env };
}

export function tearDownContainers(env: NodeJS.ProcessEnv): void {
  spawnSync('bash', [join(ROOT, 'scripts', 'containers', 'teardown.sh')], { env, timeout: 120_000 });
}

/**
 * `docker run` options that let a container report its readiness to the
 * supervisor: the notify socket's directory mounted at the same path, and the
 * generation's NOTIFY_SOCKET and BATON_READY_TOKEN passed through (the
 * container's processes are not the generation's pid, the token vouches for
 * them).
 */
export function readinessMount(notifyDir: string): string[] {
  return ['-v', `${notifyDir}:${notifyDir}`, '-e', 'NOTIFY_SOCKET', '-e', 'BATON_READY_TOKEN'];
}

/** The supervisor's options for readiness through readinessMount(notifyDir). */
export function readinessOptions(notifyDir: string): string[] {
  return ['--ready-notify', `--notify-socket=${join(notifyDir, 'notify.sock')}`];
}

/**
 * start_server's options and command line for `docker run --rm --net=host
 * IMAGE <args>` generations; with `notifyDir`, a generation is ready when its
 * container says so (else after --interval). `env` is the engine's
 * (setUpContainers, setUpDockerEngine).
 */
export function hostNetCommand(env: NodeJS.ProcessEnv, args: string[], notifyDir?: string, image = env.IMAGE as string): string[] {
  const ready = notifyDir === undefined ? [] : readinessOptions(notifyDir);
  const mount = notifyDir === undefined ? [] : readinessMount(notifyDir);
  // Docker Engine's environment names its own CLI; podman's is the one on PATH
  return [...ready, '--', env.DOCKER_CLI ?? CONTAINER_CLI, 'run', '--rm', '--net=host', ...mount, image, ...args];
}

/** `start_server -- docker run --net=host IMAGE baton serve APP --reuse-port ...` (the seed's run). */
export function seedCommand(env: NodeJS.ProcessEnv, app: string, port: number, extra: string[] = [], notifyDir?: string): string[] {
  return hostNetCommand(
    env,
    ['serve', app, '--reuse-port', '--host=127.0.0.1', `--port=${port}`, '--max-workers=2', '--handover-timeout=5', ...extra],
    notifyDir,
  );
}

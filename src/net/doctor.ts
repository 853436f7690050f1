// `baton doctor`: what this machine offers for zero-loss port handover, and
// which mechanism `baton serve --reuse-port` and `baton reuseport-exec` use.
import { readFileSync } from 'node:fs';
import { chooseHandover, kernelSupportsSteering, migrateReqEnabled, possibleCpus } from './reuseport.ts';

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export function doctorReport(): { lines: string[]; ok: boolean } {
  const kernel = read('/proc/sys/kernel/osrelease');
  const migrate = migrateReqEnabled();
  const steering = kernel !== 'unknown' && kernelSupportsSteering(kernel);
  const mode = chooseHandover('auto');
  const lines = [
    `kernel: ${kernel}`,
    `node: ${process.version}`,
    `possible CPUs: ${possibleCpus().length} (a --reuse-port instance opens one listener per CPU when steering)`,
    `net.core.somaxconn: ${read('/proc/sys/net/core/somaxconn')} (default listen backlog)`,
    `net.ipv4.tcp_migrate_req: ${migrate ? '1: the kernel migrates a closing listener\'s queue ("migrate")' : '0'}`,
    `SO_INCOMING_CPU steering within a reuseport group: ${steering ? 'supported (Linux >= 6.2)' : 'NOT supported (needs Linux >= 6.2)'}`,
    `baton serve --reuse-port will hand over by: ${mode}`,
    `baton reuseport-exec will hand over by: ${chooseHandover('auto', 'cbpf')} (one socket for the command)`,
  ];
  if (!migrate) {
    lines.push(
      'to let the kernel migrate queued connections instead (root; per network namespace, so for docker --net=host set it on the host):',
      '  sysctl -w net.ipv4.tcp_migrate_req=1   (persist: echo net.ipv4.tcp_migrate_req=1 > /etc/sysctl.d/90-baton.conf)',
    );
  }
  const ok = migrate || steering;
  if (!ok)
    lines.push(
      'neither mechanism is available: a SO_REUSEPORT swap here can reset queued connections; prefer start_server --port (an inherited socket) or --handoff',
    );
  return { lines, ok };
}

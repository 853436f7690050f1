// `baton doctor`: what this machine offers for zero-loss port handover
// (every mechanism of the registry, available or not and why), and which
// one `baton serve --reuse-port` and `baton reuseport-exec` pick.
import { readFileSync } from 'node:fs';
import { chooseHandover, MECHANISMS } from './reuseport/index.ts';
import { kernelRelease, migrateReqEnabled, possibleCpus } from './reuseport/mechanisms.ts';

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export function doctorReport(): { lines: string[]; ok: boolean } {
  const lines = [
    `kernel: ${kernelRelease()}`,
    `node: ${process.version}`,
    `possible CPUs: ${possibleCpus().length} (a steering instance opens one listener per CPU)`,
    `net.core.somaxconn: ${read('/proc/sys/net/core/somaxconn')} (default listen backlog)`,
    `net.ipv4.tcp_migrate_req: ${migrateReqEnabled() ? '1' : '0'}`,
    'reuse-port handover mechanisms:',
  ];
  let zeroLoss = false;
  for (const m of Object.values(MECHANISMS)) {
    const why = m.unavailable();
    if (!why && m.name !== 'none') zeroLoss = true;
    lines.push(`  ${m.name}: ${why ? `NOT available (${why})` : 'available'} - ${m.summary}`);
  }
  lines.push(
    `baton serve --reuse-port will hand over by: ${chooseHandover('auto', false)}`,
    `baton reuseport-exec will hand over by: ${chooseHandover('auto', true)} (one socket for the command)`,
  );
  if (!migrateReqEnabled()) {
    lines.push(
      'to let the kernel migrate queued connections instead (root; per network namespace, so for docker --net=host set it on the host):',
      '  sysctl -w net.ipv4.tcp_migrate_req=1   (persist: echo net.ipv4.tcp_migrate_req=1 > /etc/sysctl.d/90-baton.conf)',
    );
  }
  if (!zeroLoss)
    lines.push(
      'no zero-loss mechanism is available: a SO_REUSEPORT swap here can reset queued connections; prefer start_server --port (an inherited socket) or --socket-handoff',
    );
  return { lines, ok: zeroLoss };
}

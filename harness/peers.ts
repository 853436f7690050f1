// Real peers the tests and benches run against (wrk, ab, Perl's
// start_server, Starlet...): whether this machine has them, and how to start them.
import { spawnSync } from 'node:child_process';

/** Whether a command is on PATH (for tests that need a real peer). */
export function have(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

/** plackup -s Starlet serving a one-line PSGI app with `body` (a Perl string literal body). */
export function starletCommand(body: string): string[] {
  return [
    'plackup',
    '-s',
    'Starlet',
    '--max-workers=4',
    '-E',
    'deployment',
    '-e',
    `sub { [200, ["Content-Type" => "text/plain"], ["${body}"]] }`,
  ];
}

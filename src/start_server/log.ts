// The supervisor's own messages: whole lines on fd 2, written synchronously so
// that they keep their order with the children's output and survive a dup2 of
// fd 2 onto --log-file. Never stdout: the children own it.
import { writeSync } from 'node:fs';

export function log(line: string): void {
  try {
    writeSync(2, `${line}\n`);
  } catch {
    // stderr closed or a dead log pipe (EPIPE): the supervisor keeps running
  }
}

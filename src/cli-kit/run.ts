// Runs a command: what it returns is the exit status; a BatonError ends it
// with one line on stderr (prefixed with the command's name) and the status
// it carries. Anything else is a bug in baton: its stack, and status 70
// (EX_SOFTWARE), so that it is never mistaken for a documented status.
import { BatonError } from '../errors.ts';
import { logLine } from '../process/log.ts';

export const BUG_EXIT = 70;

export async function runCommand(prefix: string, main: () => Promise<number>): Promise<number> {
  try {
    return await main();
  } catch (e) {
    if (e instanceof BatonError) {
      logLine(`${prefix}${e.message}`);
      return e.exitCode;
    }
    logLine(`${prefix}internal error (a bug in baton; please report it): ${(e as Error)?.stack ?? e}`);
    return BUG_EXIT;
  }
}

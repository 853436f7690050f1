// Signal names as start_server's options take them: case-insensitive, with or
// without "SIG". Validated at start-up (upstream fails only at the first use,
// after the workers are running).

import { constants } from 'node:os';
import { BatonError } from '../errors.ts';

const known = constants.signals as Record<string, number>;

/** "sigusr1" -> "USR1"; throws on names the system does not know. */
export function normalizeSignal(value: string, option: string): string {
  const name = value.trim().toUpperCase().replace(/^SIG/, '');
  if (/^\d+$/.test(name)) {
    const byNumber = Object.entries(known).find(([, n]) => n === Number(name));
    if (byNumber) return byNumber[0].replace(/^SIG/, '');
  } else if (`SIG${name}` in known) {
    return name;
  }
  throw new BatonError('ERR_BATON_USAGE', `${option}: unknown signal name "${value}" (use a name such as TERM, QUIT, USR1)`);
}

export function signalNumber(name: string): number {
  return known[`SIG${name}`] as number;
}

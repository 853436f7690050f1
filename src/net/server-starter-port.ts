// The SERVER_STARTER_PORT wire format: `key=fd` entries joined by ';'. Keys may
// contain '=' (UNIX paths), so each entry splits at its LAST '='.
import { BatonError } from '../errors.ts';

export interface PortEntry {
  key: string;
  fd: number;
}

export function formatServerStarterPort(entries: readonly PortEntry[]): string {
  return entries.map((e) => `${e.key}=${e.fd}`).join(';');
}

export function parseServerStarterPort(value: string): PortEntry[] {
  if (value === '') return [];
  return value.split(';').map((entry) => {
    const eq = entry.lastIndexOf('=');
    const fdText = entry.slice(eq + 1);
    if (eq <= 0 || !/^\d+$/.test(fdText)) {
      throw new BatonError(
        'ERR_BATON_SERVER_STARTER_PORT',
        `SERVER_STARTER_PORT entry ${JSON.stringify(entry)} is not of the form key=fd (whole value: ${JSON.stringify(value)})`,
      );
    }
    return { key: entry.slice(0, eq), fd: Number(fdText) };
  });
}

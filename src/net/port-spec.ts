// The `--port` grammar of Server::Starter 0.35, and the key each socket gets in
// SERVER_STARTER_PORT. Two patterns are tried in order, as upstream does:
//   A. port only:      [u]DIGITS[=FD]              -> 0.0.0.0, key "DIGITS"
//   B. host and port:  [\[]HOST[\]]:[u]DIGITS[=FD] -> key "HOST:PORT" or "[V6]:PORT"
// The host part is greedy, so the last ':' separates the port (`::1:80`).
import { BatonError } from '../errors.ts';

export interface PortSpec {
  /** The SERVER_STARTER_PORT key: "8080", "127.0.0.1:8080", "[::1]:8080". */
  key: string;
  /** Host exactly as written (brackets removed); undefined for port-only specs. */
  host: string | undefined;
  port: number;
  family: 4 | 6;
  udp: boolean;
  /** Requested fd number in the child (`=FD`), if any. */
  fd: number | undefined;
}

const PORT_ONLY = /^\s*(u?)(\d+)(?:\s*=(\d+))?\s*$/;
const HOST_PORT = /^\s*(?:\[\s*|)([^\]]*?)\s*(?:\]\s*|):\s*(u?)(\d+)(?:\s*=(\d+))?\s*$/;

function toPort(digits: string, raw: string): number {
  const port = Number(digits);
  if (port > 65535) throw new BatonError('ERR_BATON_PORT', `invalid \`\`port'' value:${raw} (port numbers go up to 65535)`);
  return port;
}

export function parsePortSpec(raw: string): PortSpec {
  const a = PORT_ONLY.exec(raw);
  if (a) {
    const port = toPort(a[2] as string, raw);
    return { key: String(port), host: undefined, port, family: 4, udp: a[1] === 'u', fd: a[3] === undefined ? undefined : Number(a[3]) };
  }
  const b = HOST_PORT.exec(raw);
  if (b) {
    const host = b[1] as string;
    const port = toPort(b[3] as string, raw);
    const v6 = host.includes(':');
    return {
      key: v6 ? `[${host}]:${port}` : `${host}:${port}`,
      host,
      port,
      family: v6 ? 6 : 4,
      udp: b[2] === 'u',
      fd: b[4] === undefined ? undefined : Number(b[4]),
    };
  }
  throw new BatonError('ERR_BATON_PORT', `invalid \`\`port'' value:${raw}`);
}

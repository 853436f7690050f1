// The drain's rule for closing a connection: only when no request is in
// flight or begun on it, no byte has arrived on it for `idleMs`, and none is
// waiting in the kernel (closing with unread bytes makes the kernel answer
// with a reset). `idleMs` defaults to when Node itself would close the
// connection: the keep-alive timeout the server announces to clients
// (`Keep-Alive: timeout=5`) plus Node's own margin beyond it
// (keepAliveTimeoutBuffer). A client that honours the timeout (Node's Agent,
// undici, browsers) has dropped the connection by then, so a drain closes
// nothing a client could still be reusing, and adds no close normal operation
// would not make. A shorter idle close races the client's next request: we
// measured that race as bursts of resets (64 in 30 deploys with 200
// connections pausing 1 s between requests against a 1 s idle close).
import type { Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { native } from '../../net/native.ts';

/** Idle threshold for a server whose keep-alive timeout is off (0). */
const DEFAULT_IDLE_MS = 5000;

/** When Node itself closes an idle keep-alive connection: the timeout it announces plus its margin (Node 24: 1 s). */
export function idleCloseMs(server: HttpServer): number {
  if (!(server.keepAliveTimeout > 0)) return DEFAULT_IDLE_MS;
  const buffer = (server as { keepAliveTimeoutBuffer?: number }).keepAliveTimeoutBuffer;
  return server.keepAliveTimeout + (typeof buffer === 'number' && buffer > 0 ? buffer : 0);
}

/** The response being written on a connection (net.Socket#_httpMessage, set by http while one is assigned). */
export function currentResponse(socket: Socket): ServerResponse | null | undefined {
  return (socket as unknown as { _httpMessage?: ServerResponse | null })._httpMessage;
}

/** Bytes the kernel holds for this connection that Node has not read yet. */
function unread(socket: Socket): number {
  // net.Socket keeps its fd on the (undocumented) libuv handle
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return 0;
  try {
    return native.unreadBytes(fd);
  } catch {
    return 0;
  }
}

/** Closes, sweep after sweep, the connections that have been quiet long enough. */
export class IdleSweep {
  private readonly idleMs: number;
  private readonly quiet = new WeakMap<Socket, { since: number; bytes: number }>();

  constructor(idleMs: number) {
    this.idleMs = idleMs;
  }

  /** One sweep over the open connections (`receiving`: those mid-request); how many it closed. */
  sweep(open: readonly Socket[], receiving: Set<Socket> | undefined, now: number): number {
    let closed = 0;
    for (const socket of open) {
      let q = this.quiet.get(socket);
      if (!q) {
        q = { since: now, bytes: socket.bytesRead };
        this.quiet.set(socket, q);
      }
      if (currentResponse(socket) || receiving?.has(socket) || socket.bytesRead !== q.bytes) {
        q.since = now;
        q.bytes = socket.bytesRead;
      } else if (now - q.since >= this.idleMs && unread(socket) === 0) {
        socket.destroy();
        closed++;
      }
    }
    return closed;
  }
}

// Graceful shutdown of an http.Server that loses no request, keep-alive
// connections included (the recipe measured in shared/notes/zero-loss.md).
//
// Invariants once shutdown() is called:
// - the listener stops accepting, but no established connection is closed
//   because it looks idle at that instant: a keep-alive client may already
//   have its next request on the wire;
// - every response not yet started carries `Connection: close`, so Node ends
//   the connection right after it;
// - a connection is closed by us only when it has no request in flight and
//   has been idle for `idleMs` (default 1 s);
// - shutdown resolves when no connection is left, or at `timeoutMs`, when the
//   remaining connections are destroyed.
// Never http.Server#close() here: it also closes idle keep-alive connections
// (one lost request per connection under a busy client).
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';

export interface GracefulOptions {
  /** How long a connection must be idle before it is closed. */
  idleMs?: number;
  /** Give up waiting and destroy what is left after this long. */
  timeoutMs?: number;
}

export interface Graceful {
  /** Stops accepting and drains; resolves to how it ended. */
  shutdown(): Promise<'drained' | 'timeout'>;
  readonly draining: boolean;
  /** Connections currently open. */
  readonly connections: number;
}

interface ConnState {
  inFlight: Set<ServerResponse>;
  lastActive: number;
}

const SWEEP_MS = 20;

function markClose(res: ServerResponse): void {
  if (!res.headersSent && !res.hasHeader('connection')) res.setHeader('Connection', 'close');
}

export function graceful(server: HttpServer, options: GracefulOptions = {}): Graceful {
  const idleMs = options.idleMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const conns = new Map<Socket, ConnState>();
  let draining = false;
  let done: Promise<'drained' | 'timeout'> | undefined;

  // Prepended: the app's own listeners may send a whole response synchronously.
  server.prependListener('connection', (socket: Socket) => {
    conns.set(socket, { inFlight: new Set(), lastActive: Date.now() });
    socket.once('close', () => conns.delete(socket));
  });
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const state = conns.get(req.socket);
    if (!state) return;
    state.inFlight.add(res);
    if (draining) markClose(res);
    const finished = () => {
      state.inFlight.delete(res);
      state.lastActive = Date.now();
    };
    res.once('finish', finished);
    res.once('close', finished);
  });

  function shutdown(): Promise<'drained' | 'timeout'> {
    done ??= new Promise((resolve) => {
      draining = true;
      NetServer.prototype.close.call(server);
      for (const state of conns.values()) for (const res of state.inFlight) markClose(res);
      const deadline = Date.now() + timeoutMs;
      const sweep = setInterval(() => {
        const now = Date.now();
        for (const [socket, state] of conns) {
          if (state.inFlight.size === 0 && now - state.lastActive >= idleMs) socket.destroy();
        }
        if (conns.size === 0 || now >= deadline) {
          clearInterval(sweep);
          const timedOut = conns.size > 0;
          for (const socket of conns.keys()) socket.destroy();
          resolve(timedOut ? 'timeout' : 'drained');
        }
      }, SWEEP_MS);
    });
    return done;
  }

  return {
    shutdown,
    get draining() {
      return draining;
    },
    get connections() {
      return conns.size;
    },
  };
}

// Graceful shutdown of an http.Server that loses no request, keep-alive
// connections included (the recipe measured in shared/notes/zero-loss.md).
//
// Invariants once shutdown() is called:
// - the listener stops accepting, but no established connection is closed
//   because it looks idle at that instant: a keep-alive client may already
//   have its next request on the wire;
// - every response not yet started carries `Connection: close`, so Node ends
//   the connection right after it;
// - a connection is closed by us only when it has no request in flight, has
//   been idle for `idleMs` (default 1 s), and no byte of a next request has
//   arrived: neither read by Node (a 'request' not yet emitted) nor waiting
//   in the kernel (a busy event loop runs our timer before it reads them).
//   Closing with unread bytes would make the kernel answer with a reset;
//   what remains is the microseconds between that check and close(2), the
//   race HTTP/1.1 leaves to clients (RFC 9112 §9.3.1);
// - shutdown resolves when no connection is left, or at `timeoutMs`, when the
//   remaining connections are destroyed.
// Never http.Server#close() here: it also closes idle keep-alive connections
// (one lost request per connection under a busy client).
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { native } from '../net/native.ts';
import { handOverPort } from '../net/reuseport.ts';
import { reuseportBinding } from './listen.ts';

export interface GracefulOptions {
  /** How long a connection must be idle before it is closed. */
  idleMs?: number;
  /** Give up waiting and destroy what is left after this long. */
  timeoutMs?: number;
  /**
   * With listen({ reusePort }): the longest wait, before we stop accepting,
   * for another instance to listen on the port (default 30 s).
   */
  handoverTimeoutMs?: number;
  /**
   * The caller's own (single) request listener calls track(req, res) first,
   * instead of graceful adding a listener: a second 'request' listener makes
   * every emit copy the listener array.
   */
  manualTracking?: boolean;
}

export interface Graceful {
  /** Stops accepting and drains; resolves to how it ended. */
  shutdown(): Promise<'drained' | 'timeout'>;
  readonly draining: boolean;
  /** Connections currently open. */
  readonly connections: number;
  /** With manualTracking: call at the start of every request. */
  track(req: IncomingMessage, res: ServerResponse): void;
}

interface ConnState {
  /** Responses started on this connection and not yet closed. */
  inFlight: number;
  /** The one not yet started when shutdown() began, if any, to mark `close`. */
  current: ServerResponse | undefined;
  lastActive: number;
  /** socket.bytesRead when the connection last became idle. */
  readAtIdle: number;
}

const SWEEP_MS = 20;
const STATE = Symbol('baton.graceful');

type TrackedSocket = Socket & { [STATE]?: ConnState };

function markClose(res: ServerResponse): void {
  if (!res.headersSent && !res.hasHeader('connection')) res.setHeader('Connection', 'close');
}

// One shared listener (no closure per request): this is the hot path. The
// response is detached from its socket by now; its request still knows it.
function onResponseClose(this: ServerResponse): void {
  const state = (this.req.socket as TrackedSocket)[STATE];
  if (!state) return;
  state.inFlight--;
  if (state.current === this) state.current = undefined;
  state.lastActive = Date.now();
  state.readAtIdle = this.req.socket.bytesRead;
}

/** No request in flight or begun, none waiting in the kernel, for idleMs. */
function isIdle(socket: TrackedSocket, state: ConnState, now: number, idleMs: number): boolean {
  if (state.inFlight > 0 || now - state.lastActive < idleMs || socket.bytesRead !== state.readAtIdle) return false;
  // net.Socket keeps its fd on the (undocumented) libuv handle
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return true;
  try {
    return native.unreadBytes(fd) === 0;
  } catch {
    return true;
  }
}

export function graceful(server: HttpServer, options: GracefulOptions = {}): Graceful {
  const idleMs = options.idleMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const conns = new Set<TrackedSocket>();
  let draining = false;
  let done: Promise<'drained' | 'timeout'> | undefined;

  // Prepended: the app's own listeners may send a whole response synchronously.
  server.prependListener('connection', (socket: TrackedSocket) => {
    socket[STATE] = { inFlight: 0, current: undefined, lastActive: Date.now(), readAtIdle: 0 };
    conns.add(socket);
    socket.once('close', () => conns.delete(socket));
  });
  const track = (req: IncomingMessage, res: ServerResponse) => {
    const state = (req.socket as TrackedSocket)[STATE];
    if (!state) return;
    state.inFlight++;
    state.current = res;
    if (draining) markClose(res);
    res.once('close', onResponseClose);
  };
  if (!options.manualTracking) server.prependListener('request', track);

  function shutdown(): Promise<'drained' | 'timeout'> {
    done ??= handOver().then(
      () =>
        new Promise((resolve) => {
          draining = true;
          const binding = reuseportBinding(server);
          if (binding) for (const front of binding.fronts) front.close();
          else NetServer.prototype.close.call(server);
          for (const socket of conns) {
            const current = socket[STATE]?.current;
            if (current) markClose(current);
          }
          const deadline = Date.now() + timeoutMs;
          const sweep = setInterval(() => {
            const now = Date.now();
            for (const socket of conns) {
              const state = socket[STATE] as ConnState;
              if (isIdle(socket, state, now, idleMs)) socket.destroy();
            }
            if (conns.size === 0 || now >= deadline) {
              clearInterval(sweep);
              const timedOut = conns.size > 0;
              for (const socket of conns) socket.destroy();
              resolve(timedOut ? 'timeout' : 'drained');
            }
          }, SWEEP_MS);
        }),
    );
    return done;
  }

  /** Reuse-port listeners: hand the port over first (net/reuseport.ts). */
  async function handOver(): Promise<void> {
    const binding = reuseportBinding(server);
    if (binding) await handOverPort(binding.group, options.handoverTimeoutMs ?? 30_000, (m) => process.emitWarning(m));
  }

  return {
    shutdown,
    track,
    get draining() {
      return draining;
    },
    get connections() {
      return conns.size;
    },
  };
}

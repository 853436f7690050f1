// Graceful shutdown of an http.Server that loses no request, keep-alive
// connections included. Its phases, each in a module of its own:
// 1. hand a SO_REUSEPORT port over (listen({ reusePort }) only: the port is
//    never left empty);
// 2. stop accepting, without closing any established connection because it
//    looks idle at that instant: a keep-alive client may already have its
//    next request on the wire;
// 3. every response not yet started carries `Connection: close`, so Node
//    ends the connection right after it;
// 4. sweep: a connection is closed by us only once it is truly idle
//    (idle.ts);
// 5. long-lived connections (WebSockets, event streams) are ended by the app
//    on the drain signal, or for it at `longLivedMs` (long-lived.ts); HTTP/2
//    sessions are told to leave, the two-phase way (http2.ts);
// 6. resolve when no connection is left, or at `timeoutMs`, when the
//    remaining connections are destroyed.
// Never http.Server#close() here: it also closes idle keep-alive connections
// (one lost request per connection under a busy client).
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import { Server as NetServer, type Socket } from 'node:net';
import { DRAIN_TIMEOUT_S, GRACEFUL_TIMEOUT_S, HANDOVER_TIMEOUT_S } from '../../defaults.ts';
import { handOverPort } from '../../net/reuseport/index.ts';
import { startDraining } from '../draining.ts';
import { reuseportBinding } from '../listen.ts';
import { Connections } from './connections.ts';
import { isHttp2Server, Sessions } from './http2.ts';
import { currentResponse, IdleSweep, idleCloseMs } from './idle.ts';
import { LongLived } from './long-lived.ts';

export { nodeConnectionList } from './connections.ts';

export interface GracefulOptions {
  /** How long a connection must be quiet before it is closed (default: the server's keepAliveTimeout plus Node's keepAliveTimeoutBuffer). */
  idleMs?: number;
  /** Give up waiting and destroy what is left after this long (default 30 s). */
  timeoutMs?: number;
  /**
   * With listen({ reusePort }): the longest wait, before we stop accepting,
   * for another instance to listen on the port (default 30 s).
   */
  handoverTimeoutMs?: number;
  /**
   * Long-lived connections (upgraded, event streams) still open this long
   * after the drain starts are ended for the app (default 10 s).
   */
  longLivedMs?: number;
  /**
   * Connections are told `Connection: close` not all at once but each at a
   * random time within this many ms (default 0: all at once).
   */
  closeSpreadMs?: number;
  /**
   * HTTP/2: between the first GOAWAY (no new streams, please) and the final
   * one; at least a round trip (default 1 s).
   */
  goawayGapMs?: number;
  /** Told how many long-lived connections were ended at `longLivedMs`, if any. */
  onLongLivedEnded?: (count: number) => void;
}

export interface Graceful {
  /** Stops accepting and drains; resolves to how it ended. */
  shutdown(): Promise<'drained' | 'timeout'>;
  readonly draining: boolean;
  /** Connections currently open (upgraded ones included). */
  readonly connections: number;
  /** Upgraded connections currently open (WebSockets and the like). */
  readonly upgraded: number;
}

const SWEEP_MS = 20;
const GOAWAY_GAP_MS = 1000;

function markClose(res: ServerResponse): void {
  // HTTP/2 has no Connection header (GOAWAY does its work: http2.ts)
  if (!res.headersSent && !res.hasHeader('connection') && res.req?.httpVersionMajor !== 2) res.setHeader('Connection', 'close');
}

/**
 * Phase 3: every response not yet started carries `Connection: close`; with
 * a spread, each connection's turn comes at a random time within it, so the
 * clients do not all move to the new generation (cold, its code not yet
 * optimized by V8) in the same instant.
 */
function closeOnResponses(server: HttpServer, spreadMs: number, connections: Connections): void {
  const start = Date.now();
  const turn = new WeakMap<Socket, number>();
  const due = (socket: Socket | null | undefined): boolean => {
    if (!socket || spreadMs <= 0) return true;
    let at = turn.get(socket);
    if (at === undefined) {
      at = start + Math.random() * spreadMs;
      turn.set(socket, at);
    }
    return Date.now() >= at;
  };
  // An HTTP/2 server that has no 'request' listener serves streams itself
  // (grpc-js): adding one would switch Node's compatibility layer on for every
  // stream after it, whose responses then send trailers of their own beside
  // the app's (ERR_HTTP2_TRAILERS_ALREADY_SENT, and the worker dies).
  if (!isHttp2Server(server) || server.listenerCount('request') > 0) {
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      if (due(req.socket)) markClose(res);
    });
  }
  for (const socket of connections.http()) {
    const res = currentResponse(socket);
    if (res && due(socket)) markClose(res);
  }
}

/** Phase 2: no new connection reaches this server (its reuse-port fronts, or its own listener, close). */
function stopAccepting(server: HttpServer): void {
  const binding = reuseportBinding(server);
  if (binding) for (const front of binding.fronts) front.close();
  else NetServer.prototype.close.call(server);
}

/** A server graceful() drains: http, https, or http2 (secure or not, with allowHTTP1 or not). */
export type DrainableServer = HttpServer | Http2Server | Http2SecureServer;

export function graceful(drainable: DrainableServer, options: GracefulOptions = {}): Graceful {
  const server = drainable as HttpServer;
  const timeoutMs = options.timeoutMs ?? GRACEFUL_TIMEOUT_S * 1000;
  const longLivedMs = options.longLivedMs ?? DRAIN_TIMEOUT_S * 1000;
  const gapMs = options.goawayGapMs ?? GOAWAY_GAP_MS;
  const h2 = isHttp2Server(server) ? new Sessions(server, gapMs) : undefined;
  const connections = new Connections(server, !h2);
  let draining = false;
  let done: Promise<'drained' | 'timeout'> | undefined;

  async function handOver(): Promise<void> {
    const binding = reuseportBinding(server);
    if (binding) await handOverPort(binding.group, options.handoverTimeoutMs ?? HANDOVER_TIMEOUT_S * 1000, (m) => process.emitWarning(m));
  }

  function drain(): Promise<'drained' | 'timeout'> {
    draining = true;
    stopAccepting(server);
    closeOnResponses(server, options.closeSpreadMs ?? 0, connections);
    h2?.announce();
    const goawayAt = Date.now() + gapMs;
    const longLived = new LongLived(connections);
    longLived.noteBegun();
    startDraining('the server is shutting down');
    const idle = new IdleSweep(options.idleMs ?? idleCloseMs(server));
    const longDeadline = Date.now() + longLivedMs;
    const deadline = Date.now() + timeoutMs;
    let boundReached = false;
    return new Promise((resolve) => {
      const sweep = setInterval(() => {
        const now = Date.now();
        const open = connections.http();
        idle.sweep(open, connections.receiving(open), now);
        // streams begun during the drain came on a kept-alive connection (most
        // likely a client reconnecting): ended at once to come back elsewhere;
        // past the bound, every long-lived connection goes
        if (now < longDeadline) longLived.endEventStreams(false);
        else {
          const ended = longLived.endAll();
          if (!boundReached && ended > 0) options.onLongLivedEnded?.(ended);
          boundReached = true;
        }
        if (h2 && now >= goawayAt) h2.close();
        const sessions = h2?.size ?? 0;
        if ((open.length === 0 && connections.upgraded.size === 0 && sessions === 0) || now >= deadline) {
          clearInterval(sweep);
          const left = [...connections.http(), ...connections.upgraded.keys()];
          for (const socket of left) socket.destroy();
          h2?.destroy();
          resolve(left.length > 0 || sessions > 0 ? 'timeout' : 'drained');
        }
      }, SWEEP_MS);
    });
  }

  return {
    shutdown: () => {
      done ??= handOver().then(drain);
      return done;
    },
    get draining() {
      return draining;
    },
    get connections() {
      return connections.count + (h2?.size ?? 0);
    },
    get upgraded() {
      return connections.upgraded.size;
    },
  };
}

// Graceful shutdown of an http.Server that loses no request, keep-alive
// connections included.
//
// Invariants once shutdown() is called:
// - the listener stops accepting, but no established connection is closed
//   because it looks idle at that instant: a keep-alive client may already
//   have its next request on the wire;
// - every response not yet started carries `Connection: close`, so Node ends
//   the connection right after it;
// - a connection is closed by us only when no request is in flight or begun
//   on it, no byte has arrived on it for `idleMs`, and none is waiting in
//   the kernel (closing with unread bytes makes the kernel answer with a
//   reset). `idleMs` defaults to when Node itself would close the connection:
//   the keep-alive timeout the server announces to clients (`Keep-Alive:
//   timeout=5`) plus Node's own margin beyond it (keepAliveTimeoutBuffer). A
//   client that honours the timeout (Node's Agent, undici, browsers) has
//   dropped the connection by then, so a drain closes nothing a client could
//   still be reusing, and adds no close that normal operation would not make. A shorter idle close races
//   the client's next request; we measured that race as bursts of resets
//   (64 in 30 deploys with 200 connections pausing 1 s between requests
//   against a 1 s idle close);
// - long-lived connections (upgraded ones: WebSockets; responses that are
//   event streams) cannot finish by themselves: the drain signal
//   (draining.ts) tells the app to end them, and at `longLivedMs` the ones
//   still open are ended for it, as cleanly as the protocol allows (a
//   WebSocket gets a close frame with code 1001, an event stream a `retry:`
//   hint and its end). An ended stream's connection is not closed with it:
//   its headers went out before the drain, without `Connection: close`, so
//   the client may reuse it for its reconnect at once, and a close would
//   race that request ("other side closed"). The reconnect that comes back
//   on it is a stream begun during the drain: answered with `Connection:
//   close` and ended at once, so it comes back again on a new connection,
//   to the new generation; a connection no one reuses is closed by the idle
//   rule above;
// - shutdown resolves when no connection is left, or at `timeoutMs`, when the
//   remaining connections are destroyed.
// Nothing here runs per request or adds a property to Node's objects (a
// new property on every socket changes its hidden class and slows Node's
// own http code): the connections are Node's own list, read only while
// draining; upgraded connections, which leave that list, are noted per
// upgrade, and only when the app handles upgrades at all. Never http.Server#close() here: it also closes idle keep-alive
// connections (one lost request per connection under a busy client).
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { native } from '../net/native.ts';
import { handOverPort } from '../net/reuseport/index.ts';
import { startDraining } from './draining.ts';
import { reuseportBinding } from './listen.ts';

export interface GracefulOptions {
  /** How long a connection must be quiet before it is closed (default: the server's keepAliveTimeout plus Node's keepAliveTimeoutBuffer). */
  idleMs?: number;
  /** Give up waiting and destroy what is left after this long. */
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
/** Idle threshold for a server whose keep-alive timeout is off (0). */
const DEFAULT_IDLE_MS = 5000;
const DEFAULT_LONG_LIVED_MS = 10_000;
/** An upgraded connection ended for the app is destroyed if its peer has not closed it by then. */
const END_GRACE_MS = 2000;
/** A WebSocket close frame, code 1001 (Going Away); a server's frames are not masked. */
const WS_CLOSE_GOING_AWAY = Buffer.from([0x88, 0x02, 0x03, 0xe9]);

/** The parser of each live connection, as Node's http server keeps them (server[kConnections]). */
interface NodeConnectionList {
  all(): Array<{ socket?: Socket }>;
  /** Connections not in the middle of receiving a request. */
  idle(): Array<{ socket?: Socket }>;
}

/** Node's own connection list (since 18.2; what closeIdleConnections() uses), if this Node has it. */
export function nodeConnectionList(server: HttpServer): NodeConnectionList | undefined {
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections');
  const list = key && (server as unknown as Record<symbol, Partial<NodeConnectionList> | undefined>)[key];
  return typeof list?.all === 'function' && typeof list.idle === 'function' ? (list as NodeConnectionList) : undefined;
}

/** The response being written on a connection (net.Socket#_httpMessage, set by http while one is assigned). */
function currentResponse(socket: Socket): ServerResponse | null | undefined {
  return (socket as unknown as { _httpMessage?: ServerResponse | null })._httpMessage;
}

function markClose(res: ServerResponse): void {
  if (!res.headersSent && !res.hasHeader('connection')) res.setHeader('Connection', 'close');
}

/**
 * Whether the response under way is an event stream. Its headers were
 * sent; writeHead(status, headers) sends them without keeping them for
 * getHeader(), so the serialized header block (`_header`) is what to read.
 */
function isEventStream(res: ServerResponse): boolean {
  const sent = (res as unknown as { _header?: string | null })._header;
  return typeof sent === 'string' && /\r\ncontent-type:[ \t]*text\/event-stream/i.test(sent);
}

function onRequestWhileDraining(_req: IncomingMessage, res: ServerResponse): void {
  markClose(res);
}

/**
 * When Node itself closes an idle keep-alive connection: the keep-alive
 * timeout it announces, plus the margin it waits beyond that
 * (keepAliveTimeoutBuffer, Node 24: 1 s) for clients whose own timer runs
 * late. A drain never closes sooner than Node would.
 */
function idleCloseMs(server: HttpServer): number {
  if (!(server.keepAliveTimeout > 0)) return DEFAULT_IDLE_MS;
  const buffer = (server as { keepAliveTimeoutBuffer?: number }).keepAliveTimeoutBuffer;
  return server.keepAliveTimeout + (typeof buffer === 'number' && buffer > 0 ? buffer : 0);
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

export function graceful(server: HttpServer, options: GracefulOptions = {}): Graceful {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const longLivedMs = options.longLivedMs ?? DEFAULT_LONG_LIVED_MS;
  /** Upgraded connections (they leave Node's list): socket -> whether it speaks WebSocket. */
  const upgraded = new Map<Duplex, boolean>();
  let nodeList: NodeConnectionList | undefined;
  /** Our own list, only where Node keeps none (another Node, or connections handed in by listen()'s reuse-port fronts). */
  let own: Set<Socket> | undefined;
  let draining = false;
  let done: Promise<'drained' | 'timeout'> | undefined;

  function untrack(this: Socket): void {
    own?.delete(this);
  }
  function track(socket: Socket): void {
    if (!own) return;
    own.add(socket);
    socket.on('close', untrack);
  }
  // Node sets its list up when the server starts listening; connections
  // that arrive with no 'listening' (reuse-port fronts) start our own.
  const adopt = () => {
    nodeList ??= nodeConnectionList(server);
    if (nodeList) server.off('connection', first);
  };
  const first = (socket: Socket) => {
    server.off('connection', first);
    if (nodeList) return;
    own = new Set();
    server.prependListener('connection', track);
    track(socket);
  };
  server.prependListener('connection', first);
  if (server.listening) adopt();
  else server.once('listening', adopt);

  // Node hands a request to 'upgrade' listeners only when there is one, so
  // ours goes first, and only beside the app's own.
  function noteUpgrade(req: IncomingMessage, socket: Duplex): void {
    upgraded.set(socket, /websocket/i.test(req.headers.upgrade ?? ''));
    socket.once('close', () => upgraded.delete(socket));
  }
  const watchUpgrade = (event: string | symbol) => {
    if (event !== 'upgrade') return;
    server.off('newListener', watchUpgrade);
    server.prependListener('upgrade', noteUpgrade);
  };
  if (server.listenerCount('upgrade') > 0) server.prependListener('upgrade', noteUpgrade);
  else server.on('newListener', watchUpgrade);

  /** HTTP connections (not upgraded). */
  const connections = (): Socket[] => {
    if (own) return [...own].filter((s) => !upgraded.has(s));
    return (nodeList?.all() ?? []).flatMap((p) => (p.socket ? [p.socket] : []));
  };

  const destroyLater = (s: Duplex) => setTimeout(() => s.destroy(), END_GRACE_MS).unref();

  /**
   * Ends the event streams under way (all, or those not in `spare`), with a
   * hint to reconnect soon. How many.
   */
  function endEventStreams(spare?: WeakSet<ServerResponse>): number {
    let ended = 0;
    for (const socket of connections()) {
      const res = currentResponse(socket);
      if (!res || res.writableEnded || spare?.has(res) || !isEventStream(res)) continue;
      // a blank line first ends an event the app left half-written
      res.end('\nretry: 100\n\n');
      ended++;
    }
    return ended;
  }

  const endedUpgrades = new WeakSet<Duplex>();

  /** Ends the long-lived connections still open, for the app; how many there were. */
  function endLongLived(): number {
    let ended = 0;
    for (const [socket, websocket] of upgraded) {
      if (endedUpgrades.has(socket)) continue;
      endedUpgrades.add(socket);
      socket.end(websocket ? WS_CLOSE_GOING_AWAY : undefined);
      destroyLater(socket);
      ended++;
    }
    return ended + endEventStreams();
  }

  function shutdown(): Promise<'drained' | 'timeout'> {
    done ??= handOver().then(
      () =>
        new Promise((resolve) => {
          draining = true;
          const binding = reuseportBinding(server);
          if (binding) for (const front of binding.fronts) front.close();
          else NetServer.prototype.close.call(server);
          server.prependListener('request', onRequestWhileDraining);
          // streams under way get the app's drain (or the bound); one begun
          // later came on a kept-alive connection, most likely a client
          // reconnecting, and is ended at once to come back elsewhere
          const begunBefore = new WeakSet<ServerResponse>();
          for (const socket of connections()) {
            const res = currentResponse(socket);
            if (res) markClose(res);
            if (res && isEventStream(res)) begunBefore.add(res);
          }
          startDraining('the server is shutting down');
          const longDeadline = Date.now() + longLivedMs;
          let boundReached = false;
          const idleMs = options.idleMs ?? idleCloseMs(server);
          const quiet = new WeakMap<Socket, { since: number; bytes: number }>();
          const deadline = Date.now() + timeoutMs;
          const sweep = setInterval(() => {
            const now = Date.now();
            const open = connections();
            const receiving = nodeList ? new Set(open) : undefined;
            if (receiving) for (const p of nodeList?.idle() ?? []) if (p.socket) receiving.delete(p.socket);
            for (const socket of open) {
              let q = quiet.get(socket);
              if (!q) {
                q = { since: now, bytes: socket.bytesRead };
                quiet.set(socket, q);
              }
              if (currentResponse(socket) || receiving?.has(socket) || socket.bytesRead !== q.bytes) {
                q.since = now;
                q.bytes = socket.bytesRead;
              } else if (now - q.since >= idleMs && unread(socket) === 0) {
                socket.destroy();
              }
            }
            if (now < longDeadline) endEventStreams(begunBefore);
            else {
              // past the bound, any that began since go too
              const ended = endLongLived();
              if (!boundReached && ended > 0) options.onLongLivedEnded?.(ended);
              boundReached = true;
            }
            if ((open.length === 0 && upgraded.size === 0) || now >= deadline) {
              clearInterval(sweep);
              const left = [...connections(), ...upgraded.keys()];
              for (const socket of left) socket.destroy();
              resolve(left.length > 0 ? 'timeout' : 'drained');
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
    get draining() {
      return draining;
    },
    get connections() {
      return connections().length + upgraded.size;
    },
    get upgraded() {
      return upgraded.size;
    },
  };
}

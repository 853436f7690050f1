// The connections of one http.Server, as a drain needs them: Node's own list
// of live connections (server[kConnections], what closeIdleConnections()
// uses), read only while draining, plus the upgraded connections, which leave
// that list. Nothing here runs per request or adds a property to Node's
// objects (a new property on every socket changes its hidden class and slows
// Node's own http code); upgrades are noted per upgrade, and only when the
// app handles upgrades at all. Where Node keeps no list (connections handed
// in by listen()'s reuse-port fronts), a set of our own.
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** The parser of each live connection, as Node's http server keeps them (server[kConnections]). */
interface NodeConnectionList {
  all(): Array<{ socket?: Socket }>;
  /** Connections not in the middle of receiving a request. */
  idle(): Array<{ socket?: Socket }>;
}

/** Node's own connection list (since 18.2), if this Node has it. */
export function nodeConnectionList(server: HttpServer): NodeConnectionList | undefined {
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections');
  const list = key && (server as unknown as Record<symbol, Partial<NodeConnectionList> | undefined>)[key];
  return typeof list?.all === 'function' && typeof list.idle === 'function' ? (list as NodeConnectionList) : undefined;
}

export class Connections {
  /** Upgraded connections: socket -> whether it speaks WebSocket. */
  readonly upgraded = new Map<Duplex, boolean>();
  private nodeList: NodeConnectionList | undefined;
  private own: Set<Socket> | undefined;

  /**
   * `ownFallback`: keep a list of our own where Node keeps none. Not for an
   * HTTP/2 server: its connections are sessions (http2.ts), never idle
   * HTTP/1 connections to sweep.
   */
  constructor(server: HttpServer, ownFallback = true) {
    const own = () => this.own;
    function untrack(this: Socket): void {
      own()?.delete(this);
    }
    const track = (socket: Socket) => {
      if (!this.own) return;
      this.own.add(socket);
      socket.on('close', untrack);
    };
    // Node sets its list up when the server starts listening; connections
    // that arrive with no 'listening' (reuse-port fronts) start our own.
    const first = (socket: Socket) => {
      server.off('connection', first);
      if (this.nodeList || !ownFallback) return;
      this.own = new Set();
      server.prependListener('connection', track);
      track(socket);
    };
    const adopt = () => {
      this.nodeList ??= nodeConnectionList(server);
      if (this.nodeList) server.off('connection', first);
    };
    server.prependListener('connection', first);
    if (server.listening) adopt();
    else server.once('listening', adopt);

    // Node hands a request to 'upgrade' listeners only when there is one, so
    // ours goes first, and only beside the app's own.
    const noteUpgrade = (req: IncomingMessage, socket: Duplex) => {
      this.upgraded.set(socket, /websocket/i.test(req.headers.upgrade ?? ''));
      socket.once('close', () => this.upgraded.delete(socket));
    };
    const watchUpgrade = (event: string | symbol) => {
      if (event !== 'upgrade') return;
      server.off('newListener', watchUpgrade);
      server.prependListener('upgrade', noteUpgrade);
    };
    if (server.listenerCount('upgrade') > 0) server.prependListener('upgrade', noteUpgrade);
    else server.on('newListener', watchUpgrade);
  }

  /** HTTP connections (not upgraded). */
  http(): Socket[] {
    if (this.own) return [...this.own].filter((s) => !this.upgraded.has(s));
    return (this.nodeList?.all() ?? []).flatMap((p) => (p.socket ? [p.socket] : []));
  }

  /** Of `open`, those in the middle of receiving a request (Node's parser says so); undefined where Node keeps no list. */
  receiving(open: readonly Socket[]): Set<Socket> | undefined {
    if (!this.nodeList) return undefined;
    const out = new Set(open);
    for (const p of this.nodeList.idle()) if (p.socket) out.delete(p.socket);
    return out;
  }

  get count(): number {
    return this.http().length + this.upgraded.size;
  }
}

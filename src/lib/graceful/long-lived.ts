// Long-lived connections cannot finish by themselves: upgraded ones
// (WebSockets) and responses that are event streams. The drain signal
// (draining.ts) tells the app to end them; at the bound, the ones still open
// are ended for it, as cleanly as the protocol allows: a WebSocket gets a
// close frame with code 1001 (Going Away), an event stream a `retry:` hint and
// its end. An ended stream's connection is not closed with it: its headers
// went out before the drain, without `Connection: close`, so the client may
// reuse it for its reconnect at once, and a close would race that request
// ("other side closed"). The reconnect that comes back on it is a stream
// begun during the drain: ended at once, so it comes back again on a new
// connection, to the new generation.
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Connections } from './connections.ts';
import { currentResponse } from './idle.ts';

/** An upgraded connection ended for the app is destroyed if its peer has not closed it by then. */
const END_GRACE_MS = 2000;
/** A WebSocket close frame, code 1001 (Going Away); a server's frames are not masked. */
const WS_CLOSE_GOING_AWAY = Buffer.from([0x88, 0x02, 0x03, 0xe9]);

/**
 * Whether the response under way is an event stream. Its headers were
 * sent; writeHead(status, headers) sends them without keeping them for
 * getHeader(), so the serialized header block (`_header`) is what to read.
 */
export function isEventStream(res: ServerResponse): boolean {
  const sent = (res as unknown as { _header?: string | null })._header;
  return typeof sent === 'string' && /\r\ncontent-type:[ \t]*text\/event-stream/i.test(sent);
}

export class LongLived {
  private readonly connections: Connections;
  private readonly ended = new WeakSet<Duplex>();
  /** Streams under way when the drain began: the app's to end until the bound. */
  private readonly begunBefore = new WeakSet<ServerResponse>();

  constructor(connections: Connections) {
    this.connections = connections;
  }

  /** The drain begins: the streams under way now get the app's drain (or the bound). */
  noteBegun(): void {
    for (const socket of this.connections.http()) {
      const res = currentResponse(socket);
      if (res && isEventStream(res)) this.begunBefore.add(res);
    }
  }

  /**
   * Ends the event streams under way (all, or only those begun during the
   * drain), with a hint to reconnect soon. How many.
   */
  endEventStreams(all: boolean): number {
    let n = 0;
    for (const socket of this.connections.http()) {
      const res = currentResponse(socket);
      if (!res || res.writableEnded || (!all && this.begunBefore.has(res)) || !isEventStream(res)) continue;
      // a blank line first ends an event the app left half-written
      res.end('\nretry: 100\n\n');
      n++;
    }
    return n;
  }

  /** Past the bound: ends every long-lived connection still open, for the app; how many there were. */
  endAll(): number {
    let n = 0;
    for (const [socket, websocket] of this.connections.upgraded) {
      if (this.ended.has(socket)) continue;
      this.ended.add(socket);
      socket.end(websocket ? WS_CLOSE_GOING_AWAY : undefined);
      setTimeout(() => socket.destroy(), END_GRACE_MS).unref();
      n++;
    }
    return n + this.endEventStreams(true);
  }
}

// The drain of an HTTP/2 server (secure or cleartext, with or without
// allowHTTP1): a client keeps one session for a long time and multiplexes
// streams on it, so the drain must tell it to leave, the two-phase way
// (RFC 9113 §6.8, as Envoy does):
// 1. GOAWAY with the highest stream id there can be: "start no new streams",
//    while streams the client sent before it heard (still on the wire) are
//    taken and served;
// 2. after a gap of at least a round trip, session.close(): the final GOAWAY
//    with the last stream id really processed (anything later the client
//    sent is refused with REFUSED_STREAM, which a client may retry
//    anywhere), and the session ends once its streams are done.
// Nothing is reset: no stream ends in RST_STREAM, no connection in a TCP
// reset. A session that begins during the drain (its connection was
// accepted just before the listener closed) is told at once. Its sockets are
// never taken for idle HTTP/1 connections: a stream sending a long response
// receives no byte and must not be swept.
import { constants, type Http2Session } from 'node:http2';
import type { Server as NetServer } from 'node:net';

/** The largest stream id (2^31 - 1): the first GOAWAY promises nothing about which streams were seen. */
const MAX_STREAM_ID = 2 ** 31 - 1;

/** Whether `server` is an HTTP/2 server (http2.createServer or createSecureServer). */
export function isHttp2Server(server: NetServer): boolean {
  return typeof (server as { updateSettings?: unknown }).updateSettings === 'function';
}

export class Sessions {
  readonly open = new Set<Http2Session>();
  private phase: 'serving' | 'announced' | 'closing' = 'serving';

  constructor(server: NetServer) {
    server.on('session', (s: Http2Session) => {
      this.open.add(s);
      s.once('close', () => this.open.delete(s));
      // a late comer hears what the others heard
      if (this.phase !== 'serving') goaway(s);
      if (this.phase === 'closing') close(s);
    });
  }

  /** Phase 1. */
  announce(): void {
    this.phase = 'announced';
    for (const s of this.open) goaway(s);
  }

  /** Phase 2. */
  close(): void {
    this.phase = 'closing';
    for (const s of this.open) close(s);
  }

  /** At the drain's bound: what is left goes. */
  destroy(): void {
    for (const s of this.open) s.destroy();
  }

  get size(): number {
    return this.open.size;
  }
}

function goaway(s: Http2Session): void {
  if (s.destroyed || s.closed) return;
  const send = () => {
    try {
      s.goaway(constants.NGHTTP2_NO_ERROR, MAX_STREAM_ID);
    } catch {
      // the session ended meanwhile
    }
  };
  if (s.connecting) s.once('connect', send);
  else send();
}

function close(s: Http2Session): void {
  if (s.destroyed || s.closed) return;
  s.close();
}

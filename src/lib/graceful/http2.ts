// The drain of an HTTP/2 server (secure or cleartext, with or without
// allowHTTP1): a client keeps one session for a long time and multiplexes
// streams on it, so the drain must tell it to leave, the two-phase way
// (RFC 9113 §6.8, as Envoy does):
// 1. GOAWAY with the highest stream id there can be: "start no new streams",
//    while streams the client sent before it heard (still on the wire) are
//    taken and served;
// 2. after a gap of at least a round trip, and once the session has no
//    stream open, session.close(): the final GOAWAY with the last stream id
//    processed, and the end of the session. Closing while streams are open
//    makes Node's client refuse (REFUSED_STREAM) some it had in flight;
//    waiting for them costs nothing, since the client opens no new ones once
//    it has heard the first GOAWAY.
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
  /** Streams open per session (counted only while draining matters, but a session's life is short next to its streams). */
  private readonly streams = new WeakMap<Http2Session, number>();
  private phase: 'serving' | 'announced' | 'closing' = 'serving';

  constructor(server: NetServer) {
    server.on('session', (s: Http2Session) => {
      this.open.add(s);
      this.streams.set(s, 0);
      s.once('close', () => this.open.delete(s));
      s.on('stream', (stream: { once(e: 'close', f: () => void): void }) => {
        this.streams.set(s, (this.streams.get(s) ?? 0) + 1);
        stream.once('close', () => {
          const left = (this.streams.get(s) ?? 1) - 1;
          this.streams.set(s, left);
          if (left === 0 && this.phase === 'closing') close(s);
        });
      });
      // a late comer hears what the others heard
      if (this.phase !== 'serving') goaway(s);
      if (this.phase === 'closing') this.closeWhenIdle(s);
    });
  }

  private closeWhenIdle(s: Http2Session): void {
    if ((this.streams.get(s) ?? 0) === 0) close(s);
  }

  /** Phase 1. */
  announce(): void {
    this.phase = 'announced';
    for (const s of this.open) goaway(s);
  }

  /** Phase 2: each session is closed once no stream is open on it. */
  close(): void {
    if (this.phase === 'closing') return;
    this.phase = 'closing';
    for (const s of this.open) this.closeWhenIdle(s);
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

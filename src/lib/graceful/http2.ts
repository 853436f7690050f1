// The drain of an HTTP/2 server (secure or cleartext, with or without
// allowHTTP1): a client keeps one session for a long time and multiplexes
// streams on it, so the drain must tell it to leave, the two-phase way
// (RFC 9113 §6.8, as Envoy does):
// 1. GOAWAY with the highest stream id there can be: "start no new streams",
//    while streams the client sent before it heard (still on the wire) are
//    taken and served;
// 2. after a gap of at least a round trip, and once the session has no
//    stream open, session.close(): the final GOAWAY with the last stream id
//    processed, and the end of the session.
// When phase 1 is sent matters, for two reasons measured here (h2load and
// Node's client through deploys: each cost requests):
// - Node stops reading a session that has sent GOAWAY and has no stream
//   open (nghttp2 no longer "wants read"), so a request on its way to an
//   idle session would wait unread until phase 2 refuses it. An idle session
//   is therefore not told at all: it is told with its next request, or
//   closed (phase 2 alone) when the gap is over.
// - A client queues its next request as a response ends, and one that hears
//   GOAWAY with a request queued but not yet sent drops it (nghttp2's rule:
//   curl, h2load). Told as a stream arrives, before the app answers it, a
//   session hears GOAWAY ahead of that response on the wire.
// A session that begins during the drain (over TLS, a connection accepted
// before the listener closed may still be in its handshake: the drain waits
// for those) is told the same way, with its first stream.
// Nothing is reset: no stream ends in RST_STREAM, no connection in a TCP
// reset. HTTP/2 sockets are never taken for idle HTTP/1 connections: a stream
// sending a long response receives no byte and must not be swept.
// What runs per stream is the only thing here on the hot path: a counter on
// its session and one listener shared by every stream (no closure, no map
// lookup), so the drain costs a served stream next to nothing.
// node:http2 and node:tls are only named here, never loaded: an HTTP/1
// server's drain must not pay for them.
import type { Http2Session } from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';

/** What the drain keeps on a session: its streams open, and the Sessions it belongs to. */
type Tracked = Http2Session & { [OPEN]: number; [OWNER]: Sessions };
type Stream = { on(e: 'close', f: () => void): void; [SESSION]?: Tracked };

const OPEN = Symbol('baton.openStreams');
const OWNER = Symbol('baton.sessions');
const SESSION = Symbol('baton.session');

/** RFC 9113's NO_ERROR, the code of a graceful GOAWAY. */
const NO_ERROR = 0;
/** The largest stream id (2^31 - 1): the first GOAWAY promises nothing about which streams were seen. */
const MAX_STREAM_ID = 2 ** 31 - 1;

/** Whether `server` is an HTTP/2 server (http2.createServer or createSecureServer). */
export function isHttp2Server(server: NetServer): boolean {
  return typeof (server as { updateSettings?: unknown }).updateSettings === 'function';
}

/** A session's 'stream' listener, ahead of the server's own (which may respond at once). */
function onStream(this: Tracked, stream: Stream): void {
  this[OPEN]++;
  stream[SESSION] = this;
  stream.on('close', onStreamClose);
  // told now, with a stream open (so Node reads on) and ahead of its response
  if (this[OWNER].phase !== 'serving') this[OWNER].tell(this);
}

function onStreamClose(this: Stream): void {
  const s = this[SESSION] as Tracked;
  if (--s[OPEN] === 0 && s[OWNER].phase === 'closing') s[OWNER].closeWhenIdle(s);
}

export class Sessions {
  readonly open = new Set<Http2Session>();
  /** TLS connections accepted that have no session yet (in their handshake). */
  private readonly handshaking = new Set<Socket>();
  /** When each session heard the first GOAWAY: it is closed no sooner than the gap after. */
  private readonly told = new WeakMap<Http2Session, number>();
  phase: 'serving' | 'announced' | 'closing' = 'serving';
  private readonly gapMs: number;

  constructor(server: NetServer, gapMs: number) {
    this.gapMs = gapMs;
    // a TLS server (https, or http2's secure one) has secure contexts
    if (typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function') {
      server.on('connection', (raw: Socket) => {
        this.handshaking.add(raw);
        raw.once('close', () => this.handshaking.delete(raw));
      });
      server.on('secureConnection', (tls: { _parent?: Socket }) => {
        if (tls._parent) this.handshaking.delete(tls._parent);
      });
    }
    server.on('session', (session: Http2Session) => {
      const s = session as Tracked;
      s[OPEN] = 0;
      s[OWNER] = this;
      this.open.add(s);
      s.once('close', () => this.open.delete(s));
      s.prependListener('stream', onStream);
      // a late comer that sends nothing is closed once the gap is over
      if (this.phase !== 'serving')
        setTimeout(() => {
          if (this.phase === 'closing') this.closeWhenIdle(s);
        }, this.gapMs).unref();
    });
  }

  /**
   * Phase 1 for a session that has a stream open. An idle one is not told
   * (Node stops reading a session that sent GOAWAY and has no stream open,
   * so a request on its way would wait unread): it is told when its next
   * stream comes, or closed once the gap is over.
   */
  private announceTo(s: Http2Session): void {
    if ((s as Tracked)[OPEN] > 0) this.tell(s);
  }

  /** Phase 1 for one session; phase 2 follows the gap after. */
  tell(s: Http2Session): void {
    if (this.told.has(s)) return;
    this.told.set(s, Date.now());
    goaway(s);
    setTimeout(() => {
      if (this.phase === 'closing') this.closeWhenIdle(s);
    }, this.gapMs).unref();
  }

  /** Phase 2, once no stream is open: at once for a session never told (it was idle), else a gap after it was told. */
  closeWhenIdle(s: Http2Session): void {
    if ((s as Tracked)[OPEN] > 0) return;
    const told = this.told.get(s);
    if (told === undefined || Date.now() - told >= this.gapMs) close(s);
  }

  /** Phase 1. */
  announce(): void {
    this.phase = 'announced';
    for (const s of this.open) this.announceTo(s);
  }

  /** Phase 2: each session is closed once no stream is open on it, a gap after it was told. */
  close(): void {
    if (this.phase === 'closing') return;
    this.phase = 'closing';
    for (const s of this.open) this.closeWhenIdle(s);
  }

  /** At the drain's bound: what is left goes. */
  destroy(): void {
    for (const s of this.open) s.destroy();
    for (const raw of this.handshaking) raw.destroy();
  }

  /** Sessions, and connections still in their TLS handshake. */
  get size(): number {
    return this.open.size + this.handshaking.size;
  }
}

function goaway(s: Http2Session): void {
  if (s.destroyed || s.closed) return;
  const send = () => {
    try {
      s.goaway(NO_ERROR, MAX_STREAM_ID);
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
